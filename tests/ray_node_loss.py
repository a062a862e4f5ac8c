"""Run by test_ray.py in its own process: a 3-node Ray cluster on this machine (ray.cluster_utils),
a map run over it, and one worker node removed mid-run. Prints the run result as JSON.

    python tests/ray_node_loss.py SOURCE.jsonl OUT_DIR
"""

from __future__ import annotations

import json
import sys
import threading
import time

import ray
from ray.cluster_utils import Cluster

import distmap


def main(source: str, out: str) -> None:
    # fast node-failure detection so the test does not wait for the default ~30 s
    system_config = {
        "health_check_initial_delay_ms": 0,
        "health_check_period_ms": 500,
        "health_check_failure_threshold": 3,
        "health_check_timeout_ms": 500,
    }
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": system_config},
    )
    victim = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    removed = threading.Event()

    def progress(p: dict) -> None:
        # remove a node once the run is well under way (and far from finished)
        if not removed.is_set() and p["succeeded"] >= 1500:
            removed.set()
            threading.Thread(
                target=cluster.remove_node, args=(victim,), kwargs={"allow_graceful": False}
            ).start()

    job = {
        "ItemReader": {"Source": source, "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:sleep_ms"},
        "MaxConcurrency": 3,
        "ResultWriter": {"Destination": out},
    }
    t0 = time.monotonic()
    res = distmap.run(job, backend="ray", progress=progress, handle_signals=False)
    doc = res.to_dict()
    doc["removedNode"] = removed.is_set()
    doc["wallSeconds"] = time.monotonic() - t0
    print("RESULT " + json.dumps(doc), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
