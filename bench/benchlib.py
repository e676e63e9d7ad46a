"""What both reports share (bench/report.py and bench/peers/report.py): reading the peers'
results, facts about the machine, number formats, and how our figures are compared with the
peers'. Standard library only.
"""

import json
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `node-als` (@sentry/node, its span read from AsyncLocalStorage, as a Node server runs it) is
# reported beside the like-for-like `node` (plain @sentry/core), with no goal of its own.
GOALS = {"node": 20.0, "node-als": None, "python": 50.0}
# What one measured call of each peer does, and our operation that does the same work:
# - Node's getTraceMetaTags() reads the active span and rebuilds the DSC from client + span on
#   every call: our `first_render` (the request's root exists, as the peer's span does).
# - sentry-sdk builds the DSC once per transaction and re-encodes it on later calls; its
#   steady-state call is the like of our `later_render` (DSC looked up).
LIKE_FOR_LIKE = {"node": "first_render", "node-als": "first_render", "python": "later_render"}
# The conservative comparison for both: our whole per-request cost, making the root included.
WHOLE = "new_trace_first_render"
# The criterion benches of `per_request` (core/benches/per_request.rs), and what each does.
PER_REQUEST = [
    (WHOLE, "new request, whole: the layer's root (decision, name, server span, head DSC), render, root freed"),
    ("first_render", "first render from the root the layer made, root freed: head DSC written from its template"),
    ("later_render", "later render in the same request: read the root, DSC serialized once, render"),
    ("continued_trace_first_render", "continued request, whole: parse headers, freeze DSC, root, render"),
    ("sdk_active_span", "sentry-core alone reading the active span (part of every row above)"),
]
# Those that the "< 1 µs per request" target is about (the last row is the SDK's part of them).
PER_REQUEST_TARGETS = [name for name, _ in PER_REQUEST if name != "sdk_active_span"]
LIKE_FOR_LIKE_NOTE = (
    "Like for like: Node's `getTraceMetaTags()` reads the active span and rebuilds the DSC from "
    "client and span on every call, which is our `first_render` (the request's root exists, as "
    "the peer's span does). sentry-sdk builds its DSC on the first call of a transaction and "
    "only re-encodes it afterwards, so its measured call is the like of our `later_render`. "
    f"`{WHOLE}` adds making the request's root and is the conservative figure. A Node server runs "
    "`@sentry/node`, whose span lookup goes through OpenTelemetry's AsyncLocalStorage context: "
    "reported as \"Node server\" beside the like-for-like plain `@sentry/core`. The ceiling is "
    "what no integration of the `sentry` crate can beat: "
    "`sentry-core` reading its own active span (it clones the whole scope, about two dozen "
    "atomic reference-count updates, and draws a random id) is part of every call."
)


def goal_text(ratio, goal, met="met", missed="NOT met"):
    """How a speed-up compares with its goal; peers without a goal are reported only."""
    if goal is None:
        return "reported (no goal)"
    return f"≥ {goal:.0f}× ({met if ratio >= goal else missed})"


def peer_ratios(peers, ours):
    """peers: {"node": result, "python": result}; ours: {bench name: ns}. One row per peer:
    (key, like-for-like bench, its ratio, ratio vs WHOLE, ratio vs the SDK's read, goal)."""
    rows = []
    for key, peer in peers.items():
        like = LIKE_FOR_LIKE[key]
        rows.append((key, like, peer["ns_per_op"] / ours[like], peer["ns_per_op"] / ours[WHOLE],
                     peer["ns_per_op"] / ours["sdk_active_span"], GOALS[key]))
    return rows


def read_peer(path):
    """The JSON line a peer's bench prints, with the other lines (the tags) as `samples`."""
    result = None
    samples = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("{"):
            result = json.loads(line)
        elif line.strip():
            samples.append(line)
    if result is None:
        raise SystemExit(f"report.py: no JSON result in {path}")
    result["samples"] = samples
    return result


