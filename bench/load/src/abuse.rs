//! The trace sink under abuse: what a hostile client of the embedded sink does to the demo's
//! pages (issue 13). The sink's ingest is open to the demo's own pages, and to any process of the
//! machine; the runs here send as such a process (no `Origin`), so they reach every limit.
//!
//! One demo, its sink first filled with `spans` stored spans (gzipped envelopes of 2,000 span-v2
//! spans, ten per trace), then its `/askama` page requested at a paced rate (two clients, 100
//! requests per second each) in four cases:
//!
//! 1. **idle**: nothing else, for 3 s;
//! 2. **`/traces`**: `traces_clients` clients each ask for the trace list `traces_rounds` times
//!    (and more until `window` has passed), all at once, each at most every [`TRACES_PERIOD`]
//!    (a closed loop for a sink that takes longer), while a client of its own posts one
//!    small valid envelope every 100 ms (the time it takes to be answered is what the ingest
//!    waits behind the list);
//! 3. **abandoned `/traces`**: `abandoned` requests for the list, each given up after 50 ms; the
//!    CPU time the demo spends from the first request until its CPU time stops growing;
//! 4. **envelope bombs**, last (an earlier build stores those it accepts, and its size limit
//!    then deletes the oldest spans): `bomb_clients` clients each post `bombs_per_client`
//!    gzipped envelopes (and more until `window` has passed), one after the other, of about
//!    4 KB that inflate to 4 MB of tiny JSON values (one span item whose payload is
//!    `{"items":[0,0,0,…]}`); then the same inflating to `bomb_under_limit` bytes (1 MB, under
//!    the sink's limit of 1 MiB, so that they are inflated and read).
//!
//! Checks: in cases 2 and 3 the page's p50 stays within [`MAX_P50_RATIO`] of the idle p50, and
//! the demo's peak memory stays under [`MAX_PEAK_RSS_KIB`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::p50_p99;
use crate::demo::Demo;
use crate::{mib, ms};

/// The page measured (an askama layout writing the tags, behind the Sentry layers).
pub const PAGE: &str = "/askama";
/// Page p50 under abuse over idle p50 beyond which the pages are not kept responsive.
pub const MAX_P50_RATIO: f64 = 2.0;
/// Peak resident memory of the demo beyond which the sink is not bounded.
pub const MAX_PEAK_RSS_KIB: u64 = 150 << 10;
/// A `/traces` client asks again when its last list has come and this long after it asked for
/// it: four people reloading the list as fast as a hand can.
const TRACES_PERIOD: Duration = Duration::from_millis(250);
/// Spans per envelope of the fill (the sink's limit per envelope).
const FILL_SPANS_PER_ENVELOPE: usize = 2_000;
/// Spans per trace of the fill.
const FILL_SPANS_PER_TRACE: usize = 10;

/// The sizes of the abuse run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Spans stored before the cases run.
    pub spans: usize,
    pub bomb_clients: usize,
    pub bombs_per_client: usize,
    /// Bytes a bomb inflates to.
    pub bomb_inflated: usize,
    /// Bytes a second kind of bomb inflates to: just under the sink's limit, so that it is read.
    pub bomb_under_limit: usize,
    pub traces_clients: usize,
    pub traces_rounds: usize,
    pub abandoned: usize,
    /// Each case's abuse goes on at least this long (more bombs, more lists), so that enough
    /// pages are measured while it runs.
    pub window: Duration,
}

impl Plan {
    /// The figures: 40 bombs from 4 clients, 4 concurrent `/traces` at 300,000 spans,
    /// 20 abandoned ones; `quick`: 100,000 spans.
    pub fn new(quick: bool) -> Self {
        Self {
            spans: if quick { 100_000 } else { 300_000 },
            bomb_clients: 4,
            bombs_per_client: 10,
            bomb_inflated: 4_000_000,
            bomb_under_limit: 1_000_000,
            traces_clients: 4,
            traces_rounds: 5,
            abandoned: 20,
            window: Duration::from_secs(if quick { 3 } else { 5 }),
        }
    }
}

/// The page's latencies while a case ran.
#[derive(Debug, Default)]
struct Pages {
    latencies: Vec<Duration>,
    errors: usize,
}

