"""B2: Ray Data, the way its documentation writes it.

``--mode map``::

    ray.data.read_json(INPUT).map(f).write_json(OUTPUT_DIR)

``--mode map_batches`` (f receives and returns a ``pyarrow.Table``)::

    ray.data.read_json(INPUT).map_batches(f, batch_format="pyarrow").write_json(OUTPUT_DIR)

A new local cluster (``address="local"``, ``num_cpus=--workers``, no dashboard) is started first;
its start-up is reported as ``init_seconds`` and ``seconds`` runs from after ``ray.init`` until
``write_json`` returns. Ray Data is imported before either clock starts. Progress bars are off.
The no-op of ``map_batches`` returns the table it gets; the other functions are called per row of
the batch (``to_pylist``) and the outputs rebuilt into a table.

    python -m benchmarks.peers.ray_data INPUT OUTPUT_DIR [--mode map|map_batches] [--function F]
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.peers.common import base_parser, count_lines, files_in, ray_init, report, resolve


def batch_fn(function: str) -> Any:
    """A ``map_batches`` function applying the item function to a ``pyarrow.Table``."""
    import pyarrow as pa

    if function == "noop":
        return lambda table: table
    fn = resolve(function)

    def apply(table: pa.Table) -> pa.Table:
        return pa.Table.from_pylist([fn(row) for row in table.to_pylist()])

    return apply


def main() -> None:
    p = base_parser("B2: Ray Data read_json -> map / map_batches -> write_json")
    p.add_argument("--mode", choices=("map", "map_batches"), default="map")
    args = p.parse_args()

    import ray
    import ray.data

    init = ray_init(args.workers)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        t0 = time.perf_counter()
        ds = ray.data.read_json(args.input)
        if args.mode == "map":
            ds = ds.map(resolve(args.function))
        else:
            ds = ds.map_batches(batch_fn(args.function), batch_format="pyarrow")
        ds.write_json(args.output)
        seconds = time.perf_counter() - t0
    finally:
        ray.shutdown()
    report(count_lines(files_in(args.output)), seconds, init)  # counted after the clock stopped


if __name__ == "__main__":
    main()