def output(cmd, check=True):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=check)
        return done.stdout.strip() or "?"
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
    lock = (ROOT / "Cargo.lock").read_text()
    m = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
    return m.group(1) if m else "?"


def commands_md(heading, command, steps):
    """A markdown section: the command that wrote the report and the steps it ran."""
    return [heading, "", "```sh", command, "```", "", "which runs, from the repository root:",
            "", "```sh", *steps, "```", ""]


def ns(x):
    """A duration in nanoseconds, with its unit."""
    if x >= 1e6:
        return f"{x / 1e6:,.2f} ms"
    if x >= 1e4:
        return f"{x / 1e3:,.1f} µs"
    return f"{x:,.0f} ns" if x >= 100 else f"{x:.1f} ns"


# The events of valgrind's cache and branch simulation (`--cache-sim=yes --branch-sim=yes`) that
# the page report gives per request: misses of the first-level instruction cache, of the
# first-level data cache (reads and writes), and mispredicted branches (conditional and indirect).
SIMULATED = {
    "i1_misses": ("I1mr",),
    "d1_misses": ("D1mr", "D1mw"),
    "mispredicts": ("Bcm", "Bim"),
}


def callgrind_totals(path):
    """Of one callgrind dump: the total of each event it counted (`Ir`, and with the simulation
    `I1mr`, `D1mr`, ...), from its `events:` and `totals:` lines."""
    events, totals = [], []
    with open(path) as dump:
        for line in dump:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                totals = [int(x) for x in line.split()[1:]]
    # The format leaves out trailing zeros.
    return dict(zip(events, totals + [0] * (len(events) - len(totals))))


def simulated(totals):
    """The counts of SIMULATED (each the sum of its events) of a dump's `callgrind_totals`; {}
    when the run did not simulate the caches and branches."""
    if not all(e in totals for names in SIMULATED.values() for e in names):
        return {}
    return {key: sum(totals[e] for e in names) for key, names in SIMULATED.items()}


# glibc's functions that hand out a new block (the allocator's own sources are under `malloc/`).
ALLOCATING = {"malloc", "calloc", "aligned_alloc", "posix_memalign", "memalign"}


def callgrind_allocator(path):
    """Of one callgrind dump (`--dump-instr=no`, event `Ir`): the total instructions, those of
    glibc's allocator (the functions whose source is under its `malloc/` folder: `malloc`, `free`,
    `_int_malloc`, ...), and the calls that allocate a block. The allocator's share moves with the
    state of its heap, by up to two thousand instructions per request between two processes of
    one binary doing the same requests; the rest moves far less, and the number of allocations
    not at all.

    Reads the format (https://valgrind.org/docs/manual/cl-format.html) directly: names are
    compressed to `(id)` after their first use, files and functions in separate id spaces, and the
    cost line after a `calls=` line is the call's inclusive cost, not the caller's own."""
    files, functions = {}, {}

    def name(table, spec):
        match = re.match(r"\((\d+)\)(?: (.*))?$", spec)
        if not match:
            return spec
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1), "")

    total = allocator = allocations = 0
    file = callee = ""
    in_allocator = call_cost_next = False
    with open(path) as dump:
        for line in dump:
            line = line.rstrip("\n")
            key, _, value = line.partition("=")
            if key == "fl":
                file = name(files, value)
            elif key in ("fi", "fe", "cfi", "cfl"):
                name(files, value)
            elif key == "fn":
                in_allocator = "/malloc/" in file
                name(functions, value)
            elif key == "cfn":
                callee = name(functions, value)
            elif key == "calls":
                if callee in ALLOCATING:
                    allocations += int(value.split()[0])
                call_cost_next = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if call_cost_next:
                    call_cost_next = False
                    continue
                # A position alone has no cost (the format leaves out zeros).
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                total += cost
                if in_allocator:
                    allocator += cost
    return total, allocator, allocations