impl Pages {
    fn p50_p99_max(&self) -> (Duration, Duration, Duration) {
        let (p50, p99) = p50_p99(&self.latencies);
        (
            p50,
            p99,
            self.latencies.iter().copied().max().unwrap_or_default(),
        )
    }
}

/// Answers to requests of one kind: their statuses and latencies.
#[derive(Debug, Default)]
struct Answers {
    statuses: std::collections::BTreeMap<String, usize>,
    latencies: Vec<Duration>,
}

impl Answers {
    fn record(&mut self, outcome: Result<u16, String>, latency: Duration) {
        let key = match outcome {
            Ok(status) => status.to_string(),
            Err(_) => "no answer".to_owned(),
        };
        *self.statuses.entry(key).or_default() += 1;
        self.latencies.push(latency);
    }

    fn merge(&mut self, other: Answers) {
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.latencies.extend(other.latencies);
    }

    /// `413 × 40; p50 1.20 ms, max 3.40 ms`.
    fn describe(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status} × {count}"))
            .collect();
        let (p50, _) = p50_p99(&self.latencies);
        let max = self.latencies.iter().copied().max().unwrap_or_default();
        format!("{}; p50 {}, max {}", statuses.join(", "), ms(p50), ms(max))
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to memory does not fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// An envelope of one span item of `inflated` bytes of `0,` values, gzipped.
fn bomb(inflated: usize) -> Vec<u8> {
    let mut json = b"{}\n{\"type\":\"span\"}\n{\"version\":2,\"items\":[".to_vec();
    while json.len() + 6 <= inflated {
        json.extend_from_slice(b"0,");
    }
    json.extend_from_slice(b"0]}\n");
    gzip(&json)
}

/// An envelope of `spans` span-v2 spans, [`FILL_SPANS_PER_TRACE`] per trace, the first of each
/// trace its segment; trace and span ids made from `first` on, so that no two envelopes share
/// one.
fn spans_envelope(first: usize, spans: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let mut items = Vec::with_capacity(spans);
    for n in first..first + spans {
        let trace = n / FILL_SPANS_PER_TRACE;
        let segment = n - n % FILL_SPANS_PER_TRACE;
        let parent = if n == segment {
            String::new()
        } else {
            format!("\"parent_span_id\":\"{:016x}\",", segment + 1)
        };
        items.push(format!(
            "{{\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\",{parent}\"name\":\"GET /fill/{trace}\",\
             \"start_timestamp\":{now:.6},\"end_timestamp\":{:.6},\"status\":\"ok\",\"is_segment\":{},\
             \"attributes\":{{\"sentry.op\":{{\"type\":\"string\",\"value\":\"http.server\"}}}}}}",
            (1u128 << 100) + trace as u128,
            n + 1,
            now + 0.01,
            n == segment,
        ));
    }
    let body = format!(
        "{{\"sdk\":{{\"name\":\"sentry-meta-load\"}}}}\n{{\"type\":\"span\"}}\n{{\"version\":2,\"items\":[{}]}}\n",
        items.join(",")
    );
    gzip(body.as_bytes())
}

/// Posts an envelope (gzipped when `gzipped`) to the demo's sink: status and latency.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    gzipped: bool,
) -> (Result<u16, String>, Duration) {
    let mut request = http
        .post(url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body);
    if gzipped {
        request = request.header("content-encoding", "gzip");
    }
    timed(request).await
}

async fn get(http: &reqwest::Client, url: &str) -> (Result<u16, String>, Duration) {
    timed(http.get(url)).await
}

/// Sends `request` and reads the whole answer: its status, and the time it took.
async fn timed(request: reqwest::RequestBuilder) -> (Result<u16, String>, Duration) {
    let begun = Instant::now();
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            response
                .bytes()
                .await
                .map(|_| status)
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    (outcome, begun.elapsed())
}

/// Runs `count` clients made by `client` at once, each on a task of its own, and merges what
/// they were answered.
async fn clients<F, Fut>(count: usize, client: F) -> Answers
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Answers> + Send + 'static,
{
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(client())).collect();
    let mut all = Answers::default();
    for task in tasks {
        all.merge(task.await.unwrap_or_default());
    }
    all
}

