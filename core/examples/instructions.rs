//! Runs one benched operation a given number of times, for `valgrind --tool=callgrind` to count
//! its instructions: a figure that, unlike time, does not move with the machine's load.
//!
//! The operations are those of the criterion benches, under their ids, on the same inputs
//! (`benches/common/mod.rs`): `render/…`, `dsc/…`, `per_request/…` and `hostile/SHAPE/SIZE` (one
//! `Continuation::decide`). The calls run inside [`measured`], and what an operation's bench
//! makes outside its timing (the roots of `first_render`, the DSC clones of
//! `serialized_dsc_new`) is made before it, so that callgrind's
//! `--toggle-collect='*instructions::measured*'` counts what the bench times.
//! `scripts/instructions.sh` runs it that way at two loop lengths and divides the difference
//! by the difference of the calls, which also leaves out the first call's one-time work (the
//! per-thread caches filled).
//!
//! ```sh
//! cargo run --profile bench -p sentry-meta-core --all-features --example instructions -- \
//!     per_request/later_render 1000
//! cargo run --profile bench -p sentry-meta-core --all-features --example instructions -- --list
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use std::process::ExitCode;

/// The operations besides `hostile/…`, by bench id.
const OPERATIONS: &[&str] = &[
    "render/copy_floor",
    "render/trace_meta_into_buffer",
    "dsc/head_dsc",
    "dsc/from_baggage",
    "dsc/to_baggage",
    "dsc/serialized_dsc_new",
    "per_request/new_trace_first_render",
    "per_request/first_render",
    "per_request/continued_trace_first_render",
    "per_request/later_render",
    "per_request/sdk_active_span",
    "per_request/render_without_layer",
];

/// Calls `op` `calls` times: the only function whose instructions the script counts.
#[inline(never)]
fn measured(calls: usize, mut op: impl FnMut()) {
    for _ in 0..calls {
        op();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hostile = common::hostile_requests();
    if args.first().map(String::as_str) == Some("--list") {
        for name in OPERATIONS {
            println!("{name}");
        }
        for request in &hostile {
            println!("hostile/{}", request.name);
        }
        return ExitCode::SUCCESS;
    }
    let (Some(operation), Some(Ok(calls))) = (
        args.first(),
        args.get(1).map(|calls| calls.parse::<usize>()),
    ) else {
        eprintln!("usage: instructions OPERATION CALLS | instructions --list");
        return ExitCode::from(2);
    };
    if run(operation, calls, &hostile) {
        ExitCode::SUCCESS
    } else {
        eprintln!("instructions: unknown operation {operation} (see --list)");
        ExitCode::from(2)
    }
}

/// Runs `operation` `calls` times; false if there is no such operation.
fn run(operation: &str, calls: usize, hostile: &[common::Hostile]) -> bool {
    let mut page = String::with_capacity(4096);
    match operation {
        "render/copy_floor" => {
            let html = common::meta().to_html();
            measured(calls, || common::copy_floor(&mut page, &html));
        }
        "render/trace_meta_into_buffer" => {
            let meta = common::meta();
            measured(calls, || common::render_into_buffer(&mut page, &meta));
        }
        "dsc/head_dsc" => {
            let client = common::client();
            let trace_id = "771a43a4192642f0b136d5159a501700".parse().expect("valid");
            measured(calls, || drop(common::head_dsc(&client, trace_id)));
        }
        "dsc/from_baggage" => measured(calls, || drop(common::dsc_from_baggage())),
        "dsc/to_baggage" => {
            let frozen = common::frozen_dsc();
            measured(calls, || drop(common::dsc_to_baggage(&frozen)));
        }
        "dsc/serialized_dsc_new" => {
            let frozen = common::frozen_dsc();
            let mut clones = vec![frozen; calls];
            measured(calls, || {
                if let Some(dsc) = clones.pop() {
                    drop(common::serialized_dsc_new(dsc));
                }
            });
        }
        "per_request/new_trace_first_render" => common::with_active_span(|client| {
            measured(calls, || common::new_trace_first_render(&mut page, client));
        }),
        // One root made (not counted) before each counted render, which frees it: one root at a
        // time, as a server has them.
        "per_request/first_render" => common::with_active_span(|client| {
            for _ in 0..calls {
                let mut root = Some(common::new_root(client));
                measured(1, || {
                    if let Some(root) = root.take() {
                        common::first_render(&mut page, root);
                    }
                });
            }
        }),
        "per_request/continued_trace_first_render" => common::with_active_span(|client| {
            measured(calls, || {
                common::continued_trace_first_render(&mut page, client)
            });
        }),
        "per_request/later_render" => common::with_active_span(|client| {
            common::later_render_root(client).sync_scope(|| {
                measured(calls, || common::later_render(&mut page));
            })
        }),
        "per_request/sdk_active_span" => common::with_active_span(|_| {
            measured(calls, common::sdk_active_span);
        }),
        "per_request/render_without_layer" => common::with_active_span(|_| {
            measured(calls, || common::render_without_layer(&mut page));
        }),
        other => {
            let Some(request) = hostile
                .iter()
                .find(|request| other.strip_prefix("hostile/") == Some(request.name.as_str()))
            else {
                return false;
            };
            let policy = common::hostile_policy();
            measured(calls, || drop(common::decide(request, &policy)));
        }
    }
    true
}
