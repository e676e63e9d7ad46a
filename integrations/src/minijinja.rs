//! The tags in [minijinja](https://docs.rs/minijinja) templates (feature `minijinja`).
//!
//! [`register`] registers a global function `sentry_meta()`; call it once in the
//! `<head>` of the base layout that every page extends. It returns a safe string, so
//! auto-escaping leaves the (already escaped) tags alone and no `|safe` is needed.
//!
//! ```
//! use minijinja::{Environment, context};
//!
//! let mut env = Environment::new();
//! sentry_meta::minijinja::register(&mut env);
//! env.add_template("base.html", "<head>{{ sentry_meta() }}</head><body>{{ body }}</body>")?;
//!
//! // In a request, this writes the current span's tags; without a Sentry client, nothing.
//! let page = env.get_template("base.html")?.render(context!(body => "<hi>"))?;
//! assert_eq!(page, "<head></head><body>&lt;hi&gt;</body>");
//! # Ok::<(), minijinja::Error>(())
//! ```
//!
//! Layouts work the same: with minijinja's `multi_template` feature, pages that
//! `{% extends "base.html" %}` get the tags from the base layout's `<head>`.
//!
//! `sentry_meta()` writes, in this order of precedence:
//!
//! 1. the value passed to it, `{{ sentry_meta(trace) }}`;
//! 2. else the render context's variable [`CONTEXT_VAR`] (`sentry_trace_meta`), which lets a
//!    handler choose the value for a page without touching the layout;
//! 3. else the tags of the current request ([`SentryMeta::current`]).
//!
//! Explicit values are made with [`value`]; an explicit [`SentryMeta::none`] writes nothing.

use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::SentryMeta;
#[cfg(doc)]
use crate::TraceMeta;

/// The name of the render-context variable that [`sentry_meta`] reads an explicit value from.
///
/// ```
/// use minijinja::{Environment, context};
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
///
/// let mut env = Environment::new();
/// sentry_meta::minijinja::register(&mut env);
/// env.add_template("base.html", "<head>{{ sentry_meta() }}</head>")?;
///
/// let trace = TraceMeta::new(
///     "771a43a4192642f0b136d5159a501700".parse::<TraceId>()?,
///     "b7ad6b7169203331".parse::<SpanId>()?,
///     Some(true),
///     None,
/// );
/// let page = env
///     .get_template("base.html")?
///     .render(context!(sentry_trace_meta => sentry_meta::minijinja::value(trace)))?;
/// assert_eq!(
///     page,
///     r#"<head><meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/></head>"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CONTEXT_VAR: &str = "sentry_trace_meta";

/// Registers the global function `sentry_meta()` in `env`.
///
/// ```
/// let mut env = minijinja::Environment::new();
/// sentry_meta::minijinja::register(&mut env);
/// assert_eq!(env.render_str("{{ sentry_meta() }}", ())?, "");
/// # Ok::<(), minijinja::Error>(())
/// ```
pub fn register(env: &mut Environment<'_>) {
    env.add_function("sentry_meta", sentry_meta);
}

/// An explicit value for templates: a [`TraceMeta`], an `Option<TraceMeta>` or a
/// [`SentryMeta`], as a minijinja value to put in the render context (under [`CONTEXT_VAR`]) or
/// to pass to `sentry_meta()`.
///
/// ```
/// use minijinja::{Environment, context};
/// use sentry_meta::{SentryMeta, SpanId, TraceId, TraceMeta};
///
/// let mut env = Environment::new();
/// sentry_meta::minijinja::register(&mut env);
/// let trace = TraceMeta::new(TraceId::random(), SpanId::random(), None, None);
/// let page = env.render_str(
///     "{{ sentry_meta(trace) }}",
///     context!(trace => sentry_meta::minijinja::value(trace.clone())),
/// )?;
/// assert_eq!(page, trace.to_html());
///
/// // An explicit "no tags", e.g. for a page that a CDN caches for everyone:
/// let page = env.render_str(
///     "{{ sentry_meta() }}",
///     context!(sentry_trace_meta => sentry_meta::minijinja::value(SentryMeta::none())),
/// )?;
/// assert_eq!(page, "");
/// # Ok::<(), minijinja::Error>(())
/// ```
pub fn value(meta: impl Into<SentryMeta>) -> Value {
    Value::from_object(meta.into())
}

/// The global function `sentry_meta()` (registered by [`register`]): the tags of the
/// value passed, else of the context's [`CONTEXT_VAR`], else of the current request, as a safe
/// string.
///
/// Errors when the value passed or found is not one made by [`value`].
pub fn sentry_meta(state: &State<'_, '_>, meta: Option<Value>) -> Result<Value, Error> {
    let explicit = meta
        .filter(is_set)
        .or_else(|| state.lookup(CONTEXT_VAR).filter(is_set));
    let Some(value) = explicit else {
        return Ok(Value::from_safe_string(SentryMeta::ambient().to_html()));
    };
    let Some(meta) = value.downcast_object_ref::<SentryMeta>() else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "sentry_meta() expects a value made by sentry_meta::minijinja::value, found {}",
                value.kind()
            ),
        ));
    };
    Ok(Value::from_safe_string(meta.to_html()))
}

fn is_set(value: &Value) -> bool {
    !value.is_undefined() && !value.is_none()
}

/// A [`SentryMeta`] is an opaque value in templates: written with `sentry_meta()`, not on its
/// own (auto-escaping would show the tags as text).
impl Object for SentryMeta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, context};

    use super::*;
    use crate::{SpanId, TraceId, TraceMeta};

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        register(&mut env);
        env
    }

    fn trace() -> TraceMeta {
        TraceMeta::new(TraceId::random(), SpanId::random(), Some(false), None)
    }

    #[test]
    fn argument_wins_over_context() {
        let (a, b) = (trace(), trace());
        let page = env()
            .render_str(
                "{{ sentry_meta(a) }}|{{ sentry_meta() }}|{{ sentry_meta(missing) }}",
                context!(a => value(a.clone()), sentry_trace_meta => value(b.clone())),
            )
            .expect("renders");
        assert_eq!(
            page,
            format!("{}|{}|{}", a.to_html(), b.to_html(), b.to_html())
        );
    }

    #[test]
    fn not_escaped_in_html_templates() {
        let mut env = env();
        env.add_template("t.html", "{{ sentry_meta(a) }}{{ '<' }}")
            .expect("parses");
        let a = trace();
        let page = env
            .get_template("t.html")
            .and_then(|t| t.render(context!(a => value(a.clone()))))
            .expect("renders");
        assert_eq!(page, format!("{}&lt;", a.to_html()));
    }

    #[test]
    fn other_values_are_errors() {
        let err = env()
            .render_str("{{ sentry_meta('<script>') }}", ())
            .expect_err("a string is not a trace");
        assert_eq!(err.kind(), ErrorKind::InvalidOperation);
    }
}
