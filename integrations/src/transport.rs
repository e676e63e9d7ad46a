//! [`DscTransport`]: the server's own envelopes carry the same Dynamic Sampling Context as its
//! pages.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sentry::transports::DefaultTransportFactory;
use sentry_core::protocol::{Context, EnvelopeItem, Map, TraceId as SdkTraceId};
use sentry_core::types::Uuid;
use sentry_core::{Envelope, Transport, TransportFactory, TransportOptions};
use sentry_meta_core::__private::members;
use sentry_meta_core::{SENTRY_PREFIX, TraceId, TraceMeta, TraceRoot};

#[cfg(feature = "opentelemetry")]
use crate::opentelemetry::OtelMeta;

/// A [`TransportFactory`] whose transports put the request's Dynamic Sampling Context into the
/// header of every envelope sent for the request.
///
/// Sentry's dynamic sampling judges a trace by the DSC in each envelope's header (`trace`). The
/// `sentry` crate (0.49) writes only part of it on a transaction (`trace_id`, `public_key`, its
/// own `sample_rate`, `sampled`), never the caller's frozen DSC, and its HTTP transport's rate
/// limiter then rebuilds every envelope without its headers. So the server's part of a trace
/// and the browser's part would be judged by different contexts.
///
/// With this factory, an envelope sent while a request is handled (its transaction, an error
/// captured in it) whose trace is the one the request's pages name gets, as its header's
/// `trace`, exactly the DSC those pages write: the frozen incoming DSC of a continued trace, or
/// the head DSC of a new one (see [`TraceMeta::current`]). It is handed on as a raw envelope,
/// which the transport sends whole. Every other envelope passes unchanged.
///
/// Opt in with one line in the client options: over the `sentry` crate's default HTTP
/// transport with [`DscTransport::new`], or over any other factory with [`DscTransport::wrap`].
/// Without it, the tower layer and the actix-web middleware log one `warn` (target
/// `sentry_meta`) in the process: at a request's transaction they start for a client with a DSN
/// while no `DscTransport` has made a transport. So does
/// [`DscSpanProcessor`](crate::opentelemetry::DscSpanProcessor), at the first span it starts for
/// such a client, while none given an [`OtelMeta`](crate::opentelemetry::OtelMeta) has.
///
/// ```
/// let options = sentry::ClientOptions::new()
///     .traces_sample_rate(1.0)
///     .transport(sentry_meta::DscTransport::new());
/// # drop(options);
/// ```
///
/// An event captured on the request's Hub after the request's root scope has ended carries it
/// too: the request's server transaction (of [`SentryMetaLayer`](crate::tower::SentryMetaLayer)
/// or the actix-web middleware) stays the Hub's span, and puts an event processor on the Hub
/// that names the request's root to the transport. That is an error a layer outside captures
/// from the response (`sentry-actix` does), and an event of a task run in a Hub made from the
/// request's (`task.bind_hub(Hub::new_from_top(Hub::current()))`), also after the response
/// (the processor names the event by its id: one that a `before_send` gives another id is left
/// as the SDK made it).
/// Work that a request spawns otherwise runs outside its trace root, as it runs outside its
/// Hub: run the task in both, `root.scope(task.bind_hub(hub))` with the root of
/// [`TraceRoot::current`], and the events it captures carry the request's DSC. For an event of
/// no request, the transport leaves the envelope as the SDK made it.
///
/// In an app traced with OpenTelemetry, whose spans `sentry-opentelemetry`'s
/// `SentrySpanProcessor` sends as Sentry transactions, there is no request root: give the
/// transport the pages' [`OtelMeta`](crate::opentelemetry::OtelMeta) with
/// [`opentelemetry`](Self::opentelemetry), and an envelope sent while an OpenTelemetry context
/// of its trace is current gets the DSC that
/// [`OtelMeta::meta`](crate::opentelemetry::OtelMeta::meta) writes for that context. The
/// processor sends a transaction when the request's span ends: wrap it in
/// [`DscSpanProcessor`](crate::opentelemetry::DscSpanProcessor), which makes the span's context
/// current then, and gives an event captured in a span the processor made no transaction of
/// (one OpenTelemetry did not sample, or one that has ended) that span's trace, so that it
/// gets the DSC of the span's pages too.
///
/// What it costs: one look-up of the request's tags per envelope sent inside a request (no
/// work per page), and one re-serialization of that envelope. Nothing is kept between
/// envelopes. A raw envelope is not split by the transport's rate limiter: while Sentry rate
/// limits transactions or errors, such envelopes are still sent and dropped by Sentry. Nor are
/// its items counted in the client reports of envelopes the transport drops.
#[derive(Clone)]
pub struct DscTransport<F = DefaultTransportFactory> {
    inner: F,
    #[cfg(feature = "opentelemetry")]
    otel: Option<OtelMeta>,
}