/// Requests the page from two clients at 100 requests per second each while `abuse` runs.
async fn pages_during<T>(
    web_url: &str,
    abuse: impl std::future::Future<Output = T>,
) -> Result<(T, Pages), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut samplers = Vec::new();
    for _ in 0..2 {
        let http = crate::client::http_client(1)?;
        let (url, stop) = (format!("{web_url}{PAGE}"), stop.clone());
        samplers.push(tokio::spawn(async move {
            let mut pages = Pages::default();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                match get(&http, &url).await {
                    (Ok(200), latency) => pages.latencies.push(latency),
                    _ => pages.errors += 1,
                }
            }
            pages
        }));
    }
    let output = abuse.await;
    stop.store(true, Ordering::Relaxed);
    let mut pages = Pages::default();
    for sampler in samplers {
        let sampled = sampler.await.map_err(|e| e.to_string())?;
        pages.latencies.extend(sampled.latencies);
        pages.errors += sampled.errors;
    }
    Ok((output, pages))
}

/// One row of the report.
struct Row {
    case: String,
    pages: Pages,
    peak_rss: Option<u64>,
    abuse: String,
}

/// Runs the abuse cases against `binary`, appends a table to `md` (rows named after `name`) and
/// the failed checks to `failures` when `checked`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    plan: &Plan,
    binary: &Path,
    name: &str,
    work: &Path,
    demo_cpu: Option<usize>,
    checked: bool,
    md: &mut String,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let demo = Demo::start(binary, &work.join("abuse"), None, demo_cpu).await?;
    let envelope_url = format!("{}/api/1/envelope/", demo.web_url);
    let http = crate::client::http_client(8)?;

    eprintln!("==> abuse ({name}): storing {} spans", plan.spans);
    let filled = Instant::now();
    let mut fill = Answers::default();
    for first in (0..plan.spans).step_by(FILL_SPANS_PER_ENVELOPE) {
        let spans = FILL_SPANS_PER_ENVELOPE.min(plan.spans - first);
        let (outcome, latency) =
            post(&http, &envelope_url, spans_envelope(first, spans), true).await;
        fill.record(outcome, latency);
    }
    let fill_seconds = filled.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut rows = Vec::new();
    eprintln!("==> abuse ({name}): idle");
    demo.reset_peak_rss();
    let ((), idle) =
        pages_during(&demo.web_url, tokio::time::sleep(Duration::from_secs(3))).await?;
    rows.push(Row {
        case: "idle".into(),
        pages: idle,
        peak_rss: demo.peak_rss_kib(),
        abuse: format!(
            "{} spans stored before, in {fill_seconds:.1} s ({})",
            plan.spans,
            fill.describe()
        ),
    });

    eprintln!("==> abuse ({name}): concurrent /traces");
    demo.reset_peak_rss();
    let started = Instant::now();
    let traces_url = format!("{}/traces", demo.web_url);
    let done = Arc::new(AtomicBool::new(false));
    let poster = {
        let (http, url, done) = (http.clone(), envelope_url.clone(), done.clone());
        tokio::spawn(async move {
            let mut answers = Answers::default();
            while !done.load(Ordering::Relaxed) {
                let (outcome, latency) =
                    post(&http, &url, spans_envelope(10_000_000, 1), true).await;
                answers.record(outcome, latency);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    };
    let (traces, pages) = pages_during(
        &demo.web_url,
        clients(plan.traces_clients, || {
            let (http, url) = (http.clone(), traces_url.clone());
            let (rounds, window) = (plan.traces_rounds, plan.window);
            async move {
                let mut answers = Answers::default();
                let mut tick = tokio::time::interval(TRACES_PERIOD);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while answers.latencies.len() < rounds || started.elapsed() < window {
                    tick.tick().await;
                    let (outcome, latency) = get(&http, &url).await;
                    answers.record(outcome, latency);
                }
                answers
            }
        }),
    )
    .await?;
    done.store(true, Ordering::Relaxed);
    let posted = poster.await.map_err(|e| e.to_string())?;
    rows.push(Row {
        case: format!(
            "{} concurrent /traces, {} in all, at {} spans",
            plan.traces_clients,
            traces.latencies.len(),
            plan.spans
        ),
        pages,
        peak_rss: demo.peak_rss_kib(),
        abuse: format!(
            "/traces: {}; an envelope posted every 100 ms meanwhile: {}",
            traces.describe(),
            posted.describe()
        ),
    });

    eprintln!("==> abuse ({name}): abandoned /traces");
    let cpu_before = demo.process_cpu();
    let mut abandoned = Vec::new();
    for _ in 0..plan.abandoned {
        let (http, url) = (http.clone(), traces_url.clone());
        abandoned.push(tokio::spawn(async move {
            let _ = http
                .get(&url)
                .timeout(Duration::from_millis(50))
                .send()
                .await;
        }));
    }
    for request in abandoned {
        let _ = request.await;
    }
    let cpu_after = settled_cpu(&demo).await;
    let spent = cpu_after
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

    // Last: an earlier build stores the bombs it accepts (see above).
    for inflated in [plan.bomb_inflated, plan.bomb_under_limit] {
        eprintln!("==> abuse ({name}): envelope bombs of {inflated} bytes");
        let body = bomb(inflated);
        let bomb_bytes = body.len();
        demo.reset_peak_rss();
        let started = Instant::now();
        let (bombs, pages) = pages_during(
            &demo.web_url,
            clients(plan.bomb_clients, || {
                let (http, url, body) = (http.clone(), envelope_url.clone(), body.clone());
                let (count, window) = (plan.bombs_per_client, plan.window);
                async move {
                    let mut answers = Answers::default();
                    while answers.latencies.len() < count || started.elapsed() < window {
                        let (outcome, latency) = post(&http, &url, body.clone(), true).await;
                        answers.record(outcome, latency);
                    }
                    answers
                }
            }),
        )
        .await?;
        rows.push(Row {
            case: format!(
                "{} envelope bombs from {} clients",
                bombs.latencies.len(),
                plan.bomb_clients
            ),
            pages,
            peak_rss: demo.peak_rss_kib(),
            abuse: format!(
                "{bomb_bytes} bytes each, inflating to {} bytes; all answered in {:.2} s: {}",
                inflated,
                started.elapsed().as_secs_f64(),
                bombs.describe()
            ),
        });
    }

    let stderr = demo.stop().await;
    crate::check_process(&format!("abuse ({name})"), &stderr, None, failures);

    let idle_p50 = rows[0].pages.p50_p99_max().0;
    let _ = writeln!(
        md,
        "\n**{name}**: `{}`\n\n\
         | case | pages | page errors | page p50 | p99 | max | p50 / idle | peak RSS | the abuse |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        binary.display()
    );
    for row in &rows {
        let (p50, p99, max) = row.pages.p50_p99_max();
        let ratio = p50.as_secs_f64() / idle_p50.as_secs_f64().max(1e-9);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {ratio:.2}× | {} | {} |",
            row.case,
            row.pages.latencies.len(),
            row.pages.errors,
            ms(p50),
            ms(p99),
            ms(max),
            mib(row.peak_rss),
            row.abuse
        );
        if checked && row.case != "idle" && ratio > MAX_P50_RATIO {
            failures.push(format!(
                "abuse ({name}): {}: page p50 {} is {ratio:.2}× the idle p50 {}",
                row.case,
                ms(p50),
                ms(idle_p50)
            ));
        }
        if checked && row.peak_rss.is_some_and(|kib| kib >= MAX_PEAK_RSS_KIB) {
            failures.push(format!(
                "abuse ({name}): {}: peak memory {}",
                row.case,
                mib(row.peak_rss)
            ));
        }
    }
    let _ = writeln!(
        md,
        "| {} abandoned /traces (given up after 50 ms) | – | – | – | – | – | – | – | the demo's CPU \
         time from the first request until it stopped growing: {} |",
        plan.abandoned,
        spent.map_or("?".into(), |cpu| format!("{:.2} s", cpu.as_secs_f64()))
    );
    Ok(())
}

/// The demo's CPU time once it stops growing (no growth over 1 s, at most 120 s).
async fn settled_cpu(demo: &Demo) -> Option<Duration> {
    let started = Instant::now();
    let mut last = demo.process_cpu()?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = demo.process_cpu()?;
        if now == last || started.elapsed() > Duration::from_secs(120) {
            return Some(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bombs_are_small_and_inflate_as_planned() {
        let body = bomb(4_000_000);
        assert!(body.len() < 16 << 10, "{} bytes", body.len());
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut inflated)
            .expect("gzip");
        assert!((3_999_000..=4_000_000).contains(&inflated.len()));
    }
}
