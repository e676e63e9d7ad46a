//! OpenTelemetry: the tags of the active OpenTelemetry span, for apps traced with the
//! `opentelemetry` API (directly, or through `tracing` + `tracing-opentelemetry`) rather than
//! the `sentry` crate's spans.
//!
//! There is no Sentry Hub span to read in such an app, and no Sentry client whose options make
//! the head of the Dynamic Sampling Context, so [`OtelMeta`] is given them: the project's DSN
//! (its public key and org id), release, environment and sample rate. It does two things:
//!
//! - [`OtelMeta::propagator`]: a [`TextMapPropagator`] that continues a caller's Sentry trace by
//!   the same rule as the rest of this crate ([`Continuation::decide`]): the caller's
//!   `sentry-trace` becomes the remote parent of the request's span, and the `sentry-*` members
//!   of its `baggage`, frozen, travel in the [`Context`] to the pages (and to outgoing calls,
//!   which it injects `sentry-trace` and `baggage` into). Compose it with OpenTelemetry's own
//!   (`TraceContextPropagator` for `traceparent`, `BaggagePropagator`) in a
//!   `TextMapCompositePropagator`; put it last, so that a caller's Sentry trace wins and the
//!   `baggage` it injects carries both the DSC and the OpenTelemetry baggage. Extract from an
//!   HTTP request's headers with [`RequestHeaders`], which gives it every value of a header.
//! - [`OtelMeta::meta`]: the tags of a context's span, with the frozen DSC when the span is of
//!   the caller's trace, or else a head DSC made from the options (with the `sample_rand` of the
//!   trace id, as the rest of this crate makes it); `traceparent` too when asked for, which
//!   OpenTelemetry's browser `document-load` instrumentation reads (it reads no `tracestate`,
//!   so none is written).
//!
//! It uses the `opentelemetry` 0.32 API, the version `sentry-opentelemetry` 0.49 uses, so both
//! can live in one app, `SentrySpanProcessor` sending the spans to Sentry as transactions. Then
//! give the client's transport the same options,
//! `.transport(DscTransport::new().opentelemetry(meta.clone()))`
//! ([`DscTransport::opentelemetry`](crate::DscTransport::opentelemetry)), and wrap the processor
//! in a [`DscSpanProcessor`]: the transaction's envelope carries the DSC its pages wrote,
//! however the request's span ends. The propagator (and `DscSpanProcessor` again, as the span
//! starts) also hands the caller, a Sentry one or a W3C one, to `SentrySpanProcessor`, so the
//! transaction has the caller's span as its parent, as the OpenTelemetry span has. With the
//! `tracing-opentelemetry` feature,
//! [`OtelMeta::of_tracing_span`] reads the OpenTelemetry context of a `tracing` span
//! (`tracing-opentelemetry` 0.33).
//!
//! ```
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
//! use opentelemetry::Context;
//! use sentry_meta::opentelemetry::OtelMeta;
//! use std::collections::HashMap;
//!
//! let meta = OtelMeta::from_dsn("https://abc@o42.ingest.sentry.io/7")?
//!     .release("web@1.2.3")
//!     .environment("production")
//!     .traces_sample_rate(1.0);
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
//! let tracer = provider.tracer("web");
//!
//! // Per request: the caller's headers (here a browser's Sentry SDK; in a server,
//! // `RequestHeaders::new(request.headers())`), then the server span.
//! let headers = HashMap::from([
//!     ("sentry-trace".to_owned(), "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1".to_owned()),
//!     ("baggage".to_owned(), "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc".to_owned()),
//! ]);
//! let parent = meta.propagator().extract(&headers);
//! let span = tracer.start_with_context("GET /", &parent);
//! let cx = parent.with_span(span);
//!
//! let head = meta.meta(&cx).to_string();
//! assert!(head.contains(r#"<meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-"#));
//! // The caller's DSC, frozen (with the `sample_rand` it lacked), not this app's.
//! assert!(head.contains(r#"content="sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,sentry-sample_rand="#));
//! # Ok::<(), sentry_meta::opentelemetry::DsnError>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sentry_meta_core::{
    Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext, IncomingTrace,
    MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, SENTRY_PREFIX, SampleRand, SerializedDsc, SpanId,
    TraceId, TraceMeta,
};

