"""Child executions (one item, or one ItemBatcher batch) and their tagged outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distmap.retry import AttemptState


@dataclass(frozen=True, slots=True)
class Succeeded:
    output: Any


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    cause: str


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Stopped at TimeoutSeconds (or a time limit of its own) with no Retrier or Catcher left."""

    error: str
    cause: str


Outcome = Succeeded | Failed | TimedOut


@dataclass(slots=True, eq=False)
class Execution:
    """One child execution: a single item, or one ItemBatcher batch."""

    index: int
    items: int
    input: Any
    input_json: bytes | None = None
    """The input's JSON text when already known (a raw JSONL line)."""
    state: AttemptState | None = None
    start: float = 0.0
    stop: float = 0.0
    outcome: Outcome | None = None
    retries: int = 0
    work: Any = None
    """The chunk in the lanes this execution belongs to (``lanes.Work``)."""