impl DscTransport {
    /// Over the `sentry` crate's default HTTP transport (the one it uses when
    /// `ClientOptions::transport` is not set).
    pub fn new() -> Self {
        Self::wrap(DefaultTransportFactory)
    }
}

impl Default for DscTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> std::fmt::Debug for DscTransport<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DscTransport").finish_non_exhaustive()
    }
}

impl<F> DscTransport<F> {
    /// Over the transports that `inner` makes.
    pub fn wrap(inner: F) -> Self {
        Self {
            inner,
            #[cfg(feature = "opentelemetry")]
            otel: None,
        }
    }

    /// Envelopes sent inside an OpenTelemetry context of their trace get the DSC that `meta`
    /// writes into that context's pages (see the [type docs](Self)).
    #[cfg(feature = "opentelemetry")]
    pub fn opentelemetry(mut self, meta: OtelMeta) -> Self {
        self.otel = Some(meta);
        self
    }
}

impl<F: TransportFactory> TransportFactory for DscTransport<F> {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        CHECKED.store(true, Ordering::Relaxed);
        #[cfg(feature = "opentelemetry")]
        if self.otel.is_some() {
            OTEL_CHECKED.store(true, Ordering::Relaxed);
        }
        Arc::new(WithDsc {
            inner: self.inner.create_transport_with_options(options),
            #[cfg(feature = "opentelemetry")]
            otel: self.otel.clone(),
        })
    }
}

/// Set once a [`DscTransport`] has made a transport, or [`check_in_use`] has warned that none
/// has: nothing is left to check.
static CHECKED: AtomicBool = AtomicBool::new(false);

/// Set once a [`DscTransport`] given an [`OtelMeta`] has made a transport, or
/// [`check_otel_in_use`] has warned that none has.
#[cfg(feature = "opentelemetry")]
static OTEL_CHECKED: AtomicBool = AtomicBool::new(false);

/// Warns, once in the process, when [`DscSpanProcessor`](crate::opentelemetry::DscSpanProcessor)
/// starts a span for the current Hub's client, which sends (it has a DSN), and no
/// [`DscTransport`] given the pages' [`OtelMeta`] has made a transport: the envelopes of
/// OpenTelemetry spans then disagree with their pages.
#[cfg(feature = "opentelemetry")]
pub(crate) fn check_otel_in_use() {
    if !OTEL_CHECKED.load(Ordering::Relaxed)
        && let Some(client) = sentry_core::Hub::current().client()
        && client.dsn().is_some()
        && !OTEL_CHECKED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            target: "sentry_meta",
            "sentry-meta: no Sentry client of this process sends through a \
             sentry_meta::DscTransport given the pages' OtelMeta, so the envelopes of \
             OpenTelemetry spans carry the SDK's partial Dynamic Sampling Context (their error \
             events none), not the one their pages write. Add \
             .transport(sentry_meta::DscTransport::new().opentelemetry(meta.clone())) to the \
             client options"
        );
    }
}

