//! The per-request trace root, and how helpers find it during a request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::continuation::{Continuation, ContinuationPolicy, IncomingTrace};
use crate::dsc::TransactionSource;
use crate::ids::{SpanId, TraceId};
use crate::meta::{PageDsc, SerializedDsc, TraceMeta};
use crate::sentry_trace::SentryTrace;

/// What one request knows about the root of its trace: either the caller's trace with its
/// frozen DSC, or a new trace; and, once the integration has started the request's server span,
/// that span, its sampling decision and the head DSC of a new trace, which is all a page needs.
///
/// A web framework integration makes one per request (see [`TraceRoot::from_headers`]) and runs
/// the request inside [`TraceRoot::scope`]; template helpers then find it with
/// [`TraceRoot::current`], on whatever thread the request's future is polled.
///
/// ```
/// use std::sync::Arc;
/// use sentry_meta_core::{ContinuationPolicy, TraceRoot};
///
/// let root = Arc::new(TraceRoot::from_headers(
///     Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
///     [&b"sentry-release=1.0"[..]],
///     &ContinuationPolicy::default(),
/// ));
/// let handler = async {
///     let root = TraceRoot::current().expect("inside the scope");
///     root.trace_id().to_string()
/// };
/// let trace_id = futures_lite_block_on(root.scope(handler));
/// assert_eq!(trace_id, "771a43a4192642f0b136d5159a501700");
/// assert!(TraceRoot::current().is_none());
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
#[derive(Debug)]
pub struct TraceRoot {
    /// The caller's, or the fresh one of a new trace.
    trace_id: TraceId,
    /// The caller's `sentry-trace` and the DSC frozen from its `baggage`, when the root
    /// continues its trace.
    continued: Option<(SentryTrace, SerializedDsc)>,
    transaction: Option<(Arc<str>, TransactionSource)>,
    /// The id of the request's own span: the one the integration gives the request's server
    /// span, and the parent that pages name when no span is active (see
    /// [`span_id`](Self::span_id)).
    span_id: SpanId,
    /// The request's server span, recorded by the integration that started it before sharing
    /// the root: what pages name, without asking the tracing SDK.
    server_span: Option<ServerSpan>,
    /// The head DSC serialized once, from the second page of the request on (the first writes
    /// it straight from its template, see [`page_meta`](Self::page_meta)).
    serialized_head: OnceLock<SerializedDsc>,
    /// What became of the pages' tags: [`RENDERED`] once a page has asked for them, [`WITHHELD`]
    /// once a cache guard has withheld them. One atomic for both, so that of a page taking them
    /// and a guard withholding them, whichever comes second knows of the first.
    tags: AtomicU8,
    /// Whether a page of this request has been rendered in a render span: most never are, and
    /// their pages skip the look-up of this thread's (see [`page_span`](Self::page_span); its
    /// price is in "Performance notes" of `docs/benchmarks.md`).
    render_spans: AtomicBool,
    traceparent: bool,
}

/// The request's server span as the integration recorded it.
#[derive(Debug)]
struct ServerSpan {
    span_id: SpanId,
    /// The trace's sampling decision (`None`: deferred).
    sampled: Option<bool>,
    /// The head DSC of a new trace, for this decision and transaction name; `None` for a
    /// continued trace, whose pages write the frozen DSC.
    head_dsc: Option<PageDsc>,
}

impl TraceRoot {
    /// The root of a continued trace.
    pub fn continued(incoming: IncomingTrace) -> Self {
        let (trace, dsc) = (incoming.sentry_trace, SerializedDsc::new(incoming.dsc));
        Self::of(trace.trace_id, SpanId::random(), Some((trace, dsc)))
    }

    /// The root of a new trace, with a fresh trace id: the one the request's transaction
    /// starts, and pages write.
    pub fn new_trace() -> Self {
        let (trace_id, span_id) = crate::ids::random_trace_and_span();
        Self::of(trace_id, span_id, None)
    }

