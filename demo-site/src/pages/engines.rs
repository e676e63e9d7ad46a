//! The five template engines, each with a base layout whose `<head>` writes the tags with that
//! engine's helper, and a page that extends it (templates in `demo-site/templates/`).

use askama::Template;
use maud::{DOCTYPE, Markup, html};
use sentry_meta::SentryMeta;

use super::PageContext;
use crate::db::Product;

/// The engines that load their templates at start (askama and maud compile them in).
#[derive(Debug)]
pub struct Engines {
    minijinja: minijinja::Environment<'static>,
    /// The minijinja context's explicit `sentry_trace_meta`: undefined (the helper writes the
    /// request's tags), or the value of the benchmark's controls (see [`Tags`](crate::Tags)).
    minijinja_meta: minijinja::Value,
    tera: tera::Tera,
    handlebars: handlebars::Handlebars<'static>,
}

/// Why a template could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn loading(engine: &str, e: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("{engine} templates: {e}"))
}

impl Engines {
    /// Loads the templates of minijinja, tera and handlebars, and registers the helpers. With
    /// `minijinja_meta`, the minijinja layout's helper writes that value (see [`Tags`](crate::Tags))
    /// instead of the request's tags.
    pub fn load(minijinja_meta: Option<SentryMeta>) -> Result<Self, TemplateError> {
        let mut minijinja = minijinja::Environment::new();
        sentry_meta::minijinja::register(&mut minijinja);
        minijinja
            .add_template(
                "minijinja/base.html",
                include_str!("../../templates/minijinja/base.html"),
            )
            .map_err(|e| loading("minijinja", e))?;
        minijinja
            .add_template(
                "minijinja/page.html",
                include_str!("../../templates/minijinja/page.html"),
            )
            .map_err(|e| loading("minijinja", e))?;
        minijinja
            .add_template(
                "minijinja/catalog.html",
                include_str!("../../templates/minijinja/catalog.html"),
            )
            .map_err(|e| loading("minijinja", e))?;

        let mut tera = tera::Tera::default();
        sentry_meta::tera::register(&mut tera);
        tera.add_raw_templates([
            (
                "tera/base.html",
                include_str!("../../templates/tera/base.html"),
            ),
            (
                "tera/page.html",
                include_str!("../../templates/tera/page.html"),
            ),
        ])
        .map_err(|e| loading("tera", e))?;

        let mut handlebars = handlebars::Handlebars::new();
        handlebars.set_strict_mode(true);
        sentry_meta::handlebars::register(&mut handlebars);
        handlebars
            .register_partial("base", include_str!("../../templates/handlebars/base.hbs"))
            .map_err(|e| loading("handlebars", e))?;
        handlebars
            .register_template_string("page", include_str!("../../templates/handlebars/page.hbs"))
            .map_err(|e| loading("handlebars", e))?;

        Ok(Self {
            minijinja,
            minijinja_meta: minijinja_meta
                .map_or(minijinja::Value::UNDEFINED, sentry_meta::minijinja::value),
            tera,
            handlebars,
        })
    }

    /// The minijinja page.
    pub fn minijinja(&self, page: &PageContext) -> Result<String, String> {
        self.render_minijinja(page, self.minijinja_meta.clone())
    }

    /// The minijinja page with the tags `meta` (an app's explicit values: the OpenTelemetry
    /// page's).
    pub fn minijinja_with(&self, page: &PageContext, meta: SentryMeta) -> Result<String, String> {
        self.render_minijinja(page, sentry_meta::minijinja::value(meta))
    }

    fn render_minijinja(
        &self,
        page: &PageContext,
        meta: minijinja::Value,
    ) -> Result<String, String> {
        self.minijinja
            .get_template("minijinja/page.html")
            .and_then(|t| {
                t.render(minijinja::context!(
                    page => minijinja::value::Serde(page),
                    sentry_trace_meta => meta,
                ))
            })
            .map_err(|e| e.to_string())
    }