/// Warns, once in the process, when a layer starts a request's transaction for `client`, which
/// sends (it has a DSN), and no [`DscTransport`] has made a transport: the server's envelopes
/// then disagree with its pages.
#[cfg(feature = "tower")]
pub(crate) fn check_in_use(client: &sentry_core::Client) {
    if !CHECKED.load(Ordering::Relaxed)
        && client.dsn().is_some()
        && !CHECKED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            target: "sentry_meta",
            "sentry-meta: no Sentry client of this process sends through \
             sentry_meta::DscTransport, so the server's envelopes carry the SDK's partial Dynamic \
             Sampling Context, not the one its pages write, and Sentry's dynamic sampling may \
             judge the server's part of a trace by another context than the browser's. Add \
             .transport(sentry_meta::DscTransport::new()) (or DscTransport::wrap(your factory)) \
             to the client options"
        );
    }
}

/// The transport made by [`DscTransport`].
struct WithDsc {
    inner: Arc<dyn Transport>,
    #[cfg(feature = "opentelemetry")]
    otel: Option<OtelMeta>,
}

impl WithDsc {
    /// The `baggage` of the pages of the envelope's request (see [`request_baggage`]), or of the
    /// current OpenTelemetry context, when they name trace `trace_id`.
    fn baggage(&self, envelope: &Envelope, trace_id: SdkTraceId) -> Option<String> {
        let baggage = request_baggage(envelope, trace_id);
        #[cfg(feature = "opentelemetry")]
        let baggage = baggage.or_else(|| {
            let meta = self
                .otel
                .as_ref()?
                .trace_meta(&opentelemetry::Context::current())?;
            same_trace(&meta, trace_id)
        });
        baggage
    }
}

impl Transport for WithDsc {
    fn send_envelope(&self, envelope: Envelope) {
        // The SDK sends synchronously from the code that finishes the transaction or captures
        // the event: the request's trace root is the current one here, or the one its Hub's
        // event processor has just noted.
        let baggage = trace_id(&envelope).and_then(|trace_id| self.baggage(&envelope, trace_id));
        let raw = baggage.and_then(|baggage| with_trace_header(&envelope, &baggage));
        self.inner.send_envelope(raw.unwrap_or(envelope));
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown(timeout)
    }
}

/// The trace of the envelope's transaction or event.
fn trace_id(envelope: &Envelope) -> Option<SdkTraceId> {
    envelope.items().find_map(|item| match item {
        EnvelopeItem::Transaction(transaction) => trace_of(&transaction.contexts),
        EnvelopeItem::Event(event) => trace_of(&event.contexts),
        _ => None,
    })
}

/// The trace of an event or transaction with these `contexts`, as its scope gave it.
pub(crate) fn trace_of(contexts: &Map<String, Context>) -> Option<SdkTraceId> {
    match contexts.get("trace") {
        Some(Context::Trace(trace)) => Some(trace.trace_id),
        _ => None,
    }
}

/// The `baggage` that the pages of the envelope's request write, when they name trace
/// `trace_id`: the one rule for pages and envelopes ([`TraceMeta::current`]). The request is
/// the one whose [`TraceRoot`] scope is current, else the one whose Hub captured the
/// envelope's event ([`capturing`]). `None` for neither: envelopes sent elsewhere are the SDK's
/// business.
fn request_baggage(envelope: &Envelope, trace_id: SdkTraceId) -> Option<String> {
    let envelope_meta = sentry_meta_core::__private::envelope_meta;
    let meta = match TraceRoot::current() {
        Some(_) => envelope_meta(),
        None => captured_in(envelope)?.sync_scope(envelope_meta),
    };
    same_trace(&meta?, trace_id)
}

thread_local! {
    /// The event this thread is capturing inside a request's Hub, and that request's root: noted
    /// by the event processor of the request's transaction ([`capturing`]), taken by the
    /// transport, which the SDK calls next on the same thread with the event's envelope. It
    /// reaches the root where no scope of it is current: `sentry-actix` captures a server error
    /// after the middleware inside it has answered.
    static CAPTURING: RefCell<Option<(Uuid, Weak<TraceRoot>)>> = const { RefCell::new(None) };
}

