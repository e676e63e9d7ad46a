//! Put the tags into HTML pages that do not write them: a tower layer that injects them right
//! before `</head>`, streamed or not, and the body transform that strips them again.
//!
//! The public items are re-exported by [`crate::tower`]; the docs of injecting and stripping
//! are on [`InjectTraceMetaLayer`].

mod scan;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE};
use http::{HeaderMap, Method, Request, Response, StatusCode, response::Parts};
use http_body::{Body, Frame, SizeHint};
use sentry_core::{Hub, HubSwitchGuard};
use tower_layer::Layer;
use tower_service::Service;

use self::scan::{Action, HeadScanner, Piece};
use super::cache::{Cacheability, content_type_lines, content_type_values, is_html, mark_private};
use super::guard::{forget_length, prepare_for_tags};
use super::layer::SetupProblem;
use super::transaction::ORIGIN;
use crate::{SentryMeta, TraceMeta, TraceRoot};

/// Where [`InjectTraceMetaLayer`] takes a page's tags from.
///
/// Implemented by [`CurrentSentryMeta`] (the default) and by closures
/// `Fn(&http::response::Parts) -> T` where `T` is a [`SentryMeta`], a [`TraceMeta`] or an
/// `Option<TraceMeta>`. It is called once per response that may get the tags, inside the
/// response future, when the inner service's response is ready, within the request's
/// [`TraceRoot`](crate::TraceRoot) when the request carries one in its extensions (as
/// [`SentryMetaLayer`](super::SentryMetaLayer) puts it there).
///
/// ```
/// use http::response::Parts;
/// use sentry_meta::TraceMeta;
/// use sentry_meta::tower::InjectTraceMetaLayer;
///
/// // Tags a handler computed and put into the response's extensions:
/// let layer = InjectTraceMetaLayer::new().with_source(|response: &Parts| {
///     response.extensions.get::<TraceMeta>().cloned()
/// });
/// ```
pub trait TraceMetaSource {
    /// The tags for the page whose status, headers and extensions are `response`; no tags
    /// leaves the page unchanged.
    fn trace_meta(&self, response: &Parts) -> SentryMeta;
}

impl<F, T> TraceMetaSource for F
where
    F: Fn(&Parts) -> T,
    T: Into<SentryMeta>,
{
    fn trace_meta(&self, response: &Parts) -> SentryMeta {
        self(response).into()
    }
}

/// The default [`TraceMetaSource`]: [`SentryMeta::current`], the request's
/// [`TraceRoot`](crate::TraceRoot) or the active span of the current Sentry Hub.
///
/// Without a root, and with no active span but the request's own server transaction (finished,
/// it stays the span of the request's Hub), with a Sentry client bound, the layer is outside
/// [`SentryMetaLayer`](super::SentryMetaLayer) (or there is none): the request's root is gone,
/// and the tags would name a new trace, or the finished one without its DSC. That setup is
/// reported as the layers' others are (a panic naming the fix in debug builds, one `warn` in
/// release builds), and the page gets no tags: the browser starts its own trace, or continues
/// the server's from `Server-Timing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurrentSentryMeta;

static INJECTOR_OUTSIDE: SetupProblem = SetupProblem::new(
    "sentry-meta: InjectTraceMetaLayer found no request trace root \
     and no active span when the page was ready, so its tags would name a trace that no server \
     span belongs to. Put it inside SentryMetaLayer (and NewSentryLayer): in a ServiceBuilder the \
     order is NewSentryLayer, SentryMetaLayer, InjectTraceMetaLayer (with Router::layer, call \
     .layer() in the reverse order)",
);

impl TraceMetaSource for CurrentSentryMeta {
    fn trace_meta(&self, _response: &Parts) -> SentryMeta {
        let meta = SentryMeta::current();
        if meta.trace_meta().is_some() && TraceRoot::current().is_none() && !other_span_is_active()
        {
            INJECTOR_OUTSIDE.report();
            return SentryMeta::none();
        }
        meta
    }
}

/// Whether the current Hub has an active span of another layer's: the server transaction of
/// `SentryMetaLayer` stays the span of the request's Hub once finished, outside the root.
fn other_span_is_active() -> bool {
    sentry_core::Hub::current().configure_scope(|scope| {
        let origin = |span: sentry_core::TransactionOrSpan| span.get_trace_context().origin;
        (scope.get_span()).is_some_and(|span| origin(span).as_deref() != Some(ORIGIN))
    })
}

