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
import re
import subprocess
from pathlib import Path

GOALS = {"node": 20.0, "python": 50.0}
# Head of trace, the situation of both peers: a new root, its DSC built from client + span.
HEADLINE = "new_trace_first_render"
OURS = [
    (HEADLINE, "new request, head of trace: new root, DSC built from client + span, render"),
    ("later_render", "later render in the same request: DSC looked up, render"),
    ("continued_trace_first_render", "continued request: parse headers, freeze DSC, render"),
]


def read_peer(path):
    lines = Path(path).read_text().splitlines()
    result = None
    samples = []
    for line in lines:
        if line.startswith("{"):
            result = json.loads(line)
        elif line.strip():
            samples.append(line)
    if result is None:
        raise SystemExit(f"report.py: no JSON result in {path}")
    result["samples"] = samples
    return result


def criterion_median(home, name):
    path = Path(home) / "per_request" / name / "new" / "estimates.json"
    est = json.loads(path.read_text())["median"]
    return est["point_estimate"], est["confidence_interval"]


def output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def lock_version(crate):
    lock = Path(__file__).resolve().parents[2] / "Cargo.lock"
    m = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock.read_text())
    return m.group(1) if m else "?"


def ns(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def main():
    ap = argparse.ArgumentParser()
    for a in ("--mode", "--command", "--node", "--python", "--criterion", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--load-before", default="?")
    opts = ap.parse_args()

    node = read_peer(opts.node)
    py = read_peer(opts.python)
    ours = {name: criterion_median(opts.criterion, name) for name, _ in OURS}
    head = ours[HEADLINE][0]
    later = ours["later_render"][0]

    rows = [
        (
            f"Node: `getTraceMetaTags()`, @sentry/core {node['version']}",
            "DSC rebuilt + baggage encoded every call",
            node["ns_per_op"],
            f"{ns(node['min'])}–{ns(node['max'])} ({node['batches']}×{node['iterations']:,})",
        ),
        (
            f"Python: `get_current_scope().trace_propagation_meta()`, sentry-sdk {py['version']}",
            "DSC cached on the transaction, re-encoded every call",
            py["ns_per_op"],
            f"{ns(py['min'])}–{ns(py['max'])} ({py['batches']}×{py['iterations']:,})",
        ),
    ]
    for name, what in OURS:
        point, ci = ours[name]
        rows.append(
            (f"ours: `per_request/{name}`", what, point,
             f"95% CI {ns(ci['lower_bound'])}–{ns(ci['upper_bound'])} (criterion)")
        )

    ratios = [
        ("Node / ours", node["ns_per_op"] / head, node["ns_per_op"] / later, GOALS["node"]),
        ("Python / ours", py["ns_per_op"] / head, py["ns_per_op"] / later, GOALS["python"]),
    ]

    # ---- plain-text table on stdout
    w = max(len(r[0]) for r in rows)
    print()
    print(f"{'implementation':<{w}}  {'ns/op':>9}  spread")
    for label, _, value, spread in rows:
        print(f"{label:<{w}}  {ns(value):>9}  {spread}")
    print()
    print(f"{'speed-up':<14}  {'vs ' + HEADLINE:>26}  {'vs later_render':>15}  goal")
    for label, r_head, r_later, goal in ratios:
        verdict = "met" if r_head >= goal else "NOT met"
        print(f"{label:<14}  {r_head:>25.1f}×  {r_later:>14.1f}×  ≥ {goal:.0f}× ({verdict})")
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
        "| implementation | work per call | ns/op | spread |",
        "| --- | --- | ---: | --- |",
    ]
    for label, what, value, spread in rows:
        md.append(f"| {label} | {what} | {ns(value)} | {spread} |")
    md += [
        "",
        f"| speed-up | vs `{HEADLINE}` (headline) | vs `later_render` | goal |",
        "| --- | ---: | ---: | --- |",
    ]
    for label, r_head, r_later, goal in ratios:
        verdict = "met" if r_head >= goal else "**not met**"
        md.append(f"| {label} | {r_head:.1f}× | {r_later:.1f}× | ≥ {goal:.0f}× ({verdict}) |")
    md += [
        "",
        f"The headline ratio is against `{HEADLINE}`: the peers run at the head of a trace, and "
        "`getTraceMetaTags()` rebuilds the DSC from client and span on every call exactly like "
        f"`{HEADLINE}` (which also creates the request's root). sentry-sdk builds its DSC on the "
        "first call of a transaction and only re-encodes it afterwards, so its measured call is "
        "the like of our `later_render`; against the headline the Python ratio is conservative.",
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
        "## Command",
        "",
        "```sh",
        opts.command,
        "```",
        "",
        "which runs, from the repository root:",
        "",
        "```sh",
        *os.environ.get("BENCH_PEERS_STEPS", "").strip().splitlines(),
        "```",
        "",
        "## Tags rendered by the peers (one call, checked by the scripts)",
        "",
        "```html",
        *node["samples"],
        *py["samples"],
        "```",
        "",
    ]
    Path(opts.out).write_text("\n".join(md))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
