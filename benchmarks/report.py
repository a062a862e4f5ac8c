"""The report of ``python -m benchmarks run``: a Markdown document and a two-panel chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.targets import Target

DAGGER = "†"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _target_value(t: Target) -> str:
    if t.value is None:
        return "-"
    digits = 0 if abs(t.value) >= 100 else 3 if t.unit == "s" else 2
    unit = {"x": "x", "": ""}.get(t.unit, f" {t.unit}")
    return f"{t.value:,.{digits}f}{unit}"


def targets_table(targets: list[Target]) -> str:
    lines = ["| target | measured | goal | result | how it is computed |", "|---|---:|---|---|---|"]
    for t in targets:
        if not t.goal:
            continue
        result = {"pass": "✅ pass", "MISS": "❌ **miss**", "n/a": f"n/a ({t.note})"}[t.result]
        if t.note and t.result != "n/a":
            result += f" ({t.note})"
        unit = "" if t.unit in ("x", "") else f" {t.unit}"
        lines.append(f"| {t.title} | {_target_value(t)} | {t.goal}{unit} | {result} | {t.how} |")
    return "\n".join(lines)


def info_table(targets: list[Target]) -> str:
    lines = ["| ratio | measured | how |", "|---|---:|---|"]
    for t in targets:
        if t.goal:
            continue
        value = _target_value(t) if t.value is not None else f"- ({t.note})"
        lines.append(f"| {t.title} | {value} | {t.how} |")
    return "\n".join(lines)


def workload_table(entries: list[dict[str, Any]]) -> str:
    lines = [
        "| contender | what | wall s | ray.init s | work s | items/s | peak tree RSS MB | status |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for e in entries:
        ok = e["status"] == "ok"
        mark = DAGGER if e["ray"] else ""
        rate = f"{e['items_per_s']:,.0f}{mark}" if ok else "-"
        status = "ok" if ok else f"**FAILED**: {_one_line(e.get('error', ''))}"
        init = _num(e.get("init_seconds")) if e["ray"] else "-"
        label = e["label"]
        if ok and e.get("first_result_s") is not None:
            label += f" (first result after {e['first_result_s']:.3f} s)"
        lines.append(
            f"| {e['name']} | {label} | {_num(e.get('best_wall_s'))} | {init} "
            f"| {_num(e.get('best_seconds'))} "
            f"| {rate} | {_num(e.get('peak_tree_rss_mb'), 0)} | {status} |"
        )
    return "\n".join(lines)


def _one_line(text: str, limit: int = 200) -> str:
    """An error on one table line: its first line and, if different, its last (the exception)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("---")]
    if not lines:
        return ""
    short = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    short = short.replace("|", "\\|")
    return short if len(short) <= limit else short[: limit - 3] + "..."


