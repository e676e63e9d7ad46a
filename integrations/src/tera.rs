//! The tags in [tera](https://docs.rs/tera) templates (feature `tera`).
//!
//! [`register`] adds a function `sentry_meta()`; call it once in the `<head>` of the base layout
//! that every page extends. The function is marked safe, so auto-escaping leaves the (already
//! escaped) tags alone and no `| safe` is needed.
//!
//! ```
//! use tera::{Context, Tera};
//!
//! let mut tera = Tera::default();
//! sentry_meta::tera::register(&mut tera);
//! tera.add_raw_templates([
//!     ("base.html", "<head>{{ sentry_meta() }}</head>{% block body %}{% endblock %}"),
//!     ("page.html", r#"{% extends "base.html" %}{% block body %}hi{% endblock %}"#),
//! ])?;
//!
//! // In a request, this writes the current span's tags; without a Sentry client, nothing.
//! assert_eq!(tera.render("page.html", &Context::new())?, "<head></head>hi");
//! # Ok::<(), tera::Error>(())
//! ```
//!
//! A tera function sees only its arguments, not the render context, so a value the handler
//! already has is passed as one: put [`value`] in the context and write
//! `{{ sentry_meta(meta=trace) }}`. A `null` argument means the current request's tags; any
//! other argument name is an error.
//!
//! Tera marks a function's output safe only where the function is called: the tags kept in a
//! variable (`{% set tags = sentry_meta() %}`) are escaped again when written, unless written
//! as `{{ tags | safe }}`.

use std::collections::HashMap;

use tera::{Function, Tera, Value};

use crate::SentryMeta;
#[cfg(doc)]
use crate::TraceMeta;

/// Registers [`SentryMetaFunction`] as the function `sentry_meta()`.
///
/// ```
/// let mut tera = tera::Tera::default();
/// sentry_meta::tera::register(&mut tera);
/// assert_eq!(tera.render_str("{{ sentry_meta() }}", &tera::Context::new())?, "");
/// # Ok::<(), tera::Error>(())
/// ```
pub fn register(tera: &mut Tera) {
    tera.register_function("sentry_meta", SentryMetaFunction);
}

/// An explicit value for templates: a [`TraceMeta`], an `Option<TraceMeta>` or a
/// [`SentryMeta`] as tera data (`{"sentry_trace": "…", "baggage": "…"}`), for
/// `{{ sentry_meta(meta=…) }}`.
///
/// The function reads the header values back with the same rules as incoming headers, so data
/// that was changed or written by hand still gives valid, escaped tags, or an error.
///
/// ```
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
/// use tera::{Context, Tera};
///
/// let mut tera = Tera::default();
/// sentry_meta::tera::register(&mut tera);
/// tera.add_raw_template("base.html", "<head>{{ sentry_meta(meta=trace) }}</head>")?;
///
/// let trace = TraceMeta::new(
///     "771a43a4192642f0b136d5159a501700".parse::<TraceId>()?,
///     "b7ad6b7169203331".parse::<SpanId>()?,
///     Some(true),
///     None,
/// );
/// let mut context = Context::new();
/// context.insert("trace", &sentry_meta::tera::value(trace));
/// assert_eq!(
///     tera.render("base.html", &context)?,
///     r#"<head><meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/></head>"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn value(meta: impl Into<SentryMeta>) -> Value {
    crate::json::to_value(&meta.into())
}

/// The tera function `sentry_meta(meta=…)`: the tags of `meta` (made by [`value`]), or of the
/// current request without it; marked safe.
#[derive(Debug, Clone, Copy, Default)]
pub struct SentryMetaFunction;

impl Function for SentryMetaFunction {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        if let Some(name) = args.keys().find(|name| *name != "meta") {
            return Err(tera::Error::msg(format!(
                "sentry_meta() takes one argument, `meta`, not `{name}`"
            )));
        }
        let explicit = match args.get("meta") {
            Some(value) => crate::json::from_value(value).map_err(tera::Error::msg)?,
            None => None,
        };
        let meta = explicit.unwrap_or_else(SentryMeta::ambient);
        Ok(Value::String(meta.to_html()))
    }

    fn is_safe(&self) -> bool {
        // The one renderer of the core crate escapes the tags; escaping them again would write
        // `&lt;meta` into the page.
        true
    }
}

#[cfg(test)]
mod tests {
    use tera::Context;

    use super::*;
    use crate::{SpanId, TraceId, TraceMeta};

    #[test]
    fn not_escaped_in_html_templates() {
        let mut tera = Tera::default();
        register(&mut tera);
        tera.add_raw_template("t.html", "{{ sentry_meta(meta=a) }}{{ lt }}")
            .expect("parses");
        let a = TraceMeta::new(TraceId::random(), SpanId::random(), Some(false), None);
        let mut context = Context::new();
        context.insert("a", &value(a.clone()));
        context.insert("lt", "<");
        let page = tera.render("t.html", &context).expect("renders");
        assert_eq!(page, format!("{}&lt;", a.to_html()));
    }

    /// The error of rendering `template`, with its sources.
    fn render_error(template: &str) -> String {
        let mut tera = Tera::default();
        register(&mut tera);
        let err = tera
            .render_str(template, &Context::new())
            .expect_err("an error");
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            message.push_str(&format!(": {e}"));
            source = e.source();
        }
        message
    }

    #[test]
    fn other_values_are_errors() {
        let message = render_error("{{ sentry_meta(meta='<script>') }}");
        assert!(message.contains("found a string"), "{message}");
    }

    #[test]
    fn other_arguments_are_errors() {
        let message = render_error("{{ sentry_meta(trace=1) }}");
        assert!(message.contains("not `trace`"), "{message}");
    }

    #[test]
    fn kept_in_a_variable_the_tags_need_safe() {
        let mut tera = Tera::default();
        register(&mut tera);
        let a = TraceMeta::new(TraceId::random(), SpanId::random(), Some(false), None);
        let mut context = Context::new();
        context.insert("a", &value(a.clone()));
        let template = "{% set tags = sentry_meta(meta=a) %}{{ tags }}|{{ tags | safe }}";
        tera.add_raw_template("t.html", template).expect("parses");
        let page = tera.render("t.html", &context).expect("renders");
        let escaped = a.to_html().replace('<', "&lt;");
        assert!(page.starts_with(&escaped[..5]), "{page}");
        assert!(page.ends_with(&format!("|{}", a.to_html())), "{page}");
    }
}