use crate::SentryMeta;

/// The headers [`SentryMetaPropagator`] reads and writes.
static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| ["sentry-trace".to_owned(), "baggage".to_owned()]);

/// What pages of an OpenTelemetry-traced app need to know to write their tags: the project's
/// Sentry facts for a head DSC, and the continuation rule. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OtelMeta {
    inner: Arc<Options>,
}

#[derive(Debug, Clone, Default)]
struct Options {
    public_key: Option<String>,
    release: Option<String>,
    environment: Option<String>,
    sample_rate: Option<f64>,
    policy: ContinuationPolicy,
    traceparent: bool,
}

/// A DSN that is not one: what [`OtelMeta::from_dsn`] rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError(String);

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Sentry DSN: {}", self.0)
    }
}

impl std::error::Error for DsnError {}

impl OtelMeta {
    /// No Sentry facts: pages of a new trace get a DSC with the trace id and `sample_rand` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The facts of a DSN: its public key, and the org id in its host (`o42.ingest.sentry.io`),
    /// which only callers of the same organization may continue traces of.
    pub fn from_dsn(dsn: &str) -> Result<Self, DsnError> {
        let parsed: sentry_types::Dsn = dsn.parse().map_err(|e| DsnError(format!("{e}")))?;
        let mut meta = Self::new().public_key(parsed.public_key());
        if let Some(org_id) = parsed.org_id() {
            meta = meta.org_id(org_id.to_string());
        }
        Ok(meta)
    }

    fn options(&mut self) -> &mut Options {
        Arc::make_mut(&mut self.inner)
    }

    /// The project's public key (`sentry-public_key`).
    pub fn public_key(mut self, key: impl Into<String>) -> Self {
        self.options().public_key = Some(key.into());
        self
    }

    /// The organization id (`sentry-org_id`), and the one that callers must match to be
    /// continued (see [`ContinuationPolicy`]).
    pub fn org_id(mut self, org_id: impl Into<String>) -> Self {
        let options = self.options();
        options.policy = std::mem::take(&mut options.policy).org_id(org_id);
        self
    }

