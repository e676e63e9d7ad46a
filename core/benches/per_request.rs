//! The whole per-request cost with a real `sentry` client and an active transaction: read the
//! active span from the Hub, build (first render of a request) or look up (later renders) the
//! root's DSC, render the tags into the page buffer.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use sentry_core::test::TestTransport;
use sentry_core::{Client, ClientOptions, Hub, TransactionContext};
use sentry_meta_core::{ContinuationPolicy, TraceMeta, TraceRoot, TransactionSource};

const INCOMING: &[u8] = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
const INCOMING_BAGGAGE: &[u8] = b"sentry-trace_id=771a43a4192642f0b136d5159a501700,\
sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sampled=true,\
sentry-release=api%401.0,sentry-org_id=42,othervendor=abc";

fn per_request(c: &mut Criterion) {
    let client = Arc::new(Client::from(
        ClientOptions::new()
            .dsn("https://49d0f7386ad645858ae85020e393bef3@o42.ingest.sentry.io/7")
            .release("web@1.2.3")
            .environment("production")
            .traces_sample_rate(1.0)
            .transport(TestTransport::new()),
    ));
    let policy = ContinuationPolicy::from_client(&client);
    let hub = Arc::new(Hub::new(Some(client), Arc::new(Default::default())));
    Hub::run(hub, || {
        // The server transaction continues the incoming trace, as sentry-tower would.
        let transaction =
            sentry_core::start_transaction(TransactionContext::continue_from_headers(
                "GET /users/{id}",
                "http.server",
                [(
                    "sentry-trace",
                    std::str::from_utf8(INCOMING).expect("ascii"),
                )],
            ));
        let span = transaction.start_child("template.render", "layout");
        Hub::current().configure_scope(|scope| scope.set_span(Some(span.clone().into())));
        let mut page = String::with_capacity(4096);
        let mut group = c.benchmark_group("per_request");

        // A new request: a new root, its head DSC built from the client and span on first render.
        group.bench_function("new_trace_first_render", |b| {
            b.iter(|| {
                let root = Arc::new(
                    TraceRoot::new_trace()
                        .with_transaction("GET /users/{id}", TransactionSource::Route),
                );
                root.sync_scope(|| {
                    page.clear();
                    if let Some(meta) = TraceMeta::current() {
                        meta.render_into(&mut page);
                    }
                });
                black_box(&page);
            })
        });

        // A continued request: parse the incoming headers, freeze the DSC, render.
        group.bench_function("continued_trace_first_render", |b| {
            b.iter(|| {
                let root = Arc::new(TraceRoot::from_headers(
                    Some(black_box(INCOMING)),
                    [black_box(INCOMING_BAGGAGE)],
                    &policy,
                ));
                root.sync_scope(|| {
                    page.clear();
                    if let Some(meta) = TraceMeta::current() {
                        meta.render_into(&mut page);
                    }
                });
                black_box(&page);
            })
        });

        // A later render in the same request: the DSC is looked up, not built.
        let root = Arc::new(TraceRoot::new_trace());
        root.sync_scope(|| {
            group.bench_function("later_render", |b| {
                b.iter(|| {
                    page.clear();
                    if let Some(meta) = TraceMeta::current() {
                        meta.render_into(&mut page);
                    }
                    black_box(&page);
                })
            });
        });
        group.finish();
        span.finish();
        transaction.finish();
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
