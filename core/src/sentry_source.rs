//! Reading the active span and the client's options from the `sentry` crate (feature `sentry`).

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use sentry_core::protocol;
use sentry_core::{Client, Hub, TracesSamplingStrategy, TransactionContext, TransactionOrSpan};

use crate::baggage::BaggageWriter;
use crate::continuation::{Continuation, ContinuationPolicy};
use crate::dsc::{
    DscKey, DynamicSamplingContext, SAMPLE_RAND_LEN, SampleRand, TransactionSource, rate_text,
};
use crate::ids::{SpanId, TraceId};
use crate::meta::{HeadTemplate, PageDsc, SerializedDsc, TraceMeta};
use crate::root::TraceRoot;

/// Copies the bytes that a `derive(Hash)` of a `[u8; N]` newtype feeds its hasher (the array is
/// hashed as its length, then its bytes in one `write`). The Sentry SDK's ids expose no other
/// allocation-free way to read their bytes; the result is checked by converting back.
struct ByteCapture<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Hasher for ByteCapture<N> {
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(N - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn write_usize(&mut self, _len: usize) {}

    fn finish(&self) -> u64 {
        0
    }
}

fn id_bytes<const N: usize, T>(id: &T) -> Option<[u8; N]>
where
    T: Hash + From<[u8; N]> + PartialEq + std::fmt::Display,
{
    let mut capture = ByteCapture::<N> {
        bytes: [0; N],
        len: 0,
    };
    id.hash(&mut capture);
    if capture.len == N && T::from(capture.bytes) == *id {
        return Some(capture.bytes);
    }
    // The standard library hashed the array differently: go the slow way, through the SDK's
    // lowercase hex.
    crate::ids::decode_lower_hex(id.to_string().as_bytes())
}

impl From<protocol::TraceId> for TraceId {
    fn from(id: protocol::TraceId) -> Self {
        id_bytes(&id).map_or_else(TraceId::random, TraceId::from_bytes)
    }
}

impl From<TraceId> for protocol::TraceId {
    fn from(id: TraceId) -> Self {
        protocol::TraceId::from(id.to_bytes())
    }
}

impl From<protocol::SpanId> for SpanId {
    fn from(id: protocol::SpanId) -> Self {
        id_bytes(&id).map_or_else(SpanId::random, SpanId::from_bytes)
    }
}

impl From<SpanId> for protocol::SpanId {
    fn from(id: SpanId) -> Self {
        protocol::SpanId::from(id.to_bytes())
    }
}

impl ContinuationPolicy {
    /// The policy of a Sentry client: its `org_id` option, else the org id in its DSN's host,
    /// and its `strict_trace_continuation` option. The same rule the SDK applies when it
    /// starts a transaction, so both agree on whether to continue.
    pub fn from_client(client: &Client) -> Self {
        let options = client.options();
        let policy = Self::new().strict_trace_continuation(options.strict_trace_continuation);
        let org = options.org_id.or_else(|| client.dsn()?.org_id());
        match org {
            Some(org) => policy.org_id(org.to_string()),
            None => policy,
        }
    }
}

/// The `origin` of the server transactions that this crate's integrations start, each for a
/// request with a [`TraceRoot`] that knows the request's DSC.
pub const SERVER_ORIGIN: &str = "auto.http.sentry_meta";

/// The active span of a Hub: its trace, its id and its sampling decision.
#[derive(Debug, Clone, Copy)]
struct ActiveSpan {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: Option<bool>,
    /// In a server transaction of this crate's integrations ([`SERVER_ORIGIN`]), whose
    /// request's root is not current.
    outside_its_root: bool,
}

/// The Hub's active span, `outside_root` when no root is current.
fn active_span(hub: &Hub, outside_root: bool) -> Option<ActiveSpan> {
    let span = hub.configure_scope(|scope| scope.get_span())?;
    // The transaction's trace context (a child span's is its transaction's), cloned whole: for a
    // transaction's span id, and outside a root for the transaction's origin.
    let is_server_request =
        |context: &protocol::TraceContext| context.origin.as_deref() == Some(SERVER_ORIGIN);
    let (span_id, outside_its_root) = match &span {
        TransactionOrSpan::Transaction(_) => {
            let context = span.get_trace_context();
            (context.span_id, outside_root && is_server_request(&context))
        }
        TransactionOrSpan::Span(child) => (
            child.get_span_id(),
            outside_root && is_server_request(&span.get_trace_context()),
        ),
    };
    // One lock to read the trace id and the decision exactly as the SDK writes `sentry-trace`
    // (the span handle is moved in, not cloned).
    let context = TransactionContext::continue_from_span("", "", Some(span));
    Some(ActiveSpan {
        trace_id: context.trace_id().into(),
        span_id: span_id.into(),
        sampled: context.sampled(),
        outside_its_root,
    })
}

/// What a client puts into every head DSC, worked out once per client (and thread) rather than
/// once per request: the members that come from the options, already percent-encoded.
#[derive(Debug)]
struct ClientFacts {
    /// Whether tracing is on: without it a head DSC states no decision.
    tracing: bool,
    /// The fixed traces sample rate.
    fixed_rate: Option<FixedRate>,
    public_key: Option<Box<str>>,
    environment: Option<Box<str>>,
    release: Option<Box<str>>,
    org_id: Option<Box<str>>,
    /// The client's continuation policy.
    policy: ContinuationPolicy,
    /// The head DSC templates made so far on this thread, one per decision and transaction
    /// name that goes into the DSC (a few per route), at most [`MAX_TEMPLATES`], the oldest
    /// replaced once full.
    templates: RefCell<Vec<TemplateEntry>>,
}

/// A client's fixed traces sample rate (in `[0, 1]`), worked out for head DSCs.
#[derive(Debug)]
struct FixedRate {
    rate: f64,
    /// How many sample rands are below the rate ([`SampleRand::below`]).
    below: u32,
    /// The member `sentry-sample_rate=…`.
    member: Box<str>,
}

#[derive(Debug)]
struct TemplateEntry {
    sampled: Option<bool>,
    /// The transaction name written into the DSC, if any: the root's own, which the requests
    /// of one route share on a thread (see `TraceRoot::set_route`), so a look-up usually
    /// compares pointers, not text.
    transaction: Option<Arc<str>>,
    /// `None` when the head DSC cannot be templated (a `'`, which percent-encoding keeps and HTML
    /// escapes, in an option or the name): it is written whole, and escaped, each time.
    template: Option<Arc<HeadTemplate>>,
}

/// How many templates a thread keeps per client: transaction names come from routes, so a
/// few dozen cover an application; a name beyond costs a head DSC written whole, not memory.
const MAX_TEMPLATES: usize = 64;

/// One `key=value` member in canonical form, for an option that is set; `None` when it alone
/// would exceed the size limit of a `baggage` header (a release of over 8 KiB, say): left out,
/// as any member that does not fit.
fn member(key: DscKey, value: Option<&str>) -> Option<Box<str>> {
    let value = value?;
    let mut writer = BaggageWriter::default();
    writer
        .push(key.baggage_key(), "", value)
        .then(|| writer.finish().into_boxed_str())
}

impl ClientFacts {
    fn new(client: &Client) -> Self {
        let options = client.options();
        let policy = ContinuationPolicy::from_client(client);
        // Only a fixed rate is known here: a sampler function's answer for a transaction cannot
        // be read back from the SDK, and calling it again could answer differently.
        let strategy = &options.traces_sampling_strategy;
        let fixed_rate = match *strategy {
            TracesSamplingStrategy::FixedRate(rate) => {
                // The option is an `f32`: write it as an `f32` prints (`0.1`), not widened to
                // an `f64` first (`0.10000000149011612`), and compare with that same value;
                // `-0.0` as `0`, as JavaScript writes it.
                let rate = if rate == 0.0 { 0.0 } else { rate };
                let text = rate_text(rate);
                let rate = text.parse::<f64>().unwrap_or(f64::from(rate));
                member(DscKey::SampleRate, Some(&text))
                    .filter(|_| (0.0..=1.0).contains(&rate))
                    .map(|member| FixedRate {
                        rate,
                        below: SampleRand::below(rate),
                        member,
                    })
            }
            _ => None,
        };
        Self {
            tracing: !matches!(strategy, TracesSamplingStrategy::Disabled),
            fixed_rate,
            public_key: member(DscKey::PublicKey, client.dsn().map(|dsn| dsn.public_key())),
            environment: member(DscKey::Environment, options.environment.as_deref()),
            release: member(DscKey::Release, options.release.as_deref()),
            org_id: member(DscKey::OrgId, policy.org()),
            policy,
            templates: RefCell::default(),
        }
    }

