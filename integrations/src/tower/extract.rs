//! [`SentryMeta`] as an axum extractor.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use sentry_meta_core::TraceRoot;

use crate::SentryMeta;

/// The request's tags, for a handler that renders HTML by hand or passes them to a template.
///
/// The value names the span that is active when the extractor runs, in the request's trace root
/// (from the request's extensions, put there by [`SentryMetaLayer`](super::SentryMetaLayer)):
/// the server transaction, as axum runs extractors inside the layers, after `SentryMetaLayer`
/// has started it. To name a child span that the handler starts later, call
/// [`SentryMeta::current`] once it is set on the scope. Without the layer it reads the Hub's
/// active span, as [`SentryMeta::current`] does: with none, each value starts a trace of its
/// own, so take it once per page. Without Sentry the value renders as nothing; the extractor
/// never rejects.
///
/// ```
/// use axum::{Router, response::Html, routing::get};
/// use sentry_meta::SentryMeta;
///
/// async fn page(meta: SentryMeta) -> Html<String> {
///     Html(format!("<!doctype html><html><head>{meta}</head><body>…</body></html>"))
/// }
///
/// let app: Router = Router::new().route("/", get(page));
/// ```
impl<S: Send + Sync> FromRequestParts<S> for SentryMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The request's own root, even where the extractor runs outside the layer's scope (in a
        // middleware inside the layer whose future is polled elsewhere).
        Ok(SentryMeta::of_root(
            parts.extensions.get::<Arc<TraceRoot>>().cloned(),
        ))
    }
}