def markdown(doc: dict[str, Any], targets: list[Target]) -> str:
    cfg, env = doc["config"], doc["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for e in doc["contenders"]:
        by_workload.setdefault(e["workload"], []).append(e)
    quick = " (quick)" if cfg["quick"] else ""
    out = [
        f"# distmap benchmarks, {doc['date']}{quick}",
        "",
        f"{cfg['rows']:,} no-op rows, best of {cfg['repeat']}, malloc env `{cfg['malloc_env']}`, "
        f"{env['cpu_count']} CPUs ({cfg['cores']} workers everywhere), Python {env['python'].split()[0]}, "
        f"commit `{(env.get('git_commit') or '?')[:10]}`. Packages: {versions}. "
        f"Load average (1 min): {env.get('loadavg_1min_start', '?')} at start, "
        f"{env.get('loadavg_1min_end', '?')} at the end; run took {doc.get('duration_s', '?')} s.",
        "",
        "**Times.** *wall*: the whole process, from spawn to exit (interpreter start-up, imports, "
        "pool / cluster start and shutdown included). *work*: the contender's own clock (distmap: "
        "`stats.seconds`, which excludes backend start-up; peers: from after their imports, or after "
        "`ray.init`, until the last write). *ray.init*: cluster start-up, reported apart. "
        f"**items/s** is items / wall, except for Ray contenders ({DAGGER}): items / work, so that "
        "`ray.init` (several seconds) is left out. Targets about the local backend compare walls; "
        "targets about the Ray backend compare work times (both sides).",
        "",
    ]
    if cfg["quick"]:
        out += [
            "> Quick mode: small inputs, one repeat. Fixed costs (interpreter start, pool start) weigh "
            "far more than at 1M rows, so the targets below are indicative only.",
            "",
        ]
    out += ["## Targets", "", targets_table(targets), "", "## Other ratios", "", info_table(targets), ""]
    for w in doc["workloads"]:
        entries = by_workload.get(w["name"], [])
        if not entries:
            continue
        out += [f"## {w['name']}: {w['title']}", "", workload_table(entries), ""]
    out += [
        "## Method",
        "",
        "- Every run is a fresh process started from the repository root with the same environment; "
        "repeats are interleaved (round-robin over a workload's contenders) and the best is kept. "
        "The bytecode of distmap, the jobs and the peers is compiled once before the first run, so "
        "no contender compiles source at start-up.",
        "- CPU: user + system seconds of the contender and the processes it waited for (not Ray's "
        "daemons); distmap's summary adds its coordinator's and its local workers' CPU.",
        "- Peak tree RSS: the largest sum of VmRSS over the process and all its descendants, sampled "
        "every 0.05 s (max over repeats). Forked workers' shared pages count once per process; "
        "Ray's numbers include its daemons (GCS, raylet, agents) and workers.",
        "- Every run is verified: peers must report the item count and their output files must hold "
        "exactly that many records; distmap must end SUCCEEDED with the expected item counts and "
        "result files (the failures run: every failed and succeeded id, and the retry count). "
        "A contender that fails is listed as FAILED, not dropped.",
        "- Processes a contender leaves running after it exits (idle Ray or loky workers) are ended "
        "by pid before the next run, and listed in the JSON (`leftover_processes_ended`).",
        "- `sleep`: the sequential time is estimated as items x the per-item time of a "
        "single-process loop over the first 200 items, instead of running 200 s.",
        "- `first-result`: a fresh process calls `distmap.run()` on the no-op input with an item "
        "function that stamps `time.time()` when it first returns in a worker; the target is the "
        "earliest stamp minus the time taken just before `distmap.run()`.",
        "",
        f"Raw data: `{doc['files']['json']}`.",
    ]
    return "\n".join(out) + "\n"


def chart(doc: dict[str, Any], path: Path) -> None:
    """Two panels, one bar per contender: items/s (log scale) and peak tree RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = doc["contenders"]
    labels = [f"{e['workload']} / {e['name']}" for e in entries]
    colors = [_color(e) for e in entries]
    rates = [e.get("items_per_s") or 0 for e in entries]
    rss = [e.get("peak_tree_rss_mb") or 0 for e in entries]
    height = max(4.0, 0.32 * len(entries) + 1.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, height), sharey=True)
    y = list(range(len(entries)))
    left.barh(y, rates, color=colors)
    left.set_xscale("log")
    left.set_xlabel(f"items/s (log; Ray contenders {DAGGER}: after ray.init)")
    left.set_yticks(
        y, [lab + (f" {DAGGER}" if e["ray"] else "") for lab, e in zip(labels, entries, strict=True)]
    )
    left.invert_yaxis()
    left.set_xlim(right=max(rates, default=1) * 4)  # room for the value labels
    right.barh(y, rss, color=colors)
    right.set_xlim(right=max(rss, default=1) * 1.15)
    right.set_xlabel("peak RSS of the process tree, MB")
    for ax, values in ((left, rates), (right, rss)):
        ax.grid(axis="x", alpha=0.3)
        for i, (e, value) in enumerate(zip(entries, values, strict=True)):
            text = "FAILED" if e["status"] != "ok" else f"{value:,.0f}"
            x = max(value, ax.get_xlim()[0])  # a failed contender (0) is labelled at the axis
            color = "firebrick" if e["status"] != "ok" else "black"
            ax.annotate(
                text, (x, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7, color=color
            )
    from matplotlib.patches import Patch

    kinds = {
        "distmap, local": "tab:blue",
        "distmap, Ray": "tab:purple",
        "peer": "tab:gray",
        "peer on Ray": "tab:orange",
    }
    right.legend(handles=[Patch(color=c, label=k) for k, c in kinds.items()], loc="best", fontsize=8)
    quick = " (quick)" if doc["config"]["quick"] else ""
    fig.suptitle(f"distmap benchmarks {doc['date']}{quick}: {doc['config']['cores']} workers, best of "
                 f"{doc['config']['repeat']}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _color(entry: dict[str, Any]) -> str:
    if entry["name"].startswith("distmap"):
        return "tab:purple" if entry["ray"] else "tab:blue"
    return "tab:orange" if entry["ray"] else "tab:gray"