    /// The facts of `client`, from a one-entry cache per thread. The cache holds a `Weak`: while
    /// it lives, the client's allocation cannot be reused by another client, so equal pointers
    /// mean the same client.
    fn of(client: &Arc<Client>) -> Rc<ClientFacts> {
        thread_local! {
            static CACHE: RefCell<Option<(Weak<Client>, Rc<ClientFacts>)>> = const { RefCell::new(None) };
        }
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some((cached, facts)) = &*cache
                && std::ptr::eq(cached.as_ptr(), Arc::as_ptr(client))
            {
                return facts.clone();
            }
            let facts = Rc::new(ClientFacts::new(client));
            *cache = Some((Arc::downgrade(client), facts.clone()));
            facts
        })
    }

    /// The head DSC of trace `trace_id`, ready to render: from the template for this decision
    /// and transaction name, made on the first request that needs it.
    fn head_dsc(
        &self,
        trace_id: TraceId,
        sampled: Option<bool>,
        transaction: Option<(&Arc<str>, TransactionSource)>,
    ) -> PageDsc {
        let sampled = self.stated(sampled);
        let transaction = dsc_transaction(sampled, transaction);
        let mut templates = self.templates.borrow_mut();
        let at = templates.iter().position(|entry| {
            entry.sampled == sampled
                && match (&entry.transaction, transaction) {
                    (Some(made), Some(name)) => Arc::ptr_eq(made, name) || made == name,
                    (made, name) => made.is_none() && name.is_none(),
                }
        });
        let at = at.unwrap_or_else(|| {
            if templates.len() == MAX_TEMPLATES {
                templates.remove(0);
            }
            // The template of the head DSCs with this decision and transaction name.
            let transaction = transaction.cloned();
            let zero = TraceId::from_bytes([0; 16]);
            let (text, rand_at) = self.head_baggage(zero, sampled, transaction.as_deref());
            let template = rand_at.and_then(|at| HeadTemplate::new(text, at));
            templates.push(TemplateEntry {
                sampled,
                template: template.map(Arc::new),
                transaction,
            });
            templates.len() - 1
        });
        match &templates[at].template {
            Some(template) => {
                PageDsc::Head(template.clone(), self.sample_rand(trace_id, sampled).0)
            }
            None => PageDsc::Serialized(SerializedDsc::from_canonical_header(
                &self
                    .head_baggage(trace_id, sampled, transaction.map(|name| &**name))
                    .0,
            )),
        }
    }

    /// The decision a head DSC of this client states: the trace's while tracing is on, none
    /// with tracing off (a caller's decision that the SDK passed on is not this service's).
    fn stated(&self, sampled: Option<bool>) -> Option<bool> {
        sampled.filter(|_| self.tracing)
    }

    /// The sample rand of trace `trace_id` (decided `sampled`, as [`stated`](Self::stated)),
    /// with the fixed rate's member when that rate could have made the decision: the value
    /// then agrees with both. A decision no value agrees with at the rate (sampled at rate 0,
    /// dropped at rate 1: a caller's, passed on by the SDK) is stated without the rate.
    fn sample_rand(&self, trace_id: TraceId, sampled: Option<bool>) -> (SampleRand, Option<&str>) {
        if let (Some(sampled), Some(fixed)) = (sampled, &self.fixed_rate)
            && let Some(rand) = SampleRand::on_side(trace_id, fixed.below, sampled)
        {
            return (rand, Some(&fixed.member));
        }
        (SampleRand::from_trace_id(trace_id, None), None)
    }

    /// The head DSC of trace `trace_id`, written straight into its canonical `baggage` form in
    /// the order of [`DscKey::ALL`] (the members that come from the options were encoded once),
    /// and where the sample rand's value starts in it. `transaction` is the name that goes into
    /// the DSC (see [`dsc_transaction`]).
    fn head_baggage(
        &self,
        trace_id: TraceId,
        sampled: Option<bool>,
        transaction: Option<&str>,
    ) -> (String, Option<usize>) {
        let (sample_rand, sample_rate) = self.sample_rand(trace_id, sampled);
        let mut writer = BaggageWriter::with_capacity(512);
        writer.push_unreserved(DscKey::TraceId.baggage_key(), trace_id);
        let first = [self.public_key.as_deref(), sample_rate];
        for member in first.into_iter().flatten() {
            writer.push_canonical(member);
        }
        let rand_key = DscKey::SampleRand.baggage_key();
        let rand_at = writer
            .push_unreserved(rand_key, sample_rand)
            .then(|| writer.len() - SAMPLE_RAND_LEN);
        if let Some(sampled) = sampled {
            let sampled = if sampled { "true" } else { "false" };
            writer.push_unreserved(DscKey::Sampled.baggage_key(), sampled);
        }
        for member in [&self.environment, &self.release].into_iter().flatten() {
            writer.push_canonical(member);
        }
        if let Some(name) = transaction {
            writer.push(DscKey::Transaction.baggage_key(), "", name);
        }
        if let Some(org_id) = &self.org_id {
            writer.push_canonical(org_id);
        }
        (writer.finish(), rand_at)
    }
}