    /// The release (`sentry-release`).
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.options().release = Some(release.into());
        self
    }

    /// The environment (`sentry-environment`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.options().environment = Some(environment.into());
        self
    }

    /// The rate the app's sampler keeps traces at (`sentry-sample_rate`); a value outside
    /// `[0, 1]` is not written.
    pub fn traces_sample_rate(mut self, rate: f64) -> Self {
        self.options().sample_rate = Some(rate).filter(|rate| (0.0..=1.0).contains(rate));
        self
    }

    /// Whether callers without an org id are started a new trace when the app has one (Sentry's
    /// `strict_trace_continuation`).
    pub fn strict_trace_continuation(mut self, strict: bool) -> Self {
        let options = self.options();
        options.policy = std::mem::take(&mut options.policy).strict_trace_continuation(strict);
        self
    }

    /// Whether pages also get a W3C `traceparent` tag.
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.options().traceparent = enabled;
        self
    }

    /// The propagator that continues callers' Sentry traces with these options.
    pub fn propagator(&self) -> SentryMetaPropagator {
        SentryMetaPropagator { meta: self.clone() }
    }

    /// The tags of `cx`'s span: nothing when it has no valid span.
    pub fn meta(&self, cx: &Context) -> SentryMeta {
        SentryMeta::from(self.trace_meta(cx))
    }

    /// The tags of the current OpenTelemetry context's span.
    pub fn current(&self) -> SentryMeta {
        self.meta(&Context::current())
    }

    /// The tags of a `tracing` span, through the OpenTelemetry context that
    /// `tracing-opentelemetry` keeps for it.
    #[cfg(feature = "tracing-opentelemetry")]
    pub fn of_tracing_span(&self, span: &tracing::Span) -> SentryMeta {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        self.meta(&span.context())
    }

    /// The tags of `cx`'s span, the one answer of pages, [`SentryMetaPropagator::inject_context`]
    /// and [`DscTransport::opentelemetry`](crate::DscTransport::opentelemetry).
    pub(crate) fn trace_meta(&self, cx: &Context) -> Option<TraceMeta> {
        let span = cx.span();
        let span = span.span_context();
        if !span.is_valid() {
            return None;
        }
        let trace_id = TraceId::from_bytes(span.trace_id().to_bytes());
        let span_id = SpanId::from_bytes(span.span_id().to_bytes());
        let sampled = span.is_sampled();
        let dsc = match cx.get::<Incoming>() {
            // The caller's frozen DSC belongs to the caller's trace only.
            Some(incoming) if incoming.trace_id == trace_id => incoming.dsc.clone(),
            _ => SerializedDsc::new(self.head_dsc(trace_id, sampled)),
        };
        let meta = TraceMeta::new(trace_id, span_id, Some(sampled), Some(dsc));
        Some(meta.traceparent(self.inner.traceparent))
    }

    /// Whether this app samples a caller's trace: the caller's decision, or, when it left the
    /// decision to this app, as a Sentry SDK decides: by the trace's `sample_rand` (frozen, or
    /// filled in from the trace id) against this app's rate, which the frozen DSC then states
    /// ([`IncomingTrace::decide_at`]); without a rate, always, as at rate 1, which the frozen
    /// DSC then states in place of the caller's (that decided nothing).
    /// OpenTelemetry has no undecided parent, and its default sampler would drop the span of a
    /// parent not flagged sampled.
    fn samples(&self, incoming: &mut IncomingTrace) -> bool {
        incoming.decide_at(self.inner.sample_rate.unwrap_or(1.0))
    }

    /// The DSC of a trace that starts here.
    fn head_dsc(&self, trace_id: TraceId, sampled: bool) -> DynamicSamplingContext {
        let options = &self.inner;
        let mut dsc = DynamicSamplingContext::new();
        dsc.set_trace_id(trace_id);
        let members = [
            (DscKey::PublicKey, options.public_key.as_deref()),
            (DscKey::Release, options.release.as_deref()),
            (DscKey::Environment, options.environment.as_deref()),
            (DscKey::OrgId, options.policy.org()),
        ];
        for (key, value) in members {
            // A missing value (empty) sets nothing.
            dsc.set(key, value.unwrap_or_default());
        }
        dsc.set_sampled(sampled);
        // The rate, when it could have made the span's decision (OpenTelemetry's sampler made
        // it): a `sample_rand` then agrees with both.
        let rand = options.sample_rate.and_then(|rate| {
            let sample_rand = SampleRand::agreeing(trace_id, rate, sampled)?;
            dsc.set_sample_rate(rate);
            Some(sample_rand)
        });
        dsc.set_sample_rand(rand.unwrap_or_else(|| SampleRand::from_trace_id(trace_id, None)));
        dsc
    }
}

/// `cx`, with its remote parent (the caller's span, from its `sentry-trace` or its
/// `traceparent`) also as `sentry-opentelemetry`'s `SentrySpanProcessor` reads it from the
/// context (see [`sentry_parent`]), so that the Sentry transaction it makes of the request's
/// span has the caller's span as its parent and the decision made here, as the OpenTelemetry
/// span has. [`DscSpanProcessor`] hands it again when the span starts, with the span's own
/// decision and the client bound then.
fn with_sentry_parent(cx: Context) -> Context {
    #[cfg(feature = "sentry")]
    if let Some(parent) = sentry_parent(cx.span().span_context(), None) {
        return cx.with_value(parent);
    }
    cx
}

/// The remote `parent` as `SentrySpanProcessor` reads it, with decision `sampled` (else the
/// parent's flag); `None` for a parent that is not remote, or not valid.
///
/// `sentry-core` checks the caller's organization again when the transaction starts, by the
/// options of the client bound then (its org id and `strict_trace_continuation`), which need
/// not be [`OtelMeta`]'s. This propagator has made the one decision, so the parent names the
/// organization that passes that check, the bound client's own (none when it has none): else
/// the server's transaction would start a second, different trace from its pages'.
#[cfg(feature = "sentry")]
fn sentry_parent(
    parent: &SpanContext,
    sampled: Option<bool>,
) -> Option<sentry_core::TracePropagationContext> {
    if !parent.is_remote() || !parent.is_valid() {
        return None;
    }
    let trace_id = TraceId::from_bytes(parent.trace_id().to_bytes());
    let span_id = SpanId::from_bytes(parent.span_id().to_bytes());
    let sampled = sampled.unwrap_or(parent.is_sampled());
    let sentry_trace = sentry_meta_core::SentryTrace::new(trace_id, span_id, Some(sampled));
    let sentry_trace = sentry_trace.to_string();
    let client = sentry_core::Hub::current().client();
    let policy = client.map(|client| ContinuationPolicy::from_client(&client));
    let org_id = policy.as_ref().and_then(ContinuationPolicy::org);
    let baggage = org_id.map(|org| format!("sentry-org_id={org}"));
    let headers = std::iter::once(("sentry-trace", sentry_trace.as_str()))
        .chain(baggage.as_deref().map(|baggage| ("baggage", baggage)));
    sentry_core::TracePropagationContext::try_from_headers(headers).ok()
}

