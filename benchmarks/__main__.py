"""``python -m benchmarks COMMAND``. Commands: ``run`` and ``report`` (see ``benchmarks.run``)."""

from __future__ import annotations

import sys

USAGE = """usage: python -m benchmarks run [--size 1m|10m] [--quick] [--repeat N] [--only NAMES]
                                [--malloc-env default|trim] [--out-dir DIR]

       python -m benchmarks report RESULTS.json

commands:
  run     distmap against every peer in one run; writes benchmarks/results/<date>.{json,md,png}
          (python -m benchmarks run --help for all options)
  report  recompute the targets, Markdown and chart of a results file (runs nothing)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "run":
        from benchmarks.run import main as run

        return run(rest)
    if command == "report":
        from benchmarks.run import rerender

        return rerender(rest)
    print(f"python -m benchmarks: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