/// The transaction name that goes into a head DSC: only when tracing is on for the trace (the
/// name is part of its decision), and never a raw URL.
fn dsc_transaction<S: AsRef<str>>(
    sampled: Option<bool>,
    transaction: Option<(S, TransactionSource)>,
) -> Option<S> {
    let (name, source) = transaction.filter(|_| sampled.is_some())?;
    (source != TransactionSource::Url && !name.as_ref().is_empty()).then_some(name)
}

/// The DSC that the head of trace `trace_id` has, from the client's options and (when the
/// client's tracing is on and the trace has a decision) that decision and the root's
/// transaction name.
///
/// ```
/// use sentry_meta_core::{DscKey, TraceId, __private::head_dsc};
/// let client = sentry_core::Client::from(
///     sentry_core::ClientOptions::new()
///         .dsn("https://abc@o42.ingest.sentry.io/7")
///         .release("web@1.0")
///         .traces_sample_rate(0.5),
/// );
/// let trace_id: TraceId = "771a43a4192642f0b136d5159a501700".parse().unwrap();
/// let dsc = head_dsc(&client, trace_id, Some(false), Some(("GET /", sentry_meta_core::TransactionSource::Route)));
/// assert_eq!(dsc.get(DscKey::PublicKey), Some("abc"));
/// assert_eq!(dsc.get(DscKey::OrgId), Some("42"));
/// assert_eq!(dsc.get(DscKey::Sampled), Some("false"));
/// assert!(dsc.sample_rand().unwrap().as_f64() >= 0.5);
/// ```
pub fn head_dsc(
    client: &Client,
    trace_id: TraceId,
    sampled: Option<bool>,
    transaction: Option<(&str, TransactionSource)>,
) -> DynamicSamplingContext {
    let facts = ClientFacts::new(client);
    let sampled = facts.stated(sampled);
    let transaction = dsc_transaction(sampled, transaction);
    let (baggage, _) = facts.head_baggage(trace_id, sampled, transaction);
    DynamicSamplingContext::from_baggage([baggage.as_bytes()])
}