/// A [`Layer`] that injects the page's tags right before `</head>` of HTML responses, streamed
/// or not: which responses and where exactly are below; [`strip_trace_meta`] removes them again
/// ([Stripping](#stripping)).
///
/// Put it inside [`SentryMetaLayer`](super::SentryMetaLayer) (after it in a `ServiceBuilder`):
/// the tags are taken when the inner response is ready, within the trace root that the request
/// carries in its extensions (also when a layer between, such as `tower`'s `Buffer`, moves the
/// inner future to a task of its own). Outside `SentryMetaLayer` the request has no root yet,
/// and its transaction has finished when the response is ready: the default source reports
/// that setup ([`CurrentSentryMeta`]).
///
/// # Example
///
/// ```
/// use axum::{Router, body::Body, http::Request, response::Html, routing::get};
/// use sentry::integrations::tower::NewSentryLayer;
/// use sentry_meta::tower::{InjectTraceMetaLayer, SentryMetaLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// // A page that knows nothing of Sentry: a static file, another crate's template, …
/// async fn home() -> Html<&'static str> {
///     Html("<!doctype html><html><head><title>Home</title></head><body>…</body></html>")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _sentry = sentry::init(
///     sentry::ClientOptions::new()
///         .dsn("https://public@o1.ingest.sentry.io/2")
///         .traces_sample_rate(1.0)
/// #       .transport(sentry::test::TestTransport::new())
/// );
///
/// let app = Router::new().route("/", get(home)).layer(
///     ServiceBuilder::new()
///         .layer(NewSentryLayer::<Request<Body>>::new_from_top())
///         .layer(SentryMetaLayer::new())
///         // Innermost: the transaction and the trace root are current when the page is ready.
///         .layer(InjectTraceMetaLayer::new()),
/// );
///
/// let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
/// let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
/// let page = std::str::from_utf8(&body)?;
/// let (head, _) = page.split_once("</head>").unwrap_or_default();
/// assert!(head.contains("<title>Home</title><meta name=\"sentry-trace\" content=\""));
/// assert!(head.contains("\n<meta name=\"baggage\" content=\"sentry-trace_id="));
/// # Ok(())
/// # }
/// ```
///
/// Without Sentry, or with tags from elsewhere, give the layer a source: anything that maps
/// the response's head ([`http::response::Parts`]) to the tags, such as a closure:
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, response::Parts};
/// use http_body_util::{BodyExt, Full};
/// use sentry_meta::tower::InjectTraceMetaLayer;
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = ServiceBuilder::new()
///     .layer(InjectTraceMetaLayer::new().with_source(|_: &Parts| {
///         TraceMeta::new(TraceId::random(), SpanId::random(), None, None)
///     }))
///     .service(service_fn(|_: Request<()>| async {
///         Response::builder()
///             .header("content-type", "text/html; charset=utf-8")
///             .body(Full::<Bytes>::from("<html><HEAD></HEAD><body></body></html>"))
///     }));
///
/// let response = service.oneshot(Request::new(())).await?;
/// let page = response.into_body().collect().await?.to_bytes();
/// assert!(page.starts_with(b"<html><HEAD><meta name=\"sentry-trace\" content=\""));
/// assert!(page.ends_with(b"\"/></HEAD><body></body></html>"));
/// # Ok(())
/// # }
/// ```
///
/// # Where the tags go
///
/// Right before the first end tag of the head, as a browser reads it: `</head`, in any letter
/// case, followed by whitespace, `/` or `>` (`</head>`, `</HEAD>`, `</head >`). A `</head>` is
/// not one inside a comment, an attribute value, a `<script>` (escaped `<!--<script>…-->` parts
/// included), `<style>`, `<title>`, `<textarea>`, `<noscript>` or another element whose content
/// is text, nor inside a `<template>`, whose contents are not part of the document. The page is
/// passed through unchanged when:
///
/// - it already carries a trace tag before that: a `<meta>` that the browser SDK would read,
///   whose first `name` attribute is exactly `sentry-trace` or `baggage`, the way
///   `document.querySelector('meta[name="sentry-trace"]')` finds it (attribute names in any
///   case, the value exact, character references such as `&#45;` decoded; not inside a
///   comment, script or template), or `traceparent` when the layer writes one. Pages never get
///   a second copy, and the SDK never reads a mix of the page's values and the layer's;
/// - `<body` or `<frameset` comes first, or `<plaintext`, `<svg` or `<math`, or no `</head>`
///   comes within the first 64 KiB: the layer stops looking, and the rest of the body streams
///   through untouched;
/// - its bytes are not ASCII text: a UTF-16 or UTF-32 byte-order mark, such a `charset` in
///   `Content-Type` (see below), or a `<meta>` before `</head>` that declares an encoding that
///   is not ASCII-compatible (ISO-2022-JP and the replacement labels: `<meta
///   charset="iso-2022-jp">`, or `http-equiv="content-type"` with such a `charset` in its
///   `content`, their attributes read as the browser's prescan reads them). Only `<meta>`
///   elements count: the text of a script, style or title that looks like one is not read,
///   although the browser's prescan of a page's first 1024 bytes would take it.
///
/// Only the bytes that may be `</head` are held back (at most 6), so a streamed page reaches the
/// browser as fast as without the layer; `</head>` may be split across chunks anywhere.
///
/// # Which responses
///
/// The tags are taken with [`SentryMeta::current`] when the inner service's response is ready,
/// so they name the span active then. They are injected into `text/html` (and
/// `application/xhtml+xml`) responses only, and never into:
///
/// - responses without a body (`1xx`, `204`, `205`, `304`) or with part of one (`206`,
///   `Content-Range`);
/// - responses with a `Content-Encoding` other than `identity`: put a compression layer outside
///   this one, so that it compresses the page with its tags;
/// - responses with several `Content-Type` lines (browsers take the last);
/// - responses whose `Content-Type` declares a `charset` that is not ASCII-compatible (UTF-16,
///   UTF-32, ISO-2022-JP and the Encoding Standard's replacement labels): ASCII tags would be
///   other characters there;
/// - publicly cacheable responses ([`is_publicly_cacheable`](super::is_publicly_cacheable)):
///   a page in a shared cache would make every visitor join one trace. Opt in with
///   [`InjectTraceMetaLayer::allow_cacheable`].
///
/// A page that gets the tags and has no caching headers at all, or none that give it a
/// lifetime or forbid storing it ([`Cacheability::Heuristic`]), gets `private` added to its
/// `Cache-Control`, as [`SentryMetaLayer`](super::SentryMetaLayer) does: see
/// [`InjectTraceMetaLayer::mark_private`].
///
/// The length of an injected page is not known before its head has been read, so the layer
/// removes `Content-Length` from the responses it wraps: they are sent chunked (HTTP/1.1) or
/// framed (HTTP/2). The body's [`size_hint`](Body::size_hint) stays exact as far as it can: the
/// inner body's, widened by the tags until the head has been read. `ETag` and `Last-Modified`
/// are removed as well: the page differs on every request, and a client revalidating with them
/// would reuse an old copy, and its old trace; so is `Accept-Ranges`, as a range request would
/// get a range of the page without its tags. The headers leave before the head has been read,
/// so a page that turns out to get no tags (it has its own, or no `</head>` early enough) has
/// lost them too. The response to a `HEAD` request gets the same headers as the `GET` one
/// would (its body, never sent, is left as it is).
///
/// # Stripping
///
/// [`strip_trace_meta`] does the opposite: it removes every trace tag, as defined above
/// (`traceparent` always), from a page's head, from between `</head>` and `<body>` (where the
/// browser's tree builder moves a `<meta>` into the head) and from its body, where the browser
/// SDK finds them as well: each `<meta …>` tag whole, with the line break between two tags of a
/// block as [`TraceMeta`] renders it (`sentry-trace`, `baggage`, `traceparent`, one per line),
/// and leaves every other byte as it is. So stripping a page the layer injected gives back the
/// page (without its own trace tags, if it had any after `</head>`). The cache guard of
/// [`SentryMetaLayer`](super::SentryMetaLayer) uses it for publicly cacheable pages whose
/// template already wrote the tags.
///
/// It reads the page up to `<plaintext`, `<svg` or `<math`: tags a template wrote in or after
/// inline SVG or MathML stay (foreign content is read by other rules, which the stripper does
/// not follow).
#[derive(Debug, Clone)]
pub struct InjectTraceMetaLayer<M = CurrentSentryMeta> {
    source: M,
    allow_cacheable: bool,
    mark_private: bool,
}

