//! The tower layers of any HTTP stack (axum, or `hyper` with a `tower` service): continue
//! incoming traces and hand pages their tags.
//!
//! The layers take requests and responses with any [`http_body::Body`]; with the `axum`
//! feature they also name transactions by axum's matched route, and [`SentryMeta`](crate::SentryMeta)
//! is an axum extractor. A plain hyper server is in the README's "any tower stack" quickstart.
//!
//! # Example (axum)
//!
//! ```
//! use axum::{Router, body::Body, http::Request, response::Html, routing::get};
//! use sentry::integrations::tower::NewSentryLayer;
//! use sentry_meta::{DscTransport, SentryMeta, tower::SentryMetaLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! async fn home(meta: SentryMeta) -> Html<String> {
//!     Html(format!(
//!         "<!doctype html><html><head>{meta}<title>Home</title></head><body>…</body></html>"
//!     ))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let _sentry = sentry::init(
//!     sentry::ClientOptions::new()
//!         .dsn("https://public@o1.ingest.sentry.io/2")
//!         .traces_sample_rate(1.0)
//!         // The server's envelopes carry the DSC that its pages write.
//!         .transport(DscTransport::new())
//! #       .transport(DscTransport::wrap(sentry::test::TestTransport::new()))
//! );
//!
//! let app = Router::new().route("/", get(home)).layer(
//!     ServiceBuilder::new()
//!         // A Hub of its own for each request (outermost).
//!         .layer(NewSentryLayer::<Request<Body>>::new_from_top())
//!         // The request's trace root and its server transaction, "GET /", from one decision.
//!         .layer(SentryMetaLayer::new().server_timing(true)),
//! );
//!
//! // A request that continues a browser's or another service's trace:
//! let request = Request::get("/")
//!     .header("sentry-trace", "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1")
//!     .header("baggage", "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-org_id=1")
//!     .body(Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert!(response.headers()["server-timing"].to_str()?.starts_with("sentry-trace;desc="));
//! // No caching headers: no shared cache may keep the page, and its trace, for other visitors.
//! assert_eq!(response.headers()["cache-control"], "private");
//! let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
//! let page = String::from_utf8(body.to_vec())?;
//! assert!(page.contains(r#"<meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-"#));
//! assert!(page.contains(r#"<meta name="baggage" content="sentry-trace_id=771a43a4192642f0b136d5159a501700,"#));
//!
//! // In a real app:
//! // let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! // axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The order of the layers
//!
//! [`SentryMetaLayer`] goes inside `sentry-tower`'s `NewSentryLayer` (a `ServiceBuilder` lists
//! layers outside-in; `Router::layer` wraps what is already there, so chained `.layer()` calls on
//! a `Router` go in the reverse order):
//!
//! 1. `NewSentryLayer::new_from_top()`: a Hub for each request, current while its future runs.
//! 2. `SentryMetaLayer`: decides once whether to continue the caller's trace, and from that
//!    decision makes the request's [`TraceRoot`](crate::TraceRoot) and starts its server
//!    transaction, the Hub's active span. It is finished when the response is ready and stays
//!    the span of the request's Hub, so that an error a layer outside captures from the
//!    response joins the request's trace.
//!
//! Nothing between the two may call the next service from another task: a tower `Buffer`
//! there has its worker call `SentryMetaLayer` outside the request's Hub (reported as a Hub
//! shared between requests). Put such layers outside `NewSentryLayer`.
//!
//! It replaces `SentryHttpLayer::enable_transaction()`, whose transaction would continue
//! incoming traces by the `sentry` crate's own, looser reading of `sentry-trace` (uppercase hex,
//! unknown flags, trailing junk) while pages follow the spec: the two would disagree.
//! `SentryHttpLayer::new()` (request data only) may stay outside it, but is not needed:
//! the layer also puts the request's data on the events captured during the request.
//!
//! A wrong setup fails loudly in debug builds (a panic with what to change) and logs one `warn`
//! (target `sentry_meta`) in release builds: another layer's transaction (one already active
//! when the layer starts the request's, before calling the services inside it, or, at the
//! first request of each layer, one that `SentryHttpLayer::enable_transaction()` outside it
//! starts when first polled), a Hub shared between
//! requests (`NewSentryLayer` missing or inside it), or an [`InjectTraceMetaLayer`] outside
//! `SentryMetaLayer`, where the request's root and transaction are gone (its pages then get no
//! tags). Pages never mix two traces either way: their `sentry-trace` is the request's span,
//! and a DSC is only used for its own trace.
//!
//! Pages name the server transaction, read from the request's trace root (not from the Hub).
//! To name a child span that renders the page, render inside
//! [`render_span`](crate::render_span): it starts a `template.render` child, makes it the Hub's
//! active span, and the span the request's pages name while it runs.
//!
//! # The server's envelopes
//!
//! With [`DscTransport`](crate::DscTransport) in the client options, the transaction's
//! envelope, and those of errors captured during the request (also by a layer outside, from
//! the response, on the request's Hub), carry in their header the DSC the request's pages
//! write: the caller's frozen DSC, or this service's head DSC. Sentry's dynamic sampling then
//! judges the server's and the browser's parts of a trace alike.
//!
//! # What the layer does
//!
//! - Reads the request's `sentry-trace` value (several are passed on as one malformed value, so
//!   they start a new trace: see "Several `sentry-trace` values" in `docs/design.md`) and every
//!   `baggage` value and decides whether to continue the caller's trace, with the org id and
//!   `strict_trace_continuation` of the current Sentry client (see
//!   [`Continuation`](crate::Continuation)). A continued trace passes on the caller's frozen
//!   `sentry-*` baggage; a new one gets a head DSC built once.
//! - Starts the server transaction from that decision: named as `sentry-tower` does,
//!   `"{METHOD} {route}"`, with axum's [`MatchedPath`](axum::extract::MatchedPath) when the
//!   layer is added with `Router::layer` (a route name) or else the path (a URL, left out of the
//!   DSC); op `http.server`; the request's method, URL and headers (sensitive ones only with
//!   `send_default_pii`) on it and on the request's events; the response status; finished as
//!   `aborted` if the request is dropped first.
//! - Puts the `Arc<TraceRoot>` into the request's extensions (`Extension<Arc<TraceRoot>>`).
//! - Opt-in: a `Server-Timing` header on HTML responses ([`SentryMetaLayer::server_timing`]).
//! - Cache guard, from one reading of the response's caching headers ([`Cacheability`]): an
//!   HTML response that shared caches may store and serve to other visitors
//!   ([`is_publicly_cacheable`]: `Cache-Control` with `public`, `s-maxage` or `max-age` > 0 and
//!   neither a bare `no-store` nor a bare `private`; an `Expires` later than `Date` without
//!   `max-age`/`s-maxage`; a `CDN-Cache-Control` or a CDN's own targeted field
//!   (`Cloudflare-CDN-Cache-Control`, …) that gives a lifetime, `public` or no freshness
//!   information, without a bare `no-store` or `private`, `no-cache` or a zero lifetime;
//!   `Surrogate-Control` without `no-store`; nginx's `X-Accel-Expires` with a lifetime: these
//!   whatever `Cache-Control` says) gets no `Server-Timing`, no tags from the request's root
//!   once its headers are judged (a body that renders as it streams takes none), the tags
//!   already rendered into it are removed as it streams ([`strip_trace_meta`]; a compressed
//!   page with tags is made private instead, and so is a response whose `Content-Type` names no
//!   type, which browsers sniff, when it has tags or streams), and a `warn` is logged once per
//!   route; unless
//!   [`SentryMetaLayer::allow_cacheable`]. An HTML response that a shared cache could keep on
//!   its own heuristics (no caching headers at all, or none that give a lifetime or forbid
//!   storing, such as `must-revalidate` or `private="set-cookie"`) keeps its tags and gets
//!   `private` added to its `Cache-Control` (`Cache-Control: private` when it had none); unless
//!   [`SentryMetaLayer::mark_private`]`(false)`. A page that took its tags from the request's
//!   root loses its `ETag` and `Last-Modified`: a client revalidating with them would reuse an
//!   old copy, and its old trace.
//! - For pages that do not write the tags themselves, [`InjectTraceMetaLayer`] (inside this
//!   layer) puts them before `</head>`.
//!
//! # In handlers
//!
//! [`SentryMeta`](crate::SentryMeta) is an extractor, and template helpers call
//! [`SentryMeta::current`](crate::SentryMeta::current) themselves. The incoming header is
//! available typed as well:
//!
//! ```
//! use axum_extra::TypedHeader;
//! use sentry_meta::SentryTrace;
//!
//! async fn api(incoming: Option<TypedHeader<SentryTrace>>) -> String {
//!     match incoming {
//!         Some(TypedHeader(trace)) => format!("called from trace {}", trace.trace_id),
//!         None => "called without a trace".to_owned(),
//!     }
//! }
//! ```
//!
//! Work moved to another task with `tokio::spawn` leaves the request's Hub and root behind; take
//! both along when it renders a page (with the Hub alone, the page names the active span but
//! writes no `baggage`: the request's DSC is the root's; a warning says so once):
//!
//! ```
//! use sentry::Hub;
//! use sentry_meta::{SentryMeta, TraceRoot};
//!
//! async fn handler() -> String {
//!     let (hub, root) = (Hub::current(), TraceRoot::current());
//!     let render = tokio::spawn(async move {
//!         let render = || SentryMeta::current().to_string();
//!         Hub::run(hub, || match root {
//!             Some(root) => root.sync_scope(render),
//!             None => render(),
//!         })
//!     });
//!     render.await.unwrap_or_default()
//! }
//! ```
//!
//! A response body that renders as it is polled (a stream that writes the head when the server
//! first asks for a chunk) runs after the handler has returned: [`SentryMetaLayer`] polls a
//! streamed page (HTML, or a body a browser sniffs, whose length its size hint does not give)
//! inside the request's root, and in the request's own Hub (`NewSentryLayer`'s), so its tags
//! name the request's trace too, and so do the events it captures. The cache guard has judged
//! the response's headers by then, before such a body rendered: when shared caches may store
//! the response, the request's root withholds the tags from the pages rendered from then on
//! ([`TraceRoot::withhold_tags`](crate::TraceRoot::withhold_tags)), so that a body the guard
//! cannot strip (compressed, a charset that is not ASCII-compatible) takes none and keeps its
//! caching headers; one that took them before its headers left, or names no type and streams
//! (a task spawned without the root could write them, unseen), is kept from shared caches.

pub(crate) mod cache;
#[cfg(feature = "axum")]
mod extract;
pub(crate) mod guard;
pub(crate) mod inject;
pub(crate) mod layer;
pub(crate) mod transaction;

pub use cache::{Cacheability, is_publicly_cacheable};
pub use inject::{
    CurrentSentryMeta, InjectTraceMeta, InjectTraceMetaFuture, InjectTraceMetaLayer, TraceMetaBody,
    TraceMetaSource, strip_trace_meta,
};
pub use layer::{ResponseFuture, SentryMetaLayer, SentryMetaService};
