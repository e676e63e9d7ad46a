//! `cargo run -p sentry-meta-demo [-- --addr … --api-addr … --dsn …]`: see `lib.rs`.

use std::process::ExitCode;

use clap::Parser as _;
use sentry_meta_demo::args::Args;
use sentry_meta_demo::{Config, Tags};

fn main() -> ExitCode {
    let config = Config::from(Args::parse());
    log_to_stderr();
    let demo = match sentry_meta_demo::start(config.clone()) {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("sentry-meta-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("sentry-meta demo: pages, trace sink and API (Ctrl-C to stop):");
    for url in demo.urls() {
        println!("{url}");
    }
    if demo.uses_sink {
        eprintln!(
            "Both SDKs report to the embedded trace sink: {} (data in {})",
            demo.dsn,
            config.data_dir.display()
        );
    } else {
        eprintln!(
            "Both SDKs report to {} (the embedded sink is mounted but unused)",
            demo.dsn
        );
    }
    match config.tags {
        Tags::On => {}
        Tags::Off => eprintln!("Pages carry no trace tags (--tags off)"),
        Tags::Constant => eprintln!("Pages carry one constant tag pair (--tags constant)"),
    }
    demo.run_until_ctrl_c();
    ExitCode::SUCCESS
}

/// Log lines on stderr: warnings and errors (the cache guard's warning, a setup problem, a page
/// that failed to render), or what `RUST_LOG` selects, as targets and levels
/// (`RUST_LOG=sentry_meta=debug` also says why a caller's trace was not continued).
fn log_to_stderr() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => directives.parse().unwrap_or_else(|e| {
            eprintln!("sentry-meta-demo: RUST_LOG={directives:?} ignored: {e}");
            Targets::new().with_default(LevelFilter::WARN)
        }),
        Err(_) => Targets::new().with_default(LevelFilter::WARN),
    };
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .init();
}
