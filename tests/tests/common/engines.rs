//! The five engines with the layouts of `tests/templates/engines/`, shared by the tests that
//! render every engine's page (`engines.rs`, `proptest_pages.rs`): each layout writes the
//! helper in its `<head>`, after a viewport tag, and the page a heading the engines must escape.
#![allow(dead_code)]

use std::collections::BTreeMap;

use askama::Template;
use maud::{DOCTYPE, Markup, html};
use sentry_meta::{SentryMeta, TraceMeta};

/// What the layout's `<head>` holds besides the trace tags.
pub const VIEWPORT: (&str, &str) = ("viewport", "width=device-width");
/// A heading that the engines must escape: proof that auto-escaping is on in these templates.
pub const HEADING: &str = "Tom & Jerry <b>\"quoted\"</b>";

/// Where askama looks up the `trace|sentry_meta` filter of `base_explicit.html`.
mod filters {
    pub use ::sentry_meta::askama::filters::*;
}

#[derive(Template)]
#[template(path = "engines/askama/page.html")]
struct AskamaPage<'a> {
    heading: &'a str,
}

#[derive(Template)]
#[template(path = "engines/askama/page_explicit.html")]
struct AskamaExplicitPage<'a> {
    heading: &'a str,
    trace: Option<TraceMeta>,
}

/// The maud layout: the same bytes as the template layouts.
pub fn maud_layout(sentry: SentryMeta, body: Markup) -> Markup {
    html! {
        (DOCTYPE) "\n"
        html { "\n"
            head { "\n"
                meta name="viewport" content="width=device-width"; "\n"
                (sentry) "\n"
            } "\n"
            body { "\n" (body) "\n" } "\n"
        }
    }
}

pub fn maud_page(sentry: SentryMeta, heading: &str) -> String {
    maud_layout(sentry, html! { h1 { (heading) } }).into_string()
}

/// The runtime engines, set up once per test with the templates of `tests/templates/engines/`.
pub struct Engines {
    minijinja: minijinja::Environment<'static>,
    tera: tera::Tera,
    handlebars: handlebars::Handlebars<'static>,
}

impl Engines {
    pub fn new() -> Self {
        let mut minijinja = minijinja::Environment::new();
        sentry_meta::minijinja::register(&mut minijinja);
        for (name, source) in [
            (
                "base.html",
                include_str!("../../templates/engines/minijinja/base.html"),
            ),
            (
                "page.html",
                include_str!("../../templates/engines/minijinja/page.html"),
            ),
        ] {
            minijinja
                .add_template(name, source)
                .expect("minijinja template");
        }

        let mut tera = tera::Tera::default();
        sentry_meta::tera::register(&mut tera);
        tera.add_raw_templates([
            (
                "base.html",
                include_str!("../../templates/engines/tera/base.html"),
            ),
            (
                "base_explicit.html",
                include_str!("../../templates/engines/tera/base_explicit.html"),
            ),
            (
                "page.html",
                include_str!("../../templates/engines/tera/page.html"),
            ),
            (
                "page_explicit.html",
                include_str!("../../templates/engines/tera/page_explicit.html"),
            ),
        ])
        .expect("tera templates");

        let mut handlebars = handlebars::Handlebars::new();
        handlebars.set_strict_mode(false);
        sentry_meta::handlebars::register(&mut handlebars);
        handlebars
            .register_partial(
                "layout",
                include_str!("../../templates/engines/handlebars/layout.hbs"),
            )
            .expect("handlebars layout");
        handlebars
            .register_template_string(
                "page",
                include_str!("../../templates/engines/handlebars/page.hbs"),
            )
            .expect("handlebars page");

        Self {
            minijinja,
            tera,
            handlebars,
        }
    }

    /// Every engine's page; `explicit` is the value the handler passes, `None` for the current
    /// request's tags.
    pub fn render(&self, explicit: Option<&SentryMeta>) -> Vec<(&'static str, String)> {
        let askama = match explicit {
            None => AskamaPage { heading: HEADING }.render(),
            Some(meta) => AskamaExplicitPage {
                heading: HEADING,
                trace: meta.trace_meta().cloned(),
            }
            .render(),
        };

        let minijinja = {
            let mut context = BTreeMap::from([("heading", minijinja::Value::from(HEADING))]);
            if let Some(meta) = explicit {
                context.insert(
                    sentry_meta::minijinja::CONTEXT_VAR,
                    sentry_meta::minijinja::value(meta.clone()),
                );
            }
            self.minijinja
                .get_template("page.html")
                .and_then(|t| t.render(context))
        };

        let tera = {
            let mut context = tera::Context::new();
            context.insert("heading", HEADING);
            let page = match explicit {
                None => "page.html",
                Some(meta) => {
                    context.insert("trace", &sentry_meta::tera::value(meta.clone()));
                    "page_explicit.html"
                }
            };
            self.tera.render(page, &context)
        };

        let handlebars = {
            let mut data = serde_json::json!({ "heading": HEADING });
            if let Some(meta) = explicit {
                data["trace"] = sentry_meta::handlebars::value(meta.clone());
            }
            self.handlebars.render("page", &data)
        };

        let maud = maud_page(
            explicit.cloned().unwrap_or_else(SentryMeta::current),
            HEADING,
        );

        vec![
            ("askama", askama.expect("askama renders")),
            ("minijinja", minijinja.expect("minijinja renders")),
            ("tera", tera.expect("tera renders")),
            ("handlebars", handlebars.expect("handlebars renders")),
            ("maud", maud),
        ]
    }
}

/// The text between `<head>` and `</head>`.
pub fn head(page: &str) -> &str {
    let start = page.find("<head>").expect("a <head>") + "<head>".len();
    let end = page.find("</head>").expect("a </head>");
    &page[start..end]
}