    /// The catalog page: `products` in a table, in the minijinja layout.
    pub fn catalog(&self, page: &PageContext, products: &[Product]) -> Result<String, String> {
        self.minijinja
            .get_template("minijinja/catalog.html")
            .and_then(|t| {
                t.render(minijinja::context!(
                    page => minijinja::value::Serde(page),
                    products => minijinja::value::Serde(products),
                    sentry_trace_meta => self.minijinja_meta.clone(),
                ))
            })
            .map_err(|e| e.to_string())
    }

    /// The tera page.
    pub fn tera(&self, page: &PageContext) -> Result<String, String> {
        let mut context = tera::Context::new();
        context.insert("page", page);
        self.tera
            .render("tera/page.html", &context)
            .map_err(|e| e.to_string())
    }

    /// The handlebars page.
    pub fn handlebars(&self, page: &PageContext) -> Result<String, String> {
        self.handlebars
            .render("page", &serde_json::json!({ "page": page }))
            .map_err(|e| e.to_string())
    }
}

#[derive(Template)]
#[template(path = "askama/page.html")]
struct AskamaPage<'a> {
    page: &'a PageContext,
}

/// The askama page.
pub fn askama(page: &PageContext) -> Result<String, String> {
    AskamaPage { page }.render().map_err(|e| e.to_string())
}

/// The maud layout; `tags`: what its `<head>` writes (nothing for the injected page).
fn maud_layout(page: &PageContext, tags: Option<SentryMeta>, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(tags) = tags { (tags) }
                title { (page.title) " · sentry-meta demo" }
                link rel="stylesheet" href="/static/demo.css";
                script src="/static/demo.js" data-dsn=(page.dsn) data-api=(page.api) data-page=(page.slug)
                    data-release=(page.release) data-environment=(page.environment) defer {}
            }
            body {
                nav {
                    a href="/" { "sentry-meta demo" }
                    @for link in &page.pages { " · " a href={ "/" (link.slug) } { (link.slug) } }
                    " · " a href="/traces" { "traces" }
                }
                main { (content) }
            }
        }
    }
    .into_string()
}

/// The maud page.
pub fn maud(page: &PageContext) -> String {
    maud_layout(
        page,
        page.tags.then(SentryMeta::current),
        html! {
            h1 { "Rendered by maud" }
            p { "The layout's " code { "<head>" } " splices " code { (page.helper) } "." }
            dl {
                dt { "sentry-trace in this page's head" }
                dd { code id="page-trace" { "(the browser SDK has not run)" } }
                dt { "Browser SDK " code { "traceLifecycle" } }
                dd {
                    code id="lifecycle" { "?" }
                    " (" a href="?lifecycle=stream" { "stream" } " · " a href="?lifecycle=static" { "static" } ")"
                }
            }
            h2 { "What the API received and queried" }
            pre id="api-result" { "waiting for the API…" }
            p {
                a id="trace-link" href="/traces" { "This trace in the sink" }
                " (the browser's and the API's parts arrive a few seconds after the page loads)."
            }
        },
    )
}

/// The page without a helper: its head has no tags (the layer adds them).
pub fn injected(page: &PageContext) -> String {
    maud_layout(
        page,
        None,
        html! {
            h1 { "Tags injected by InjectTraceMetaLayer" }
            p { "This page's template writes no tags: the layer inserts them right before " code { "</head>" } "." }
            dl {
                dt { "sentry-trace in this page's head" }
                dd { code id="page-trace" { "(the browser SDK has not run)" } }
                dt { "Browser SDK " code { "traceLifecycle" } }
                dd { code id="lifecycle" { "?" } }
            }
            h2 { "What the API received and queried" }
            pre id="api-result" { "waiting for the API…" }
            p { a id="trace-link" href="/traces" { "This trace in the sink" } }
        },
    )
}
