//! The inputs and operations of the micro benchmarks, defined once: the criterion benches
//! (`benches/*.rs`) time them and `examples/alloc_counts.rs` counts their allocations, so both
//! describe exactly the same code on exactly the same inputs.
//!
//! Included with `#[path]` by each bench and by the example; each uses a part of it.
#![allow(dead_code)]

use std::hint::black_box;
#[cfg(feature = "sentry")]
use std::sync::Arc;

use sentry_meta_core::{
    Continuation, ContinuationPolicy, DynamicSamplingContext, SerializedDsc, TraceMeta,
};
#[cfg(feature = "sentry")]
use sentry_meta_core::{TraceId, TraceRoot, TransactionSource};

/// A typical head-of-trace DSC, as frozen from an incoming request: every key the SDK writes.
pub const BAGGAGE: &[u8] = b"sentry-trace_id=771a43a4192642f0b136d5159a501700,\
sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sample_rand=0.853212,\
sentry-sampled=true,sentry-environment=production,sentry-release=web%401.2.3,\
sentry-transaction=GET%20%2Fusers%2F%7Bid%7D,sentry-org_id=42";

/// The caller's `sentry-trace` of a continued request.
pub const INCOMING: &[u8] = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";

/// The caller's `baggage` of a continued request (with another vendor's member).
pub const INCOMING_BAGGAGE: &[u8] = b"sentry-trace_id=771a43a4192642f0b136d5159a501700,\
sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sampled=true,\
sentry-release=api%401.0,sentry-org_id=42,othervendor=abc";

/// The server transaction's name (a route).
pub const TRANSACTION: &str = "GET /users/{id}";

// ---------------------------------------------------------------- render