impl<M: Default> Default for InjectTraceMetaLayer<M> {
    fn default() -> Self {
        Self {
            source: M::default(),
            allow_cacheable: false,
            mark_private: true,
        }
    }
}

impl InjectTraceMetaLayer {
    /// Injects [`SentryMeta::current`] into pages that are not publicly cacheable, and marks
    /// those without caching headers `private`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<M> InjectTraceMetaLayer<M> {
    /// Takes the tags from `source` instead (see [`TraceMetaSource`]).
    pub fn with_source<N: TraceMetaSource>(self, source: N) -> InjectTraceMetaLayer<N> {
        InjectTraceMetaLayer {
            source,
            allow_cacheable: self.allow_cacheable,
            mark_private: self.mark_private,
        }
    }

    /// Also injects into publicly cacheable responses (off by default): only for pages that
    /// shared caches are known not to store, whatever their `Cache-Control` says. The
    /// [`SentryMetaLayer`](super::SentryMetaLayer) outside strips the tags of such pages again
    /// unless its own [`allow_cacheable`](super::SentryMetaLayer::allow_cacheable) is on too.
    pub fn allow_cacheable(mut self, allowed: bool) -> Self {
        self.allow_cacheable = allowed;
        self
    }

    /// Adds `private` to the `Cache-Control` of the pages it puts tags into that shared caches
    /// may store without being told to (on by default): those without caching headers, or
    /// with none that give a lifetime or forbid storing
    /// ([`Cacheability::Heuristic`]); the same rule as
    /// [`SentryMetaLayer::mark_private`](super::SentryMetaLayer::mark_private).
    pub fn mark_private(mut self, enabled: bool) -> Self {
        self.mark_private = enabled;
        self
    }
}

