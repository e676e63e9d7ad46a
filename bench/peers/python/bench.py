"""The Python peer of scripts/bench-peers.sh: times `trace_propagation_meta()` of sentry-sdk
(pinned in requirements.txt) with an active span in a sampled transaction, on the inputs of
core/benches/per_request.rs. No network: the transport drops every envelope.

    python bench.py [--warmup N] [--batches B] [--iterations N]

Prints the rendered tags once on stderr and one JSON line on stdout:
    {"peer": "python", "ns_per_op": <median of the batches>, "min": .., "max": .., ...}

sentry-sdk 2.x has no module-level `sentry_sdk.trace_propagation_meta()` (only the deprecated
`Hub.trace_propagation_meta`); the supported call, and the one its Flask, Django and Starlette
integrations make, is `sentry_sdk.get_current_scope().trace_propagation_meta()`. That is what
is timed.

What one call does (sentry_sdk/scope.py, tracing.py, tracing_utils.py): get the current scope
and client, check `propagate_traces`, `has_tracing_enabled` and span streaming, take the active
span, format `trace-span-1`, then `containing_transaction.get_baggage().serialize()`. The
Baggage (the DSC) is built from the client and the transaction on the FIRST call only and then
kept frozen on the transaction; later calls only re-serialize it (`urllib.parse.quote` of each
key and value) and concatenate the tags. So after the first call the per-call cost is "look up
the DSC, render": the fair comparison is our `later_render`; against `new_trace_first_render`
(which also builds the DSC and a new root every time) the ratio understates our lead.
"""

import argparse
import json
import statistics
import sys
import time
from importlib.metadata import version

import sentry_sdk
from sentry_sdk.transport import Transport

DSN = "https://49d0f7386ad645858ae85020e393bef3@o42.ingest.sentry.io/7"
TRANSACTION = "GET /users/{id}"


class DropTransport(Transport):
    """A transport that never touches the network: every envelope is dropped."""

    def capture_envelope(self, envelope):
        pass

    def flush(self, timeout, callback=None):
        pass

    def kill(self):
        pass


def check(tags, span):
    expected = [
        f'<meta name="sentry-trace" content="{span.trace_id}-{span.span_id}-1">',
        '<meta name="baggage" content="',
        f"sentry-trace_id={span.trace_id}",
        "sentry-sample_rand=",
        "sentry-environment=production",
        "sentry-release=web%401.2.3",
        "sentry-public_key=49d0f7386ad645858ae85020e393bef3",
        "sentry-org_id=42",
        "sentry-transaction=GET%20/users/%7Bid%7D",  # quote() keeps "/"
        "sentry-sample_rate=1.0",
        "sentry-sampled=true",
    ]
    missing = [s for s in expected if s not in tags]
    if missing:
        raise SystemExit(f"trace_propagation_meta() output lacks {missing}:\n{tags}")


def batch(n):
    sink = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        # The whole call as a template would make it: the current scope is looked up each time.
        sink += len(sentry_sdk.get_current_scope().trace_propagation_meta())
    elapsed = time.perf_counter_ns() - start
    if sink == 0:
        raise SystemExit("empty output")
    return elapsed / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20_000)
    opts = parser.parse_args()

    sentry_sdk.init(
        dsn=DSN,
        release="web@1.2.3",
        environment="production",
        traces_sample_rate=1.0,
        # The class, not an instance: the SDK then builds it with the client's options. An
        # instance made without options (or a function transport) has no parsed DSN, and the
        # baggage silently loses sentry-public_key and sentry-org_id.
        transport=DropTransport,
    )
    with sentry_sdk.start_transaction(name=TRANSACTION, op="http.server") as transaction:
        if transaction.sampled is not True:
            raise SystemExit("the transaction is not sampled")
        # The span that renders the page, as in core/benches/per_request.rs.
        with sentry_sdk.start_span(op="template.render", name="layout") as span:
            tags = sentry_sdk.get_current_scope().trace_propagation_meta()
            check(tags, span)
            print(f"python: {tags}", file=sys.stderr)
            batch(opts.warmup)
            per_batch = [batch(opts.iterations) for _ in range(opts.batches)]

    print(
        json.dumps(
            {
                "peer": "python",
                "package": "sentry-sdk",
                "version": version("sentry-sdk"),
                "runtime": sys.version.split()[0],
                "ns_per_op": statistics.median(per_batch),
                "min": min(per_batch),
                "max": max(per_batch),
                "batches": opts.batches,
                "iterations": opts.iterations,
                "warmup": opts.warmup,
            }
        )
    )


if __name__ == "__main__":
    main()
