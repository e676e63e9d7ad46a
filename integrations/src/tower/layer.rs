//! The tower layer: one [`TraceRoot`] per request, `Server-Timing`, the cache guard, and the
//! checks that the Sentry layers around it are in the right order.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::task::{Context, Poll, ready};

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body::Body;
use sentry_core::Hub;
use sentry_meta_core::{Scoped, TraceRoot, TransactionSource};
use tower_layer::Layer;
use tower_service::Service;

use super::cache::{self, PageType};
use super::guard::{Guard, Page};
use super::inject::TraceMetaBody;
use super::transaction::{RequestTransaction, request_data};

static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");
static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// A [`Layer`] that gives every request its own trace root and server transaction, so that the
/// pages it renders carry the transaction's `sentry-trace` and the root's `baggage`.
///
/// For each request it reads the `sentry-trace` header (several are one malformed value) and
/// every `baggage` header value, and decides once whether to continue the caller's trace, with
/// the rules of the current Sentry client
/// ([`ContinuationPolicy::from_client`](sentry_meta_core::ContinuationPolicy::from_client): its
/// org id and `strict_trace_continuation`). From that one decision come both the request's
/// [`TraceRoot`] (what pages write) and its server transaction, which the layer starts itself:
/// named as `sentry-tower` names it (`"{METHOD} {route}"`, op `http.server`), carrying the
/// request's data (as `SentryHttpLayer` does, also onto the request's events), with the response
/// status, finished when the response is ready (as `aborted` if the request is dropped). It puts
/// the `Arc<`[`TraceRoot`]`>` into the request's extensions and runs the inner service inside
/// [`TraceRoot::scope`], where [`SentryMeta::current`](crate::SentryMeta::current) and every
/// template helper find it.
///
/// It belongs inside `sentry-tower`'s `NewSentryLayer` (a Hub per request), and replaces
/// `SentryHttpLayer::enable_transaction()`; see the [module docs](super) for the wiring and for
/// what is checked when the setup is wrong. With [`DscTransport`](crate::DscTransport) in the
/// client options, the transaction's envelope also carries the DSC its pages wrote.
///
/// ```
/// use sentry_meta::tower::SentryMetaLayer;
///
/// let layer = SentryMetaLayer::new().server_timing(true);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SentryMetaLayer {
    guard: Guard,
    traceparent: bool,
    /// Whether a request of this layer (and its clones, one per connection or worker) has been
    /// checked for a transaction that a layer outside started after this one's.
    outside_checked: Arc<AtomicBool>,
}