impl TraceRoot {
    /// The root for a request with these headers (see [`TraceRoot::from_headers`]) under the
    /// continuation policy of `client` ([`ContinuationPolicy::from_client`], worked out once
    /// per client and thread); the default policy without a client. A continued caller that
    /// left the sampling decision open is decided here when `client` samples at a fixed rate
    /// ([`IncomingTrace::decide_at`](crate::IncomingTrace::decide_at)):
    /// [`incoming`](TraceRoot::incoming) holds that decision, and the frozen DSC that rate.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sentry_meta_core::TraceRoot;
    ///
    /// let client = Arc::new(sentry_core::Client::from(
    ///     sentry_core::ClientOptions::new().dsn("https://abc@o42.ingest.sentry.io/7"),
    /// ));
    /// let sentry_trace = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
    /// // The caller is in org 7, this service in org 42: a new trace.
    /// let root = TraceRoot::for_client(Some(&client), Some(sentry_trace), [&b"sentry-org_id=7"[..]]);
    /// assert!(root.incoming().is_none());
    /// let root = TraceRoot::for_client(Some(&client), Some(sentry_trace), [&b"sentry-org_id=42"[..]]);
    /// assert!(root.incoming().is_some());
    /// ```
    pub fn for_client<'a>(
        client: Option<&Arc<Client>>,
        sentry_trace: Option<&[u8]>,
        baggage: impl IntoIterator<Item = &'a [u8]>,
    ) -> Self {
        // Without a `sentry-trace` there is nothing to continue: no policy is needed.
        let Some(client) = client.filter(|_| sentry_trace.is_some()) else {
            return TraceRoot::from_headers(sentry_trace, baggage, &ContinuationPolicy::default());
        };
        let facts = ClientFacts::of(client);
        match Continuation::decide(sentry_trace, baggage, &facts.policy) {
            Continuation::Continue(mut incoming) => {
                // A caller that left the decision open is decided here at the client's fixed
                // rate, by the trace's sample rand: the SDK, asked with no decision, would draw
                // a random number of its own, which the frozen DSC need not agree with.
                if let Some(fixed) = &facts.fixed_rate {
                    incoming.decide_at(fixed.rate);
                }
                TraceRoot::continued(incoming)
            }
            Continuation::NewTrace(_) => TraceRoot::new_trace(),
        }
    }

    /// Records the request's server span, the root span of its part of the trace
    /// ([`trace_id`](Self::trace_id)), and the trace's sampling decision (`None`: deferred),
    /// with the head DSC that `client` gives a new trace. The integration that starts the
    /// request's transaction calls it once, before it shares the root; pages then name that
    /// span (or the [render span](Self::in_render_span) they are rendered in) and write that
    /// DSC, without reading the Hub.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sentry_meta_core::{SpanId, TraceMeta, TraceRoot};
    ///
    /// let client = Arc::new(sentry_core::Client::from(
    ///     sentry_core::ClientOptions::new().dsn("https://abc@o42.ingest.sentry.io/7"),
    /// ));
    /// let mut root = TraceRoot::new_trace();
    /// let span = SpanId::random();
    /// root.set_server_span(&client, span, Some(true));
    /// let root = Arc::new(root);
    /// assert_eq!(root.page_span(), Some((span, Some(true))));
    /// let child = SpanId::random();
    /// root.in_render_span(child, || assert_eq!(root.page_span(), Some((child, Some(true)))));
    ///
    /// let meta = root.clone().sync_scope(TraceMeta::current).expect("the root knows");
    /// assert!(meta.sentry_trace_header().ends_with(&format!("{span}-1")));
    /// assert!(meta.baggage_header().unwrap().contains("sentry-public_key=abc"));
    /// ```
    pub fn set_server_span(
        &mut self,
        client: &Arc<Client>,
        span_id: SpanId,
        sampled: Option<bool>,
    ) {
        let head_dsc = self.incoming().is_none().then(|| {
            ClientFacts::of(client).head_dsc(self.trace_id(), sampled, self.transaction_arc())
        });
        self.record_server_span(span_id, sampled, head_dsc);
    }
}

