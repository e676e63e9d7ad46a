//! The tags in [maud](https://docs.rs/maud) markup (feature `maud`): [`SentryMeta`] is a maud
//! component.
//!
//! Splice it into the `head` of the layout function that every page goes through, as
//! `(SentryMeta::current())` for the current request or `(SentryMeta::from(trace))` for a
//! value the handler already has. It writes straight into maud's buffer, unescaped (the tags
//! are escaped by the one renderer of the core crate).
//!
//! ```
//! use maud::{DOCTYPE, Markup, html};
//! use sentry_meta::{SentryMeta, SpanId, TraceId, TraceMeta};
//!
//! fn layout(sentry: SentryMeta, body: Markup) -> Markup {
//!     html! {
//!         (DOCTYPE)
//!         html { head { (sentry) } body { (body) } }
//!     }
//! }
//!
//! // In a request: layout(SentryMeta::current(), …). Here, an explicit value:
//! let trace = TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None);
//! let page = layout(SentryMeta::from(trace.clone()), html! { p { "hi" } });
//! assert!(page.0.contains(&format!("<head>{}</head>", trace.to_html())));
//! ```
//!
//! Splice a [`SentryMeta`], not a bare [`TraceMeta`](crate::TraceMeta): maud writes any other
//! `Display` value as escaped text, which would show the tags on the page.

use maud::Render;

use crate::SentryMeta;

/// Appends the tags to maud's buffer as they are: no second escaping.
impl Render for SentryMeta {
    fn render_to(&self, buffer: &mut String) {
        self.render_into(buffer);
    }
}

#[cfg(test)]
mod tests {
    use maud::html;

    use crate::{SentryMeta, SpanId, TraceId, TraceMeta};

    #[test]
    fn splices_unescaped() {
        let trace = TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None);
        let sentry = SentryMeta::from(trace.clone());
        let page = html! { head { (sentry) (&sentry) } p { "<" } };
        assert_eq!(
            page.into_string(),
            format!(
                "<head>{}{}</head><p>&lt;</p>",
                trace.to_html(),
                trace.to_html()
            )
        );
        assert_eq!(html! { (SentryMeta::none()) }.into_string(), "");
    }
}