    /// A root of trace `trace_id` with its own span `span_id`, that knows nothing else yet.
    fn of(
        trace_id: TraceId,
        span_id: SpanId,
        continued: Option<(SentryTrace, SerializedDsc)>,
    ) -> Self {
        Self {
            trace_id,
            continued,
            transaction: None,
            span_id,
            server_span: None,
            serialized_head: OnceLock::new(),
            tags: AtomicU8::new(0),
            render_spans: AtomicBool::new(false),
            traceparent: false,
        }
    }

    /// Also write the W3C `traceparent` tag on this request's pages (off by default).
    #[inline]
    pub fn set_traceparent(&mut self, enabled: bool) {
        self.traceparent = enabled;
    }

    /// [`set_traceparent`](Self::set_traceparent), for a root built in one expression. Like
    /// every builder of the root, it moves the root, which is larger than the compiler copies
    /// inline: an integration uses the setters on each request's path (see "Performance notes"
    /// in `docs/benchmarks.md`).
    #[must_use]
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.set_traceparent(enabled);
        self
    }

    /// Whether this request's pages also carry a W3C `traceparent` tag (see
    /// [`set_traceparent`](Self::set_traceparent)).
    pub fn writes_traceparent(&self) -> bool {
        self.traceparent
    }

    /// The id of the request's own span, drawn with the root: the integration gives it to the
    /// request's server span (see `TraceRoot::set_server_span` of the `sentry` feature), and
    /// until a server span is recorded, pages rendered with no active span name it as their
    /// parent, so that every render of the request agrees.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Records the request's server span (see `TraceRoot::set_server_span` of the `sentry`
    /// feature) and, for a new trace, the head DSC its pages write.
    pub(crate) fn record_server_span(
        &mut self,
        span_id: SpanId,
        sampled: Option<bool>,
        head_dsc: Option<PageDsc>,
    ) {
        self.server_span = Some(ServerSpan {
            span_id,
            sampled,
            head_dsc,
        });
    }

    /// The request's server span and sampling decision, once recorded.
    pub fn server_span(&self) -> Option<(SpanId, Option<bool>)> {
        self.server_span
            .as_ref()
            .map(|server| (server.span_id, server.sampled))
    }

    /// Runs `f` with `span_id`, a child of the server span, as the span this request's pages
    /// rendered by `f` name: the span that renders them. It holds on this thread, where `f`
    /// runs: a render of the same request on another thread meanwhile names its own (or the
    /// server span). The previous one is restored afterwards, also when `f` panics.
    pub fn in_render_span<R>(&self, span_id: SpanId, f: impl FnOnce() -> R) -> R {
        struct Restore((usize, SpanId));
        impl Drop for Restore {
            fn drop(&mut self) {
                RENDER_SPAN.set(self.0);
            }
        }
        self.render_spans.store(true, Ordering::Relaxed);
        let _restore = Restore(RENDER_SPAN.replace((self.address(), span_id)));
        f()
    }

    /// The span pages of this request name now, with the trace's decision: the render span
    /// they are rendered in on this thread, else the server span; `None` before the server span
    /// is recorded.
    pub fn page_span(&self) -> Option<(SpanId, Option<bool>)> {
        let (server, sampled) = self.server_span()?;
        let span = match self.render_spans.load(Ordering::Relaxed) {
            true => self.render_span().unwrap_or(server),
            false => server,
        };
        Some((span, sampled))
    }

    /// The render span a page of this root is rendered in on this thread, if any. Out of line:
    /// inlined, it made every page's path longer (see "Performance notes").
    #[cold]
    #[inline(never)]
    fn render_span(&self) -> Option<SpanId> {
        let (root, span) = RENDER_SPAN.get();
        (root == self.address()).then_some(span)
    }

    /// The root's address: which root a render span on this thread belongs to. While one is
    /// set, [`in_render_span`](Self::in_render_span) holds the root borrowed, so no other root
    /// can take the address.
    fn address(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Whether a page of this request has taken its tags ([`TraceMeta::current`] inside the
    /// root's scope: the root's, or the Hub's span's before the integration has recorded the
    /// server span; also one that asked for the root's own after they were withheld, and got
    /// none; the DSC of an envelope sent during the request does not count): the response may
    /// carry them, so a cache guard that cannot take them out of its body must keep it from
    /// shared caches.
    pub fn rendered(&self) -> bool {
        self.tags.load(Ordering::Relaxed) & RENDERED != 0
    }

    /// Withholds the tags from the pages of this request rendered from now on:
    /// [`TraceMeta::current`] gives `None` inside the root's scope for the rest of the request
    /// (in every task that runs in it), rather than the Hub's span's. A cache guard calls it
    /// once it has found that shared caches may store the response, whose body may still
    /// render as it streams. Returns whether a page had taken them already
    /// ([`rendered`](Self::rendered)): the guard then has those to take out, or the response to
    /// keep from shared caches. Tags rendered outside the root's scope (a task spawned with the
    /// request's Hub alone) are neither withheld nor counted.
    pub fn withhold_tags(&self) -> bool {
        self.tags.fetch_or(WITHHELD, Ordering::Relaxed) & RENDERED != 0
    }

    /// Whether a cache guard has withheld the tags ([`withhold_tags`](Self::withhold_tags)).
    pub(crate) fn withholds_tags(&self) -> bool {
        self.tags.load(Ordering::Relaxed) & WITHHELD != 0
    }

    /// Records that a page inside this root takes tags made elsewhere (from the Hub's span, as
    /// the root does not know its server span); `false`, and the page must go without them,
    /// once they are withheld.
    pub(crate) fn take_other_tags(&self) -> bool {
        self.tags.fetch_or(RENDERED, Ordering::Relaxed) & WITHHELD == 0
    }

    /// The tags of a page of this request, from what the root knows alone: `None` until the
    /// integration has recorded the server span, and once the tags are withheld.
    /// `render`: for a page, which [`rendered`](Self::rendered) then reports; not for the DSC
    /// of an envelope, which is never withheld.
    pub(crate) fn page_meta(&self, render: bool) -> Option<TraceMeta> {
        let (span_id, sampled) = self.page_span()?;
        let state = match render {
            // Set even when withheld: the guard that withheld the tags has read what it needs.
            true => self.tags.fetch_or(RENDERED, Ordering::Relaxed),
            false => self.tags.load(Ordering::Relaxed) & RENDERED,
        };
        if state & WITHHELD != 0 {
            return None;
        }
        let head = self.server_span.as_ref()?.head_dsc.as_ref();
        let dsc = match (self.frozen_dsc(), head) {
            (Some(dsc), _) => Some(PageDsc::Serialized(dsc.clone())),
            // Most requests render one page: it writes the DSC from the template, with no
            // allocation; a second render serializes it once for all that follow.
            (None, Some(head)) if state & RENDERED != 0 => {
                let dsc = self
                    .serialized_head
                    .get_or_init(|| head.serialized(self.trace_id));
                Some(PageDsc::Serialized(dsc.clone()))
            }
            (None, head) => head.cloned(),
        };
        let meta = TraceMeta::with_page_dsc(self.trace_id(), span_id, sampled, dsc);
        Some(meta.traceparent(self.traceparent))
    }

    /// Names the request's server transaction (for `sentry-transaction` in a head DSC), e.g.
    /// `GET /users/{id}` with [`TransactionSource::Route`]. The Sentry SDK gives no way to read a
    /// running transaction's name back, so the integration that starts it says it here.
    #[inline]
    pub fn set_transaction(&mut self, name: impl Into<Arc<str>>, source: TransactionSource) {
        self.transaction = Some((name.into(), source));
    }

    /// [`set_transaction`](Self::set_transaction), for a root built in one expression (see
    /// [`traceparent`](Self::traceparent())).
    #[must_use]
    pub fn with_transaction(
        mut self,
        name: impl Into<Arc<str>>,
        source: TransactionSource,
    ) -> Self {
        self.set_transaction(name, source);
        self
    }

    /// Names the request's server transaction `"{method} {route}"`, as `sentry-tower` names
    /// it (`GET /users/{id}`), with [`TransactionSource::Route`]. The name is made once per
    /// method and route on each thread and shared by their requests, rather than once per
    /// request (its price is in "Performance notes" of `docs/benchmarks.md`).
    ///
    /// ```
    /// use sentry_meta_core::{TraceRoot, TransactionSource};
    /// let mut root = TraceRoot::new_trace();
    /// root.set_route("GET", "/users/{id}");
    /// assert_eq!(root.transaction(), Some(("GET /users/{id}", TransactionSource::Route)));
    /// ```
    #[inline]
    pub fn set_route(&mut self, method: &str, route: &str) {
        self.set_transaction(route_name(method, route), TransactionSource::Route);
    }

    /// [`set_route`](Self::set_route), for a root built in one expression (see
    /// [`traceparent`](Self::traceparent())).
    ///
    /// ```
    /// use sentry_meta_core::{TraceRoot, TransactionSource};
    /// let root = TraceRoot::new_trace().with_route("GET", "/");
    /// assert_eq!(root.transaction(), Some(("GET /", TransactionSource::Route)));
    /// ```
    #[must_use]
    pub fn with_route(mut self, method: &str, route: &str) -> Self {
        self.set_route(method, route);
        self
    }

    /// The server transaction's name and its source, if the integration named it.
    pub fn transaction(&self) -> Option<(&str, TransactionSource)> {
        self.transaction_arc()
            .map(|(name, source)| (&**name, source))
    }

    /// [`transaction`](Self::transaction), with the name as this root holds it.
    pub(crate) fn transaction_arc(&self) -> Option<(&Arc<str>, TransactionSource)> {
        self.transaction
            .as_ref()
            .map(|(name, source)| (name, *source))
    }

    /// The root for a request with these headers (see [`Continuation::decide`]).
    pub fn from_headers<'a>(
        sentry_trace: Option<&[u8]>,
        baggage: impl IntoIterator<Item = &'a [u8]>,
        policy: &ContinuationPolicy,
    ) -> Self {
        match Continuation::decide(sentry_trace, baggage, policy) {
            Continuation::Continue(incoming) => Self::continued(incoming),
            Continuation::NewTrace(_) => Self::new_trace(),
        }
    }

    /// The trace id of the root: the caller's, or the fresh one of a new trace.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The caller's `sentry-trace`, when the trace was continued.
    pub fn incoming(&self) -> Option<&SentryTrace> {
        self.continued.as_ref().map(|(incoming, _)| incoming)
    }

    /// The frozen DSC of a continued trace.
    pub fn frozen_dsc(&self) -> Option<&SerializedDsc> {
        self.continued.as_ref().map(|(_, dsc)| dsc)
    }

    /// The frozen DSC when this root continued trace `trace_id`: a DSC is never handed out
    /// for a trace other than its own.
    pub(crate) fn frozen_dsc_of(&self, trace_id: TraceId) -> Option<&SerializedDsc> {
        self.frozen_dsc().filter(|_| self.trace_id() == trace_id)
    }

    /// The root of the request being handled on this thread, if a [`scope`](Self::scope) is
    /// being polled.
    pub fn current() -> Option<Arc<TraceRoot>> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Calls `f` with the current root, borrowed rather than cloned (no reference count
    /// touched). `f` runs no code but this crate's: installing a root while the cell is borrowed
    /// would panic.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TraceRoot>) -> R) -> R {
        CURRENT.with(|current| match current.try_borrow() {
            Ok(root) => f(root.as_deref()),
            Err(_) => f(None),
        })
    }

    /// Runs `future` with `self` as the [`current`](Self::current) root each time it is polled.
    pub fn scope<F: Future>(self: Arc<Self>, future: F) -> Scoped<F> {
        Scoped {
            root: Some(self),
            future,
        }
    }

    /// Runs `f` with `self` as the current root.
    pub fn sync_scope<R>(self: Arc<Self>, f: impl FnOnce() -> R) -> R {
        let _guard = Swap::enter(Some(self));
        f()
    }
}

