//! The fault runs: the demo's page under a paced load while its DSN points at an ingest that is
//! healthy, refuses connections, never answers, or answers 500 or 429.
//!
//! One demo per case runs for the whole phase, all of them pinned to the same CPU, and the load
//! moves between them in short slices, in an order that changes from slice to slice: the rows of
//! a Williams design, so that over one cycle of slices each case runs in each position, and right
//! after each other case, equally often. A slow moment of the machine then falls on every case
//! alike instead of on whichever case was running. The ratios to the healthy case are worked out
//! per cycle, and their median is the figure: a stall of the machine (a few milliseconds in which
//! a hundred pages wait) moves one cycle's p99, not the verdict. A second demo on a healthy
//! ingest runs as a control: it does the same work as the first, so its ratios show how closely
//! the method can compare.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{self, Exchange, Load, p50_p99};
use crate::demo::{Cpu, Demo};
use crate::ingest::{Fault, Ingest};
use crate::{PAGE, check_process, growth, ms, sink};

/// The sizes of the fault phase.
pub struct Plan {
    pub clients: usize,
    /// Paced requests per demo before measuring: the transport reaches its steady state (stuck
    /// on the black hole, told to wait by the 429) and the connections are open.
    pub warmup: usize,
    /// Requests per second in all.
    pub rate: f64,
    /// Cycles of the design, each one slice per row ([`slice_order`]).
    pub cycles: usize,
    /// Paced requests per case and slice.
    pub slice_requests: usize,
    /// Requests of the closed-loop run per case, after the paced slices.
    pub full_speed_requests: usize,
}

/// The cases, the reference first: each ingest, and whether it is the control (a second demo on
/// a healthy ingest).
const CASES: [(Fault, bool); 6] = [
    (Fault::Healthy, false),
    (Fault::Healthy, true),
    (Fault::ClosedPort, false),
    (Fault::BlackHole, false),
    (Fault::Status500, false),
    (Fault::Status429, false),
];

/// Between two cases' loads: long enough for a demo's transport to send what its pages just
/// queued (a few envelopes at the paced rate), so that it does not run into the next case.
const SETTLE: Duration = Duration::from_millis(100);

/// One fault case: its ingest, its demo and what was measured.
struct Case {
    fault: Fault,
    control: bool,
    ingest: Ingest,
    demo: Demo,
    http: reqwest::Client,
    url: String,
    pages: Vec<Exchange>,
    /// The latencies of each slice, in slice order.
    slices: Vec<Vec<Duration>>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    cpu_before: Option<Cpu>,
    cpu_after: Option<Cpu>,
    /// Closed loop: requests per second, p50, p99.
    full_speed: Option<(f64, Duration, Duration)>,
}

/// The rows of one cycle of the Williams design for `n` cases: `n` for an even `n`, `2n` for an
/// odd one.
fn design_rows(n: usize) -> usize {
    if n % 2 == 1 { 2 * n } else { n }
}

/// The order of the cases in slice `slice`: the rows of a Williams design for `n` cases (the `n`
/// rows of the cyclic Latin square that starts 0, 1, n−1, 2, n−2, …, and for an odd `n` their
/// mirror images too), taken in turn.
fn slice_order(n: usize, slice: usize) -> Vec<usize> {
    let first: Vec<usize> = (0..n)
        .map(|j| match j {
            0 => 0,
            j if j % 2 == 1 => j.div_ceil(2),
            j => n - j / 2,
        })
        .collect();
    let row = slice % design_rows(n);
    let mut order: Vec<usize> = first.iter().map(|&c| (c + row % n) % n).collect();
    if row >= n {
        order.reverse();
    }
    order
}

