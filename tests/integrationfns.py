"""Functions for tests/test_asl_integrations.py: Lambda functions, service fakes, callback and
activity workers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import distmap
from distmap import StatesError


class InvalidOrder(Exception):
    pass


TOKENS: list[str] = []  # tokens seen by record_token, for the tests to complete or inspect


def enrich(event: dict[str, Any]) -> dict[str, Any]:
    return {"id": event["id"], "name": str(event.get("name", "")).upper()}


def explode(event: dict[str, Any]) -> Any:
    raise InvalidOrder(f"order {event['id']} is invalid")


def not_json(event: Any) -> Any:
    return {1, 2}


def mutate(event: dict[str, Any]) -> Any:
    event["touched"] = True  # Lambda gets a copy of its event: this never reaches the state
    return "ok"


def throttled(event: dict[str, Any]) -> Any:
    """Raises Lambda.TooManyRequestsException ``event['fails']`` times (counted in a file)."""
    counter = Path(event["dir"]) / "calls"
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if calls <= event["fails"]:
        raise StatesError("Lambda.TooManyRequestsException", "Rate exceeded")
    return {"calls": calls}


def sleep(event: dict[str, Any]) -> Any:
    time.sleep(event["seconds"])
    return "slept"


def touch(event: dict[str, Any]) -> Any:
    time.sleep(event.get("delay", 0))
    Path(event["path"]).write_text("done")
    return {"touched": event["path"]}


def fake_put_item(params: dict[str, Any]) -> dict[str, Any]:
    return {"stored": params["Item"], "table": params["TableName"]}


# --------------------------------------------------------------------------- callbacks


def _later(delay: float, action: Any) -> None:
    def run() -> None:
        time.sleep(delay)
        action()

    threading.Thread(target=run, daemon=True).start()


def approve_later(event: dict[str, Any]) -> Any:
    """A waitForTaskToken Lambda: hands the token to a 'reviewer' who approves a moment later."""
    token = event["token"]
    _later(event.get("delay", 0.05), lambda: distmap.send_task_success(token, {"approved": event["id"]}))
    return {"submitted": True}  # ignored: the task waits for the token


def reject_later(event: dict[str, Any]) -> Any:
    token = event["token"]
    _later(0.05, lambda: distmap.send_task_failure(token, "Review.Rejected", f"order {event['id']} rejected"))
    return None


def heartbeat_then_approve(event: dict[str, Any]) -> Any:
    token = event["token"]

    def work() -> None:
        for _ in range(event["beats"]):
            time.sleep(event["interval"])
            distmap.send_task_heartbeat(token)
        distmap.send_task_success(token, "approved after heartbeats")

    threading.Thread(target=work, daemon=True).start()
    return None


def record_token(event: dict[str, Any]) -> Any:
    """Keeps the token and never completes it."""
    TOKENS.append(event["token"])
    return None


def fail_with_token(event: dict[str, Any]) -> Any:
    """Records its token, then fails the invocation itself (the task fails, retries get new tokens)."""
    TOKENS.append(event["token"])
    if len(TOKENS) < 2:
        raise InvalidOrder("first attempt fails")
    distmap.send_task_success(event["token"], {"attempt": len(TOKENS)})
    return None


# --------------------------------------------------------------------------- activities


def approve_activity(task_input: dict[str, Any]) -> dict[str, Any]:
    return {"approved": task_input["id"], "token_seen": distmap.current_task_token() is not None}


def deny_activity(task_input: dict[str, Any]) -> Any:
    raise StatesError("Approval.Denied", f"order {task_input['id']} denied")


def slow_activity(task_input: dict[str, Any]) -> Any:
    """Works for a while, sending heartbeats through current_task_token()."""
    token = distmap.current_task_token()
    assert token is not None
    for _ in range(task_input["beats"]):
        time.sleep(task_input["interval"])
        if task_input.get("heartbeat", True):
            distmap.send_task_heartbeat(token)
    return "finished"