/// How many route names a thread keeps (see [`route_name`]): a few dozen cover an
/// application's routes; a name beyond costs an allocation per request, not memory.
const MAX_ROUTE_NAMES: usize = 64;

/// `"{method} {route}"`, from the names this thread made for earlier requests, or made now
/// (the oldest name out once there are [`MAX_ROUTE_NAMES`]).
fn route_name(method: &str, route: &str) -> Arc<str> {
    let is_this = |name: &str| {
        name.len() == method.len() + 1 + route.len()
            && name.starts_with(method)
            && name.as_bytes().get(method.len()) == Some(&b' ')
            && name.ends_with(route)
    };
    ROUTE_NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(name) = names.iter().find(|name| is_this(name)) {
            return name.clone();
        }
        let name = Arc::<str>::from(format!("{method} {route}"));
        if names.len() == MAX_ROUTE_NAMES {
            names.remove(0);
        }
        names.push(name.clone());
        name
    })
}

/// [`TraceRoot::tags`]: a page has asked for them.
const RENDERED: u8 = 1;
/// [`TraceRoot::tags`]: a cache guard has withheld them.
const WITHHELD: u8 = 2;

thread_local! {
    static CURRENT: RefCell<Option<Arc<TraceRoot>>> = const { RefCell::new(None) };
    /// The render span a page is being rendered in on this thread, and the address of its root
    /// (see [`TraceRoot::in_render_span`]; address 0, which no root has, when there is none): a
    /// render runs on one thread, so two renders of one request that overlap on two threads each
    /// name their own span.
    static RENDER_SPAN: Cell<(usize, SpanId)> = const { Cell::new((0, SpanId::from_bytes([0; 8]))) };
    /// The route names made on this thread (see [`route_name`]).
    static ROUTE_NAMES: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Restores the previous current root when dropped, so a panic inside a poll cannot leave the
/// wrong root installed on the thread. Holds the root to put back; `None` once it has been put
/// back.
struct Swap(Option<Option<Arc<TraceRoot>>>);

impl Swap {
    fn enter(root: Option<Arc<TraceRoot>>) -> Self {
        Self(Some(CURRENT.with(|current| current.replace(root))))
    }

    /// Puts the previous root back and returns the one this swap installed.
    fn leave(mut self) -> Option<Arc<TraceRoot>> {
        let previous = self.0.take().flatten();
        CURRENT.with(|current| current.replace(previous))
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            CURRENT.with(|current| current.replace(previous));
        }
    }
}

