//! Hostile incoming headers: `Continuation::decide` on a `sentry-trace` and a `baggage` of
//! 100 B, 8 KiB and 1 MiB, as junk bytes, as many small members, as one huge member, and with a
//! junk `sentry-trace` (see `common::hostile_requests`). docs/design.md: headers of any size are read
//! in bounded time; the parse is one pass, so the time per byte should not grow with the size.

#[path = "common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn hostile(c: &mut Criterion) {
    let policy = common::hostile_policy();
    let mut group = c.benchmark_group("hostile");
    for request in common::hostile_requests() {
        group.throughput(Throughput::Bytes(request.len() as u64));
        // 1 MiB headers take milliseconds per decision: fewer samples.
        group.sample_size(if request.len() > (64 << 10) { 20 } else { 100 });
        group.bench_function(&request.name, |b| {
            b.iter(|| common::decide(&request, &policy))
        });
    }
    group.finish();
}

criterion_group!(benches, hostile);
criterion_main!(benches);
