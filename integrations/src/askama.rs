//! The tags in [askama](https://docs.rs/askama) templates (feature `askama`).
//!
//! Call [`sentry_meta()`] once in the `<head>` of the base layout that every page extends; it
//! writes the tags of the current request. No `|safe` is needed: [`SentryMeta`] is marked as
//! HTML-safe for askama, so the already-escaped tags are not escaped a second time.
//!
//! ```
//! use askama::Template;
//!
//! #[derive(Template)]
//! #[template(ext = "html", source = r#"<head>
//! {{ sentry_meta::askama::sentry_meta() }}
//! </head>"#)]
//! struct Layout;
//!
//! // Without a Sentry client there is no trace to continue, and nothing is written.
//! assert_eq!(Layout.render()?, "<head>\n\n</head>");
//! # Ok::<(), askama::Error>(())
//! ```
//!
//! For a value the handler already has (no Sentry SDK needed), either give the template a
//! [`SentryMeta`] field, written as `{{ sentry }}`, or a [`TraceMeta`] field and the
//! `sentry_meta` filter of [`filters`], written as `{{ trace|sentry_meta }}`.

use std::fmt;

use askama::FastWritable;
use askama::filters::HtmlSafe;
use askama::{Result, Values};

use crate::SentryMeta;
#[cfg(doc)]
use crate::TraceMeta;

/// The tags of the current request: the request's server span (or render span) and the root of
/// the request's trace (see [`SentryMeta::current`]); nothing without a Sentry client.
///
/// ```
/// use askama::Template;
///
/// #[derive(Template)]
/// #[template(ext = "html", source = "{{ sentry_meta::askama::sentry_meta() }}")]
/// struct Head;
///
/// assert_eq!(Head.render()?, "");
/// # Ok::<(), askama::Error>(())
/// ```
#[cfg(feature = "sentry")]
pub fn sentry_meta() -> SentryMeta {
    SentryMeta::current()
}

/// The `sentry_meta` filter, for a value the handler already has (no Sentry SDK needed).
///
/// `{{ trace|sentry_meta }}` writes the tags of a [`TraceMeta`], an `Option<TraceMeta>` or a
/// [`SentryMeta`]; its output is marked safe. askama looks a filter up in the `filters` module
/// next to the template, so bring it in there, with a leading `::` (the filter and the crate
/// have the same name, and a plain `sentry_meta::…` path would be ambiguous), or call it by its
/// path, `{{ trace|sentry_meta::askama::filters::sentry_meta }}`:
///
/// ```
/// use askama::Template;
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
///
/// mod filters {
///     pub use ::sentry_meta::askama::filters::*;
/// }
///
/// #[derive(Template)]
/// #[template(ext = "html", source = "<head>{{ trace|sentry_meta }}</head>")]
/// struct Layout {
///     trace: TraceMeta,
/// }
///
/// let trace = TraceMeta::new(
///     "771a43a4192642f0b136d5159a501700".parse::<TraceId>()?,
///     "b7ad6b7169203331".parse::<SpanId>()?,
///     Some(true),
///     None,
/// );
/// assert_eq!(
///     Layout { trace }.render()?,
///     r#"<head><meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/></head>"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod filters {
    // `askama::filter_fn` turns the function into a filter type and drops its doc comment: the
    // filter is documented on this module.
    #![allow(missing_docs)]

    use super::*;

    #[askama::filter_fn]
    pub fn sentry_meta<T>(meta: &T, _: &dyn Values) -> Result<askama::filters::Safe<SentryMeta>>
    where
        T: Into<SentryMeta> + Clone,
    {
        Ok(askama::filters::Safe(meta.clone().into()))
    }
}

/// The tags are HTML-escaped by the one renderer of the core crate; escaping them again would
/// write `&lt;meta` into the page.
impl HtmlSafe for SentryMeta {}

impl FastWritable for SentryMeta {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn Values) -> Result<()> {
        self.trace_meta()
            .map_or(Ok(()), |meta| Ok(meta.write_html(dest)?))
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use crate::{SentryMeta, SpanId, TraceId, TraceMeta};

    mod filters {
        pub(super) use crate::askama::filters::*;
    }

    fn trace() -> TraceMeta {
        TraceMeta::new(TraceId::random(), SpanId::random(), Some(false), None)
    }

    #[derive(Template)]
    #[template(
        ext = "html",
        source = "{{ field }}|{{ trace|sentry_meta }}|{{ maybe|sentry_meta }}|{{ field|sentry_meta }}|{{ trace|crate::askama::filters::sentry_meta }}"
    )]
    struct Every {
        field: SentryMeta,
        trace: TraceMeta,
        maybe: Option<TraceMeta>,
    }

    #[test]
    fn every_form_writes_the_same_unescaped_tags() {
        let trace = trace();
        let html = trace.to_html();
        let page = Every {
            field: trace.clone().into(),
            trace: trace.clone(),
            maybe: Some(trace),
        }
        .render()
        .expect("renders");
        assert_eq!(page, [&*html; 5].join("|"));
    }

    #[derive(Template)]
    #[template(
        ext = "html",
        source = "{% macro head(m) %}{{ m }}{% endmacro %}\
                  {% let s = field %}{{ s }}|{% call head(field) %}{% endcall %}|\
                  {% if true %}{{ field }}{% endif %}|{% for f in list %}{{ f }}{% endfor %}"
    )]
    struct Nested {
        field: SentryMeta,
        list: Vec<SentryMeta>,
    }

    #[test]
    fn not_escaped_through_let_macro_if_and_for() {
        let trace = trace();
        let page = Nested {
            field: trace.clone().into(),
            list: vec![trace.clone().into()],
        };
        let html = trace.to_html();
        assert_eq!(page.render().expect("renders"), [&*html; 4].join("|"));
    }

    #[derive(Template)]
    #[template(ext = "txt", source = "{{ field }}")]
    struct Text {
        field: SentryMeta,
    }

    #[test]
    fn non_html_templates_write_it_as_is() {
        let trace = trace();
        let page = Text {
            field: trace.clone().into(),
        };
        assert_eq!(page.render().expect("renders"), trace.to_html());
    }
}