/// `cx` without the remote parent that another propagator (`TraceContextPropagator`, from the
/// caller's `traceparent`) extracted for a caller refused for its organization: such a caller is
/// never continued, whichever header it sent. Its baggage stays; other values of `cx` go with
/// the span (a context cannot drop its span alone).
fn without_remote_parent(cx: &Context) -> Context {
    if cx.span().span_context().is_remote() {
        use opentelemetry::baggage::{Baggage, BaggageExt};
        let baggage: Baggage = cx
            .baggage()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Context::new().with_baggage(baggage)
    } else {
        cx.clone()
    }
}

/// The bytes OpenTelemetry's `BaggagePropagator` percent-encodes in a member's name and value,
/// and `%`, which it writes as it is: a reader decodes what follows a `%`, so a name written
/// with one would read as another (`%73entry-sampled` as `sentry-sampled`, a DSC member).
const OTEL_BAGGAGE_ENCODED: &AsciiSet = &METADATA_ENCODED.add(b' ').add(b'"').add(b';').add(b'=');

/// What is encoded in a member's metadata, which `BaggagePropagator` decodes when it extracts
/// it and writes as it is: a `,` would start members of its own (say `sentry-sampled=false`), a
/// control character would make the header no valid header value, and a `%` would be decoded
/// once more by the next service.
const METADATA_ENCODED: &AsciiSet = &CONTROLS.add(b'%').add(b',');

/// Appends the OpenTelemetry baggage of `cx` to the `sentry-*` members in `header`, written as
/// `BaggagePropagator` writes it, and so that every name, value and metadata reads back as it is
/// (an injector keeps the last `baggage` set, so the two propagators' members go out together
/// only if one writes both). Members named `sentry-*` are the DSC's, which `header` holds
/// already; a member that would pass the W3C limits (8,192 bytes, 64 members) is left out whole.
fn append_otel_baggage(header: &mut String, cx: &Context) {
    use opentelemetry::baggage::BaggageExt;
    use std::fmt::Write;
    let mut members = header
        .split(',')
        .filter(|member| !member.is_empty())
        .count();
    for (name, (value, metadata)) in cx.baggage() {
        let name = name.as_str().trim();
        // Also as a reader that strips control characters or a byte order mark first reads it.
        let read = name.trim_start_matches(|c: char| c.is_control() || c == '\u{feff}');
        if name.is_empty() || read.starts_with(SENTRY_PREFIX) || members == MAX_BAGGAGE_MEMBERS {
            continue;
        }
        let mark = header.len();
        if !header.is_empty() {
            header.push(',');
        }
        let metadata = metadata.as_str().trim();
        let _ = write!(
            header,
            "{}={}{}{}",
            utf8_percent_encode(name, OTEL_BAGGAGE_ENCODED),
            utf8_percent_encode(value.as_str().trim(), OTEL_BAGGAGE_ENCODED),
            if metadata.is_empty() { "" } else { ";" },
            utf8_percent_encode(metadata, METADATA_ENCODED),
        );
        if header.len() > MAX_BAGGAGE_BYTES {
            header.truncate(mark);
        } else {
            members += 1;
        }
    }
}