impl SentryMetaLayer {
    /// The layer with its defaults: no `Server-Timing`, publicly cacheable pages guarded, and
    /// HTML pages without caching headers marked `private`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also writes a W3C `<meta name="traceparent" content="00-TRACEID-SPANID-01"/>` after the
    /// Sentry tags on every page of the request (off by default), for tools that read W3C Trace
    /// Context rather than Sentry's headers.
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.traceparent = enabled;
        self
    }

    /// Adds a `Server-Timing: sentry-trace;desc="…", baggage;desc="…"` header to HTML responses
    /// (off by default), with the values the page's tags have. The Sentry browser SDK reads it
    /// from the navigation's timing entry when the `<head>` was sent before the tags could be.
    ///
    /// It is computed when the response is ready, from the request's trace root: it names the
    /// server transaction the layer started (a page rendered in a
    /// [render span](crate::render_span) names that child span instead, which has ended by the
    /// time the headers leave; both are of the same trace). It is left out when the layer
    /// started none (no Sentry client, or another layer's transaction was already active): a
    /// header that names no server span would mislead the browser.
    pub fn server_timing(mut self, enabled: bool) -> Self {
        self.guard.server_timing = enabled;
        self
    }

    /// Lets trace data reach publicly cacheable responses (off by default).
    ///
    /// By default an HTML response that a shared cache may store and serve to others
    /// ([`is_publicly_cacheable`](super::is_publicly_cacheable), [`Cacheability::Shared`](super::Cacheability::Shared)):
    /// `Cache-Control` with `public`, `s-maxage` or `max-age` > 0 (even
    /// `max-age=99999999999999999999999`, even next to a qualified `private="set-cookie"`) and
    /// without a bare `no-store` or a bare `private`; an `Expires` later than `Date`; a
    /// `CDN-Cache-Control`, a CDN's own targeted field or `Surrogate-Control` without `no-store`,
    /// an `X-Accel-Expires` with a lifetime, whatever `Cache-Control` says) gets no
    /// `Server-Timing`, the tags a template wrote are removed as it streams (as by
    /// [`strip_trace_meta`](super::strip_trace_meta); the answer to HEAD gets the headers of
    /// GET's), a body that renders as it streams gets none ([`TraceRoot::withhold_tags`]), and
    /// the first such page of each route logs a warning: a cached page would make every visitor
    /// that gets it join the one trace, and the sampling decision, it was rendered in.
    ///
    /// A page that took its tags from the request's root ([`TraceRoot::rendered`]) before its
    /// headers left, in a body the layer cannot rewrite (compressed by a layer inside this one,
    /// part of a page, a `charset` that is not ASCII-compatible), is kept out of shared caches
    /// instead: `private` first in its `Cache-Control`, and its `CDN-Cache-Control`, targeted
    /// CDN fields, `Surrogate-Control` and `X-Accel-Expires` removed. So is a response whose
    /// `Content-Type` names no type (none, or no MIME type in it, or `*/*`) that took those tags,
    /// or streams (where a task spawned without the root may write them after its headers have
    /// left): a browser sniffs its body, and renders one that starts like HTML as a page.
    ///
    /// Turn this on only for pages that shared caches are known not to store, whatever their
    /// headers say.
    pub fn allow_cacheable(mut self, allowed: bool) -> Self {
        self.guard.allow_cacheable = allowed;
        self
    }

    /// Marks HTML responses that shared caches may store without being told to `private` (on
    /// by default).
    ///
    /// A response with no caching header at all (no `Cache-Control`, `Expires`,
    /// `CDN-Cache-Control` or `Surrogate-Control`) may be stored by a shared cache with a
    /// lifetime of its own choosing
    /// ([RFC 9111 §4.2.2](https://www.rfc-editor.org/rfc/rfc9111#section-4.2.2)), and so may
    /// one whose caching headers give no lifetime and do not forbid it (`must-revalidate`,
    /// `no-cache`, `max-age=0`, `private="set-cookie"`, an expired `Expires`): that is
    /// [`Cacheability::Heuristic`](super::Cacheability::Heuristic). The layer adds `private` to
    /// its `Cache-Control` (`Cache-Control: private`, or `private, ` before the directives it
    /// has), so that the page keeps its tags and no shared cache hands it to another visitor;
    /// the browser's own cache still may keep it. Every such HTML response is marked, tagged or
    /// not: the headers do not tell whether the body carries tags, which a streamed body writes
    /// after they have left; so is one whose type a browser sniffs (see
    /// [`allow_cacheable`](Self::allow_cacheable)) when it took the request's tags or streams.
    /// Pages that set their caching headers are left as they are: `private`/`no-store` ones
    /// need nothing, publicly cacheable ones are [guarded](Self::allow_cacheable).
    ///
    /// Turn this off when something outside the app sets the caching headers of its pages.
    ///
    /// ```
    /// use sentry_meta::tower::SentryMetaLayer;
    ///
    /// let layer = SentryMetaLayer::new().mark_private(false);
    /// ```
    pub fn mark_private(mut self, enabled: bool) -> Self {
        self.guard.mark_private = enabled;
        self
    }
}

impl<S> Layer<S> for SentryMetaLayer {
    type Service = SentryMetaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SentryMetaService {
            inner,
            layer: self.clone(),
        }
    }
}

static SHARED_HUB: SetupProblem = SetupProblem::new(
    "sentry-meta: one Sentry Hub is serving several requests, so concurrent \
     requests overwrite each other's transaction and a page may name another request's span. Add \
     sentry::integrations::tower::NewSentryLayer outside SentryMetaLayer: in a ServiceBuilder the \
     order is NewSentryLayer, then SentryMetaLayer (with Router::layer, call .layer() in the \
     reverse order), with no tower Buffer between them (its worker task calls SentryMetaLayer \
     outside the request's Hub: put it outside NewSentryLayer)",
);
static TRANSACTION_OUTSIDE: SetupProblem = SetupProblem::new(
    "sentry-meta: a Sentry transaction is already active when \
     SentryMetaLayer starts the request's, most likely from SentryHttpLayer::enable_transaction(). \
     SentryMetaLayer starts the request's transaction itself, by the same rule as its pages' tags: \
     remove .enable_transaction() (SentryHttpLayer::new() alone may stay, or go: SentryMetaLayer \
     also puts the request's data on events)",
);

