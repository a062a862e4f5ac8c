"""The command line of durable runs: ``resume``, ``redrive``, ``describe``, ``list``, ``update``.

    distmap resume RUN_DIR [--backend local|ray|inline] [--address ADDR] [--no-progress] ...
    distmap redrive RUN_DIR [--backend ...] ...
    distmap describe RUN_DIR
    distmap list [DESTINATION] [--json]
    distmap update RUN_DIR [--max-concurrency N] [--tolerated-failure-percentage P]
                           [--tolerated-failure-count C]

``resume`` and ``redrive`` exit like ``run`` (0 SUCCEEDED, 1 FAILED, 2 nothing ran, 130
ABORTED); resuming a run that already SUCCEEDED prints its summary and exits 0. ``describe``
prints the DescribeMapRun-shaped JSON; ``list`` the runs, newest first; ``update`` the limits
it asked for. They exit 2 when RUN_DIR is not a run directory or a value is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distmap.errors import ConfigError
from distmap.storage import redact

RUN_COMMANDS = ("describe", "list", "update")


def add_run_commands(sub: Any, backends: tuple[str, ...], no_mask_help: str) -> None:
    for name, text in (
        ("resume", "continue a map run whose coordinator died, or that was aborted or failed"),
        ("redrive", "run again only the FAILED, timed-out and PENDING items of a finished map run"),
    ):
        r = sub.add_parser(name, help=text)
        r.add_argument("run_dir", help="the run's directory: <Destination>/<run-id>/")
        r.add_argument(
            "--backend", choices=backends, default="local", help="where items run (default: local)"
        )
        r.add_argument("--address", help="ray backend: the cluster to join")
        r.add_argument("--num-cpus", type=int, help="ray backend: CPUs of a new local cluster")
        r.add_argument("--log-json", action="store_true", help="JSON log lines on stderr even on a terminal")
        r.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
        r.add_argument("--no-progress", action="store_true", help="no live progress bar")
        r.add_argument("--no-mask-causes", action="store_true", help=no_mask_help)
    d = sub.add_parser(
        "describe", help="print a map run's state (DescribeMapRun's shape), live while it runs"
    )
    d.add_argument("run_dir", help="the run's directory: <Destination>/<run-id>/")
    ls = sub.add_parser("list", help="list the map runs under a destination, newest first")
    ls.add_argument(
        "destination", nargs="?", help="a local ResultWriter destination (default: the state directory)"
    )
    ls.add_argument("--json", action="store_true", help="print JSON (ListMapRuns' fields, status and counts)")
    u = sub.add_parser("update", help="change a running map run's limits (UpdateMapRun)")
    u.add_argument("run_dir", help="the run's directory: <Destination>/<run-id>/")
    u.add_argument("--max-concurrency", type=int)
    u.add_argument("--tolerated-failure-percentage", type=float)
    u.add_argument("--tolerated-failure-count", type=int)


def continue_run(args: argparse.Namespace, **options: Any) -> Any:
    """``resume`` / ``redrive`` with the CLI's options (the caller handles errors like ``run``)."""
    from distmap.runs import redrive, resume

    fn = resume if args.command == "resume" else redrive
    return fn(args.run_dir, backend=args.backend, mask_causes=not args.no_mask_causes, **options)


def run_command(args: argparse.Namespace) -> int:
    from distmap.describe import describe_map_run, list_map_runs, update_map_run

    try:
        if args.command == "describe":
            print(json.dumps(describe_map_run(args.run_dir), indent=2))
        elif args.command == "list":
            runs = list_map_runs(args.destination)
            print(json.dumps({"mapRuns": runs}, indent=2) if args.json else _table(runs))
        else:
            change = update_map_run(
                args.run_dir,
                max_concurrency=args.max_concurrency,
                tolerated_failure_percentage=args.tolerated_failure_percentage,
                tolerated_failure_count=args.tolerated_failure_count,
            )
            print(json.dumps(change))
    except ConfigError as exc:
        print(f"distmap: {redact(str(exc))}", file=sys.stderr)
        return 2
    return 0


def _table(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no map runs"
    lines = [
        f"{'STARTED':<24}  {'STATUS':<9}  {'SUCCEEDED':>9}  {'FAILED':>7}  {'PENDING':>8}  {'TOTAL':>9}  RUN"
    ]
    for r in runs:
        c = r["itemCounts"]
        lines.append(
            f"{r['startDate'] or '':<24}  {r['status']:<9}  {c['succeeded']:>9}  {c['failed'] + c['timedOut']:>7}  "
            f"{c['pending'] + c['aborted']:>8}  {c['total']:>9}  {r['runDir']}"
        )
    return "\n".join(lines)
