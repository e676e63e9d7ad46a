//! actix-web 4: the request's trace root and server transaction from one continuation decision,
//! `Server-Timing`, the cache guard, and [`SentryMeta`] as an extractor.
//!
//! [`SentryMetaMiddleware`] does for actix-web what
//! [`SentryMetaLayer`](crate::tower::SentryMetaLayer) does for tower stacks, with the same code:
//! it decides once whether to continue the caller's trace (by `sentry-trace` and every
//! `baggage` value, with the client's org id and `strict_trace_continuation`), makes the
//! request's [`TraceRoot`] from that decision and starts the server transaction from it, named
//! `"{METHOD} {pattern}"` from actix's matched pattern (op `http.server`, the request's data, the
//! response status, `aborted` if the request is dropped). Handlers and template helpers find the
//! root while the handler runs; the extractor finds it in the request's extensions.
//!
//! It goes inside `sentry-actix`'s `Sentry` middleware, which gives each request its own Hub and
//! reports errors. actix-web runs the middleware registered last first, so `.wrap()` this one
//! before `Sentry::new()`. Do not use `Sentry::with_transaction()`: its transaction continues
//! incoming traces by the `sentry` crate's looser reading of `sentry-trace`, and its page would
//! disagree; a transaction already active is reported as a setup problem (a panic in debug
//! builds, a `warn` in release builds), and so is a Hub shared between requests.
//!
//! The error that `sentry-actix` reports for a response with a server error
//! (`capture_server_errors`, on by default) is captured by `Sentry` after this middleware has
//! answered: the finished transaction stays the Hub's span until then, so that event joins the
//! request's trace under the server transaction. With [`DscTransport`](crate::DscTransport),
//! its envelope carries the request's DSC, which the pages write: the transaction's event
//! processor names the request's root to the transport. So do errors captured inside the
//! handler (`sentry::capture_error`).
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use sentry_meta::{DscTransport, SentryMeta, actix::SentryMetaMiddleware};
//!
//! async fn home(meta: SentryMeta) -> HttpResponse {
//!     HttpResponse::Ok()
//!         .content_type("text/html; charset=utf-8")
//!         .body(format!("<!doctype html><html><head>{meta}</head><body>Hi</body></html>"))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let options = sentry::ClientOptions::new()
//!         .traces_sample_rate(1.0)
//!         .transport(DscTransport::new()); // envelopes with the pages' DSC
//!     let _sentry = sentry::init(("https://PUBLIC_KEY@o0.ingest.sentry.io/0", options));
//!     HttpServer::new(|| {
//!         App::new()
//!             .wrap(SentryMetaMiddleware::new()) // inner: the trace root and transaction
//!             .wrap(sentry_actix::Sentry::new()) // outer: a Hub per request
//!             .route("/", web::get().to(home))
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! The cache guard is the tower layer's (see
//! [`SentryMetaLayer::allow_cacheable`](crate::tower::SentryMetaLayer::allow_cacheable)): an
//! HTML response that a shared cache may keep gets no `Server-Timing`, a body that renders as it
//! streams gets no tags, and the tags rendered before are stripped as it streams, or, when its
//! body cannot be rewritten (compressed), it is made private (unless
//! [`allow_cacheable`](SentryMetaMiddleware::allow_cacheable)); one without caching
//! headers is marked `Cache-Control: private` (unless
//! [`mark_private`](SentryMetaMiddleware::mark_private) is off); a page that took its tags from
//! the request's root loses its `ETag` and `Last-Modified`.
//!
//! Pages whose templates write no tags can get them from the middleware instead:
//! [`inject`](SentryMetaMiddleware::inject) puts them before `</head>` as the response streams,
//! by the rules of [`InjectTraceMetaLayer`](crate::tower::InjectTraceMetaLayer) (which pages,
//! where in them, and never a second copy), naming the server transaction.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{CONTENT_TYPE, HeaderMap as ActixHeaders, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use bytes::Bytes;
use sentry_core::{Hub, protocol};
use sentry_meta_core::TraceRoot;

use crate::SentryMeta;
use crate::tower::TraceMetaBody;
use crate::tower::cache::{PageType, page_type};
use crate::tower::guard::{Guard, Page, Rewrite};
use crate::tower::layer::{SetupProblem, start_request};
use crate::tower::transaction::{absolute_url, sentry_request};