/// Notes that event `event_id`, which this thread is capturing, belongs to the request of
/// `root`. Called by the event processor that the request's transaction puts on its Hub.
#[cfg(feature = "tower")]
pub(crate) fn capturing(event_id: Uuid, root: &Arc<TraceRoot>) {
    CAPTURING.with(|noted| *noted.borrow_mut() = Some((event_id, Arc::downgrade(root))));
}

/// The root of the request whose Hub captured the envelope's event, if [`capturing`] noted it
/// (and the root is still alive).
fn captured_in(envelope: &Envelope) -> Option<Arc<TraceRoot>> {
    let event_id = envelope.uuid()?;
    let noted = CAPTURING.with(|noted| noted.borrow_mut().take_if(|(id, _)| id == event_id));
    noted?.1.upgrade()
}

/// The `baggage` of `meta` if it is of trace `trace_id`.
fn same_trace(meta: &TraceMeta, trace_id: SdkTraceId) -> Option<String> {
    (meta.sentry_trace().trace_id == TraceId::from(trace_id))
        .then(|| meta.baggage_header().map(String::from))
        .flatten()
}

/// The envelope as raw bytes whose header's `trace` is the DSC of `baggage` (a canonical
/// `baggage` of `sentry-*` members; every value a string, as the browser SDK sends it); `None`
/// if it cannot be re-serialized.
fn with_trace_header(envelope: &Envelope, baggage: &str) -> Option<Envelope> {
    let mut header = serde_json::to_value(envelope.headers()).ok()?;
    let object = header.as_object_mut()?;
    let dsc = members(baggage.as_bytes()).filter_map(|member| {
        let (key, value) = member.decode()?;
        let key = key.strip_prefix(SENTRY_PREFIX)?.to_owned();
        Some((key, serde_json::Value::from(value.into_owned())))
    });
    object.insert("trace".into(), serde_json::Value::Object(dsc.collect()));
    let mut raw = serde_json::to_vec(&header).ok()?;
    // The items, as the envelope writes them after its own header line.
    let mut whole = Vec::with_capacity(4096);
    envelope.to_writer(&mut whole).ok()?;
    let items = whole.iter().position(|&b| b == b'\n')?;
    raw.extend_from_slice(&whole[items..]);
    Envelope::from_bytes_raw(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry_core::protocol::Event;

    #[test]
    fn rewrites_only_the_header() {
        let mut event = Event::new();
        event
            .contexts
            .insert("trace".into(), Context::Trace(Box::default()));
        let mut envelope = Envelope::new();
        envelope.add_item(event);
        let raw = with_trace_header(&envelope, "sentry-release=a%22b,sentry-x=1,other=2")
            .expect("re-serialized");
        let (mut original, mut rewritten) = (Vec::new(), Vec::new());
        envelope.to_writer(&mut original).expect("written");
        raw.to_writer(&mut rewritten).expect("written");
        let split = |bytes: &[u8]| {
            let at = bytes
                .iter()
                .position(|&b| b == b'\n')
                .expect("a header line");
            (bytes[..at].to_vec(), bytes[at..].to_vec())
        };
        let (header, items) = split(&rewritten);
        assert_eq!(items, split(&original).1);
        let header: serde_json::Value = serde_json::from_slice(&header).expect("JSON");
        assert_eq!(
            header["trace"],
            serde_json::json!({"release": "a\"b", "x": "1"})
        );
        assert_eq!(header["event_id"], split_event_id(&original));
        assert!(trace_id(&envelope).is_some());
    }

    fn split_event_id(envelope: &[u8]) -> serde_json::Value {
        let at = envelope
            .iter()
            .position(|&b| b == b'\n')
            .expect("a header line");
        let header: serde_json::Value = serde_json::from_slice(&envelope[..at]).expect("JSON");
        header["event_id"].clone()
    }
}
