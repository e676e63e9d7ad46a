//! Continue the server's Sentry trace in the browser.
//!
//! A Rust web app that renders HTML on the server puts one call in its layout's `<head>`, and
//! `sentry-meta` writes the two tags that the Sentry browser SDK reads at page load:
//!
//! ```html
//! <meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/>
//! <meta name="baggage" content="sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=…"/>
//! ```
//!
//! The browser's pageload then becomes a child of the server span that rendered the page, and
//! every `fetch` the page makes carries the same trace on to the API and its database.
//!
//! [`SentryMeta`] is what a template writes; each engine's adapter and the axum integration
//! are features of this crate, and they all call the one renderer of [`sentry_meta_core`], so
//! every template engine writes the same bytes (leptos the same elements and values, in
//! `leptos_meta`'s markup).
//!
//! ```
//! use sentry_meta::{SentryMeta, SpanId, TraceId, TraceMeta};
//!
//! // With an explicit value (no Sentry SDK needed):
//! let meta = SentryMeta::from(TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None));
//! assert!(meta.to_string().starts_with("<meta name=\"sentry-trace\""));
//!
//! // From the current request's span and root (feature `sentry`); empty without a Sentry client:
//! assert_eq!(SentryMeta::current().to_string(), "");
//! ```
//!
//! ## Cargo features
//!
//! - `sentry` (default): read the active span and client from the `sentry` crate.
//! - `askama`: a filter and a function for askama templates.
//! - `minijinja`: a global function `sentry_meta()` for minijinja.
//! - `maud`: [`SentryMeta`] renders as a maud component.
//! - `tera`: a function for tera.
//! - `handlebars`: a helper for handlebars.
//! - `tower`: the layers of any tower HTTP stack (hyper, axum, …) in [`tower`]: the request's
//!   trace root and server transaction, `Server-Timing`, the cache guard and the `</head>`
//!   injection.
//! - `opentelemetry`: the tags of the active OpenTelemetry span, and a propagator for Sentry's
//!   headers ([`opentelemetry`]); `tracing-opentelemetry`: of a `tracing` span as well.
//! - `actix-web`: a middleware and an extractor for actix-web 4 ([`actix`]).
//! - `leptos`: a leptos 0.8 `<SentryMeta/>` component for server-side rendering.
//! - `axum`: `tower`, plus [`SentryMeta`] as an axum extractor and axum's matched route in the
//!   transaction names.

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;

// Named one by one, so that a new item of the core is a decision here too (and a line in
// `docs/public-api/`), not a silent addition to this crate's API.
#[cfg(feature = "sentry")]
pub use sentry_meta_core::render_span;
pub use sentry_meta_core::{
    Baggage, Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext, IncomingTrace,
    MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, NewTraceReason, ParseIdError, ParseSentryTraceError,
    SENTRY_PREFIX, SampleRand, Scoped, SentryTrace, SerializedDsc, SpanId, TraceId, TraceMeta,
    TraceRoot, TransactionSource,
};

#[cfg(feature = "actix-web")]
pub mod actix;
#[cfg(feature = "askama")]
pub mod askama;
#[cfg(feature = "handlebars")]
pub mod handlebars;
#[cfg(any(feature = "tera", feature = "handlebars"))]
mod json;
#[cfg(feature = "leptos")]
pub mod leptos;
#[cfg(feature = "maud")]
pub mod maud;
#[cfg(feature = "minijinja")]
pub mod minijinja;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
#[cfg(feature = "tera")]
pub mod tera;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "sentry")]
mod transport;

#[cfg(feature = "sentry")]
pub use transport::DscTransport;

/// The trace tags of a page, or nothing: what a template writes in its `<head>`.
///
/// It displays as the tags of [`TraceMeta`] (already HTML-escaped: template engines must not
/// escape it again, and the adapters mark it safe), or as nothing when there is no trace to
/// continue (Sentry not initialized).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentryMeta(Option<TraceMeta>);

impl SentryMeta {
    /// The tags for the current request: the server span recorded in the request's trace root
    /// (or, without one, the active span of the current Sentry Hub) and the root's DSC (see
    /// [`TraceMeta::current`]); none once the cache guard has withheld them from a response
    /// that shared caches may store ([`TraceRoot::withhold_tags`]).
    #[cfg(feature = "sentry")]
    pub fn current() -> Self {
        Self(TraceMeta::current())
    }

    /// The tags of the request whose root the framework handed over (from the request's
    /// extensions), else of [`current`](Self::current): for the extractors.
    #[cfg(any(feature = "axum", feature = "actix-web"))]
    pub(crate) fn of_root(root: Option<std::sync::Arc<TraceRoot>>) -> Self {
        root.map_or_else(Self::current, |root| root.sync_scope(Self::current))
    }

    /// What a helper renders when no value is passed to it: [`current`](Self::current), or no
    /// tags without the `sentry` feature.
    #[allow(dead_code)] // Unused when no template adapter is enabled.
    pub(crate) fn ambient() -> Self {
        #[cfg(feature = "sentry")]
        return Self::current();
        #[cfg(not(feature = "sentry"))]
        return Self::none();
    }

    /// No tags.
    pub const fn none() -> Self {
        Self(None)
    }

    /// The value, if there is one.
    pub fn trace_meta(&self) -> Option<&TraceMeta> {
        self.0.as_ref()
    }

    /// The tags as a new string (empty when there are none), for engines whose helpers must
    /// return a string.
    pub fn to_html(&self) -> String {
        self.0.as_ref().map(TraceMeta::to_html).unwrap_or_default()
    }

    /// Appends the tags to `out` (nothing when there are none).
    pub fn render_into(&self, out: &mut String) {
        if let Some(meta) = &self.0 {
            meta.render_into(out);
        }
    }
}

/// The `sentry-trace` value to decide on: the one value, or, for several, one malformed value,
/// so that the request starts a new trace (see "Several `sentry-trace` values" in
/// `docs/design.md`).
#[cfg(any(feature = "tower", feature = "opentelemetry"))]
pub(crate) fn one_sentry_trace<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let first = values.next()?;
    Some(match values.next() {
        None => first,
        Some(_) => b"several sentry-trace headers",
    })
}

/// The tags of `root`'s request, from the root alone: `None` until the request's server span is
/// recorded (for `Server-Timing` and leptos, whose current Hub may be another request's).
#[cfg(any(feature = "tower", feature = "leptos"))]
pub(crate) fn request_meta(root: &std::sync::Arc<TraceRoot>) -> Option<TraceMeta> {
    root.server_span()?;
    root.clone().sync_scope(TraceMeta::current)
}

impl From<TraceMeta> for SentryMeta {
    fn from(meta: TraceMeta) -> Self {
        Self(Some(meta))
    }
}

impl From<Option<TraceMeta>> for SentryMeta {
    fn from(meta: Option<TraceMeta>) -> Self {
        Self(meta)
    }
}

impl fmt::Display for SentryMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_ref().map_or(Ok(()), |meta| meta.write_html(f))
    }
}

/// The README's examples, compiled and run as doc tests so that they stay true.
#[cfg(all(
    doctest,
    feature = "askama",
    feature = "minijinja",
    feature = "maud",
    feature = "tera",
    feature = "handlebars",
    feature = "axum",
    feature = "leptos",
    feature = "tracing-opentelemetry",
    feature = "actix-web"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