/// Runs the fault phase, appends its section to `md` and its failed checks to `failures`.
pub async fn run(
    plan: &Plan,
    binary: &Path,
    work: &Path,
    demo_cpu: Option<usize>,
    clock: Instant,
    md: &mut String,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    // Every case's demo, started and warmed up one after the other.
    let mut cases = Vec::with_capacity(CASES.len());
    for (index, &(fault, control)) in CASES.iter().enumerate() {
        eprintln!(
            "==> faults: starting the demo of {} ({:.0} s)",
            label(fault, control),
            clock.elapsed().as_secs_f64()
        );
        let ingest = Ingest::start(fault).await.map_err(|e| e.to_string())?;
        let demo = Demo::start(
            binary,
            &work.join(format!("fault-{index}")),
            Some(&ingest.dsn),
            demo_cpu,
        )
        .await?;
        let http = client::http_client(plan.clients)?;
        let url = format!("{}{PAGE}", demo.web_url);
        client::run(&http, &paced(&url, plan, plan.warmup)).await?;
        cases.push(Case {
            fault,
            control,
            ingest,
            demo,
            http,
            url,
            pages: Vec::new(),
            slices: Vec::new(),
            rss_before: None,
            rss_after: None,
            cpu_before: None,
            cpu_after: None,
            full_speed: None,
        });
    }
    tokio::time::sleep(SETTLE).await;
    for case in &mut cases {
        case.rss_before = case.demo.rss_kib();
        case.cpu_before = case.demo.cpu();
    }

    // The paced slices.
    let slices = plan.cycles * design_rows(cases.len());
    for slice in 0..slices {
        let mut line = String::new();
        for index in slice_order(cases.len(), slice) {
            let case = &mut cases[index];
            let pages =
                client::run(&case.http, &paced(&case.url, plan, plan.slice_requests)).await?;
            let latencies: Vec<Duration> = pages.iter().map(|page| page.latency).collect();
            let (p50, p99) = p50_p99(&latencies);
            let _ = write!(
                line,
                " {index}: {:.2}/{:.2}",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
            );
            case.slices.push(latencies);
            case.pages.extend(pages);
            tokio::time::sleep(SETTLE).await;
        }
        eprintln!(
            "==> faults: slice {} of {slices} ({:.0} s), case: p50/p99 ms:{line}",
            slice + 1,
            clock.elapsed().as_secs_f64()
        );
    }
    for case in &mut cases {
        case.rss_after = case.demo.rss_kib();
        case.cpu_after = case.demo.cpu();
    }

    // Then each as fast as it answers: what the fault costs in throughput.
    for case in &mut cases {
        let load = Load {
            rate: None,
            ..paced(&case.url, plan, plan.full_speed_requests)
        };
        let started = Instant::now();
        let pages = client::run(&case.http, &load).await?;
        let seconds = started.elapsed().as_secs_f64();
        let latencies: Vec<Duration> = pages.iter().map(|page| page.latency).collect();
        let (p50, p99) = p50_p99(&latencies);
        case.full_speed = Some((pages.len() as f64 / seconds.max(1e-9), p50, p99));
        case.pages.extend(pages);
        tokio::time::sleep(SETTLE).await;
    }

    report(plan, cases, md, failures).await;
    Ok(())
}

/// `requests` paced page requests to `url`, without trace headers.
fn paced(url: &str, plan: &Plan, requests: usize) -> Load {
    Load {
        url: url.to_owned(),
        clients: plan.clients,
        requests,
        rate: Some(plan.rate),
        trace_headers: false,
        deadline: Duration::from_secs(300),
    }
}