/// An HTTP request's headers as [`SentryMetaPropagator`] (and the propagators composed with it)
/// should read them: every value of a header, as text, which a header value need not be.
///
/// - A `baggage` value keeps its members that are text (UTF-8): a bad member is dropped alone,
///   as [`SentryMetaLayer`](crate::tower::SentryMetaLayer) drops it.
/// - Any other value that is not visible ASCII is read as an empty one, which no header's
///   grammar accepts. Left out, as `opentelemetry-http`'s `HeaderExtractor` leaves it out, it
///   would make a valid `sentry-trace` and a bad one look like one valid value, where the
///   tower layer sees two and starts a new trace.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use sentry_meta::opentelemetry::{OtelMeta, RequestHeaders};
///
/// let valid = "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
/// let mut headers = HeaderMap::new();
/// headers.append("sentry-trace", valid.parse()?);
/// let propagator = OtelMeta::new().propagator();
/// let cx = propagator.extract(&RequestHeaders::new(&headers));
/// assert!(cx.span().span_context().is_remote());
///
/// // A second value, even one that is not text, is a second value: a new trace.
/// headers.append("sentry-trace", http::HeaderValue::from_bytes(b"\xff")?);
/// let cx = propagator.extract(&RequestHeaders::new(&headers));
/// assert!(!cx.span().span_context().is_valid());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RequestHeaders<'a> {
    headers: &'a http::HeaderMap,
    /// Every `baggage` value, with its members that are not text left out.
    baggage: Vec<String>,
}

impl<'a> RequestHeaders<'a> {
    /// The propagators' view of `headers`.
    pub fn new(headers: &'a http::HeaderMap) -> Self {
        let baggage = headers
            .get_all(BAGGAGE)
            .iter()
            .map(|value| {
                let members = value.as_bytes().split(|&b| b == b',');
                let text = members.filter_map(|member| std::str::from_utf8(member).ok());
                text.collect::<Vec<_>>().join(",")
            })
            .collect();
        Self { headers, baggage }
    }
}

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(BAGGAGE) {
            return self.baggage.first().map(String::as_str);
        }
        Some(header_text(self.headers.get(key)?))
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = if key.eq_ignore_ascii_case(BAGGAGE) {
            self.baggage.iter().map(String::as_str).collect()
        } else {
            self.headers.get_all(key).iter().map(header_text).collect()
        };
        (!values.is_empty()).then_some(values)
    }
}

/// A header value as text: empty when it is not visible ASCII (see [`RequestHeaders`]).
fn header_text(value: &http::HeaderValue) -> &str {
    value.to_str().unwrap_or_default()
}

/// A [`SpanProcessor`] around another, `sentry-opentelemetry`'s `SentrySpanProcessor`, that
/// makes the context each transaction's span started in current again while `inner` ends the
/// span (and sends its transaction): the envelope then gets, through
/// [`DscTransport::opentelemetry`](crate::DscTransport::opentelemetry), the DSC that the
/// span's pages wrote, however the span ends. A `tracing` span, say, ends when
/// `tracing-opentelemetry` closes it, after it has been exited, in no context of its own.
///
/// It passes every sampled span and every other call on to `inner` unchanged, and keeps each
/// span's context from its start to its end (`SentrySpanProcessor` makes a transaction of any
/// span whose parent it does not hold, say one that outlived its parent). A span that
/// OpenTelemetry records without sampling it (a sampler's `RecordOnly`) is not passed on:
/// `SentrySpanProcessor` would make a transaction of it, which the client, sampling at 1.0,
/// would send, while its pages say "not sampled".
///
/// With the `sentry` feature, [`new`](Self::new) also adds an event processor to the current
/// Hub's scope, as `SentrySpanProcessor::new` does (also while no client is bound to it yet,
/// where `SentrySpanProcessor::new` adds none): an event captured in an OpenTelemetry span
/// that `SentrySpanProcessor` holds no Sentry span of (one OpenTelemetry did not sample, or one
/// that has ended) gets that span's trace and id, as
/// `@sentry/node` gives it, where it would keep the Hub's fallback trace, one for every such event
/// of the process; its envelope then carries the DSC of the span's pages. And it logs one `warn`
/// (target `sentry_meta`) in the process when the Sentry client of the Hub current at its first
/// span samples at a fixed `traces_sample_rate` below 1.0: `SentrySpanProcessor` has that
/// client decide again at the head of each trace, so some pages that say "sampled" would name
/// a transaction that is never sent. It also logs one `warn` at the first span it starts for a
/// client with a DSN while no [`DscTransport`](crate::DscTransport) given an [`OtelMeta`] has
/// made a transport: the envelopes would carry the SDK's partial DSC.
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use sentry_meta::opentelemetry::DscSpanProcessor;
/// use sentry_opentelemetry::SentrySpanProcessor;
///
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(DscSpanProcessor::new(SentrySpanProcessor::new()))
///     .build();
/// # drop(provider);
/// ```
#[derive(Debug)]
pub struct DscSpanProcessor<P> {
    inner: P,
    /// The contexts of the spans that have started and not yet ended.
    started: Mutex<HashMap<OtelSpanId, Context>>,
}

