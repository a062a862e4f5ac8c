"""The curated public API: ``distmap.__all__`` is exactly this list, and every name resolves.

Adding or removing a public name is a deliberate change: update this list with it (and the README).
"""

from __future__ import annotations

import distmap

PUBLIC = [
    "BackendUnavailable",
    "ConfigError",
    "DistmapError",
    "ExceedToleratedFailureThreshold",
    "ItemCounts",
    "ItemReaderFailed",
    "MapJob",
    "MapRunResult",
    "ResultWriterFailed",
    "StatesError",
    "TaskFailed",
    "TaskTokenError",
    "Timeout",
    "__version__",
    "current_task_token",
    "describe_map_run",
    "execute",
    "list_map_runs",
    "load_job",
    "redrive",
    "resume",
    "run",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "update_map_run",
    "validate",
]


def test_all_is_pinned():
    """``distmap.__all__`` lists exactly the curated names."""
    assert sorted(distmap.__all__) == sorted(PUBLIC)


def test_every_public_name_resolves():
    """Each public name is importable from ``distmap`` (lazily loaded ones included)."""
    for name in PUBLIC:
        assert getattr(distmap, name) is not None, name


def test_the_errors_carry_their_asl_names():
    """The public exception classes carry the ASL error names users match on."""
    assert distmap.ItemReaderFailed().error == "States.ItemReaderFailed"
    assert distmap.ResultWriterFailed().error == "States.ResultWriterFailed"
    assert distmap.ExceedToleratedFailureThreshold().error == "States.ExceedToleratedFailureThreshold"
    assert distmap.Timeout().error == "States.Timeout"
    assert issubclass(distmap.StatesError, distmap.DistmapError)