/// Runs `render` inside a child span of the current span (op `template.render`, `description`
/// such as the template's name), so that Sentry shows the rendering and the page names the span
/// that rendered it: the span is the Hub's active span while `render` runs, and the span the
/// request's pages name (see [`TraceRoot::in_render_span`]). Without an active span, just runs
/// `render`.
///
/// ```
/// use std::sync::Arc;
/// use sentry_core::{Client, ClientOptions, Hub, TransactionContext};
/// use sentry_meta_core::{TraceMeta, render_span};
///
/// let client = Arc::new(Client::from(
///     ClientOptions::new()
///         .dsn("https://abc@o1.ingest.sentry.io/2")
///         .traces_sample_rate(1.0)
///         .transport(sentry_core::test::TestTransport::new()),
/// ));
/// Hub::run(Arc::new(Hub::new(Some(client), Default::default())), || {
///     let transaction = sentry_core::start_transaction(TransactionContext::new("GET /", "http.server"));
///     Hub::current().configure_scope(|scope| scope.set_span(Some(transaction.clone().into())));
///     let page = render_span("home.html", || TraceMeta::current().expect("a client").to_html());
///     let server_span = transaction.get_trace_context().span_id.to_string();
///     assert!(!page.contains(&server_span), "the page names the render span");
///     transaction.finish();
/// });
/// ```
pub fn render_span<R>(description: &str, render: impl FnOnce() -> R) -> R {
    let hub = Hub::current();
    let Some(parent) = hub.configure_scope(|scope| scope.get_span()) else {
        return render();
    };
    let child = parent.start_child("template.render", description);
    let span_id = child.get_span_id();
    let span = TransactionOrSpan::from(child);
    hub.configure_scope(|scope| scope.set_span(Some(span.clone())));
    // Restored by a guard, so that a panicking template does not leave the child active.
    struct Restore<'a>(&'a Hub, Option<(TransactionOrSpan, TransactionOrSpan)>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            if let Some((span, parent)) = self.1.take() {
                self.0.configure_scope(|scope| scope.set_span(Some(parent)));
                span.finish();
            }
        }
    }
    let _restore = Restore(&hub, Some((span, parent)));
    match TraceRoot::current() {
        Some(root) => root.in_render_span(span_id.into(), render),
        None => render(),
    }
}

static WARNED_TRACE_MISMATCH: AtomicBool = AtomicBool::new(false);
static WARNED_OUTSIDE_ROOT: AtomicBool = AtomicBool::new(false);

impl TraceMeta {
    /// The tags for the current request, from the current [`Hub`]: the active span's
    /// `sentry-trace` and its root's DSC.
    ///
    /// - Inside a [`TraceRoot`] scope (installed per request by the web integration): a
    ///   continued trace passes on its frozen DSC; a new trace builds its head DSC once. When
    ///   the integration recorded the request's server span ([`TraceRoot::set_server_span`]),
    ///   pages name it (or the [`render_span`] they are rendered in) and the Hub's active span
    ///   is not read.
    /// - Without one: the DSC of the head of the active span's trace, built from the client;
    ///   but in the server transaction of a request that has a root (one that the web
    ///   integration started), outside that root's scope (a task spawned with the request's
    ///   Hub alone), the active span's `sentry-trace` and no `baggage`: the DSC is the root's,
    ///   which the SDK does not tell (the browser then freezes an empty DSC, with no values
    ///   that contradict the server's). A warning says so, once.
    /// - Without an active span (tracing off, or outside any transaction): a `sentry-trace`
    ///   with no flag, for the root's trace, or for a fresh trace id on each call without a
    ///   root, never the scope's shared fallback trace id (which every request would share).
    ///
    /// `None` when the Hub has no enabled client (Sentry is not initialized, or has no DSN), and
    /// inside a root whose tags a cache guard has withheld, for the rest of its request
    /// ([`TraceRoot::withhold_tags`]: a response that shared caches may store).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sentry_core::{Client, ClientOptions, Hub, TransactionContext};
    /// use sentry_meta_core::TraceMeta;
    ///
    /// let client = Arc::new(Client::from(
    ///     ClientOptions::new()
    ///         .dsn("https://abc@o1.ingest.sentry.io/2")
    ///         .traces_sample_rate(1.0)
    ///         .transport(sentry_core::test::TestTransport::new()),
    /// ));
    /// Hub::run(Arc::new(Hub::new(Some(client), Default::default())), || {
    ///     let transaction = sentry_core::start_transaction(TransactionContext::new("page", "http.server"));
    ///     Hub::current().configure_scope(|scope| scope.set_span(Some(transaction.clone().into())));
    ///     let meta = TraceMeta::current().expect("a client is bound");
    ///     assert!(meta.sentry_trace_header().ends_with("-1"));
    ///     assert!(meta.baggage_header().unwrap().contains("sentry-public_key=abc"));
    ///     transaction.finish();
    /// });
    /// ```
    pub fn current() -> Option<TraceMeta> {
        page_tags(|| from_scope(&Hub::current()))
    }

    /// Like [`current`](Self::current), for a given Hub.
    pub fn from_hub(hub: &Hub) -> Option<TraceMeta> {
        page_tags(|| from_scope(hub))
    }
}

/// A page's tags: the current root's once the integration has recorded its server span (the
/// Hub is not read), none once a cache guard has withheld them ([`TraceRoot::withhold_tags`]),
/// else `scope`'s.
fn page_tags(scope: impl FnOnce() -> Option<TraceMeta>) -> Option<TraceMeta> {
    TraceRoot::with_current(|root| root?.page_meta(true)).or_else(|| {
        match TraceRoot::with_current(|root| root.map(TraceRoot::withholds_tags)) {
            None => scope(),
            // Withheld, the Hub is not read either.
            Some(true) => None,
            // Taken inside a root, the Hub's tags count as the root's: the cache guard learns
            // of them, or has withheld them meanwhile (one atomic step, as the guard's).
            Some(false) => scope().filter(|_| {
                TraceRoot::with_current(|root| root.is_none_or(TraceRoot::take_other_tags))
            }),
        }
    })
}