impl<P> DscSpanProcessor<P> {
    /// Around `inner`; with the `sentry` feature, also the event processor described above, in
    /// the current Hub's scope.
    pub fn new(inner: P) -> Self {
        // The current Hub's, also before a client is bound to it (`sentry::init` after the
        // tracer provider is built): `sentry_core::configure_scope` would skip a Hub without one.
        #[cfg(feature = "sentry")]
        sentry_core::Hub::current().configure_scope(|scope| {
            // The scope's fallback trace, which every event captured outside a Sentry span gets
            // (the scopes made from this one too): the one trace the processor moves events from.
            let fallback = scope
                .iter_trace_propagation_headers()
                .find_map(|(_, value)| {
                    value
                        .get(..32)?
                        .parse::<sentry_core::protocol::TraceId>()
                        .ok()
                });
            scope.add_event_processor(move |event| Some(in_current_span(event, fallback)));
        });
        Self {
            inner,
            started: Mutex::default(),
        }
    }

    fn started(&self) -> MutexGuard<'_, HashMap<OtelSpanId, Context>> {
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: SpanProcessor> SpanProcessor for DscSpanProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        use opentelemetry::trace::Span as _;
        #[cfg(feature = "sentry")]
        {
            check_client_rate();
            crate::transport::check_otel_in_use();
        }
        // A span OpenTelemetry records but did not sample (a `RecordOnly` sampler's) is no
        // transaction: `SentrySpanProcessor` would make one of any span it is given.
        if !span.span_context().is_sampled() {
            return;
        }
        // The caller, handed again as the span starts: with the span's own decision, and the
        // client that will start the transaction (sampled: an unsampled span returned above).
        #[cfg(feature = "sentry")]
        let cx = &sentry_parent(cx.span().span_context(), Some(true))
            .map_or_else(|| cx.clone(), |parent| cx.with_value(parent));
        self.inner.on_start(span, cx);
        // The span's context as its pages see it: the span, and a caller's frozen DSC.
        let cx = cx.with_remote_span_context(span.span_context().clone());
        self.started().insert(span.span_context().span_id(), cx);
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let cx = self.started().remove(&span.span_context.span_id());
        let _current = cx.map(Context::attach);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// `event`, moved to the trace of the current OpenTelemetry span when it is in `fallback`, its
/// scope's fallback trace (see [`DscSpanProcessor`]). An event of a span that
/// `SentrySpanProcessor` holds (its own event processor, which runs first, has named that
/// span's trace), of a Sentry span, or whose trace was set, keeps its trace.
#[cfg(feature = "sentry")]
fn in_current_span(
    mut event: sentry_core::protocol::Event<'static>,
    fallback: Option<sentry_core::protocol::TraceId>,
) -> sentry_core::protocol::Event<'static> {
    use sentry_core::protocol::TraceContext;
    let in_fallback =
        crate::transport::trace_of(&event.contexts).is_none_or(|id| Some(id) == fallback);
    let cx = Context::current();
    let span = cx.span();
    let span = span.span_context();
    if in_fallback && span.is_valid() {
        let trace = TraceContext {
            trace_id: span.trace_id().to_bytes().into(),
            span_id: span.span_id().to_bytes().into(),
            ..TraceContext::default()
        };
        event.contexts.insert("trace".into(), trace.into());
    }
    event
}