pin_project_lite::pin_project! {
    /// A future run with a [`TraceRoot`] as the current root; made by [`TraceRoot::scope`].
    pub struct Scoped<F> {
        root: Option<Arc<TraceRoot>>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let swap = Swap::enter(this.root.take());
        let result = this.future.poll(cx);
        // Take the root back out for the next poll.
        *this.root = swap.leave();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two renders of one request in render spans that overlap on two threads each name their
    /// own span (A enters, B enters, A leaves, B leaves), and a page after both names the
    /// server span; nested render spans restore the outer one, also after a panic.
    #[test]
    fn render_spans_hold_on_their_own_thread() {
        let mut root = TraceRoot::new_trace();
        let server = SpanId::random();
        root.record_server_span(server, Some(true), None);
        let root = Arc::new(root);
        let (a, b) = (SpanId::random(), SpanId::random());
        let barrier = std::sync::Barrier::new(2);
        let (seen_a, seen_b) = std::thread::scope(|threads| {
            let page_a = threads.spawn(|| {
                let seen = root.in_render_span(a, || {
                    barrier.wait(); // A is in its render span
                    barrier.wait(); // and so is B
                    root.page_span()
                });
                barrier.wait(); // A has left
                seen
            });
            let page_b = threads.spawn(|| {
                barrier.wait();
                root.in_render_span(b, || {
                    barrier.wait();
                    barrier.wait();
                    root.page_span()
                })
            });
            (page_a.join().unwrap(), page_b.join().unwrap())
        });
        assert_eq!(seen_a, Some((a, Some(true))));
        assert_eq!(seen_b, Some((b, Some(true))));
        assert_eq!(root.page_span(), Some((server, Some(true))));

        let mut other = TraceRoot::new_trace();
        other.record_server_span(SpanId::random(), None, None);
        let (outer, inner) = (SpanId::random(), SpanId::random());
        root.in_render_span(outer, || {
            // Another request's root on this thread does not take this one's render span.
            assert_ne!(other.page_span().map(|(span, _)| span), Some(outer));
            let panicked = std::panic::catch_unwind(|| {
                root.in_render_span(inner, || {
                    assert_eq!(root.page_span(), Some((inner, Some(true))));
                    panic!("the template failed");
                })
            });
            assert!(panicked.is_err());
            assert_eq!(root.page_span(), Some((outer, Some(true))));
        });
        assert_eq!(root.page_span(), Some((server, Some(true))));
    }

    /// A route's name is `"{method} {route}"`, made once per thread and shared by the requests
    /// of the route; names beyond the bound are made per request and still right.
    #[test]
    fn route_names_are_shared_and_exact() {
        fn name(method: &str, route: &str) -> Arc<str> {
            let mut root = TraceRoot::new_trace();
            root.set_route(method, route);
            let (name, source) = root.transaction.expect("named");
            assert_eq!(source, TransactionSource::Route);
            name
        }
        let first = name("GET", "/users/{id}");
        assert_eq!(&*first, "GET /users/{id}");
        assert!(Arc::ptr_eq(&first, &name("GET", "/users/{id}")));
        for (method, route, expected) in [
            ("POST", "/users/{id}", "POST /users/{id}"),
            ("GET", "/users/{id}/x", "GET /users/{id}/x"),
            ("GE", "T /users/{id}", "GE T /users/{id}"),
            ("GET", "", "GET "),
            ("", "/é", " /é"),
        ] {
            assert_eq!(&*name(method, route), expected);
        }
        for i in 0..2 * MAX_ROUTE_NAMES {
            assert_eq!(&*name("GET", &format!("/r{i}")), format!("GET /r{i}"));
        }
        ROUTE_NAMES.with(|names| assert_eq!(names.borrow().len(), MAX_ROUTE_NAMES));
        assert_eq!(&*name("GET", "/users/{id}"), "GET /users/{id}");
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn nested_scopes_restore_outer() {
        let outer = Arc::new(TraceRoot::new_trace());
        let inner = Arc::new(TraceRoot::new_trace());
        let (outer_id, inner_id) = (outer.trace_id(), inner.trace_id());
        let seen = block_on(outer.scope(async move {
            let a = TraceRoot::current().map(|r| r.trace_id());
            let b = inner
                .scope(async { TraceRoot::current().map(|r| r.trace_id()) })
                .await;
            let c = TraceRoot::current().map(|r| r.trace_id());
            (a, b, c)
        }));
        assert_eq!(seen, (Some(outer_id), Some(inner_id), Some(outer_id)));
        assert!(TraceRoot::current().is_none());
    }

    #[test]
    fn continued_never_mixes() {
        let root = TraceRoot::from_headers(
            Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
            [&b"sentry-release=frozen"[..]],
            &ContinuationPolicy::default(),
        );
        let frozen = root.frozen_dsc_of(root.trace_id()).expect("its own trace");
        assert_eq!(frozen.dsc().get(crate::DscKey::Release), Some("frozen"));
        assert!(root.frozen_dsc_of(TraceId::random()).is_none());
    }
}
