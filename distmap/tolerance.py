"""Tolerated-failure rules of AWS Distributed Map, as pure functions.

* Neither field set: no failure is tolerated (threshold 0).
* ``ToleratedFailureCount``: the run fails when failed items *exceed* the count.
* ``ToleratedFailurePercentage``: the run fails when failed items / total items *exceeds* it.
* Both set: exceeding either fails the run.
"Failed" counts items whose execution FAILED or TIMED OUT; with ItemBatcher every item of a
failed batch counts.
"""

from __future__ import annotations


def exceeds_threshold(failed: int, total: int | None, percentage: float | None, count: int | None) -> bool:
    """Whether ``failed`` failures exceed the tolerance.

    ``total`` is the number of items in the run, or None while it is not known yet; the
    percentage rule is then not decided (it needs the total), the count rule still is.
    """
    if percentage is None and count is None:
        return failed > 0
    if count is not None and failed > count:
        return True
    if percentage is not None and total is not None and total > 0:
        # failed / total * 100 > percentage, without float division
        return failed * 100 > percentage * total
    return False


def describe_threshold(percentage: float | None, count: int | None) -> str:
    parts = []
    if count is not None:
        parts.append(f"ToleratedFailureCount {count}")
    if percentage is not None:
        parts.append(f"ToleratedFailurePercentage {percentage:g}")
    return " / ".join(parts) if parts else "no tolerated failures (default 0)"
