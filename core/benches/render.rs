//! Rendering both tags from a computed `TraceMeta` into a reused buffer, against the floor:
//! copying the same bytes into the same buffer. Both run in one criterion run, so their ratio
//! holds on a noisy machine.

#[path = "common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn render(c: &mut Criterion) {
    let meta = common::meta();
    let html = meta.to_html();
    let mut buffer = common::page_buffer(&html);
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Bytes(html.len() as u64));
    group.bench_function("copy_floor", |b| {
        b.iter(|| common::copy_floor(&mut buffer, &html))
    });
    group.bench_function("trace_meta_into_buffer", |b| {
        b.iter(|| common::render_into_buffer(&mut buffer, &meta))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
