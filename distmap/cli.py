"""``distmap`` command line.

    distmap run CONFIG [--backend local|ray] [--address ADDR] [--set Field=value ...]
                       [--log-json] [--run-id ID]
    distmap execute DEFINITION [--input JSON|@file] [--resources FILE] [--backend local|ray]
                               [--stub echo]
    distmap validate DEFINITION [--resources FILE] [--json]

``run`` exit codes: 0 the map run SUCCEEDED; 1 it FAILED (the ASL error name is printed); 2 the
job file or arguments are invalid, the source / destination cannot be opened, or the backend
cannot start (nothing ran); 130 the run was ABORTED (Ctrl-C / SIGTERM).

``execute`` prints the StartSyncExecution-shaped response and exits 0 whatever the execution's
status; 2 when it cannot start (bad definition, unmapped resources, backend unavailable).

``validate`` checks a definition without running it and lists every resource, Lambda function,
state machine and activity it needs, with what maps each; exit 0 when everything is mapped, 1
when something is unmapped, 2 when the definition or the resources file is invalid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator

from distmap import __version__
from distmap.cli_runs import RUN_COMMANDS, add_run_commands, continue_run, run_command
from distmap.errors import BackendUnavailable, ConfigError, StatesError
from distmap.executors import BACKENDS
from distmap.logs import configure_logging, get_logger
from distmap.names import run_id_problem
from distmap.progress import LogProgress, TerminalProgress
from distmap.stops import STOP_SIGNALS, StopRequests
from distmap.storage import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 130
_NO_MASK_HELP = (
    "keep the Cause of FAILED records verbatim (by default credentials in it are masked, as in logs)"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distmap", description="Run AWS Step Functions Distributed Map jobs locally or on Ray."
    )
    p.add_argument("--version", action="version", version=f"distmap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a job file (YAML or JSON)")
    r.add_argument("config", help="path of the job file")
    r.add_argument("--backend", choices=BACKENDS, default="local", help="where items run (default: local)")
    r.add_argument(
        "--address",
        help="ray backend: the cluster to join (ray://host:10001, host:6379 or auto; default: "
        "$RAY_ADDRESS, else start a local cluster)",
    )
    r.add_argument(
        "--num-cpus", type=int, help="ray backend: CPUs of a new local cluster (default: all cores)"
    )
    r.add_argument("--dashboard", action="store_true", help="ray backend: start the Ray dashboard too")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="Field=value",
        help="override a job field before validation, e.g. --set MaxConcurrency=8 (repeatable)",
    )
    r.add_argument("--run-id", help="map run id (default: a new UUID); results go to <destination>/<run-id>/")
    r.add_argument("--log-json", action="store_true", help="JSON log lines on stderr even on a terminal")
    r.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    r.add_argument("--no-progress", action="store_true", help="no live progress bar")
    r.add_argument("--no-mask-causes", action="store_true", help=_NO_MASK_HELP)
    r.add_argument(
        "--no-journal", action="store_true", help="keep no run journal (the run cannot be resumed or described)"
    )
    e = sub.add_parser("execute", help="run a whole Step Functions state machine (ASL definition)")
    e.add_argument("definition", help="the state machine definition (JSON or YAML file)")
    e.add_argument("--input", default="{}", help="the execution input: JSON text, or @file (default {})")
    e.add_argument("--resources", help="YAML/JSON file mapping Task Resource strings to module:function")
    e.add_argument("--backend", choices=BACKENDS, default="local", help="where DISTRIBUTED Map items run")
    e.add_argument(
        "--stub",
        choices=["echo"],
        help="run every unmapped Task as an echo stub (its result is its input): a dry run",
    )
    e.add_argument("--address", help="ray backend: the cluster to join")
    e.add_argument("--name", help="execution name (default: a UUID)")
    e.add_argument("--state-machine-name", help="name used in ARNs (default: the definition file name)")
    e.add_argument("--log-json", action="store_true", help="JSON log lines on stderr even on a terminal")
    e.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    e.add_argument("--no-mask-causes", action="store_true", help=_NO_MASK_HELP)
    add_run_commands(sub, BACKENDS, _NO_MASK_HELP)
    v = sub.add_parser("validate", help="check a state machine definition and list what it needs")
    v.add_argument("definition", help="the state machine definition (JSON or YAML file)")
    v.add_argument("--resources", help="the resources file to check the definition against")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command in ("run", "resume", "redrive"):
            return _run(args)
        if args.command in RUN_COMMANDS:
            return run_command(args)
        return _other(args)
    except KeyboardInterrupt:  # Ctrl-C before distmap's own handlers were in place
        print("distmap: interrupted", file=sys.stderr)
        return EXIT_ABORTED


def _other(args: argparse.Namespace) -> int:
    if args.command == "execute":
        return _execute(args)
    if args.command == "validate":
        return _validate(args)
    return EXIT_USAGE  # pragma: no cover


def _run(args: argparse.Namespace) -> int:
    # Signals only set state from here on (see distmap/stops.py): a Ctrl-C while the job loads is
    # acted on as soon as the run starts, and one after the run has ended changes nothing.
    stops = StopRequests()
    stops.install()
    try:
        with reserved_stdout():
            code, summary = _run_job(args, stops)
        if summary is not None:
            print(summary, flush=True)
    finally:
        # the run is over: a late signal must not kill the interpreter while it exits (Python puts
        # back the default handlers of Python-level ones when it finalizes, but leaves SIG_IGN)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
    return code


def _run_job(args: argparse.Namespace, stops: StopRequests) -> tuple[int, str | None]:
    """Run the job with stdout pointing at stderr; return the exit code and the summary to print."""
    from distmap.api import run

    tty = sys.stderr.isatty()
    json_logs = args.log_json or not tty
    progress: TerminalProgress | LogProgress | None = None
    if not args.no_progress:
        progress = TerminalProgress() if tty and not args.log_json else LogProgress()
    configure_logging(
        json=json_logs,
        level=args.log_level if json_logs else max(args.log_level, "warning", key=_lvl),
        # a warning printed during the run gets a line of its own, not the end of the bar's
        stream=progress.log_stream() if isinstance(progress, TerminalProgress) else None,
    )
    log = get_logger()
    options = {}
    if args.command != "run":
        args.overrides, args.run_id, args.dashboard = [], None, False
        args.num_cpus = getattr(args, "num_cpus", None)
    if args.backend == "ray":
        options = {"address": args.address, "num_cpus": args.num_cpus, "dashboard": args.dashboard}
    elif args.address or args.num_cpus or args.dashboard:
        print("distmap: --address, --num-cpus and --dashboard need --backend ray", file=sys.stderr)
        return EXIT_USAGE, None
    if args.run_id is not None and (problem := run_id_problem(args.run_id)):
        print(f"distmap: --run-id {problem}", file=sys.stderr)
        return EXIT_USAGE, None
    try:
        if args.command != "run":
            result = continue_run(args, progress=progress, stops=stops, **options)
        else:
            result = run(
                args.config,
                backend=args.backend,
                overrides=args.overrides,
                run_id=args.run_id,
                progress=progress,
                mask_causes=not args.no_mask_causes,
                stops=stops,
                journal=not args.no_journal,
                **options,
            )
    except ConfigError as exc:
        what = "invalid job" if args.command == "run" else f"cannot {args.command}"
        print(f"distmap: {what}: {redact(str(exc))}", file=sys.stderr)
        if json_logs:
            problems = [f"{p.field}: {p.reason}" if p.field else p.reason for p in exc.problems or [exc]]
            log.error("map_run.invalid_config", field=exc.field, reason=exc.reason, problems=problems)
        return EXIT_USAGE, None
    except BackendUnavailable as exc:
        print(f"distmap: backend {args.backend} unavailable: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE, None
    except StatesError as exc:  # source or destination unusable: nothing ran
        print(f"distmap: {exc.error}: {redact(exc.cause)}", file=sys.stderr)
        return EXIT_USAGE, None
    summary = json.dumps(result.to_dict(), indent=2)
    if result.status == "SUCCEEDED":
        return EXIT_OK, summary
    print(f"distmap: map run {result.status}: {result.error}: {result.cause}", file=sys.stderr)
    return (EXIT_ABORTED if result.status == "ABORTED" else EXIT_FAILED), summary


@contextlib.contextmanager
def reserved_stdout() -> Iterator[None]:
    """Keep stdout for the summary alone: while the job runs, file descriptor 1 points at stderr,
    so nothing else (Ray's ``(raylet)`` lines, prints from item functions in forked workers,
    libraries) can land in front of the JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    stdout, sys.stdout = sys.stdout, sys.stderr  # one stream object: lines do not interleave
    try:
        yield
    finally:
        sys.stdout = stdout
        with contextlib.suppress(Exception):
            sys.stderr.flush()
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _execute(args: argparse.Namespace) -> int:
    """Exit 0 whatever the execution's status; 2 when it could not start."""
    from distmap.asl.execution import execute

    configure_logging(json=args.log_json or not sys.stderr.isatty(), level=args.log_level)
    try:
        raw = args.input
        if raw.startswith("@"):
            with open(raw[1:], encoding="utf-8") as fh:
                raw = fh.read()
        data = json.loads(raw)
    except OSError as exc:
        print(f"distmap: --input: cannot read {args.input[1:]}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"distmap: --input: {args.input[1:]} is not valid UTF-8 ({exc.reason})", file=sys.stderr)
        return EXIT_USAGE
    except json.JSONDecodeError as exc:
        print(f"distmap: --input is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = {"address": args.address} if args.backend == "ray" and args.address else {}
    try:
        response = execute(
            args.definition,
            data,
            resources=args.resources,
            backend=args.backend,
            name=args.name,
            state_machine_name=args.state_machine_name,
            stub=args.stub,
            mask_causes=not args.no_mask_causes,
            **options,
        )
    except ConfigError as exc:
        print(f"distmap: invalid definition: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        print(f"distmap: backend {args.backend} unavailable: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(response, indent=2))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 when every requirement is mapped, 1 when some are not, 2 when invalid."""
    from distmap.asl.execution import validate

    configure_logging(json=not sys.stderr.isatty(), level="warning")
    try:
        report = validate(args.definition, args.resources)
    except ConfigError as exc:
        print(f"distmap: invalid: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_validate_text(report))
    return EXIT_FAILED if report["unmapped"] else EXIT_OK


def _validate_text(report: dict) -> str:
    needs = report["requirements"]
    lines = [f"{report['definition']}: valid ({report['states']} states)"]
    if not needs:
        lines.append("needs nothing mapped (no Task states)")
    else:
        lines.append("needs:")
        kind_w = max(len(n["kind"]) for n in needs)
        name_w = min(max(len(n["name"]) for n in needs), 72)
        for n in needs:
            target = n["target"] or "UNMAPPED"
            where = ", ".join(n["states"])
            lines.append(f"  {n['kind']:<{kind_w}}  {n['name']:<{name_w}}  -> {target}   [{where}]")
    missing = report["unmapped"]
    if missing:
        lines.append(
            f"{len(missing)} unmapped: "
            + ", ".join(f"{n['kind']} {n['name']}" for n in missing)
            + " (map them in the resources file, or try a dry run with: distmap execute ... --stub echo)"
        )
    else:
        lines.append("everything is mapped")
    return "\n".join(lines)


def _lvl(name: str) -> int:
    return ["debug", "info", "warning", "error"].index(name)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
