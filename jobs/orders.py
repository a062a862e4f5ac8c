"""Lambda-style functions for examples/csv-to-sns: a Distributed Map reads an orders CSV from S3
and calls ``arn:aws:states:::lambda:invoke`` on batches of rows (ItemBatcher).

Mapped in examples/csv-to-sns/resources.yaml under ``Functions:``; each receives the Lambda event
(here ``{"Items": [...], "BatchInput": {...}}``) and returns the payload.
"""

from __future__ import annotations

from typing import Any


class InvalidOrder(Exception):
    """An order row that cannot be processed (its class name becomes the task's Error)."""


def process_orders(event: dict[str, Any]) -> dict[str, Any]:
    """Total one batch of CSV order rows (CSV values are strings); a row whose quantity is not a
    positive integer fails the whole batch with InvalidOrder."""
    revenue = 0.0
    for row in event["Items"]:
        try:
            quantity = int(row["quantity"])
        except (KeyError, ValueError):
            quantity = 0
        if quantity <= 0:
            raise InvalidOrder(f"order {row.get('order_id')} has quantity {row.get('quantity')!r}")
        revenue += quantity * float(row["unit_price"])
    batch_input = event.get("BatchInput") or {}
    return {
        "orders": len(event["Items"]),
        "revenue": round(revenue, 2),
        "runDate": batch_input.get("runDate"),
    }