/// The actix-web middleware: see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct SentryMetaMiddleware {
    guard: Guard,
    traceparent: bool,
}

impl SentryMetaMiddleware {
    /// The middleware with its defaults: no `Server-Timing`, no `traceparent`, no injection,
    /// the cache guard on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inject the tags before `</head>` into HTML pages that do not carry them (off by
    /// default), streamed or not; see the [module docs](self). Their `Content-Length`, `ETag`,
    /// `Last-Modified` and `Accept-Ranges` are removed: the page's length changes, and it
    /// differs on every request.
    pub fn inject(mut self, enabled: bool) -> Self {
        self.guard.inject = enabled;
        self
    }

    /// A `Server-Timing: sentry-trace;desc="…", baggage;desc="…"` header on HTML responses.
    pub fn server_timing(mut self, enabled: bool) -> Self {
        self.guard.server_timing = enabled;
        self
    }

    /// Leave the tags in pages that shared caches may keep (off by default: a cached page would
    /// put every visitor into one trace).
    pub fn allow_cacheable(mut self, allowed: bool) -> Self {
        self.guard.allow_cacheable = allowed;
        self
    }

    /// Add `private` to the `Cache-Control` of HTML pages that shared caches may store without
    /// being told to (on by default): the tower layer's rule, see
    /// [`SentryMetaLayer::mark_private`](crate::tower::SentryMetaLayer::mark_private). Every such
    /// page is marked, as the headers do not tell whether its body carries tags.
    pub fn mark_private(mut self, enabled: bool) -> Self {
        self.guard.mark_private = enabled;
        self
    }

    /// A W3C `traceparent` tag after the Sentry tags.
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.traceparent = enabled;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for SentryMetaMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SentryMetaService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SentryMetaService {
            service,
            middleware: self.clone(),
        }))
    }
}

/// The service made by [`SentryMetaMiddleware`].
#[derive(Debug)]
pub struct SentryMetaService<S> {
    service: S,
    middleware: SentryMetaMiddleware,
}

/// The response future of [`SentryMetaService`].
pub type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for SentryMetaService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<B>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // Inside `sentry_actix::Sentry` this is the request's own Hub.
        let headers = request.headers();
        let (root, transaction, hub) = start_request(
            headers.get_all("sentry-trace").map(HeaderValue::as_bytes),
            || headers.get_all("baggage").map(HeaderValue::as_bytes),
            (
                request.method().as_str(),
                request.match_pattern().as_deref(),
                request.path(),
            ),
            self.middleware.traceparent,
            |with_pii| request_data(&request, with_pii),
            [&SHARED_HUB, &TRANSACTION_OUTSIDE],
        );
        request.extensions_mut().insert(root.clone());
        let response = root.clone().sync_scope(|| self.service.call(request));
        let response = root.clone().scope(response);
        let middleware = self.middleware.clone();
        Box::pin(async move {
            let response = response.await;
            // `sentry_actix::Sentry`, outside, captures server errors from the response: under
            // this transaction, which stays the span of the request's Hub.
            if let Some(transaction) = transaction {
                let status = match &response {
                    Ok(response) => response.status().as_u16(),
                    Err(error) => error.as_response_error().status_code().as_u16(),
                };
                transaction.finish(http::StatusCode::from_u16(status).ok());
            }
            Ok(guard_response(response?, &root, hub, &middleware))
        })
    }
}

/// What Sentry shows of the request: method, URL (scheme and host as actix's connection info
/// gives them) and headers (see `sentry_request` of the tower layer).
fn request_data(request: &ServiceRequest, with_pii: bool) -> protocol::Request {
    let info = request.connection_info();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let headers = request.headers().iter();
    sentry_request(
        request.method().as_str(),
        absolute_url(info.scheme(), info.host(), path_and_query),
        headers.map(|(name, value)| (name.as_str(), value.as_bytes(), value.is_sensitive())),
        with_pii,
    )
}