/// A Sentry setup in which pages and the SDK could disagree (the tower layer's, the injector's
/// and the actix-web middleware's), and whether it was reported.
pub(crate) struct SetupProblem {
    message: &'static str,
    reported: AtomicBool,
}

impl SetupProblem {
    pub(crate) const fn new(message: &'static str) -> Self {
        Self {
            message,
            reported: AtomicBool::new(false),
        }
    }

    /// A panic in debug builds, so that it is fixed before it ships; a `warn` in release builds,
    /// once in the process (layers are often built per connection or per worker).
    pub(crate) fn report(&self) {
        if cfg!(debug_assertions) {
            panic!("{}", self.message);
        }
        if !self.reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "sentry_meta", "{}", self.message);
        }
    }
}

thread_local! {
    /// The Hub of the last request this thread started, to tell a per-request Hub from a shared
    /// one. A `Weak` keeps the allocation, so another Hub cannot take its address.
    static LAST_HUB: RefCell<Weak<Hub>> = const { RefCell::new(Weak::new()) };
}

/// Whether `hub` is not a Hub of its own for this request: the process's main Hub, or the Hub
/// of the previous request on this thread. (So the first request of a thread that serves every
/// request in its own Hub, without `NewSentryLayer`, passes; the second is reported.)
fn hub_is_shared(hub: &Arc<Hub>) -> bool {
    // The main Hub's address, read once: it lives as long as the process, and `Hub::main()`
    // clones its `Arc`, a write to a cache line that every thread shares, on every request.
    static MAIN_HUB: LazyLock<usize> = LazyLock::new(|| Arc::as_ptr(&Hub::main()).addr());
    if Arc::as_ptr(hub).addr() == *MAIN_HUB {
        return true;
    }
    LAST_HUB.with(|last| {
        let mut last = last.borrow_mut();
        let shared = std::ptr::eq(last.as_ptr(), Arc::as_ptr(hub));
        *last = Arc::downgrade(hub);
        shared
    })
}

/// The service made by [`SentryMetaLayer`].
#[derive(Debug, Clone)]
pub struct SentryMetaService<S> {
    inner: S,
    layer: SentryMetaLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SentryMetaService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    /// The inner service's body, passed through, or stripped of its tags for a publicly
    /// cacheable page.
    type Response = Response<TraceMetaBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Inside NewSentryLayer this is the request's own Hub.
        let headers = request.headers();
        let (root, transaction, hub) = start_request(
            headers
                .get_all(&SENTRY_TRACE)
                .iter()
                .map(HeaderValue::as_bytes),
            || headers.get_all(&BAGGAGE).iter().map(HeaderValue::as_bytes),
            (
                request.method().as_str(),
                // axum's matched route (the layer inside `Router::layer`); none in a plain stack.
                #[cfg(feature = "axum")]
                (request.extensions().get()).map(axum::extract::MatchedPath::as_str),
                #[cfg(not(feature = "axum"))]
                None,
                request.uri().path(),
            ),
            self.layer.traceparent,
            |with_pii| request_data(&request, with_pii),
            [&SHARED_HUB, &TRANSACTION_OUTSIDE],
        );
        // `sentry-tower`'s `SentryHttpLayer` starts its transaction when it is first polled,
        // after this `call`: seen at this layer's first poll, for one request of the layer (on
        // a Hub of the request's own: on a shared one, another request's may be active).
        let check_outside = transaction.is_some()
            && hub.is_some()
            && !self.layer.outside_checked.load(Ordering::Relaxed);
        request.extensions_mut().insert(root.clone());
        let head = request.method() == Method::HEAD;

        let future = root.clone().sync_scope(|| self.inner.call(request));
        ResponseFuture {
            inner: root.clone().scope(future),
            root,
            check_outside,
            hub,
            transaction,
            layer: self.layer.clone(),
            head,
        }
    }
}