/// The computed value that `render` writes: the typical DSC, serialized once.
pub fn meta() -> TraceMeta {
    let dsc = DynamicSamplingContext::from_baggage([BAGGAGE]);
    TraceMeta::new(
        "771a43a4192642f0b136d5159a501700".parse().expect("valid"),
        "b7ad6b7169203331".parse().expect("valid"),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
}

/// The reused page buffer of the render benches: 4 KiB, placed at least 1 KiB away from
/// `source` modulo 4 KiB. When a copy's destination sits just below its source modulo 4 KiB, the
/// CPU takes its loads for reads of the bytes just stored (4K aliasing) and the copy runs about 3×
/// slower: where the heap happened to put the two decided the floor, 7.5 ns in one build and
/// 20.5 ns in another. The buffers passed over are freed on return.
pub fn page_buffer(source: &str) -> String {
    let mut passed_over = Vec::new();
    loop {
        let buffer = String::with_capacity(4096);
        let distance = (buffer.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize) % 4096;
        if (1024..=3072).contains(&distance) || passed_over.len() >= 64 {
            return buffer;
        }
        passed_over.push(buffer);
    }
}

/// The floor: copying the bytes of the tags into the reused buffer.
#[inline]
pub fn copy_floor(buffer: &mut String, html: &str) {
    buffer.clear();
    buffer.push_str(black_box(html));
    black_box(&buffer);
}

/// Rendering both tags from the computed value into the reused buffer.
#[inline]
pub fn render_into_buffer(buffer: &mut String, meta: &TraceMeta) {
    buffer.clear();
    black_box(meta).render_into(buffer);
    black_box(&buffer);
}

// ---------------------------------------------------------------- DSC

/// The typical frozen DSC, decoded.
pub fn frozen_dsc() -> DynamicSamplingContext {
    DynamicSamplingContext::from_baggage([BAGGAGE])
}

/// Decoding the typical incoming baggage into a DSC (what freezing a continued trace does).
#[inline]
pub fn dsc_from_baggage() -> DynamicSamplingContext {
    DynamicSamplingContext::from_baggage([black_box(BAGGAGE)])
}

/// Writing the typical DSC as a `baggage` value.
#[inline]
pub fn dsc_to_baggage(dsc: &DynamicSamplingContext) -> String {
    black_box(dsc).to_baggage()
}

/// Serializing the typical DSC once for a request (`to_baggage` + HTML escape check + `Arc`).
#[inline]
pub fn serialized_dsc_new(dsc: DynamicSamplingContext) -> SerializedDsc {
    SerializedDsc::new(black_box(dsc))
}

/// The head DSC through `__private::head_dsc` (client facts worked out afresh, then decoded:
/// the per-request path instead writes cached, pre-encoded members straight into a header).
#[cfg(feature = "sentry")]
#[inline]
pub fn head_dsc(client: &sentry_core::Client, trace_id: TraceId) -> DynamicSamplingContext {
    sentry_meta_core::__private::head_dsc(
        black_box(client),
        black_box(trace_id),
        Some(true),
        Some((TRANSACTION, TransactionSource::Route)),
    )
}

// ---------------------------------------------------------------- hostile headers

/// The sizes of the hostile `baggage` (and `sentry-trace`) headers.
pub const HOSTILE_SIZES: [(&str, usize); 3] = [("100B", 100), ("8KiB", 8 << 10), ("1MiB", 1 << 20)];

/// One hostile request: a `sentry-trace` and one `baggage` value.
pub struct Hostile {
    /// What it is, e.g. `many_members/8KiB`.
    pub name: String,
    /// The `sentry-trace` value.
    pub sentry_trace: Vec<u8>,
    /// The `baggage` value.
    pub baggage: Vec<u8>,
}

impl Hostile {
    /// The bytes a server reads from both headers.
    pub fn len(&self) -> usize {
        self.sentry_trace.len() + self.baggage.len()
    }
}

/// Deterministic junk bytes (xorshift64*), every byte value alike: commas, `=`, `%`, control
/// bytes and invalid UTF-8 all occur.
fn junk(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// `sentry-m0=v0,sentry-m1=v1,…` up to `len` bytes: distinct `sentry-` keys, the worst case for
/// the DSC (every one is decoded and looked up among the unknown keys kept).
fn many_members(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0usize;
    while out.len() < len {
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(format!("sentry-m{i}=v{i}").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// One `sentry-release=aaaa…` member of `len` bytes.
fn huge_member(len: usize) -> Vec<u8> {
    let mut out = b"sentry-release=".to_vec();
    out.resize(len.max(out.len() + 1), b'a');
    out
}

/// Every hostile request, by shape then size:
///
/// - `junk`: a valid `sentry-trace`, `baggage` of junk bytes;
/// - `many_members`: a valid `sentry-trace`, `baggage` of many small distinct `sentry-` members;
/// - `huge_member`: a valid `sentry-trace`, `baggage` of one huge `sentry-release` member;
/// - `junk_sentry_trace`: `sentry-trace` *and* `baggage` of junk bytes of that size (the trace
///   is rejected, the baggage never read).
pub fn hostile_requests() -> Vec<Hostile> {
    let mut all = Vec::new();
    for (shape, make) in [
        (
            "junk",
            (|n| junk(n, 0x9e37_79b9_7f4a_7c15)) as fn(usize) -> Vec<u8>,
        ),
        ("many_members", many_members),
        ("huge_member", huge_member),
    ] {
        for (size, len) in HOSTILE_SIZES {
            all.push(Hostile {
                name: format!("{shape}/{size}"),
                sentry_trace: INCOMING.to_vec(),
                baggage: make(len),
            });
        }
    }
    for (size, len) in HOSTILE_SIZES {
        all.push(Hostile {
            name: format!("junk_sentry_trace/{size}"),
            sentry_trace: junk(len, 0x0123_4567_89ab_cdef),
            baggage: junk(len, 0xfedc_ba98_7654_3210),
        });
    }
    all
}

/// The policy of the receiving service in the hostile benches (org 42, as in the inputs).
pub fn hostile_policy() -> ContinuationPolicy {
    ContinuationPolicy::new().org_id("42")
}

/// Deciding whether to continue, from the hostile headers.
#[inline]
pub fn decide(request: &Hostile, policy: &ContinuationPolicy) -> Continuation {
    Continuation::decide(
        Some(black_box(&request.sentry_trace[..])),
        [black_box(&request.baggage[..])],
        policy,
    )
}

// ---------------------------------------------------------------- per request

/// The client of the per-request benches: as a web app configures it, with a transport that
/// drops envelopes.
#[cfg(feature = "sentry")]
pub fn client() -> Arc<sentry_core::Client> {
    Arc::new(sentry_core::Client::from(
        sentry_core::ClientOptions::new()
            .dsn("https://49d0f7386ad645858ae85020e393bef3@o42.ingest.sentry.io/7")
            .release("web@1.2.3")
            .environment("production")
            .traces_sample_rate(1.0)
            .transport(sentry_core::test::TestTransport::new()),
    ))
}

/// Runs `f` in a Hub bound to [`client`], with an active `template.render` span in a sampled
/// server transaction that continues [`INCOMING`] (as `sentry-tower` would start it): the span a
/// render without the layer reads. `f` gets the client.
#[cfg(feature = "sentry")]
pub fn with_active_span<R>(f: impl FnOnce(&Arc<sentry_core::Client>) -> R) -> R {
    use sentry_core::{Hub, TransactionContext};

    let client = client();
    let hub = Arc::new(Hub::new(Some(client.clone()), Arc::new(Default::default())));
    Hub::run(hub, || {
        let transaction =
            sentry_core::start_transaction(TransactionContext::continue_from_headers(
                TRANSACTION,
                "http.server",
                [(
                    "sentry-trace",
                    std::str::from_utf8(INCOMING).expect("ascii"),
                )],
            ));
        let span = transaction.start_child("template.render", "layout");
        Hub::current().configure_scope(|scope| scope.set_span(Some(span.clone().into())));
        let result = f(&client);
        span.finish();
        transaction.finish();
        result
    })
}

/// The root the axum layer makes for a request, as it makes it: the continuation decision
/// under the client's policy, the transaction name (`"{METHOD} {route}"`, as `sentry-tower`
/// names it, shared by the route's requests on the thread), the `traceparent` option, and the
/// server span, with the root's own span id, that it records once it has started the request's
/// transaction (the transaction itself is the SDK's cost, not measured here). It sets them as
/// the layer does, through the root's setters.
#[cfg(feature = "sentry")]
#[inline]
pub fn request_root(
    client: &Arc<sentry_core::Client>,
    sentry_trace: Option<&[u8]>,
    baggage: &[u8],
) -> Arc<TraceRoot> {
    let (method, route) = (black_box("GET"), black_box("/users/{id}"));
    let mut root = TraceRoot::for_client(Some(client), sentry_trace, [baggage]);
    root.set_route(method, route);
    root.set_traceparent(black_box(false));
    let span_id = root.span_id();
    root.set_server_span(client, span_id, Some(true));
    Arc::new(root)
}

/// The root of a new request at the head of a trace (see [`request_root`]).
#[cfg(feature = "sentry")]
pub fn new_root(client: &Arc<sentry_core::Client>) -> Arc<TraceRoot> {
    request_root(client, None, b"")
}

/// Renders the current request's tags into the page buffer.
#[cfg(feature = "sentry")]
#[inline]
fn render_current(page: &mut String) {
    page.clear();
    if let Some(meta) = TraceMeta::current() {
        meta.render_into(page);
    }
}

/// A whole request at the head of a trace, as a server runs it: the layer makes the root, the
/// page renders its tags (head DSC from the client's template), the root is freed.
#[cfg(feature = "sentry")]
#[inline]
pub fn new_trace_first_render(page: &mut String, client: &Arc<sentry_core::Client>) {
    new_root(client).sync_scope(|| render_current(page));
    black_box(&page);
}

/// The first render of a request whose root the layer already made (as a Node server has
/// started its span before it calls `getTraceMetaTags()`), then the root freed, as at the end of
/// the request: the part a peer's one call does.
#[cfg(feature = "sentry")]
#[inline]
pub fn first_render(page: &mut String, root: Arc<TraceRoot>) {
    root.sync_scope(|| render_current(page));
    black_box(&page);
}

/// A whole continued request: the layer parses the incoming headers and freezes the DSC, the
/// page renders, the root is freed.
#[cfg(feature = "sentry")]
#[inline]
pub fn continued_trace_first_render(page: &mut String, client: &Arc<sentry_core::Client>) {
    request_root(
        client,
        Some(black_box(INCOMING)),
        black_box(INCOMING_BAGGAGE),
    )
    .sync_scope(|| render_current(page));
    black_box(&page);
}

/// A later render in the same request (call inside the request's root scope).
#[cfg(feature = "sentry")]
#[inline]
pub fn later_render(page: &mut String) {
    render_current(page);
    black_box(&page);
}

/// A render with no trace root (helpers used without the layer): the Hub's active span, a head
/// DSC for its trace.
#[cfg(feature = "sentry")]
#[inline]
pub fn render_without_layer(page: &mut String) {
    render_current(page);
    black_box(&page);
}

/// The floor set by the SDK: reading the active span's trace id, span id and decision through
/// `sentry-core`'s public API (what `sentry-trace` needs), as every integration must.
#[cfg(feature = "sentry")]
#[inline]
pub fn sdk_active_span() {
    use sentry_core::{Hub, TransactionContext, TransactionOrSpan};
    let span = Hub::current().configure_scope(|scope| scope.get_span());
    if let Some(span) = span {
        let span_id = match &span {
            TransactionOrSpan::Span(span) => span.get_span_id(),
            TransactionOrSpan::Transaction(transaction) => transaction.get_trace_context().span_id,
        };
        let context = TransactionContext::continue_from_span("", "", Some(span));
        black_box((context.trace_id(), span_id, context.sampled()));
    }
}

/// The root that [`later_render`] runs in.
#[cfg(feature = "sentry")]
pub fn later_render_root(client: &Arc<sentry_core::Client>) -> Arc<TraceRoot> {
    new_root(client)
}
