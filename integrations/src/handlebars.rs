//! The tags in [handlebars](https://docs.rs/handlebars) templates (feature `handlebars`).
//!
//! [`register`] adds a helper `sentry_meta`; call it once in the `<head>` of the layout partial
//! that every page uses. A helper writes to the output itself, so the (already escaped) tags
//! are not escaped again, whether it is written `{{sentry_meta}}` or `{{{sentry_meta}}}`.
//!
//! ```
//! use handlebars::Handlebars;
//!
//! let mut hbs = Handlebars::new();
//! sentry_meta::handlebars::register(&mut hbs);
//! hbs.register_partial("layout", "<head>{{sentry_meta}}</head>{{> body}}")?;
//! hbs.register_template_string("page", r#"{{#> layout}}{{#*inline "body"}}hi{{/inline}}{{/layout}}"#)?;
//!
//! // In a request, this writes the current span's tags; without a Sentry client, nothing.
//! assert_eq!(hbs.render("page", &())?, "<head></head>hi");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A value the handler already has is passed as the helper's parameter: put [`value`] in the
//! data and write `{{sentry_meta trace}}`. A missing or `null` parameter means the current
//! request's tags, so one layout serves both.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonValue, Output, RenderContext,
    RenderError, RenderErrorReason,
};

use crate::SentryMeta;
#[cfg(doc)]
use crate::TraceMeta;

/// Registers [`SentryMetaHelper`] as the helper `sentry_meta`.
///
/// ```
/// let mut hbs = handlebars::Handlebars::new();
/// sentry_meta::handlebars::register(&mut hbs);
/// assert_eq!(hbs.render_template("{{sentry_meta}}", &())?, "");
/// # Ok::<(), handlebars::RenderError>(())
/// ```
pub fn register(handlebars: &mut Handlebars<'_>) {
    handlebars.register_helper("sentry_meta", Box::new(SentryMetaHelper));
}

/// An explicit value for templates: a [`TraceMeta`], an `Option<TraceMeta>` or a
/// [`SentryMeta`] as handlebars data (`{"sentry_trace": "…", "baggage": "…"}`), for
/// `{{sentry_meta trace}}`.
///
/// The helper reads the header values back with the same rules as incoming headers, so data
/// that was changed or written by hand still gives valid, escaped tags, or an error.
///
/// ```
/// use handlebars::Handlebars;
/// use sentry_meta::{SpanId, TraceId, TraceMeta};
///
/// let mut hbs = Handlebars::new();
/// sentry_meta::handlebars::register(&mut hbs);
/// let trace = TraceMeta::new(
///     "771a43a4192642f0b136d5159a501700".parse::<TraceId>()?,
///     "b7ad6b7169203331".parse::<SpanId>()?,
///     Some(true),
///     None,
/// );
/// let data = serde_json::json!({ "trace": sentry_meta::handlebars::value(trace) });
/// assert_eq!(
///     hbs.render_template("<head>{{sentry_meta trace}}</head>", &data)?,
///     r#"<head><meta name="sentry-trace" content="771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"/></head>"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn value(meta: impl Into<SentryMeta>) -> JsonValue {
    crate::json::to_value(&meta.into())
}

/// The handlebars helper `{{sentry_meta [trace]}}`: the tags of the parameter (made by
/// [`value`]), or of the current request without one, written unescaped. A second parameter,
/// a hash argument or a block is a render error.
#[derive(Debug, Clone, Copy, Default)]
pub struct SentryMetaHelper;

impl HelperDef for SentryMetaHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        if helper.params().len() > 1
            || !helper.hash().is_empty()
            || helper.template().is_some()
            || helper.inverse().is_some()
        {
            // A typo (`{{sentry_meta traec=trace}}`) would otherwise write the current
            // request's tags, or drop a block's content, without a word.
            return Err(RenderErrorReason::Other(
                "the sentry_meta helper takes at most one parameter, a trace value \
                 (`{{sentry_meta trace}}`), and no hash arguments or block"
                    .into(),
            )
            .into());
        }
        let explicit = match helper.param(0) {
            Some(param) => crate::json::from_value(param.value())
                .map_err(|e| RenderError::from(RenderErrorReason::NestedError(Box::new(e))))?,
            None => None,
        };
        // Straight into the output: a helper's output is not escaped (only values that a
        // helper returns through `call_inner` are).
        out.write(&explicit.unwrap_or_else(SentryMeta::ambient).to_html())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanId, TraceId, TraceMeta};

    fn hbs() -> Handlebars<'static> {
        let mut hbs = Handlebars::new();
        register(&mut hbs);
        hbs
    }

    #[test]
    fn never_escaped() {
        let a = TraceMeta::new(TraceId::random(), SpanId::random(), Some(false), None);
        let data = serde_json::json!({ "a": value(a.clone()), "text": "<" });
        let page = hbs()
            .render_template("{{sentry_meta a}}|{{{sentry_meta a}}}|{{text}}", &data)
            .expect("renders");
        assert_eq!(page, format!("{}|{}|&lt;", a.to_html(), a.to_html()));
    }

    #[test]
    fn other_values_are_errors() {
        let err = hbs()
            .render_template("{{sentry_meta '<script>'}}", &())
            .expect_err("a string is not a trace");
        assert!(err.to_string().contains("found a string"), "{err}");
    }

    #[test]
    fn other_arguments_are_errors() {
        let data = serde_json::json!({ "a": null, "b": null });
        for template in [
            "{{sentry_meta a b}}",
            "{{sentry_meta a foo=1}}",
            "{{sentry_meta foo=a}}",
            "{{#sentry_meta a}}inner{{/sentry_meta}}",
            "{{#sentry_meta}}inner{{/sentry_meta}}",
        ] {
            let err = hbs().render_template(template, &data).expect_err(template);
            assert!(err.to_string().contains("at most one parameter"), "{err}");
        }
        assert_eq!(
            hbs().render_template("{{sentry_meta a}}", &data).ok(),
            Some(String::new())
        );
    }
}
