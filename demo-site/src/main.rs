//! `cargo run -p sentry-meta-demo [-- --addr … --api-addr … --dsn …]`: see `lib.rs`.

use std::process::ExitCode;

use clap::Parser as _;
use sentry_meta_demo::args::Args;
use sentry_meta_demo::{Config, Tags};

fn main() -> ExitCode {
    let config = Config::from(Args::parse());
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
