//! The whole per-request cost with a real `sentry` client and an active transaction: the root
//! the axum layer makes (continuation decision, transaction name, server span and head DSC),
//! the render of the tags into the page buffer from that root, the root freed; and a render
//! without the layer, from the Hub's active span.

#[path = "common/mod.rs"]
mod common;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn per_request(c: &mut Criterion) {
    // The server transaction continues the incoming trace, as sentry-tower would; its
    // `template.render` child is the active span.
    common::with_active_span(|client| {
        let mut page = String::with_capacity(4096);
        let mut group = c.benchmark_group("per_request");

        // A new request, whole: the layer's root, the render, the root freed.
        group.bench_function("new_trace_first_render", |b| {
            b.iter(|| common::new_trace_first_render(&mut page, client))
        });

        // The same without making the root (the layer's part): render, then free the root as
        // the request ends, one root at a time as a server does; what one call of a peer's
        // `getTraceMetaTags()` does.
        group.bench_function("first_render", |b| {
            b.iter_batched(
                || common::new_root(client),
                |root| common::first_render(&mut page, root),
                BatchSize::PerIteration,
            )
        });

        // A continued request, whole: parse the incoming headers, freeze the DSC, render.
        group.bench_function("continued_trace_first_render", |b| {
            b.iter(|| common::continued_trace_first_render(&mut page, client))
        });

        // A later render in the same request.
        common::later_render_root(client).sync_scope(|| {
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