/// What [`TraceMeta::current`] returns, without counting as a page's render
/// ([`TraceRoot::rendered`]), nor withheld: the DSC of an envelope sent during a request.
pub fn envelope_meta() -> Option<TraceMeta> {
    TraceRoot::with_current(|root| root?.page_meta(false)).or_else(|| from_scope(&Hub::current()))
}

/// The tags from the Hub's active span and client, for pages outside a root that knows its
/// server span.
fn from_scope(hub: &Hub) -> Option<TraceMeta> {
    // A client without a DSN sends nothing: no trace to continue, as `@sentry/core` writes no
    // tags while the SDK is disabled. (`Client::is_enabled` would also see a closed client, but
    // takes the transport's lock, which the SDK holds while it sends: `DscTransport` reaches
    // this from inside that send.)
    let client = hub.client().filter(|client| client.dsn().is_some())?;
    let facts = ClientFacts::of(&client);
    let (meta, problem) = TraceRoot::with_current(|root| match active_span(hub, root.is_none()) {
        Some(span) => with_span(&facts, root, span),
        None => (without_span(&facts, root), None),
    });
    // Logged outside the borrow of the current root: a subscriber runs code of its own.
    match problem {
        Some(Problem::Mismatch { incoming, active })
            if !WARNED_TRACE_MISMATCH.swap(true, Ordering::Relaxed) =>
        {
            tracing::warn!(
                target: "sentry_meta",
                %incoming,
                %active,
                "the Sentry SDK did not continue the caller's trace although sentry-meta did \
                 (e.g. a sentry-trace the SDK reads differently, or several sentry-trace \
                 headers); pages describe the SDK's trace with its own DSC"
            );
        }
        Some(Problem::OutsideRoot) if !WARNED_OUTSIDE_ROOT.swap(true, Ordering::Relaxed) => {
            tracing::warn!(
                target: "sentry_meta",
                "a page was rendered in a request's server transaction but outside the \
                 request's trace root, which holds its DSC (in a task spawned with the \
                 request's Hub alone, or by a layer outside SentryMetaLayer): it names the \
                 active span, without baggage; render inside the root, `root.scope(task)` with \
                 the root of `TraceRoot::current()`"
            );
        }
        _ => {}
    }
    Some(meta)
}

/// What [`from_scope`] reports, once per process each.
enum Problem {
    /// The root continued trace `incoming`, the SDK's span is of trace `active`.
    Mismatch { incoming: TraceId, active: TraceId },
    /// The span is a request's server transaction (or in one), and its root is not current.
    OutsideRoot,
}

/// The tags for the active span, and what is wrong with them, if anything.
fn with_span(
    facts: &ClientFacts,
    root: Option<&TraceRoot>,
    span: ActiveSpan,
) -> (TraceMeta, Option<Problem>) {
    // A request's server transaction has the DSC of its root (the frozen one, or a head DSC
    // with the transaction's name), which the SDK does not tell: outside that root, the page
    // names the span and writes no DSC rather than another one (the browser then freezes an
    // empty one: no values that contradict the server's).
    let problem = match root {
        Some(root) => root
            .incoming()
            .filter(|incoming| incoming.trace_id != span.trace_id)
            .map(|incoming| Problem::Mismatch {
                incoming: incoming.trace_id,
                active: span.trace_id,
            }),
        None => span.outside_its_root.then_some(Problem::OutsideRoot),
    };
    let dsc = match root.and_then(|root| root.frozen_dsc_of(span.trace_id)) {
        Some(frozen) => Some(PageDsc::Serialized(frozen.clone())),
        None if span.outside_its_root => None,
        None => {
            let transaction = root.and_then(TraceRoot::transaction_arc);
            Some(facts.head_dsc(span.trace_id, span.sampled, transaction))
        }
    };
    let meta = TraceMeta::with_page_dsc(span.trace_id, span.span_id, span.sampled, dsc)
        .traceparent(root.is_some_and(TraceRoot::writes_traceparent));
    (meta, problem)
}

