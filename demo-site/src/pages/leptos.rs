//! The leptos page: a `leptos_axum` app rendered with out-of-order streaming, whose shell's
//! `<head>` gets the tags from `<SentryMeta/>` through `leptos_meta`'s `<MetaTags/>`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;
use leptos_meta::{MetaTags, provide_meta_context};
use sentry_meta::leptos::SentryMeta;

use super::{PageContext, Web};

/// Serves `/leptos`: the page's context goes into leptos' reactive context for the shell.
pub async fn page(State(web): State<Arc<Web>>, request: Request<Body>) -> Response {
    let page = web.context("leptos");
    let render = leptos_axum::render_app_to_stream_with_context(
        move || provide_context(page.clone()),
        shell,
    );
    render(request).await.into_response()
}

/// The document, as the other pages' layouts write it.
fn shell() -> impl IntoView {
    let page = expect_context::<PageContext>();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <MetaTags/>
                <title>{format!("{} · sentry-meta demo", page.title)}</title>
                <link rel="stylesheet" href="/static/demo.css"/>
                <script src="/static/demo.js" data-dsn=page.dsn.clone() data-api=page.api.clone()
                    data-page=page.slug data-release=page.release.clone()
                    data-environment=page.environment.clone() defer></script>
            </head>
            <body><App/></body>
        </html>
    }
}

#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    let page = expect_context::<PageContext>();
    let links = page
        .pages
        .iter()
        .map(|link| view! { " · " <a href=format!("/{}", link.slug)>{link.slug}</a> })
        .collect_view();
    view! {
        {page.tags.then(|| view! { <SentryMeta/> })}
        <nav>
            <a href="/">"sentry-meta demo"</a>
            {links}
            " · " <a href="/traces">"traces"</a>
        </nav>
        <main>
            <h1>"Rendered by leptos"</h1>
            <p>
                "The app's view holds " <code>{page.helper}</code> "; "
                <code>"<MetaTags/>"</code> " writes its tags in the shell's " <code>"<head>"</code>
                " (out-of-order streaming)."
            </p>
            <dl>
                <dt>"sentry-trace in this page's head"</dt>
                <dd><code id="page-trace">"(the browser SDK has not run)"</code></dd>
                <dt>"Browser SDK " <code>"traceLifecycle"</code></dt>
                <dd>
                    <code id="lifecycle">"?"</code>
                    " (" <a href="?lifecycle=stream">"stream"</a> " · "
                    <a href="?lifecycle=static">"static"</a> ")"
                </dd>
            </dl>
            <h2>"What the API received and queried"</h2>
            <pre id="api-result">"waiting for the API…"</pre>
            <p>
                <a id="trace-link" href="/traces">"This trace in the sink"</a>
                " (the browser's and the API's parts arrive a few seconds after the page loads)."
            </p>
        </main>
    }
}
