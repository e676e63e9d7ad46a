//! Building the Dynamic Sampling Context: the head DSC from a real `sentry` client
//! (`head_dsc`), and for a typical frozen DSC its decoding from `baggage`, its `baggage` value
//! (`to_baggage`) and its once-per-request serialization (`SerializedDsc::new`).

#[path = "common/mod.rs"]
mod common;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sentry_meta_core::TraceId;

fn dsc(c: &mut Criterion) {
    let client = common::client();
    let trace_id: TraceId = "771a43a4192642f0b136d5159a501700".parse().expect("valid");
    let frozen = common::frozen_dsc();
    let mut group = c.benchmark_group("dsc");
    group.bench_function("head_dsc", |b| {
        b.iter(|| common::head_dsc(&client, trace_id))
    });
    group.bench_function("from_baggage", |b| b.iter(common::dsc_from_baggage));
    group.bench_function("to_baggage", |b| b.iter(|| common::dsc_to_baggage(&frozen)));
    // The clone that `SerializedDsc::new` consumes is made outside the timed part.
    group.bench_function("serialized_dsc_new", |b| {
        b.iter_batched(
            || frozen.clone(),
            common::serialized_dsc_new,
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, dsc);
criterion_main!(benches);
