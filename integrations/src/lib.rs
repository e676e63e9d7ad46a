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
//!
//! ## Cargo features
//!
//! - `sentry` (default): read the active span and client from the `sentry` crate.
//! - `askama`, `minijinja`, `maud`, `tera`, `handlebars`: one adapter per template engine.
//! - `axum`: the tower layer, extractor, `Server-Timing`, cache guard and `</head>` injection.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use sentry_meta_core::*;

#[cfg(feature = "askama")]
pub mod askama;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "handlebars")]
pub mod handlebars;
#[cfg(feature = "maud")]
pub mod maud;
#[cfg(feature = "minijinja")]
pub mod minijinja;
#[cfg(feature = "tera")]
pub mod tera;
