//! The whole per-request cost with a real `sentry` client and an active transaction: read the
//! request's span from its root (as the axum layer records it), build (first render of a
//! request) or look up (later renders) the root's DSC, render the tags into the page buffer;
//! and the same without the layer, from the Hub's active span.

#[path = "common/mod.rs"]
mod common;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn per_request(c: &mut Criterion) {
    // The server transaction continues the incoming trace, as sentry-tower would; its
    // `template.render` child is the active span.
    common::with_active_span(|policy| {
        let mut page = String::with_capacity(4096);
        let mut group = c.benchmark_group("per_request");

        // A new request: a new root, its head DSC built from the client and span on first render.
        group.bench_function("new_trace_first_render", |b| {
            b.iter(|| common::new_trace_first_render(&mut page))
        });

        // The same without making the root (the layer's part): the three steps of the
        // per-request cost, read span, build DSC, render, which is what one call of a peer's
        // `getTraceMetaTags()` does.
        group.bench_function("first_render", |b| {
            b.iter_batched(
                common::new_root,
                |root| common::first_render(&mut page, root),
                BatchSize::SmallInput,
            )
        });

        // A continued request: parse the incoming headers, freeze the DSC, render.
        group.bench_function("continued_trace_first_render", |b| {
            b.iter(|| common::continued_trace_first_render(&mut page, policy))
        });

        // A later render in the same request: the DSC is looked up, not built.
        common::later_render_root().sync_scope(|| {
            group.bench_function("later_render", |b| {
                b.iter(|| common::later_render(&mut page))
            });
        });

        // Without the layer (no trace root): the Hub's active span is read and a head DSC built
        // on every render.
        group.bench_function("render_without_layer", |b| {
            b.iter(|| common::render_without_layer(&mut page))
        });

        // The SDK's own cost of reading the active span, which a render without the layer
        // includes (with the layer, the root knows the span).
        group.bench_function("sdk_active_span", |b| b.iter(common::sdk_active_span));
        group.finish();
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
