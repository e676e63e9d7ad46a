//! `/otel`: the minijinja page of an app traced with OpenTelemetry rather than the `sentry`
//! crate's spans. The request's span comes from an OpenTelemetry SDK tracer provider whose
//! spans `sentry-opentelemetry`'s `SentrySpanProcessor` sends to Sentry as transactions; its
//! parent from the caller's headers through [`OtelMeta::propagator`]; the page's tags from
//! [`OtelMeta::current`] while its `template.render` span is current. The client's
//! `DscTransport` is given the same [`OtelMeta`], and the processor is wrapped in
//! [`DscSpanProcessor`], so the server's envelope carries the page's DSC.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{FutureExt as _, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use sentry::{Hub, SentryFutureExt as _};
use sentry_meta::SentryMeta;
use sentry_meta::opentelemetry::{
    DscSpanProcessor, OtelMeta, RequestHeaders, SentryMetaPropagator,
};
use sentry_opentelemetry::SentrySpanProcessor;

use super::{Web, html};

/// The OpenTelemetry side of the app: its tracer, and what its pages need to write their tags.
#[derive(Debug)]
pub struct Otel {
    meta: OtelMeta,
    propagator: SentryMetaPropagator,
    tracer: SdkTracer,
    /// Kept for the tracer's lifetime.
    _provider: SdkTracerProvider,
}

impl Otel {
    /// A tracer provider that sends through the Sentry client of the Hub current now (bound
    /// before), and pages whose tags `meta` makes.
    pub fn new(meta: OtelMeta) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(DscSpanProcessor::new(SentrySpanProcessor::new()))
            .build();
        Self {
            propagator: meta.propagator(),
            tracer: provider.tracer("sentry-meta-demo"),
            meta,
            _provider: provider,
        }
    }
}

/// The request's server span (`GET /otel`), continuing the caller's Sentry trace by the
/// propagator's decision, current while the handler runs. It runs in a Hub of its own, whose
/// scope tags the transaction that `SentrySpanProcessor` makes of the span with the service.
pub async fn request_span(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let otel = &web.otel;
    let parent = otel
        .propagator
        .extract(&RequestHeaders::new(request.headers()));
    let hub = Arc::new(Hub::new_from_top(Hub::main()));
    hub.configure_scope(|scope| scope.set_tag("service", "web"));
    let name = format!("{} {}", request.method(), request.uri().path());
    let cx = Hub::run(Arc::clone(&hub), || {
        let span = otel
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&otel.tracer, &parent);
        parent.with_span(span)
    });
    let response = next
        .run(request)
        .with_context(cx.clone())
        .bind_hub(Arc::clone(&hub))
        .await;
    // The processor sends the transaction now; `DscSpanProcessor` makes the span's context
    // current meanwhile, where the client's `DscTransport` finds the page's DSC.
    Hub::run(hub, || {
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        ));
        span.end();
    });
    response
}

/// `/otel`: the minijinja page, rendered in a `template.render` span whose tags it writes.
pub async fn page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("otel");
    let otel = &web.otel;
    let cx = Context::current_with_span(otel.tracer.start("template.render"));
    let rendered = {
        let _current = cx.clone().attach();
        let meta = if web.tags {
            otel.meta.current()
        } else {
            SentryMeta::none()
        };
        web.engines.minijinja_with(&page, meta)
    };
    cx.span().end();
    let mut response = html(rendered);
    if web.tags {
        // No layer of this crate runs here to mark the tagged page: a shared cache must not
        // keep it (its visitors would join one trace), as `SentryMetaLayer` marks its pages.
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("private"));
    }
    response
}
