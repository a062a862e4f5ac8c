"""ASL retry policy, error matching and tolerated-failure rules as pure functions."""

from __future__ import annotations

import pytest

from distmap.config.model import RetrierConfig
from distmap.errors import error_matches
from distmap.retry import RetryPolicy
from distmap.tolerance import exceeds_threshold


def delays(policy: RetryPolicy, errors: list[str]) -> list[float | None]:
    state = policy.new_state()
    return [policy.next_delay(state, e) for e in errors]


def test_backoff_schedule_and_max_attempts():
    """Delays grow by BackoffRate from IntervalSeconds; MaxAttempts retries, then the error is final."""
    p = RetryPolicy((RetrierConfig(("X",), interval_seconds=2, max_attempts=3, backoff_rate=3),))
    assert delays(p, ["X"] * 4) == [2, 6, 18, None]


def test_max_delay_caps_backoff():
    """MaxDelaySeconds caps each delay."""
    p = RetryPolicy(
        (RetrierConfig(("X",), interval_seconds=1, max_attempts=5, backoff_rate=10, max_delay_seconds=50),)
    )
    assert delays(p, ["X"] * 5) == [1, 10, 50, 50, 50]


def test_max_attempts_zero_never_retries():
    """MaxAttempts 0 means the matching error is never retried."""
    p = RetryPolicy((RetrierConfig(("X",), max_attempts=0),))
    assert delays(p, ["X"]) == [None]


def test_full_jitter_stays_within_the_unjittered_delay():
    """JitterStrategy FULL draws each delay from [0, the un-jittered delay]."""
    r = RetrierConfig(("X",), interval_seconds=1, max_attempts=3, backoff_rate=2, jitter_strategy="FULL")
    for _ in range(200):
        d = delays(RetryPolicy((r,)), ["X"] * 3)
        assert 0 <= d[0] <= 1 and 0 <= d[1] <= 2 and 0 <= d[2] <= 4
    samples = {round(delays(RetryPolicy((r,)), ["X"])[0], 6) for _ in range(50)}
    assert len(samples) > 10  # really random


def test_each_retrier_counts_its_own_attempts_and_first_match_wins():
    """Retriers keep separate counts; the first matching retrier decides, even when exhausted."""
    p = RetryPolicy(
        (
            RetrierConfig(("A",), interval_seconds=1, max_attempts=1, backoff_rate=1),
            RetrierConfig(("States.ALL",), interval_seconds=5, max_attempts=2, backoff_rate=1),
        )
    )
    assert delays(p, ["B", "A", "B", "A", "B"]) == [5, 1, 5, None, None]


@pytest.mark.parametrize(
    ("error", "equals", "expected"),
    [
        ("ValueError", ["ValueError"], True),
        ("ValueError", ["KeyError"], False),
        ("ValueError", ["States.ALL"], True),
        ("States.Timeout", ["States.ALL"], True),
        ("States.Runtime", ["States.ALL"], False),
        ("States.DataLimitExceeded", ["States.ALL"], False),
        ("States.Runtime", ["States.Runtime"], True),
        ("ValueError", ["States.TaskFailed"], True),
        ("States.Timeout", ["States.TaskFailed"], False),
        ("States.Timeout", ["States.Timeout"], True),
        ("States.HeartbeatTimeout", ["States.Timeout"], True),  # a heartbeat timeout is a timeout
        ("States.HeartbeatTimeout", ["States.HeartbeatTimeout"], True),
        ("States.HeartbeatTimeout", ["States.TaskFailed"], False),
        ("States.HeartbeatTimeout", ["States.ALL"], True),
        ("States.Timeout", ["States.HeartbeatTimeout"], False),
    ],
)
def test_error_matching_rules(error, equals, expected):
    """ErrorEquals matching follows AWS: States.ALL skips terminal errors, TaskFailed skips the
    timeouts, and States.Timeout also covers States.HeartbeatTimeout."""
    assert error_matches(error, equals) is expected


@pytest.mark.parametrize(
    ("failed", "total", "pct", "count", "exceeded"),
    [
        (0, 100, None, None, False),  # default: nothing tolerated ...
        (1, 100, None, None, True),  # ... one failure fails the run
        (5, 100, None, 5, False),  # at the count limit passes
        (6, 100, None, 5, True),  # above fails
        (10, 100, 10.0, None, False),  # exactly 10% passes
        (11, 100, 10.0, None, True),  # above 10% fails
        (1, 3, 33.34, None, False),
        (1, 3, 33.33, None, True),
        (6, 1000, 10.0, 5, True),  # both set: the count is exceeded
        (101, 1000, 10.0, 200, True),  # both set: the percentage is exceeded
        (100, 1000, 10.0, 200, False),  # both set: neither exceeded
        (50, 50, 100.0, None, False),  # 100% never fails
        (3, None, 10.0, None, False),  # total unknown: the percentage is not decided yet
        (6, None, 10.0, 5, True),  # ... but the count is
    ],
)
def test_tolerated_failure_rules(failed, total, pct, count, exceeded):
    """Failures must exceed the threshold; either field fails the run when both are set."""
    assert exceeds_threshold(failed, total, pct, count) is exceeded
