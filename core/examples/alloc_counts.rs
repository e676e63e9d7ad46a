//! Heap allocations per operation, for every operation the micro benchmarks time (the same
//! code on the same inputs: `benches/common/mod.rs`).
//!
//! ```sh
//! cargo run --release -p sentry-meta-core --all-features --example alloc_counts [-- --json FILE]
//! ```
//!
//! For each operation: allocations and bytes allocated per call (the mean over many calls after
//! a warm-up, so one-time work such as the per-thread cache of the client's facts is left out),
//! and the peak of bytes live at once during one call (the memory bound for hostile headers).
//! Prints a table; `--json FILE` also writes the rows as JSON. Counts are of the calling thread
//! only (the Sentry transport's thread is not counted). Exits non-zero only on errors; the
//! docs/design.md target "render into an existing buffer: zero heap allocations" is printed as
//! met/NOT met.

#[path = "../benches/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::process::ExitCode;

use allocation_counter::measure;

/// Calls of a cheap operation measured per row (after as many to warm up).
const CALLS: usize = 1_000;
/// Calls of a hostile-header decision (1 MiB inputs take milliseconds).
const HOSTILE_CALLS: usize = 20;

struct Row {
    name: String,
    allocs_per_call: f64,
    bytes_per_call: f64,
    peak_bytes: u64,
}

/// Measures `op` over `calls` calls after `calls` warm-up calls, and the peak of one call.
fn count(name: &str, calls: usize, mut op: impl FnMut()) -> Row {
    for _ in 0..calls {
        op();
    }
    let total = measure(|| {
        for _ in 0..calls {
            op();
        }
    });
    let one = measure(&mut op);
    Row {
        name: name.to_owned(),
        allocs_per_call: total.count_total as f64 / calls as f64,
        bytes_per_call: total.bytes_total as f64 / calls as f64,
        peak_bytes: one.bytes_max,
    }
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    // render
    let meta = common::meta();
    let html = meta.to_html();
    let mut buffer = String::with_capacity(4096);
    rows.push(count("render/copy_floor", CALLS, || {
        common::copy_floor(&mut buffer, &html)
    }));
    rows.push(count("render/trace_meta_into_buffer", CALLS, || {
        common::render_into_buffer(&mut buffer, &meta)
    }));

    // dsc
    let client = common::client();
    let trace_id = "771a43a4192642f0b136d5159a501700".parse().expect("valid");
    let frozen = common::frozen_dsc();
    rows.push(count("dsc/head_dsc", CALLS, || {
        drop(common::head_dsc(&client, trace_id))
    }));
    rows.push(count("dsc/from_baggage", CALLS, || {
        drop(common::dsc_from_baggage())
    }));
    rows.push(count("dsc/to_baggage", CALLS, || {
        drop(common::dsc_to_baggage(&frozen))
    }));
    // As in the bench, the clone that `SerializedDsc::new` consumes is made outside the count.
    let mut clones = Vec::with_capacity(2 * CALLS + 1);
    clones.resize_with(2 * CALLS + 1, || frozen.clone());
    rows.push(count("dsc/serialized_dsc_new", CALLS, || {
        if let Some(dsc) = clones.pop() {
            drop(common::serialized_dsc_new(dsc));
        }
    }));

    // hostile headers
    let policy = common::hostile_policy();
    for request in common::hostile_requests() {
        rows.push(count(
            &format!("hostile/{}", request.name),
            HOSTILE_CALLS,
            || drop(common::decide(&request, &policy)),
        ));
    }

    // per request
    let mut page = String::with_capacity(4096);
    common::with_active_span(|client| {
        rows.push(count("per_request/new_trace_first_render", CALLS, || {
            common::new_trace_first_render(&mut page, client)
        }));
        // The roots are made before counting, as the bench makes them outside its timing.
        let mut roots: Vec<_> = (0..2 * CALLS + 1)
            .map(|_| common::new_root(client))
            .collect();
        rows.push(count("per_request/first_render", CALLS, || {
            if let Some(root) = roots.pop() {
                common::first_render(&mut page, root);
            }
        }));
        rows.push(count(
            "per_request/continued_trace_first_render",
            CALLS,
            || common::continued_trace_first_render(&mut page, client),
        ));
        common::later_render_root(client).sync_scope(|| {
            rows.push(count("per_request/later_render", CALLS, || {
                common::later_render(&mut page)
            }));
        });
        rows.push(count(
            "per_request/sdk_active_span",
            CALLS,
            common::sdk_active_span,
        ));
    });
    rows
}

fn json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {{\"name\": \"{}\", \"allocs_per_call\": {}, \"bytes_per_call\": {}, \"peak_bytes\": {}}}{}",
            row.name,
            row.allocs_per_call,
            row.bytes_per_call,
            row.peak_bytes,
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push(']');
    out.push('\n');
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--json" => Some(path.clone()),
        _ => {
            eprintln!("usage: alloc_counts [--json FILE]");
            return ExitCode::from(2);
        }
    };

    let rows = rows();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!(
        "{:<width$}  {:>12}  {:>14}  {:>12}",
        "operation", "allocs/call", "bytes/call", "peak bytes"
    );
    for row in &rows {
        println!(
            "{:<width$}  {:>12.2}  {:>14.1}  {:>12}",
            row.name, row.allocs_per_call, row.bytes_per_call, row.peak_bytes
        );
    }
    let render = rows
        .iter()
        .find(|r| r.name == "render/trace_meta_into_buffer")
        .map_or(f64::NAN, |r| r.allocs_per_call);
    println!(
        "target: render into an existing buffer allocates nothing: {} ({render} allocations per call)",
        if render == 0.0 { "met" } else { "NOT met" }
    );

    if let Some(path) = json_path
        && let Err(e) = std::fs::write(&path, json(&rows))
    {
        eprintln!("alloc_counts: cannot write {path}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