/// Warns, once in the process, when the current Hub's Sentry client samples at a fixed rate
/// below 1: `SentrySpanProcessor` has the client decide again for each span that OpenTelemetry
/// sampled at the head of a trace, so the transactions of some pages that say "sampled" are
/// never sent. Checked at the first span started with a client bound.
#[cfg(feature = "sentry")]
fn check_client_rate() {
    use sentry_core::{Hub, TracesSamplingStrategy};
    use std::sync::atomic::{AtomicBool, Ordering};

    static CHECKED: AtomicBool = AtomicBool::new(false);
    if !CHECKED.load(Ordering::Relaxed)
        && let Some(client) = Hub::current().client()
        && !CHECKED.swap(true, Ordering::Relaxed)
        && let TracesSamplingStrategy::FixedRate(rate) = client.options().traces_sampling_strategy
        && rate < 1.0
    {
        tracing::warn!(
            target: "sentry_meta",
            rate,
            "sentry-meta: the Sentry client samples at traces_sample_rate below 1.0, so \
             SentrySpanProcessor drops some of the spans that OpenTelemetry's sampler kept at \
             the head of a trace, and their pages name transactions that are never sent. Give \
             the Sentry client traces_sample_rate(1.0) and sample with OpenTelemetry's sampler"
        );
    }
}

/// The `baggage` header's name.
const BAGGAGE: &str = "baggage";

/// A caller's trace that the propagator continued: its frozen DSC, for pages of its trace.
struct Incoming {
    trace_id: TraceId,
    dsc: SerializedDsc,
}

/// A [`TextMapPropagator`] for Sentry's `sentry-trace` and `baggage` headers, made by
/// [`OtelMeta::propagator`].
///
/// Extracting decides by [`Continuation::decide`] whether to continue the caller's trace (a
/// valid `sentry-trace` with a span id and ids that are not all zeros, which OpenTelemetry
/// needs of a parent, of the same organization, read from the one
/// `sentry-trace` value (several are one malformed value: see "Several `sentry-trace` values"
/// in `docs/design.md`) and every `baggage` value);
/// when it does, the context gets the caller's span as its remote parent and the caller's frozen
/// DSC (and the caller's W3C `tracestate`, when OpenTelemetry's propagator extracted one for the
/// same trace), and, with the `sentry` feature, the caller's trace as `sentry-opentelemetry`'s
/// `SentrySpanProcessor` reads it, so that the Sentry transaction it makes of the request's span
/// has the same parent. That holds for a W3C caller too, whose parent only another propagator
/// extracted.
///
/// - A caller that left the sampling decision open (`sentry-trace` without its flag) is
///   decided here, as a Sentry SDK decides it: sampled when the trace's `sample_rand` is below
///   [`OtelMeta::traces_sample_rate`] (always without a rate, as at rate 1, which the frozen
///   DSC then states in place of the caller's `sample_rate`). OpenTelemetry has no undecided
///   parent: its default sampler would drop the span of a parent not flagged sampled.
/// - It sees the values the [`Extractor`] gives: extract from an HTTP request's headers with
///   [`RequestHeaders`], which gives every value. One that leaves out the values that are not
///   text, as `opentelemetry-http`'s `HeaderExtractor` does, makes a valid `sentry-trace` and a
///   bad one look like one valid value, where the tower layer starts a new trace.
/// - A caller it refuses for its organization (by the `sentry-org_id` of its baggage, see
///   [`ContinuationPolicy::refusal`]) loses the remote parent that a propagator before it
///   (`TraceContextPropagator`, from the caller's `traceparent`) extracted: the request starts
///   a new trace, whichever header the caller sent, also without a valid `sentry-trace`.
/// - With `sentry-opentelemetry`, OpenTelemetry's sampler decides which spans become
///   transactions: give the Sentry client `traces_sample_rate(1.0)`, so that it keeps each span
///   OpenTelemetry keeps and the pages' flag is the transaction's. [`DscSpanProcessor`] logs
///   one `warn` when the client bound at its first span samples at a lower fixed rate. Keep
///   OpenTelemetry's sampler parent-based (its default): one that is not overrides a continued
///   caller's decision, and the page then says "not sampled" beside the caller's frozen DSC.
///
/// Injecting writes the context's span as `sentry-trace`, and as `baggage` its DSC followed by
/// the context's OpenTelemetry baggage (as `BaggagePropagator` writes it, with `%` and the
/// metadata's control characters and `,` encoded too, within the W3C limits): an injector keeps
/// the last `baggage` set, so put this propagator after `BaggagePropagator`, whose extraction
/// still reads the caller's members.
#[derive(Debug, Clone)]
pub struct SentryMetaPropagator {
    meta: OtelMeta,
}

