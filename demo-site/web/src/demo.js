// The browser side of the sentry-meta demo, bundled by esbuild into dist/demo.js.
//
// Every page loads it with one tag that carries the page's settings:
//   <script src="/static/demo.js" data-dsn="…" data-api="http://127.0.0.1:8081" data-page="askama" defer></script>
// `?lifecycle=static` selects the SDK's `traceLifecycle: "static"` (the pageload is sent as a
// `transaction` item); anything else selects "stream" (span-v2 items).
import * as Sentry from "@sentry/browser";

const script = document.currentScript;
const settings = script ? script.dataset : {};
const api = settings.api || "";
const lifecycle = new URLSearchParams(window.location.search).get("lifecycle") === "static" ? "static" : "stream";

Sentry.init({
  dsn: settings.dsn,
  release: settings.release || undefined,
  environment: settings.environment || undefined,
  integrations: [Sentry.browserTracingIntegration()],
  tracesSampleRate: 1.0,
  traceLifecycle: lifecycle,
  // The API is another origin: without this, fetch would not carry sentry-trace and baggage.
  tracePropagationTargets: api ? [api] : [],
});

function show(id, text) {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

show("lifecycle", lifecycle);

// Read back what the SDK took from the page's head (the same values the pageload continues).
const tag = document.querySelector("meta[name=sentry-trace]");
show("page-trace", tag ? tag.getAttribute("content") : "(no sentry-trace tag)");
// The link to this trace in the sink: the trace id is the tag's first part.
const traceId = tag ? (tag.getAttribute("content") || "").split("-")[0] : "";
const traceLink = document.getElementById("trace-link");
if (traceLink && /^[0-9a-f]{32}$/.test(traceId)) traceLink.setAttribute("href", `/traces/${traceId}`);

async function callApi() {
  if (!api || !settings.page) return;
  try {
    const response = await fetch(`${api}/api/pages/${encodeURIComponent(settings.page)}`);
    const body = await response.json();
    show("api-result", JSON.stringify(body, null, 2));
    document.body.dataset.api = response.ok ? "ok" : `status ${response.status}`;
  } catch (error) {
    show("api-result", String(error));
    document.body.dataset.api = "error";
  }
}

if (document.readyState === "complete") {
  callApi();
} else {
  window.addEventListener("load", callApi, { once: true });
}
