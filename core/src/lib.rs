//! Sentry trace propagation for server-rendered HTML.
//!
//! A page rendered on the server continues the server's trace in the browser when its `<head>`
//! carries two tags that the Sentry browser SDK reads at page load:
//!
//! ```html
//! <meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/>
//! <meta name="baggage" content="sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=…"/>
//! ```
//!
//! This crate is the framework-free core behind the `sentry-meta` crate: the `sentry-trace`
//! header ([`SentryTrace`]), W3C baggage ([`Baggage`]), the Dynamic Sampling Context
//! ([`DynamicSamplingContext`]), the decision to continue an incoming trace ([`Continuation`]),
//! the per-request root ([`TraceRoot`]) and the one renderer ([`TraceMeta`]) that every template
//! adapter calls. With the `sentry` feature, [`TraceMeta::current`] reads the active span and
//! client from the `sentry` crate.
//!
//! ```
//! use sentry_meta_core::{Continuation, ContinuationPolicy, TraceMeta, SpanId};
//!
//! // An incoming request's headers (any framework):
//! let decision = Continuation::decide(
//!     Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
//!     [&b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,othervendor=x"[..]],
//!     &ContinuationPolicy::default(),
//! );
//! let Continuation::Continue(incoming) = decision else { unreachable!() };
//!
//! // The server span that renders the page is a child of the caller's span:
//! let page_span = SpanId::random();
//! let meta = TraceMeta::new(incoming.sentry_trace.trace_id, page_span, Some(true), None);
//! let html = format!("<head>{meta}</head>");
//! assert!(html.contains("771a43a4192642f0b136d5159a501700-"));
//! ```
//!
//! ## Cargo features
//!
//! - `sentry`: build [`TraceMeta`] from the current `sentry` Hub (active span, client options).
//! - `headers`: [`SentryTrace`] implements the `Header` trait of the `headers` crate, so
//!   `TypedHeader<SentryTrace>` extracts it in axum.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod continuation;
mod dsc;
mod ids;
mod sentry_trace;

// The head DSC and the render from the root are reached through the `sentry` feature.
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
mod baggage;
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
mod meta;
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
mod root;
#[cfg(feature = "sentry")]
mod sentry_source;
#[cfg(feature = "headers")]
mod typed_header;

pub use crate::baggage::{Baggage, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};
pub use crate::continuation::{Continuation, ContinuationPolicy, IncomingTrace, NewTraceReason};
pub use crate::dsc::{
    DscKey, DynamicSamplingContext, SENTRY_PREFIX, SampleRand, TransactionSource,
};
pub use crate::ids::{ParseIdError, SpanId, TraceId};
pub use crate::meta::{SerializedDsc, TraceMeta};
pub use crate::root::{Scoped, TraceRoot};
#[cfg(feature = "sentry")]
pub use crate::sentry_source::render_span;
pub use crate::sentry_trace::{ParseSentryTraceError, SentryTrace};

/// Not public API: the contract between sentry-meta-core and sentry-meta, which depends on this
/// crate at an exact version. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::baggage::{RawMember, members};
    pub use crate::meta::markup::*;
    #[cfg(feature = "sentry")]
    pub use crate::sentry_source::{SERVER_ORIGIN, envelope_meta, head_dsc};
}

/// The crate README's example, compiled and run as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