/// A case's name in the report.
fn label(fault: Fault, control: bool) -> String {
    if control {
        format!("{}, a second demo (control)", fault.name())
    } else {
        fault.name().to_owned()
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn report(plan: &Plan, cases: Vec<Case>, md: &mut String, failures: &mut Vec<String>) {
    let rows = design_rows(cases.len());
    // A case's p50 and p99 in each cycle of the design.
    let per_cycle = |case: &Case| -> Vec<(Duration, Duration)> {
        case.slices
            .chunks(rows)
            .map(|cycle| p50_p99(&cycle.concat()))
            .collect()
    };
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let range = |values: &[f64]| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.2}–{max:.2}×")
    };
    let healthy_cycles = per_cycle(&cases[0]);
    let (h50, h99) = p50_p99(&cases[0].slices.concat());
    let healthy_rps = cases[0].full_speed.map_or(0.0, |(rps, _, _)| rps);

    let _ = writeln!(
        md,
        "\n## Faults of the ingest\n\n\
         One demo per case, its DSN pointing at that case's ingest, all of them running for the \
         whole phase on the same CPU, plus a second demo on a healthy ingest as a control (the \
         same work as the first: its ratios show how closely this method compares). After {} \
         paced requests of warm-up each (the transport reaches its steady state: stuck on the \
         black hole, waiting after the 429), the load moves from demo to demo in slices of {} \
         requests at {:.0} requests per second, with {} ms between two demos' loads, in the \
         order of a Williams design: in each cycle of {rows} slices every demo runs once in each \
         position and once right after each other demo; {} cycle(s), so {} paced pages per demo. \
         A slow moment of the machine then falls on all demos alike. The healthy ingest answers \
         every envelope `200 OK` (from the load generator's process, off the demos' CPU).\n\n\
         The ratios to the healthy case are worked out per cycle and their median is the figure \
         (the range over the cycles is given too): a stall of the machine, a few milliseconds in \
         which a hundred pages wait, moves one cycle's p99 but not the median. The ratios of all \
         pages pooled are given as well. Goal: page latency p50 and p99 within 10% of the healthy \
         case, no panic, memory bounded.\n\n\
         | ingest | pages | errors | p50 | p99 | p50 / healthy | p99 / healthy | within 10% | \
         range over cycles: p50, p99 | all pages pooled: p50, p99 | demo CPU per page: all \
         threads, transport thread | panics | RSS after warm-up → after | what the ingest saw |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: | --- | --- |",
        plan.warmup,
        plan.slice_requests,
        plan.rate,
        SETTLE.as_millis(),
        plan.cycles,
        plan.cycles * rows * plan.slice_requests,
    );

    let mut full_speed_rows = Vec::new();
    for (index, case) in cases.into_iter().enumerate() {
        let name = label(case.fault, case.control);
        let latencies = case.slices.concat();
        let (p50, p99) = p50_p99(&latencies);
        let cycles = per_cycle(&case);
        let c50: Vec<f64> = cycles
            .iter()
            .zip(&healthy_cycles)
            .map(|((p50, _), (h50, _))| ratio(*p50, *h50))
            .collect();
        let c99: Vec<f64> = cycles
            .iter()
            .zip(&healthy_cycles)
            .map(|((_, p99), (_, h99))| ratio(*p99, *h99))
            .collect();
        let (r50, r99) = (median(c50.clone()), median(c99.clone()));
        let checked = sink::check_pages(&case.pages);
        if checked.bad > 0 || checked.shared > 0 {
            failures.push(format!(
                "fault {name}: {} bad pages, {} shared trace ids, e.g. {:?}",
                checked.bad, checked.shared, checked.samples
            ));
        }
        let cpu = match (case.cpu_before, case.cpu_after) {
            (Some(before), Some(after)) => {
                let used = after - before;
                let per_page = |d: Duration| d.as_secs_f64() * 1e6 / latencies.len().max(1) as f64;
                format!(
                    "{:.1} µs, {:.1} µs",
                    per_page(used.total),
                    per_page(used.transport)
                )
            }
            _ => "?".into(),
        };
        let rss_growth = case
            .rss_after
            .zip(case.rss_before)
            .map(|(after, before)| after as i64 - before as i64);
        let seen = case.ingest.seen();
        let seen = match case.fault {
            Fault::ClosedPort => "nothing (connections refused)".into(),
            Fault::BlackHole => format!("{seen} connection(s), never answered"),
            Fault::Healthy | Fault::Status500 | Fault::Status429 => format!("{seen} envelope(s)"),
        };
        let stderr = case.demo.stop().await;
        let panics = check_process(&format!("fault {name}"), &stderr, rss_growth, failures);
        let reference = index == 0;
        let within = r50 <= 1.10 && r99 <= 1.10;
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {cpu} | {panics} | {} → {} \
             ({}) | {seen} |",
            latencies.len(),
            checked.bad,
            ms(p50),
            ms(p99),
            if reference {
                "1.00×".into()
            } else {
                format!("{r50:.2}×")
            },
            if reference {
                "1.00×".into()
            } else {
                format!("{r99:.2}×")
            },
            match (reference, within) {
                (true, _) => "–",
                (false, true) => "yes",
                (false, false) => "**no**",
            },
            if reference || c50.len() < 2 {
                "–".into()
            } else {
                format!("{}, {}", range(&c50), range(&c99))
            },
            if reference {
                "–".into()
            } else {
                format!("{:.2}×, {:.2}×", ratio(p50, h50), ratio(p99, h99))
            },
            crate::mib(case.rss_before),
            crate::mib(case.rss_after),
            growth(rss_growth),
        );
        if let Some((rps, p50, p99)) = case.full_speed {
            full_speed_rows.push(format!(
                "| {name} | {rps:.0} | {:.2}× | {} | {} |",
                rps / healthy_rps.max(1e-9),
                ms(p50),
                ms(p99)
            ));
        }
    }
    let _ = writeln!(
        md,
        "\nThe same demos after the paced slices, each as fast as it answers ({} clients, closed \
         loop, {} requests): what a failing ingest costs the page in throughput.\n\n\
         | ingest | requests/s | / healthy | p50 | p99 |\n| --- | ---: | ---: | ---: | ---: |\n{}",
        plan.clients,
        plan.full_speed_requests,
        full_speed_rows.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::slice_order;

    /// Over one cycle, each case runs in each position, and right after each other case, as
    /// often as any other.
    fn check_balance(n: usize) {
        let rows = super::design_rows(n);
        let mut position = vec![vec![0; n]; n];
        let mut after = vec![vec![0; n]; n];
        for slice in 0..rows {
            let order = slice_order(n, slice);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
            for (p, &case) in order.iter().enumerate() {
                position[case][p] += 1;
            }
            for pair in order.windows(2) {
                after[pair[1]][pair[0]] += 1;
            }
        }
        let times = rows / n;
        for case in 0..n {
            assert!(position[case].iter().all(|&k| k == times), "{position:?}");
            for before in 0..n {
                let expected = if before == case { 0 } else { times };
                assert_eq!(after[case][before], expected, "n = {n}: {after:?}");
            }
        }
    }

    #[test]
    fn williams_design_balances_positions_and_predecessors() {
        for n in 2..=8 {
            check_balance(n);
        }
        assert_eq!(slice_order(6, 0), [0, 1, 5, 2, 4, 3]);
        assert_eq!(slice_order(6, 6), slice_order(6, 0), "cycles repeat");
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