impl TextMapPropagator for SentryMetaPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(meta) = self.meta.trace_meta(cx) else {
            return;
        };
        injector.set("sentry-trace", meta.sentry_trace_header().to_owned());
        let mut baggage = meta
            .baggage_header()
            .map(Cow::into_owned)
            .unwrap_or_default();
        append_otel_baggage(&mut baggage, cx);
        if !baggage.is_empty() {
            injector.set("baggage", baggage);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let policy = &self.meta.inner.policy;
        let baggage = extractor.get_all("baggage").unwrap_or_default();
        let baggage = || baggage.iter().map(|value| value.as_bytes());
        // Several `sentry-trace` values are one malformed value, as for the tower layers.
        let values = extractor.get_all("sentry-trace").unwrap_or_default();
        let sentry_trace = crate::one_sentry_trace(values.iter().map(|v| v.as_bytes()));
        let mut incoming = match Continuation::decide(sentry_trace, baggage(), policy) {
            Continuation::Continue(incoming) => incoming,
            // Not continued: a parent that another propagator extracted (from a `traceparent`)
            // stays, unless the caller's organization is refused (as `decide` refuses it).
            Continuation::NewTrace(_) => {
                let caller = DynamicSamplingContext::from_baggage(baggage());
                return match policy.refusal(&caller) {
                    Some(_) => without_remote_parent(cx),
                    None => with_sentry_parent(cx.clone()),
                };
            }
        };
        let trace = incoming.sentry_trace;
        // OpenTelemetry has no parent without a span id: such a caller is not continued (nor by
        // `@sentry/opentelemetry`'s propagator).
        let Some(span_id) = trace.span_id else {
            return with_sentry_parent(cx.clone());
        };
        let sampled = self.meta.samples(&mut incoming);
        let trace_id = opentelemetry::trace::TraceId::from_bytes(trace.trace_id.to_bytes());
        // The caller's W3C `tracestate`, which OpenTelemetry's propagator extracted, stays with
        // its trace.
        let extracted = cx.span();
        let extracted = extracted.span_context();
        let trace_state = if extracted.is_remote() && extracted.trace_id() == trace_id {
            extracted.trace_state().clone()
        } else {
            TraceState::default()
        };
        let parent = SpanContext::new(
            trace_id,
            opentelemetry::trace::SpanId::from_bytes(span_id.to_bytes()),
            TraceFlags::default().with_sampled(sampled),
            true,
            trace_state,
        );
        // Nor with an all-zero id, which `sentry-trace` allows and W3C does not: the span would
        // start a new trace, and so does the Sentry transaction made of it.
        if !parent.is_valid() {
            return with_sentry_parent(cx.clone());
        }
        let cx = cx.with_remote_span_context(parent).with_value(Incoming {
            trace_id: trace.trace_id,
            dsc: SerializedDsc::new(incoming.dsc),
        });
        with_sentry_parent(cx)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&*FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::{Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// Records, for each span it ends, whether that span's context was the current one.
    #[derive(Debug, Default, Clone)]
    struct Witness(Arc<Mutex<Vec<(String, bool)>>>);

    impl SpanProcessor for Witness {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}

        fn on_end(&self, span: SpanData) {
            let current = Context::current();
            let current = current.span().span_context().span_id();
            let seen = (
                span.name.to_string(),
                current == span.span_context.span_id(),
            );
            self.0.lock().expect("not poisoned").push(seen);
        }

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn every_span_ends_in_its_own_context() {
        let witness = Witness::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(DscSpanProcessor::new(witness.clone()))
            .build();
        let tracer = provider.tracer("test");
        let request = Context::new().with_span(tracer.start("request"));
        let child = tracer.start_with_context("outlives its parent", &request);
        // Both ended outside any context of theirs, the parent first.
        request.span().end();
        drop(request);
        drop(child);
        let seen = witness.0.lock().expect("not poisoned").clone();
        assert_eq!(
            seen,
            [
                ("request".to_owned(), true),
                ("outlives its parent".to_owned(), true)
            ]
        );
        assert!(!Context::current().span().span_context().is_valid());
    }
}
