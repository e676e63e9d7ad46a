"""Builds the peers table of scripts/bench-peers.sh: prints it and writes it as markdown.

    python3 report.py --mode MODE --command CMD --node FILE --python FILE
                      --criterion DIR --out FILE [--load-before X]

--node/--python: the JSON line of bench/peers/{node/bench.mjs,python/bench.py} (stdout) followed
by the lines they print on stderr (the rendered tags). --criterion: the CRITERION_HOME of the run;
our figures are criterion's median point estimates, per_request/<name>/new/estimates.json.
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import (  # noqa: E402
    LIKE_FOR_LIKE_NOTE, PER_REQUEST, WHOLE, commands_md, cpu_model, goal_text, lock_version, ns,
    output, peer_ratios, read_peer,
)


def criterion_median(home, name):
    path = Path(home) / "per_request" / name / "new" / "estimates.json"
    est = json.loads(path.read_text())["median"]
    return est["point_estimate"], est["confidence_interval"]


def main():
    ap = argparse.ArgumentParser()
    for a in ("--mode", "--command", "--node", "--python", "--criterion", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--load-before", default="?")
    ap.add_argument("--node-als", help="the result of bench.mjs --sdk node")
    opts = ap.parse_args()

    node = read_peer(opts.node)
    node_als = read_peer(opts.node_als) if opts.node_als else None
    py = read_peer(opts.python)
    ours = {name: criterion_median(opts.criterion, name) for name, _ in PER_REQUEST}

    rows = [
        (
            f"Node: `getTraceMetaTags()`, @sentry/core {node['version']}",
            "DSC rebuilt + baggage encoded every call",
            node["ns_per_op"],
            f"{ns(node['min'])}–{ns(node['max'])} ({node['batches']}×{node['iterations']:,})",
        ),
    ]
    if node_als:
        rows.append((
            f"Node server: `getTraceMetaTags()`, @sentry/node {node_als['version']}",
            "as above, the span read from AsyncLocalStorage (OpenTelemetry context)",
            node_als["ns_per_op"],
            f"{ns(node_als['min'])}–{ns(node_als['max'])} "
            f"({node_als['batches']}×{node_als['iterations']:,})",
        ))
    rows += [
        (
            f"Python: `get_current_scope().trace_propagation_meta()`, sentry-sdk {py['version']}",
            "DSC cached on the transaction, re-encoded every call",
            py["ns_per_op"],
            f"{ns(py['min'])}–{ns(py['max'])} ({py['batches']}×{py['iterations']:,})",
        ),
    ]
    for name, what in PER_REQUEST:
        point, ci = ours[name]
        rows.append(
            (f"ours: `per_request/{name}`", what, point,
             f"95% CI {ns(ci['lower_bound'])}–{ns(ci['upper_bound'])} (criterion)")
        )

    labels = {"node": "Node / ours", "node-als": "Node server / ours", "python": "Python / ours"}
    peers = {"node": node, "python": py}
    if node_als:
        peers["node-als"] = node_als
    ratios = [(labels[key], *rest) for key, *rest in peer_ratios(
        peers, {name: point for name, (point, _) in ours.items()})]

    # ---- plain-text table on stdout
    w = max(len(r[0]) for r in rows)
    print()
    print(f"{'implementation':<{w}}  {'per call':>9}  spread")
    for label, _, value, spread in rows:
        print(f"{label:<{w}}  {ns(value):>9}  {spread}")
    print()
    print(f"{'speed-up':<18}  {'like for like':>30}  {'vs ' + WHOLE:>26}  {'SDK ceiling':>11}  goal")
    for label, like, r_like, r_whole, r_sdk, goal in ratios:
        print(f"{label:<18}  {r_like:>9.1f}× ({like:>18})  {r_whole:>25.1f}×  {r_sdk:>10.1f}×  "
              f"{goal_text(r_like, goal)}")
    print()

    # ---- markdown
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    root = Path(__file__).resolve().parents[2]
    commit = output(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = output(["git", "-C", str(root), "status", "--porcelain"])
    md = [
        "# Peers: per-request cost of the trace meta tags",
        "",
        f"Written by `scripts/bench-peers.sh` ({opts.mode} mode) on {now}, commit {commit}"
        + (" (work tree with uncommitted changes)" if dirty not in ("", "?") else "") + ".",
        "Same machine, same inputs: an active span (`template.render`) in a sampled transaction "
        "`GET /users/{id}`, DSN `https://49d0f7386ad645858ae85020e393bef3@o42.ingest.sentry.io/7`, "
        "release `web@1.2.3`, environment `production`, traces sample rate 1.0, a transport that "
        "drops envelopes. ns per call; peers: median of batches of "
        "`process.hrtime.bigint()` / `time.perf_counter_ns()` after a warm-up; ours: criterion's "
        "median point estimate.",
        "",
        "| implementation | work per call | time per call | spread |",
        "| --- | --- | ---: | --- |",
    ]
    for label, what, value, spread in rows:
        md.append(f"| {label} | {what} | {ns(value)} | {spread} |")
    md += [
        "",
        f"| speed-up | like for like | vs `{WHOLE}` | ceiling (vs `sdk_active_span`) | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, like, r_like, r_whole, r_sdk, goal in ratios:
        md.append(f"| {label} | {r_like:.1f}× (`{like}`) | {r_whole:.1f}× | {r_sdk:.1f}× | "
                  f"{goal_text(r_like, goal, missed='**not met**')} |")
    md += [
        "",
        LIKE_FOR_LIKE_NOTE,
        "",
        "## Machine",
        "",
        f"- CPUs (`nproc`): {output(['nproc'])}; CPU: {cpu_model()}",
        f"- load average before the run: {opts.load_before}; after: "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3]) if Path('/proc/loadavg').exists() else '?'}",
        f"- OS: {platform.system()} {platform.release()} {platform.machine()}",
        f"- Node {node['runtime']}, @sentry/core {node['version']}",
        f"- Python {py['runtime']}, sentry-sdk {py['version']}",
        f"- {output(['rustc', '--version'])}; `sentry` crate {lock_version('sentry-core')} "
        "(`sentry-core`, the client of the bench)",
        "",
        *commands_md("## Command", opts.command,
                     os.environ.get("BENCH_PEERS_STEPS", "").strip().splitlines()),
        "## Tags rendered by the peers (one call, checked by the scripts)",
        "",
        "```html",
        *node["samples"],
        *(node_als["samples"] if node_als else []),
        *py["samples"],
        "```",
        "",
    ]
    Path(opts.out).write_text("\n".join(md))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