/// The tags when no span is active: the continued trace with the caller's decision, or a new
/// trace whose decision is left to the browser.
fn without_span(facts: &ClientFacts, root: Option<&TraceRoot>) -> TraceMeta {
    let trace_id = root.map_or_else(TraceId::random, TraceRoot::trace_id);
    let span_id = root.map_or_else(SpanId::random, TraceRoot::span_id);
    let sampled = root.and_then(|root| root.incoming()?.sampled);
    let dsc = match root.and_then(TraceRoot::frozen_dsc) {
        Some(frozen) => PageDsc::Serialized(frozen.clone()),
        None => facts.head_dsc(trace_id, None, None),
    };
    TraceMeta::with_page_dsc(trace_id, span_id, sampled, Some(dsc))
        .traceparent(root.is_some_and(TraceRoot::writes_traceparent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_bytes_round_trip() {
        for _ in 0..100 {
            let trace = protocol::TraceId::default();
            let ours = TraceId::from(trace);
            assert_eq!(ours.to_string(), trace.to_string());
            assert_eq!(protocol::TraceId::from(ours), trace);
            let span = protocol::SpanId::default();
            assert_eq!(SpanId::from(span).to_string(), span.to_string());
        }
    }

    /// A head DSC from a template is byte for byte the one written whole, for every decision,
    /// transaction name and trace, also once the bounded set of templates starts replacing, and
    /// at the rates that cannot make one of the decisions.
    #[test]
    fn templated_head_equals_written_head() {
        for rate in [0.25, 1.0, 0.0] {
            templated_head_equals_written_head_at(rate);
        }
    }

    /// A rate of `-0.0`, which the SDK takes, is written `0`, as JavaScript writes it.
    #[test]
    fn a_negative_zero_rate_is_written_as_zero() {
        let options = sentry_core::ClientOptions::new()
            .dsn("https://abc@o1.ingest.sentry.io/2")
            .traces_sample_rate(-0.0);
        let facts = ClientFacts::new(&Client::from(options));
        let (baggage, _) = facts.head_baggage(TraceId::random(), Some(false), None);
        assert!(baggage.contains(",sentry-sample_rate=0,"), "{baggage}");
        let fixed = facts.fixed_rate.expect("a rate in [0, 1]");
        assert_eq!(fixed.rate.to_bits(), 0.0f64.to_bits());
        assert_eq!(&*fixed.member, "sentry-sample_rate=0");
    }

    /// A rate below 0.000001 is written in exponent form, as JavaScript writes it (`1e-7`, and
    /// `1e-45`, the least `f32`, rather than a decimal of 47 bytes), and reads back as the rate.
    #[test]
    fn a_tiny_rate_is_written_in_exponent_form() {
        for (rate, text) in [
            (1e-7, "1e-7"),
            (f32::from_bits(1), "1e-45"),
            (1e-6, "0.000001"),
        ] {
            let options = sentry_core::ClientOptions::new()
                .dsn("https://abc@o1.ingest.sentry.io/2")
                .traces_sample_rate(rate);
            let facts = ClientFacts::new(&Client::from(options));
            let fixed = facts.fixed_rate.expect("a rate in [0, 1]");
            assert_eq!(&*fixed.member, format!("sentry-sample_rate={text}"));
            assert_eq!(fixed.rate, text.parse::<f64>().unwrap());
        }
    }

    fn templated_head_equals_written_head_at(rate: f32) {
        let client = Client::from(
            sentry_core::ClientOptions::new()
                .dsn("https://a%22b@o42.ingest.sentry.io/7")
                .release("web@1.2.3 <beta>")
                .environment("prod & co")
                .traces_sample_rate(rate),
        );
        let facts = ClientFacts::new(&client);
        let mut names: Vec<Arc<str>> = vec!["GET /users/{id}".into(), "<\"é\">".into(), "".into()];
        names.extend((0..2 * MAX_TEMPLATES).map(|i| format!("GET /r{i}").into()));
        for round in 0..2 {
            for shared in &names {
                // A template is looked up by the name it was made with (pointers), then by an
                // equal copy (text), then by its own name again.
                let copy = Arc::from(&**shared);
                for source in [TransactionSource::Route, TransactionSource::Url] {
                    for (sampled, name) in [None, Some(true), Some(false)]
                        .into_iter()
                        .flat_map(|sampled| [shared, &copy, shared].map(|name| (sampled, name)))
                    {
                        let trace_id = TraceId::random();
                        let transaction = Some((name, source));
                        let templated = facts.head_dsc(trace_id, sampled, transaction);
                        let transaction = transaction.map(|(name, source)| (&**name, source));
                        let (whole, _) = facts.head_baggage(
                            trace_id,
                            sampled,
                            dsc_transaction(sampled, transaction),
                        );
                        let meta = TraceMeta::with_page_dsc(
                            trace_id,
                            SpanId::random(),
                            sampled,
                            Some(templated),
                        );
                        assert_eq!(
                            meta.baggage_header().as_deref(),
                            Some(&*whole),
                            "round {round}"
                        );
                        assert!(meta.to_html().contains(&format!("content=\"{whole}\"")));
                        assert_eq!(meta.html_len(), meta.to_html().len());
                        assert_eq!(
                            meta.dsc(),
                            Some(head_dsc(&client, trace_id, sampled, transaction))
                        );
                    }
                }
            }
        }
        assert_eq!(facts.templates.borrow().len(), MAX_TEMPLATES);
    }

    /// A client that samples every transaction and keeps its envelopes.
    fn traced_client() -> Arc<Client> {
        Arc::new(Client::from(
            sentry_core::ClientOptions::new()
                .dsn("https://abc@o42.ingest.sentry.io/7")
                .traces_sample_rate(1.0)
                .transport(sentry_core::test::TestTransport::new()),
        ))
    }

    /// Once a cache guard has withheld the tags, no page of the request takes any: neither the
    /// root's nor, in their place, the Hub's active span's. An envelope still gets the request's
    /// DSC, and the guard learns whether a page took tags inside the root before.
    #[test]
    fn withheld_tags_reach_no_page() {
        let client = traced_client();
        let hub = Arc::new(Hub::new(Some(client.clone()), Default::default()));
        Hub::run(hub, || {
            let transaction =
                sentry_core::start_transaction(TransactionContext::new("page", "http.server"));
            Hub::current()
                .configure_scope(|scope| scope.set_span(Some(transaction.clone().into())));
            // With the server span recorded the root writes the tags; without, the Hub's span.
            for recorded in [true, false] {
                for rendered_first in [true, false] {
                    let mut root = TraceRoot::new_trace();
                    if recorded {
                        root.set_server_span(&client, SpanId::random(), Some(true));
                    }
                    let root = Arc::new(root);
                    root.clone().sync_scope(|| {
                        if rendered_first {
                            assert!(TraceMeta::current().is_some());
                        }
                        assert_eq!(root.rendered(), rendered_first);
                        assert_eq!(root.withhold_tags(), rendered_first, "{recorded}");
                        assert!(TraceMeta::current().is_none(), "{recorded}");
                        assert!(TraceMeta::from_hub(&Hub::current()).is_none());
                        // A page that asked for the root's own tags counts, though it got none.
                        assert_eq!(root.rendered(), rendered_first || recorded);
                        let envelope = envelope_meta().expect("the envelope's DSC");
                        assert!(envelope.baggage_header().is_some(), "{recorded}");
                    });
                }
            }
            transaction.finish();
        });
    }

    /// A page and a cache guard racing on one root: a guard told that no page took the tags
    /// can rely on it, as no page got any, whether from the root or from the Hub.
    #[test]
    fn a_guard_told_no_page_took_the_tags_is_right() {
        let client = traced_client();
        for recorded in [true, false] {
            for round in 0..500 {
                let mut root = TraceRoot::new_trace();
                if recorded {
                    root.set_server_span(&client, SpanId::random(), Some(true));
                }
                let root = Arc::new(root);
                // Both threads spin rather than sleep, so that the guard's step lands at
                // every point of the first render's as the rounds go.
                let (ready, go) = (
                    Arc::new(AtomicBool::new(false)),
                    Arc::new(AtomicBool::new(false)),
                );
                let page = std::thread::spawn({
                    let (root, client) = (root.clone(), client.clone());
                    let (ready, go) = (ready.clone(), go.clone());
                    move || {
                        let hub = Arc::new(Hub::new(Some(client), Default::default()));
                        Hub::run(hub, || {
                            root.sync_scope(|| {
                                ready.store(true, Ordering::SeqCst);
                                while !go.load(Ordering::SeqCst) {
                                    std::hint::spin_loop();
                                }
                                (0..20).filter(|_| TraceMeta::current().is_some()).count()
                            })
                        })
                    }
                });
                while !ready.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                go.store(true, Ordering::SeqCst);
                for _ in 0..round * 2 {
                    std::hint::spin_loop();
                }
                let seen = root.withhold_tags();
                let taken = page.join().expect("the page renders");
                assert!(
                    seen || taken == 0,
                    "{recorded}, round {round}: {taken} taken"
                );
            }
        }
    }

    /// The Hub's tags for a page inside a root that does not know its server span, withheld
    /// while they were being made, are dropped: the guard was told that no page took them.
    #[test]
    fn tags_withheld_while_the_hub_makes_them_are_dropped() {
        let client = traced_client();
        let root = Arc::new(TraceRoot::new_trace());
        let hub = Arc::new(Hub::new(Some(client), Default::default()));
        Hub::run(hub, || {
            root.clone().sync_scope(|| {
                let mut seen = None;
                let meta = page_tags(|| {
                    let meta = from_scope(&Hub::current());
                    assert!(meta.is_some());
                    seen = Some(root.withhold_tags());
                    meta
                });
                assert_eq!(seen, Some(false));
                assert!(meta.is_none());
                assert!(TraceMeta::current().is_none());
            })
        });
    }

    /// An option too long for a `baggage` header on its own, or empty, is left out of the head
    /// DSC, which stays valid: no empty member in its place, nor `sentry-release=`.
    #[test]
    fn an_option_over_the_size_limit_or_empty_is_left_out() {
        let long = "r".repeat(9000);
        for (release, environment) in [(long.as_str(), long.as_str()), ("", "")] {
            let client = Client::from(
                sentry_core::ClientOptions::new()
                    .dsn("https://abc@o42.ingest.sentry.io/7")
                    .release(release.to_owned())
                    .environment(environment.to_owned())
                    .traces_sample_rate(1.0),
            );
            let (baggage, _) =
                ClientFacts::new(&client).head_baggage(TraceId::random(), Some(true), None);
            assert!(
                !baggage.contains(",,") && !baggage.ends_with(',') && !baggage.contains("=,"),
                "{baggage}"
            );
            let dsc = head_dsc(&client, TraceId::random(), Some(true), None);
            assert_eq!(dsc.get(DscKey::Release), None);
            assert_eq!(dsc.get(DscKey::Environment), None);
            assert_eq!(dsc.get(DscKey::PublicKey), Some("abc"));
            assert_eq!(dsc.get(DscKey::OrgId), Some("42"));
        }
    }
}
