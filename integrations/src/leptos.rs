//! A leptos 0.8 `<SentryMeta/>` component: the tags in the document head of a server-rendered
//! page, through `leptos_meta`.
//!
//! The component reads the request's [`TraceRoot`] from the request parts that `leptos_axum`
//! provides in the reactive context (the root is in the request's extensions, put there by
//! [`SentryMetaLayer`](crate::tower::SentryMetaLayer)), and writes the tags of that root with
//! `leptos_meta`'s `<Meta>`, in `leptos_meta`'s markup (`<meta name="…" content="…">`, without
//! the `/>` and line break of the other engines' tags: the same elements and values, not the
//! same bytes). It reads no thread-local or task-local state of the moment it is
//! rendered, so the tags belong to the request being rendered in every SSR mode leptos offers
//! (out-of-order and in-order streaming, partially blocked, async): renders of concurrent
//! requests may interleave on one thread, and streaming goes on after the handler returned.
//!
//! Put `<SentryMeta/>` once in the app's view, in the root component (outside any
//! `<Suspense/>`, so that the tags are known when the head is sent; each `<SentryMeta/>` writes
//! its tags, as each `<Meta>` does) and `<MetaTags/>` in the shell's `<head>`; serve the app with
//! `leptos_axum` behind `sentry_tower`'s layers and [`SentryMetaLayer`](crate::tower::SentryMetaLayer),
//! as for the other engines. The `traceparent` tag follows the layer's setting. Without the
//! layer's root (or before the layer has recorded the request's server span) the component
//! writes nothing rather than tags of another request.
//!
//! Events: leptos runs the async parts of a page (`<Suspense/>`, `Suspend`, resources) in the
//! streaming modes on tasks of its own executor, outside the request's Hub and root. An error
//! captured there is not in the request's trace (the thread's Hub gives it the `sentry` crate's
//! fallback trace, and no DSC). Capture errors where the request runs (the handler, a server
//! function, a resource's result handed back to the view), or use `render_app_async`, which
//! renders the whole page before it answers.
//!
//! ```no_run
//! use leptos::prelude::*;
//! use leptos_meta::{MetaTags, provide_meta_context};
//! use sentry_meta::leptos::SentryMeta;
//!
//! /// The document: `<MetaTags/>` is where `leptos_meta` writes the head tags.
//! fn shell() -> impl IntoView {
//!     view! {
//!         <!DOCTYPE html>
//!         <html>
//!             <head><MetaTags/></head>
//!             <body><App/></body>
//!         </html>
//!     }
//! }
//!
//! #[component]
//! fn App() -> impl IntoView {
//!     provide_meta_context();
//!     view! { <SentryMeta/> <h1>"Hello"</h1> }
//! }
//!
//! // With axum: `Router::new().route("/", get(leptos_axum::render_app_to_stream(shell)))`,
//! // layered with `NewSentryLayer` (outer) and `SentryMetaLayer` (inner).
//! # let _ = shell;
//! ```

use std::sync::Arc;

use http::request::Parts;
use leptos::prelude::*;
use leptos_meta::Meta;
use sentry_meta_core::TraceRoot;

/// The `sentry-trace`, `baggage` (and, when the layer writes it, `traceparent`) `<meta>` tags of
/// the request being rendered, put in the document head through `leptos_meta`.
///
/// Writes nothing when the request has no [`TraceRoot`] with a recorded server span (see the
/// [module docs](self)).
#[component]
pub fn SentryMeta() -> impl IntoView {
    let tags = use_context::<Parts>()
        .as_ref()
        .and_then(|parts| parts.extensions.get::<Arc<TraceRoot>>())
        .and_then(crate::request_meta);
    tags.map(|tags| {
        // `<Meta>` escapes its `content` once, as an attribute: the values go in unescaped.
        let sentry_trace = tags.sentry_trace_header().to_owned();
        let baggage = tags.baggage_header().map(std::borrow::Cow::into_owned);
        let traceparent = tags
            .writes_traceparent()
            .then(|| tags.traceparent_header())
            .flatten();
        view! {
            <Meta name="sentry-trace" content=sentry_trace/>
            {baggage.map(|baggage| view! { <Meta name="baggage" content=baggage/> })}
            {traceparent.map(|value| view! { <Meta name="traceparent" content=value/> })}
        }
    })
}
