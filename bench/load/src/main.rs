//! Load, concurrency and fault runs against the running demo; `scripts/load.sh` builds and runs
//! it and keeps the report.
//!
//! ```text
//! sentry-meta-load --demo target/release/sentry-meta-demo [--quick] [--out FILE]
//!                  [--work DIR] [--demo-cpu N] [--stamp TEXT] [--only load,faults,abuse]
//!                  [--baseline BINARY]
//! ```
//!
//! 1. **Load and concurrency.** The demo (its release binary, a process of its own) reports to
//!    its embedded sink. 64 concurrent clients, each on its own keep-alive connection, request
//!    its `/minijinja` page 20,000 times, once without incoming trace headers and once with a
//!    fresh caller trace per request, after a warm-up. Every page must answer 200 with tags;
//!    pages without a caller's trace must all have their own trace id; pages with one must
//!    continue it; and every page's trace id must be that of its own server transaction, read
//!    from the envelopes the sink captured (the page's `sentry-trace` names a span of it). The
//!    demo's resident memory is read after the warm-up and after the run.
//! 2. **Faults.** The same page under the same paced load, with the demo's DSN pointing at an
//!    ingest that is healthy (answers 200), refuses connections, accepts and never
//!    answers, or answers 500 or 429: one demo per case, all running at once, the load moving
//!    between them in short slices ([`faults`]). Page latency p50/p99 is compared with the
//!    healthy case, the demo's CPU time per page is read (the transport thread's apart), its
//!    standard error is searched for panics, and its memory is read before and after.
//! 3. **Abuse of the embedded trace sink** ([`abuse`]): envelope bombs, concurrent and abandoned
//!    `/traces` at 300,000 stored spans, the `/askama` page measured meanwhile; with
//!    `--baseline`, an earlier build too, for a before/after in one report.
//!
//! Prints the tables and writes them as markdown to `--out`. Exits 1 when a functional check
//! fails (an error answer, a page without tags, a shared or wrong trace id, a page whose
//! transaction is in another trace, fewer than 95% of the transactions captured, a panic, memory
//! growing by more than 64 MiB), or when the abuse's page p50 exceeds twice its idle p50 or the
//! demo's peak memory reaches 150 MiB; other latency is measured and reported, never a reason
//! to fail.

mod abuse;
mod client;
mod demo;
mod faults;
mod idle;
mod ingest;
mod sink;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use client::{Exchange, Load};
use demo::Demo;

/// The page under load, and its server transaction's name.
const PAGE: &str = "/minijinja";
const TRANSACTION: &str = "GET /minijinja";
/// Memory growth over a run beyond which it is not flat.
const MAX_RSS_GROWTH_KIB: u64 = 64 << 10;
/// The share of server transactions that must reach the sink.
/// Fewer means the pages and their transactions came apart; a few envelopes more or less are the
/// SDK's bounded queue dropping some in a burst (see the report).
const MIN_CAPTURED: f64 = 0.95;

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sentry-meta-load",
    about = "Load, concurrency, fault and abuse runs against the sentry-meta demo"
)]
struct Options {
    /// The demo's release binary.
    #[arg(long, default_value = "target/release/sentry-meta-demo")]
    demo: PathBuf,
    /// Where the demos keep their data.
    #[arg(long, default_value = "target/load")]
    work: PathBuf,
    /// Write the report (markdown) here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Pin the demos to this CPU (`taskset -c`).
    #[arg(long)]
    demo_cpu: Option<usize>,
    /// When and from what the run was made, for the report's first line.
    #[arg(long)]
    stamp: Option<String>,
    /// Shorter runs (CI).
    #[arg(long)]
    quick: bool,
    /// Only these runs (all when not given).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Run>,
    /// Another demo binary (an earlier build) to run the abuse cases against as well, for a
    /// before/after in one report; its figures are reported, not checked.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

/// The runs of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Run {
    /// Load and concurrency.
    Load,
    /// Faults of the ingest.
    Faults,
    /// The trace sink under abuse.
    Abuse,
}

impl Options {
    fn runs(&self, run: Run) -> bool {
        self.only.is_empty() || self.only.contains(&run)
    }
}

/// The sizes of a run.
struct Plan {
    clients: usize,
    warmup: usize,
    load_requests: usize,
    /// The paced rate of the load runs, requests per second in all: what the SDK's transport
    /// delivers to the embedded sink without dropping more than a few envelopes.
    rate: f64,
    faults: faults::Plan,
}

