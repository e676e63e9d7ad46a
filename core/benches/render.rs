//! Rendering both tags from a computed `TraceMeta` into a reused buffer, against the floor:
//! copying the same bytes into the same buffer. Both run in one criterion run, so their ratio
//! holds on a noisy machine.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, TraceMeta};

/// A typical head-of-trace DSC: every key the SDK writes.
const BAGGAGE: &[u8] = b"sentry-trace_id=771a43a4192642f0b136d5159a501700,\
sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sample_rand=0.853212,\
sentry-sampled=true,sentry-environment=production,sentry-release=web%401.2.3,\
sentry-transaction=GET%20%2Fusers%2F%7Bid%7D,sentry-org_id=42";

fn meta() -> TraceMeta {
    let dsc = DynamicSamplingContext::from_baggage([BAGGAGE]);
    TraceMeta::new(
        "771a43a4192642f0b136d5159a501700".parse().expect("valid"),
        "b7ad6b7169203331".parse().expect("valid"),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
}

fn render(c: &mut Criterion) {
    let meta = meta();
    let html = meta.to_html();
    let mut buffer = String::with_capacity(4096);
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Bytes(html.len() as u64));
    group.bench_function("copy_floor", |b| {
        b.iter(|| {
            buffer.clear();
            buffer.push_str(black_box(&html));
            black_box(&buffer);
        })
    });
    group.bench_function("trace_meta_into_buffer", |b| {
        b.iter(|| {
            buffer.clear();
            black_box(&meta).render_into(&mut buffer);
            black_box(&buffer);
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
