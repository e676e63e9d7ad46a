//! Continue the server's Sentry trace in the browser.
//!
//! `sentry-meta` writes the `<meta name="sentry-trace">` and `<meta name="baggage">` tags that
//! make the Sentry browser SDK's pageload a child of the server span that rendered the page.
//! This crate re-exports [`sentry_meta_core`]; template and framework adapters come as features.
//!
//! ```
//! use sentry_meta::{SpanId, TraceId, TraceMeta};
//! let meta = TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None);
//! assert!(meta.to_string().starts_with("<meta name=\"sentry-trace\""));
//! ```

pub use sentry_meta_core::*;