impl Plan {
    fn new(quick: bool) -> Self {
        let (clients, warmup) = (64, 1_000);
        Self {
            clients,
            warmup,
            load_requests: 20_000,
            rate: 2_000.0,
            faults: faults::Plan {
                clients,
                warmup,
                // Busy enough that the demo's threads are not parked between requests (waking a
                // parked thread is most of the latency of an idle server, and would make the
                // cheapest fault look slowest).
                rate: 2_000.0,
                // 6 demos: one cycle is 6 slices. Full: 60,000 paced pages per demo.
                cycles: if quick { 1 } else { 5 },
                slice_requests: if quick { 700 } else { 2_000 },
                full_speed_requests: if quick { 4_000 } else { 20_000 },
            },
        }
    }
}

fn main() -> ExitCode {
    let options = <Options as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sentry-meta-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            println!("{}", report.text);
            if let Some(out) = &options.out {
                if let Err(e) = std::fs::write(out, &report.text) {
                    eprintln!("sentry-meta-load: {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", out.display());
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                for failure in &report.failures {
                    eprintln!("FAILED: {failure}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("sentry-meta-load: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Report {
    text: String,
    failures: Vec<String>,
}

/// A demo loaded once: its pages, latencies and memory.
struct Measured {
    pages: Vec<Exchange>,
    p50: Duration,
    p99: Duration,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    seconds: f64,
}

impl Measured {
    fn rss_growth(&self) -> Option<i64> {
        Some(self.rss_after? as i64 - self.rss_before? as i64)
    }
}

/// Warms `demo` up, reads its memory, runs `load`, reads its memory again.
async fn measure(demo: &Demo, load: &Load, warmup: usize) -> Result<Measured, String> {
    let http = client::http_client(load.clients)?;
    let warm = Load {
        requests: warmup,
        ..load.clone()
    };
    client::run(&http, &warm).await?;
    let rss_before = demo.rss_kib();
    let started = std::time::Instant::now();
    let pages = client::run(&http, load).await?;
    let seconds = started.elapsed().as_secs_f64();
    let rss_after = demo.rss_kib();
    let latencies: Vec<Duration> = pages.iter().map(|p| p.latency).collect();
    let (p50, p99) = client::p50_p99(&latencies);
    Ok(Measured {
        p50,
        p99,
        pages,
        rss_before,
        rss_after,
        seconds,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn growth(kib: Option<i64>) -> String {
    kib.map_or("?".into(), |k| format!("{:+.1} MiB", k as f64 / 1024.0))
}

async fn run(options: &Options) -> Result<Report, String> {
    let plan = Plan::new(options.quick);
    // Held for the whole run, until this returns.
    let idle = idle::PollingIdle::hold();
    let clock = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Load, concurrency, faults and abuse\n\n\
         Written by `bash scripts/load.sh{}` ({} mode){}. The demo's release binary runs as a \
         process of its own{}; {} concurrent clients, each on its own keep-alive connection, \
         load its `{PAGE}` page (a minijinja layout writing the tags, behind `NewSentryLayer` → \
         `SentryMetaLayer`, every transaction reported through `DscTransport`) at {:.0} \
         requests per second in all, after {} requests of warm-up. \
         Latency: from sending a request to having read the whole page.\n",
        if options.quick { " --quick" } else { "" },
        if options.quick { "quick" } else { "full" },
        options
            .stamp
            .as_deref()
            .map(|stamp| format!(" on {stamp}"))
            .unwrap_or_default(),
        options
            .demo_cpu
            .map(|cpu| format!(", pinned to CPU {cpu}"))
            .unwrap_or_default(),
        plan.clients,
        plan.rate,
        plan.warmup,
    );

    if options.runs(Run::Load) {
        load_runs(options, &plan, clock, &mut md, &mut failures).await?;
    }
    if options.runs(Run::Faults) {
        faults::run(
            &plan.faults,
            &options.demo,
            &options.work,
            options.demo_cpu,
            clock,
            &mut md,
            &mut failures,
        )
        .await?;
        let _ = writeln!(
            md,
            "\nHow to read this. sentry-meta itself never touches the transport: rendering reads the \
         Hub's memory. The demo sends with the `sentry` crate's `ureq` transport, from a thread \
         of its own behind a bounded queue of envelopes: a page never waits for the ingest, \
         envelopes that do not fit in the queue are dropped, and memory stays bounded however \
         the ingest fails. What a failing ingest changes is the CPU that thread spends, on the \
         pages' CPU here; the CPU column gives it per page. Posting each envelope to a healthy \
         ingest, or to one that answers 500, costs the most. Against a refused port it makes \
         one connection attempt per envelope, with no back-off, which costs a little less. A \
         429 makes it drop envelopes until `Retry-After` has passed, and a black hole holds it \
         on its first envelope while the queue drops the rest: those leave the pages more CPU, \
         so they answer faster. At a paced load, an idle CPU between requests would halt, and \
         waking a halted CPU of a virtual machine costs tens of microseconds: an idler demo \
         would pay that more often and look slower while its throughput is higher. Where it can \
         (as root), the run holds the idle states at polling so that the latencies compare the \
         demo's work; Machine says whether it did."
        );
    }
    if options.runs(Run::Abuse) {
        abuse_runs(options, clock, &mut md, &mut failures).await?;
    }
    let _ = writeln!(
        md,
        "\n## Machine\n\n- CPUs: {}; load average at the end: {}\n- {}\n",
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        idle.description,
    );
    if !failures.is_empty() {
        let _ = writeln!(md, "## Failed checks\n");
        for failure in &failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    Ok(Report { text: md, failures })
}

/// The load and concurrency runs: one demo without and one with incoming trace headers.
async fn load_runs(
    options: &Options,
    plan: &Plan,
    clock: std::time::Instant,
    md: &mut String,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let _ = writeln!(
        md,
        "## Load and concurrency\n\n\
         {} page requests per run, the demo reporting to its embedded sink. Checks: every page \
         answers 200 with tags; without a caller's trace, no two pages share a trace id; with \
         one (a fresh `sentry-trace` + `baggage` per request), the page continues it; and every \
         page's `sentry-trace` names a span of its own server transaction (`{TRANSACTION}`, \
         read back from the envelopes the sink captured) in the page's trace, whose parent is \
         the caller's span when there was one; and the envelope of that transaction carries the \
         page's DSC, key by key (`DscTransport` keeps nothing between envelopes: it reads the DSC \
         from the request's trace root, so its memory is in the RSS column).\n\n\
         | run | pages | time | errors | shared trace ids | continued | transactions captured | \
         page ≠ own transaction | envelope DSC ≠ page's | p50 | p99 | RSS after warm-up → after run |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        plan.load_requests
    );
    for trace_headers in [false, true] {
        let label = if trace_headers {
            "with trace headers"
        } else {
            "without trace headers"
        };
        eprintln!("==> load: {label} ({:.0} s)", clock.elapsed().as_secs_f64());
        let data = options.work.join(if trace_headers {
            "load-headers"
        } else {
            "load-plain"
        });
        let demo = Demo::start(&options.demo, &data, None, options.demo_cpu).await?;
        let load = Load {
            url: format!("{}{PAGE}", demo.web_url),
            clients: plan.clients,
            requests: plan.load_requests,
            rate: Some(plan.rate),
            trace_headers,
            deadline: Duration::from_secs(300),
        };
        let measured = measure(&demo, &load, plan.warmup).await?;
        let expected = (plan.warmup + plan.load_requests) as i64;
        let sink_path = demo.sink_path();
        let envelopes = tokio::task::spawn_blocking({
            let sink_path = sink_path.clone();
            move || sink::wait_for_envelopes(&sink_path, expected, Duration::from_secs(2))
        })
        .await
        .map_err(|e| e.to_string())?;
        let pages = sink::check_pages(&measured.pages);
        let verdict = sink::check(&sink_path, &measured.pages, TRANSACTION)?;
        let stderr = demo.stop().await;
        eprintln!(
            "    {} pages in {:.1} s, {envelopes} envelopes in the sink",
            measured.pages.len(),
            measured.seconds
        );

        let answered = measured.pages.len();
        let captured_share = verdict.captured as f64 / answered.max(1) as f64;
        if answered != plan.load_requests {
            failures.push(format!(
                "{label}: {answered} of {} requests were sent before the deadline",
                plan.load_requests
            ));
        }
        if pages.bad > 0 {
            failures.push(format!(
                "{label}: {} bad pages, e.g. {:?}",
                pages.bad, pages.samples
            ));
        }
        if pages.shared > 0 {
            failures.push(format!("{label}: {} pages share a trace id", pages.shared));
        }
        if !verdict.mismatched.is_empty() {
            failures.push(format!(
                "{label}: {} pages are not in their own transaction's trace, e.g. {:?}",
                verdict.mismatched.len(),
                &verdict.mismatched[..verdict.mismatched.len().min(3)]
            ));
        }
        if !verdict.dsc_mismatched.is_empty() {
            failures.push(format!(
                "{label}: {} transactions' envelopes carry another DSC than their page, e.g. {:?}",
                verdict.dsc_mismatched.len(),
                &verdict.dsc_mismatched[..verdict.dsc_mismatched.len().min(3)]
            ));
        }
        if captured_share < MIN_CAPTURED {
            failures.push(format!(
                "{label}: only {} of {answered} transactions reached the sink",
                verdict.captured
            ));
        }
        check_process(label, &stderr, measured.rss_growth(), failures);
        let continued = if trace_headers {
            format!("{}", answered - pages.bad)
        } else {
            "–".into()
        };
        let _ = writeln!(
            md,
            "| {label} | {answered} | {:.1} s | {} | {} | {continued} | {} ({:.2}%) | {} | {} | {} | \
             {} | {} → {} ({}) |",
            measured.seconds,
            pages.bad,
            if trace_headers {
                "–".into()
            } else {
                pages.shared.to_string()
            },
            verdict.captured,
            captured_share * 100.0,
            verdict.mismatched.len(),
            verdict.dsc_mismatched.len(),
            ms(measured.p50),
            ms(measured.p99),
            mib(measured.rss_before),
            mib(measured.rss_after),
            growth(measured.rss_growth()),
        );
    }

    Ok(())
}

/// The abuse runs ([`abuse`]): this demo, checked, and the baseline's when given.
async fn abuse_runs(
    options: &Options,
    clock: std::time::Instant,
    md: &mut String,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let plan = abuse::Plan::new(options.quick);
    let _ = writeln!(
        md,
        "\n## The trace sink under abuse\n\n\
         The demo's `{}` page at a paced 200 requests per second (2 clients) while its embedded \
         sink, holding {} spans, is abused the way issue 13 describes, by a client that is not a \
         browser (no `Origin`): {} clients asking for `/traces` {} times each, at once, each at \
         most every 250 ms, while an envelope is posted every 100 ms; {} requests for `/traces` \
         abandoned after 50 ms; {} gzipped envelopes of 4 KB that inflate to {} bytes of tiny \
         JSON values ({} clients, one envelope after the other each), then the same inflating to \
         {} bytes (under the sink's limit). The lists and the bombs go on for at least {} s, so \
         that enough pages are measured; the bombs come last (an earlier build stores those it \
         accepts, and its size limit then deletes the oldest spans). Checks: page p50 within {}× \
         of the idle p50, peak memory (`VmHWM`, reset before each case) under {} MiB.",
        abuse::PAGE,
        plan.spans,
        plan.traces_clients,
        plan.traces_rounds,
        plan.abandoned,
        plan.bomb_clients * plan.bombs_per_client,
        plan.bomb_inflated,
        plan.bomb_clients,
        plan.bomb_under_limit,
        plan.window.as_secs(),
        abuse::MAX_P50_RATIO,
        abuse::MAX_PEAK_RSS_KIB >> 10,
    );
    let mut demos = vec![(options.demo.as_path(), "this build", true)];
    if let Some(baseline) = &options.baseline {
        demos.push((baseline.as_path(), "baseline", false));
    }
    for (binary, name, checked) in demos {
        eprintln!("==> abuse: {name} ({:.0} s)", clock.elapsed().as_secs_f64());
        abuse::run(
            &plan,
            binary,
            name,
            &options.work,
            options.demo_cpu,
            checked,
            md,
            failures,
        )
        .await?;
    }
    Ok(())
}

/// Checks a demo's standard error for panics and its memory growth (KiB); returns the panics.
fn check_process(
    label: &str,
    stderr: &str,
    rss_growth: Option<i64>,
    failures: &mut Vec<String>,
) -> usize {
    let panics = stderr.matches("panicked").count();
    if panics > 0 {
        failures.push(format!(
            "{label}: the demo panicked {panics} time(s):\n{stderr}"
        ));
    }
    if let Some(growth) = rss_growth
        && growth > MAX_RSS_GROWTH_KIB as i64
    {
        failures.push(format!(
            "{label}: the demo's memory grew by {growth} KiB over the run"
        ));
    }
    panics
}