/// The start of a request, for the tower layer and the actix-web middleware.
///
/// Its root: the continuation decision on its `sentry-trace` (several are one malformed value:
/// see "Several `sentry-trace` values" in `docs/design.md`) and every `baggage` value, and the
/// transaction name `sentry-tower` gives the request: `"{METHOD} {route}"` with the matched
/// `route` (axum's `GET /users/{id}`, actix's pattern: a route name), or else the raw `path` (a
/// URL). With an enabled client in the current Hub (the request's own, inside `NewSentryLayer`
/// or `sentry_actix::Sentry`), its server transaction, with `data` made for the client's
/// `send_default_pii`: started before the inner service is called, so that a service that does
/// its work in `call` (and answers with a ready future) renders its pages and captures its
/// events inside it. A Hub shared between requests and a transaction already active are
/// reported (`shared` and `outside`, in that order). Returns the root, the transaction, and the
/// Hub when it is the request's own (with a client), for a streamed page.
pub(crate) fn start_request<'a, B: Iterator<Item = &'a [u8]>>(
    sentry_trace: impl Iterator<Item = &'a [u8]>,
    baggage: impl FnOnce() -> B,
    (method, route, path): (&str, Option<&str>, &str),
    traceparent: bool,
    data: impl FnOnce(bool) -> sentry_core::protocol::Request,
    [shared, outside]: [&SetupProblem; 2],
) -> (Arc<TraceRoot>, Option<RequestTransaction>, Option<Arc<Hub>>) {
    let hub = Hub::current();
    let client = hub.client().filter(|client| client.is_enabled());
    // Baggage only counts with a `sentry-trace`: without one it is not even looked up.
    let mut root = match crate::one_sentry_trace(sentry_trace) {
        None => TraceRoot::for_client(client.as_ref(), None, []),
        sentry_trace => TraceRoot::for_client(client.as_ref(), sentry_trace, baggage()),
    };
    match route {
        Some(route) => root.set_route(method, route),
        None => root.set_transaction(format!("{method} {path}"), TransactionSource::Url),
    }
    root.set_traceparent(traceparent);
    let Some(client) = client else {
        return (Arc::new(root), None, None);
    };
    let shared_hub = hub_is_shared(&hub);
    if shared_hub {
        shared.report();
    }
    let data = data(client.options().send_default_pii);
    let (root, started) = RequestTransaction::start(hub.clone(), &client, root, data, shared_hub);
    if started.is_none() {
        // A layer outside started a transaction by its own continuation rule.
        outside.report();
    }
    (root, started, (!shared_hub).then_some(hub))
}

pin_project_lite::pin_project! {
    /// The response future of [`SentryMetaService`]: the inner future, run inside the request's
    /// [`TraceRoot::scope`] and server transaction.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Scoped<F>,
        root: Arc<TraceRoot>,
        // Whether the first poll checks for a transaction that a layer outside started.
        check_outside: bool,
        // The request's own Hub (with a Sentry client), for a streamed page.
        hub: Option<Arc<Hub>>,
        // Finished with the response, or as aborted when the future is dropped before it.
        transaction: Option<RequestTransaction>,
        layer: SentryMetaLayer,
        // The response to HEAD is judged by its headers: its body may be empty.
        head: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<TraceMetaBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if std::mem::take(this.check_outside) {
            this.layer.outside_checked.store(true, Ordering::Relaxed);
            if (this.transaction.as_ref()).is_some_and(RequestTransaction::is_replaced) {
                TRANSACTION_OUTSIDE.report();
            }
        }
        // The cache guard, the `private` mark and the `Server-Timing` header ([`Guard::apply`]).
        let result = ready!(this.inner.poll(cx)).map(|mut response| {
            let hub = this.hub.take();
            let length = response.body().size_hint().exact();
            // A streamed page may render as the server polls its body, after the handler: it is
            // polled inside the request's root and Hub.
            let streamed_page = length.is_none()
                && cache::page_type(cache::content_type_lines(response.headers()))
                    != PageType::Other;
            let page = Page {
                status: response.status(),
                head: *this.head,
                empty: length == Some(0),
                streamed: length.is_none(),
            };
            let rewrite = (this.layer.guard).apply(response.headers_mut(), page, this.root);
            let request = streamed_page.then(|| (this.root.clone(), hub));
            response.map(|body| TraceMetaBody::guarded(body, rewrite, request))
        });
        if let Some(transaction) = this.transaction.take() {
            // The response's status, or none when the service failed.
            transaction.finish(result.as_ref().ok().map(Response::status));
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubs_are_told_apart() {
        let a = Arc::new(Hub::new(None, Default::default()));
        let b = Arc::new(Hub::new(None, Default::default()));
        assert!(!hub_is_shared(&a));
        assert!(!hub_is_shared(&b));
        assert!(hub_is_shared(&b));
        assert!(hub_is_shared(&Hub::main()));
    }
}