impl<S, M: Clone> Layer<S> for InjectTraceMetaLayer<M> {
    type Service = InjectTraceMeta<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectTraceMeta {
            inner,
            layer: self.clone(),
        }
    }
}

/// The [`Service`] of [`InjectTraceMetaLayer`].
#[derive(Debug, Clone)]
pub struct InjectTraceMeta<S, M = CurrentSentryMeta> {
    inner: S,
    layer: InjectTraceMetaLayer<M>,
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for InjectTraceMeta<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: TraceMetaSource + Clone,
    ResBody: Body,
{
    type Response = Response<TraceMetaBody<ResBody>>;
    type Error = S::Error;
    type Future = InjectTraceMetaFuture<S::Future, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The response to HEAD has no body to put tags into, but the headers of GET's, whose
        // length is not known either (RFC 9110 §9.3.2).
        let head = request.method() == Method::HEAD;
        let root = request.extensions().get::<Arc<TraceRoot>>().cloned();
        InjectTraceMetaFuture {
            inner: self.inner.call(request),
            layer: self.layer.clone(),
            root,
            head,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`InjectTraceMeta`].
    #[derive(Debug)]
    pub struct InjectTraceMetaFuture<F, M> {
        #[pin]
        inner: F,
        layer: InjectTraceMetaLayer<M>,
        // The request's root, from its extensions: current again when the tags are taken, even
        // if a layer between moved the inner future to another task.
        root: Option<Arc<TraceRoot>>,
        head: bool,
    }
}

impl<F, M, B, E> Future for InjectTraceMetaFuture<F, M>
where
    F: Future<Output = Result<Response<B>, E>>,
    M: TraceMetaSource,
    B: Body,
{
    type Output = Result<Response<TraceMetaBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        if !is_rewritable(&response, *this.head) || !has_one_content_type(response.headers()) {
            return Poll::Ready(Ok(response.map(TraceMetaBody::passthrough)));
        }
        let cacheability = Cacheability::of(response.headers());
        if !this.layer.allow_cacheable && cacheability == Cacheability::Shared {
            tracing::debug!(
                target: "sentry_meta",
                "no trace tags injected into a publicly cacheable page"
            );
            return Poll::Ready(Ok(response.map(TraceMetaBody::passthrough)));
        }
        let (mut parts, body) = response.into_parts();
        // Now, inside the request's Hub and trace root, while its span is active.
        let meta = match this.root.take() {
            Some(root) => root.sync_scope(|| this.layer.source.trace_meta(&parts)),
            None => this.layer.source.trace_meta(&parts),
        };
        let body = match meta.trace_meta() {
            Some(meta) => {
                // For HEAD too: the injecting body's size hint is not exact either, so neither
                // axum nor hyper write the length of the page without its tags.
                prepare_for_tags(&mut parts.headers);
                if this.layer.mark_private && cacheability == Cacheability::Heuristic {
                    mark_private(&mut parts.headers);
                }
                TraceMetaBody::inject(body, meta)
            }
            None => TraceMetaBody::passthrough(body),
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

/// Removes from an HTML `response` every trace tag (the `<meta>` elements that the browser SDK
/// would read, as [`InjectTraceMetaLayer`] finds them: see its
/// [Stripping](InjectTraceMetaLayer#stripping) section), and `Content-Length` (the new length is
/// not known before the page has been read); every other byte streams through unchanged.
///
/// Responses that are not HTML, have no body (`1xx`, `204`, `205`, `304`, an empty body), only
/// part of one (`206`, `Content-Range`), are compressed (`Content-Encoding`) or declare a
/// `charset` that is not ASCII-compatible are returned unchanged, wrapped in
/// [`TraceMetaBody::passthrough`]; so are pages that begin with a UTF-16 or UTF-32 byte-order
/// mark, as they stream. A page that declares such an encoding in a `<meta>` of its head
/// (ISO-2022-JP) is stripped all the same: its trace tags were written in ASCII, and a page
/// that shared caches may keep must not carry them. A stripped page also loses `Accept-Ranges`
/// (a range would be one of the page with its tags).
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use http_body_util::{BodyExt, Full};
/// use sentry_meta::tower::strip_trace_meta;
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tags = TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None);
/// let page = format!("<html><head>\n{tags}\n<title>t</title></head><body></body></html>");
/// let response = Response::builder()
///     .header("content-type", "text/html")
///     .header("content-length", page.len())
///     .body(Full::<Bytes>::from(page))?;
///
/// let response = strip_trace_meta(response);
/// assert!(!response.headers().contains_key("content-length"));
/// let page = response.into_body().collect().await?.to_bytes();
/// assert_eq!(page, "<html><head>\n\n<title>t</title></head><body></body></html>");
/// # Ok(())
/// # }
/// ```
pub fn strip_trace_meta<B: Body>(response: Response<B>) -> Response<TraceMetaBody<B>> {
    if !is_rewritable(&response, false) {
        return response.map(TraceMetaBody::passthrough);
    }
    let (mut parts, body) = response.into_parts();
    forget_length(&mut parts.headers);
    Response::from_parts(parts, TraceMetaBody::strip(body))
}

/// Whether `response` is a whole, uncompressed HTML document with a body, in an encoding whose
/// bytes 0x00-0x7F are ASCII text. The response to a HEAD request (`head`) has the headers of
/// the GET response, but its body may have been left out: its length is read from
/// `Content-Length` when it has one.
fn is_rewritable<B: Body>(response: &Response<B>, head: bool) -> bool {
    let empty = response.body().size_hint().exact() == Some(0);
    is_rewritable_page(response.status(), response.headers(), head, empty)
}

/// [`is_rewritable`] on a response's status and headers, and whether its body is known to be
/// empty: the one judgement of the tower layers and the actix-web middleware.
pub(crate) fn is_rewritable_page(
    status: StatusCode,
    headers: &HeaderMap,
    head: bool,
    empty: bool,
) -> bool {
    !is_bodyless(status)
        && status != StatusCode::PARTIAL_CONTENT
        && is_html(headers)
        && !is_encoded(headers)
        && !headers.contains_key(CONTENT_RANGE)
        && !declares_ascii_incompatible_charset(headers)
        // An empty page gets no tags. The body of the response to HEAD may have been left out,
        // so there its `Content-Length` tells, when it has one: the GET response's length.
        && !match headers.get(CONTENT_LENGTH) {
            Some(length) if head => length.as_bytes() == b"0",
            _ => empty,
        }
}

/// Whether the response has one `Content-Type` value (see [`content_type_values`]), as the
/// injector needs: with several, browsers take the last, and a `charset` may be in any of them.
/// (The stripper takes any: removing ASCII tags is harmless in whatever the page turns out to
/// be.)
pub(crate) fn has_one_content_type(headers: &HeaderMap) -> bool {
    (content_type_values(content_type_lines(headers)).nth(1)).is_none()
}

/// Whether a response with this status has no body (`1xx`, `204`, `205`, `304`).
fn is_bodyless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::RESET_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Whether a response's body, which a page's tags may be in, is one that the stripper cannot
/// rewrite, by its status and headers: compressed, part of a page, or a `charset` that is not
/// ASCII-compatible. The cache guard keeps such a page out of shared caches instead.
pub(crate) fn is_unrewritable_page(status: StatusCode, headers: &HeaderMap) -> bool {
    !is_bodyless(status) && !is_rewritable_page(status, headers, true, false)
}

/// Whether a `charset` of `Content-Type` names an encoding that is not ASCII-compatible (see
/// [`is_ascii_incompatible`]). A byte-order mark in the body, and a `<meta>` in the head that
/// declares the encoding, are the scanner's to read.
fn declares_ascii_incompatible_charset(headers: &HeaderMap) -> bool {
    content_type_values(content_type_lines(headers)).any(names_ascii_incompatible_charset)
}

/// Whether a `charset` parameter of this `Content-Type` value names an encoding that is not
/// ASCII-compatible. Parameters are read as browsers parse a MIME type: a `;` inside quotes
/// belongs to the value, a quoted value is unescaped (`"utf\-16"` is `utf-16`), white space
/// after the `=` is skipped. Browsers differ in the rest (Chromium takes the first `charset`,
/// Firefox the last; a `,` or white space may end a value; a name with white space before its
/// `=` may not count), so any `charset` counts, and its label ends at those: a page taken for
/// one in such an encoding is left alone, the safe side.
fn names_ascii_incompatible_charset(content_type: &[u8]) -> bool {
    // From the first `;`: none leaves nothing to read.
    let start = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    let mut rest = &content_type[start..];
    while let Some(parameter) = rest.strip_prefix(b";") {
        let name_end = memchr::memchr2(b';', b'=', parameter).unwrap_or(parameter.len());
        let (name, after) = parameter.split_at(name_end);
        let Some(after) = after.strip_prefix(b"=") else {
            rest = after;
            continue;
        };
        let after = after.trim_ascii_start();
        let (value, after) = match after.strip_prefix(b"\"") {
            Some(quoted) => quoted_string(quoted),
            None => {
                let (value, after) =
                    after.split_at(memchr::memchr(b';', after).unwrap_or(after.len()));
                (Cow::Borrowed(value), after)
            }
        };
        let value = value.trim_ascii_start();
        let label_end = (value.iter())
            .position(|&b| b == b',' || b.is_ascii_whitespace())
            .unwrap_or(value.len());
        if name.trim_ascii().eq_ignore_ascii_case(b"charset")
            && is_ascii_incompatible(&value[..label_end])
        {
            return true;
        }
        rest = &after[memchr::memchr(b';', after).unwrap_or(after.len())..];
    }
    false
}

/// The value of a quoted-string that starts after its opening quote, unescaped, and what follows
/// its closing quote (the Fetch Standard's "collect an HTTP quoted string"): a quote left open
/// runs to the end.
fn quoted_string(quoted: &[u8]) -> (Cow<'_, [u8]>, &[u8]) {
    match memchr::memchr2(b'"', b'\\', quoted) {
        None => (Cow::Borrowed(quoted), &[]),
        Some(end) if quoted[end] == b'"' => (Cow::Borrowed(&quoted[..end]), &quoted[end + 1..]),
        Some(_) => {
            let mut value = Vec::with_capacity(quoted.len());
            let mut bytes = quoted.iter();
            while let Some(&byte) = bytes.next() {
                match byte {
                    b'"' => break,
                    b'\\' => value.push(*bytes.next().unwrap_or(&b'\\')),
                    _ => value.push(byte),
                }
            }
            (Cow::Owned(value), bytes.as_slice())
        }
    }
}

/// Whether the encoding `label` names is one in which the bytes 0x00-0x7F are not (all) ASCII
/// text: tags written as ASCII bytes would become other characters, and a `</head>` found in
/// the bytes may not be one. These are UTF-16 (LE, BE), UTF-32, which browsers do not decode at
/// all, and those of [`is_switching`]. The label is compared as browsers compare it:
/// surrounding whitespace removed, ASCII case-insensitive.
fn is_ascii_incompatible(label: &[u8]) -> bool {
    const WIDE: [&[u8]; 12] = [
        // UTF-16LE
        b"csunicode",
        b"iso-10646-ucs-2",
        b"ucs-2",
        b"unicode",
        b"unicodefeff",
        b"utf-16",
        b"utf-16le",
        // UTF-16BE
        b"unicodefffe",
        b"utf-16be",
        // Not web encodings, but not ASCII either.
        b"utf-32",
        b"utf-32le",
        b"utf-32be",
    ];
    is_switching(label) || (WIDE.iter()).any(|known| label.trim_ascii().eq_ignore_ascii_case(known))
}

/// Whether `label` names ISO-2022-JP or replacement in the
/// [Encoding Standard](https://encoding.spec.whatwg.org/#names-and-labels): encodings whose
/// bytes switch between ASCII and other characters, so that ASCII-looking bytes may be neither
/// (`encoding_rs`'s `is_ascii_compatible` draws the line there, with UTF-16). These are the ones
/// a `<meta>` can declare: a browser that could read the `<meta>` as ASCII reads a declared
/// UTF-16 as UTF-8, and knows no UTF-32.
pub(super) fn is_switching(label: &[u8]) -> bool {
    const SWITCHING: [&[u8]; 8] = [
        // ISO-2022-JP
        b"csiso2022jp",
        b"iso-2022-jp",
        // replacement
        b"csiso2022kr",
        b"hz-gb-2312",
        b"iso-2022-cn",
        b"iso-2022-cn-ext",
        b"iso-2022-kr",
        b"replacement",
    ];
    let label = label.trim_ascii();
    (SWITCHING.iter()).any(|known| label.eq_ignore_ascii_case(known))
}

/// Whether any `Content-Encoding` is not `identity`.
fn is_encoded(headers: &HeaderMap) -> bool {
    let identity = |coding: &[u8]| coding.trim_ascii().eq_ignore_ascii_case(b"identity");
    (headers.get_all(CONTENT_ENCODING).iter())
        .any(|value| !value.as_bytes().split(|&b| b == b',').all(identity))
}

pin_project_lite::pin_project! {
    /// A response body whose head is rewritten as it streams: the tags injected before
    /// `</head>` ([`inject`](Self::inject)), trace tags removed ([`strip`](Self::strip)), or
    /// nothing changed ([`passthrough`](Self::passthrough)).
    ///
    /// Its data are [`Bytes`]: the inner body's chunks, split where bytes are inserted or
    /// removed, without copying when the inner body's data are `Bytes`. Trailers and errors of
    /// the inner body pass through.
    ///
    /// The constructors wrap the body only: use [`strip_trace_meta`], or remove
    /// `Content-Length`, when the length may change.
    #[derive(Debug)]
    pub struct TraceMetaBody<B> {
        #[pin]
        inner: B,
        // `None` once the head has been read and what it held back has been written.
        rewrite: Option<Rewrite>,
        // The request's root and Hub, current while the inner body is polled (`guarded`).
        request: Option<(Arc<TraceRoot>, Option<Arc<Hub>>)>,
    }
}

#[derive(Debug)]
struct Rewrite {
    scanner: HeadScanner,
    /// The tags, until they are written (none when stripping).
    tags: Bytes,
    /// Frames ready to be returned, oldest first (no empty data: see [`push_data`]).
    pending: VecDeque<Frame<Bytes>>,
    /// The inner body has ended.
    inner_done: bool,
}

/// Queues `data` unless it is empty: an empty chunk would end an actix-web chunked body.
fn push_data(pending: &mut VecDeque<Frame<Bytes>>, data: Bytes) {
    if !data.is_empty() {
        pending.push_back(Frame::data(data));
    }
}

impl<B> TraceMetaBody<B> {
    /// `body`, unchanged.
    pub fn passthrough(body: B) -> Self {
        Self {
            inner: body,
            rewrite: None,
            request: None,
        }
    }

    /// `body` with `meta`'s tags right before the first `</head>` of its head, unless a copy of
    /// them comes first, the body begins with a UTF-16 or UTF-32 byte-order mark, or its head
    /// declares an encoding that is not ASCII-compatible (see the
    /// [`InjectTraceMetaLayer`'s docs](InjectTraceMetaLayer#where-the-tags-go)).
    pub fn inject(body: B, meta: &TraceMeta) -> Self {
        let tags = Bytes::from(meta.to_html());
        let scanner = HeadScanner::injecting(meta.writes_traceparent());
        Self::rewrite(body, scanner, tags)
    }

    /// `body` without its trace tags (see [`strip_trace_meta`]).
    pub fn strip(body: B) -> Self {
        Self::rewrite(body, HeadScanner::new(Action::Strip), Bytes::new())
    }

    fn rewrite(body: B, scanner: HeadScanner, tags: Bytes) -> Self {
        Self {
            inner: body,
            rewrite: Some(Rewrite {
                scanner,
                tags,
                pending: VecDeque::new(),
                inner_done: false,
            }),
            request: None,
        }
    }

    /// `body` as the cache guard decided, polled with `request`'s root as the current root (and
    /// in its own Hub, when it has one) when given: a body that renders its page as it is
    /// polled, after the handler has returned, renders the request's trace, and the events it
    /// captures join it.
    pub(crate) fn guarded(
        body: B,
        rewrite: super::guard::Rewrite,
        request: Option<(Arc<TraceRoot>, Option<Arc<Hub>>)>,
    ) -> Self {
        use super::guard::Rewrite as Decision;
        let mut body = match rewrite {
            Decision::Keep => Self::passthrough(body),
            Decision::Strip => Self::strip(body),
            Decision::Inject(meta) => Self::inject(body, &meta),
        };
        body.request = request;
        body
    }

    fn poll_rewritten(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>>
    where
        B: Body,
    {
        let mut this = self.project();
        loop {
            let Some(rewrite) = this.rewrite.as_mut() else {
                return this.inner.poll_frame(cx).map_ok(|frame| {
                    frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
                });
            };
            if let Some(frame) = rewrite.pending.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if rewrite.inner_done {
                return Poll::Ready(None);
            }
            if rewrite.scanner.done {
                // Everything held back has been written: from here on, a plain pass-through.
                *this.rewrite = None;
                continue;
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => rewrite.feed(data.copy_to_bytes(data.remaining())),
                    Err(frame) => {
                        rewrite.finish();
                        if let Ok(trailers) = frame.into_trailers() {
                            rewrite.pending.push_back(Frame::trailers(trailers));
                        }
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    rewrite.finish();
                    rewrite.inner_done = true;
                }
            }
        }
    }
}

impl Rewrite {
    fn feed(&mut self, chunk: Bytes) {
        // A chunk written whole is moved, not sliced: slicing may allocate.
        let mut whole = false;
        self.scanner.feed(&chunk, &mut |piece| match piece {
            Piece::Input(range) if range.start == 0 && range.end == chunk.len() => whole = true,
            Piece::Input(range) => push_data(&mut self.pending, chunk.slice(range)),
            Piece::Held(bytes) => push_data(&mut self.pending, bytes),
            Piece::Tags => push_data(&mut self.pending, mem::take(&mut self.tags)),
        });
        if whole {
            push_data(&mut self.pending, chunk);
        }
    }

    /// The inner body ended, or sent its trailers: what is held back is written.
    fn finish(&mut self) {
        self.scanner.finish(&mut |piece| {
            if let Piece::Held(bytes) = piece {
                push_data(&mut self.pending, bytes);
            }
        });
    }
}

impl<B> Body for TraceMetaBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.request.clone() {
            Some((root, hub)) => {
                let _hub = hub.map(HubSwitchGuard::new);
                root.sync_scope(|| self.poll_rewritten(cx))
            }
            None => self.poll_rewritten(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.rewrite {
            None => self.inner.is_end_stream(),
            Some(rewrite) => {
                rewrite.pending.is_empty()
                    && rewrite.scanner.held.is_empty()
                    && (rewrite.inner_done || self.inner.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        let Some(rewrite) = &self.rewrite else {
            return self.inner.size_hint();
        };
        let inner = match rewrite.inner_done {
            true => SizeHint::with_exact(0),
            false => self.inner.size_hint(),
        };
        let held = rewrite.scanner.held.len() as u64;
        let pending = (rewrite.pending.iter().filter_map(Frame::data_ref))
            .map(|data| data.len() as u64)
            .sum::<u64>();
        let done = rewrite.scanner.done;
        // Injecting, the held bytes will come, and the tags may until the scanner is done.
        // Stripping, the held bytes may go, and so may any byte not yet read: it may belong to a
        // trace tag that began before the scanner's limit. Done, nothing is held.
        let tags = if done { 0 } else { rewrite.tags.len() as u64 };
        let lower = match rewrite.scanner.action {
            Action::Strip if !done => pending,
            _ => pending + held + inner.lower(),
        };
        let mut hint = SizeHint::new();
        hint.set_lower(lower);
        if let Some(upper) = inner.upper() {
            hint.set_upper(pending + held + upper + tags);
        }
        hint
    }
}