/// The tower layer's cache guard, `Server-Timing` and (if asked for) the injection, on an actix
/// response ([`Guard::apply`], on a copy of its headers as the `http` crate's: actix-web 4 is on
/// `http` 0.2).
fn guard_response<B: MessageBody + 'static>(
    mut response: ServiceResponse<B>,
    root: &Arc<TraceRoot>,
    hub: Option<Arc<Hub>>,
    middleware: &SentryMetaMiddleware,
) -> ServiceResponse<EitherBody<B>> {
    // Only pages are guarded (see `Guard::apply`): the others keep their headers uncopied.
    let content_types = response.headers().get_all(CONTENT_TYPE);
    if page_type(content_types.map(|value| value.as_bytes())) == PageType::Other {
        return response.map_into_left_body();
    }
    let size = response.response().body().size();
    let page = Page {
        status: http::StatusCode::from_u16(response.status().as_u16())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        head: response.request().method() == actix_web::http::Method::HEAD,
        empty: matches!(size, BodySize::None | BodySize::Sized(0)),
        streamed: matches!(size, BodySize::Stream),
    };
    let mut headers = http_headers(response.headers());
    let rewrite = (middleware.guard).apply(&mut headers, page, root);
    set_headers(response.headers_mut(), &headers);
    // A streamed page may render as actix polls its body, after the handler: it is polled
    // inside the request's root and Hub, as the tower layer polls one.
    let request = matches!(size, BodySize::Stream).then(|| (root.clone(), hub));
    if matches!(rewrite, Rewrite::Keep) && request.is_none() {
        return response.map_into_left_body();
    }
    response.map_body(|_, body| {
        let body = TraceMetaBody::guarded(HttpBody(Box::pin(body)), rewrite, request);
        EitherBody::right(BoxBody::new(ActixBody(body)))
    })
}

/// actix's headers as the `http` crate's.
fn http_headers(headers: &ActixHeaders) -> http::HeaderMap {
    let mut converted = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if let Ok(name) = http::HeaderName::from_bytes(name.as_str().as_bytes())
            && let Ok(mut copy) = http::HeaderValue::from_bytes(value.as_bytes())
        {
            copy.set_sensitive(value.is_sensitive());
            converted.append(name, copy);
        }
    }
    converted
}

/// Replaces actix's headers with the guard's.
fn set_headers(target: &mut ActixHeaders, headers: &http::HeaderMap) {
    target.clear();
    for (name, value) in headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes())
            && let Ok(mut converted) = HeaderValue::from_bytes(value.as_bytes())
        {
            converted.set_sensitive(value.is_sensitive());
            target.append(name, converted);
        }
    }
}

static SHARED_HUB: SetupProblem = SetupProblem::new(
    "sentry-meta: one Sentry Hub is serving several requests, so a page may \
     name another request's span. Wrap the app with sentry_actix::Sentry::new() outside \
     SentryMetaMiddleware (register it with .wrap() after it)",
);
static TRANSACTION_OUTSIDE: SetupProblem = SetupProblem::new(
    "sentry-meta: a Sentry transaction is already active when \
     SentryMetaMiddleware starts the request's, most likely from \
     sentry_actix::Sentry::with_transaction(): use sentry_actix::Sentry::new(), as \
     SentryMetaMiddleware starts the transaction itself by the same rule as its pages",
);

/// The request's tags: the extractor reads the request's root (put into its extensions by
/// [`SentryMetaMiddleware`]); without one, the tags of [`SentryMeta::current`] (the Hub's
/// active span, or a head of trace of its own).
impl FromRequest for SentryMeta {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let root = request.extensions().get::<Arc<TraceRoot>>().cloned();
        ready(Ok(SentryMeta::of_root(root)))
    }
}

/// An actix body as an `http_body::Body`, for the stripper shared with the tower layers.
struct HttpBody<B>(Pin<Box<B>>);

impl<B: MessageBody> http_body::Body for HttpBody<B> {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let body = self.get_mut().0.as_mut();
        body.poll_next(cx)
            .map_ok(http_body::Frame::data)
            .map_err(Into::into)
    }
}

/// The stripper's output as an actix body.
struct ActixBody<B>(TraceMetaBody<HttpBody<B>>);

impl<B: MessageBody> MessageBody for ActixBody<B> {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        // Frames other than data are skipped (`HttpBody` makes none): an empty chunk in their
        // place would end a chunked actix body.
        let mut body = Pin::new(&mut self.get_mut().0);
        loop {
            let frame = std::task::ready!(http_body::Body::poll_frame(body.as_mut(), cx));
            match frame.map(|frame| frame.map(http_body::Frame::into_data)) {
                Some(Ok(Err(_trailers))) => continue,
                Some(Ok(Ok(data))) => return Poll::Ready(Some(Ok(data))),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(None),
            }
        }
    }
}
