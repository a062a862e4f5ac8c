"""What a map run reports: item counts and the final result (DescribeMapRun-like)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ItemCounts:
    """Item counts with the meaning of DescribeMapRun ``itemCounts``."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    aborted: int = 0
    total: int = 0
    results_written: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timedOut": self.timed_out,
            "aborted": self.aborted,
            "total": self.total,
            "resultsWritten": self.results_written,
        }


@dataclass(frozen=True, slots=True)
class MapRunResult:
    """The outcome of one map run."""

    status: str
    """SUCCEEDED, FAILED or ABORTED."""
    map_run_arn: str
    run_id: str
    item_counts: ItemCounts
    start_date: str
    stop_date: str
    error: str | None = None
    cause: str | None = None
    manifest: str | None = None
    """Where manifest.json was written (path or s3:// URI), if a ResultWriter was configured."""
    backend: str = "local"
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mapRunArn": self.map_run_arn,
            "status": self.status,
            "startDate": self.start_date,
            "stopDate": self.stop_date,
            "itemCounts": self.item_counts.to_dict(),
        }
        if self.error:
            out["error"] = self.error
            out["cause"] = self.cause or ""
        if self.manifest:
            out["manifest"] = self.manifest
        out["backend"] = self.backend
        if self.stats:
            out["stats"] = self.stats
        return out
