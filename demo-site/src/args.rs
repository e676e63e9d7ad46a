//! The command line: `--addr`, `--api-addr`, `--actix-addr`, `--dsn`, `--data-dir`, `--tags`, `--envelope-dsc`,
//! each with an environment variable; a flag wins over its variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{Config, Tags};

/// SSR → browser → API → database in one Sentry trace.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sentry-meta-demo",
    version,
    after_help = "Log lines go to stderr: warnings and errors, or what RUST_LOG selects \
                  (targets and levels, e.g. RUST_LOG=sentry_meta=debug)."
)]
pub struct Args {
    /// Web pages and the trace sink.
    #[arg(long, env = "SENTRY_META_DEMO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The JSON API.
    #[arg(
        long,
        env = "SENTRY_META_DEMO_API_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub api_addr: SocketAddr,
    /// The actix-web page (`/actix`).
    #[arg(
        long,
        env = "SENTRY_META_DEMO_ACTIX_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub actix_addr: SocketAddr,
    /// Where both SDKs send; without one, the embedded sink of --addr.
    #[arg(long, env = "SENTRY_DSN")]
    pub dsn: Option<String>,
    /// The SQLite files (app.sqlite, sink.sqlite) [default: target/sentry-meta-demo].
    #[arg(long, env = "SENTRY_META_DEMO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// off: pages without trace tags; constant: the same bytes as on, made once (the page
    /// benchmark's controls).
    #[arg(long, env = "SENTRY_META_DEMO_TAGS", value_enum, default_value = "on")]
    pub tags: Tags,
    /// Whether the server's envelopes carry its pages' DSC (`sentry_meta::DscTransport`); the
    /// page benchmark turns it off to measure the tags alone.
    #[arg(
        long,
        env = "SENTRY_META_DEMO_ENVELOPE_DSC",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub envelope_dsc: bool,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Config {
            addr: args.addr,
            api_addr: args.api_addr,
            actix_addr: args.actix_addr,
            dsn: args.dsn.filter(|dsn| !dsn.trim().is_empty()),
            data_dir: args.data_dir.unwrap_or_else(crate::default_data_dir),
            tags: args.tags,
            envelope_dsc: args.envelope_dsc,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    fn run(args: &[&str]) -> Result<Config, clap::Error> {
        Args::try_parse_from(["sentry-meta-demo"].iter().chain(args)).map(Config::from)
    }

    #[test]
    fn defaults_and_flags() -> Result<(), clap::Error> {
        Args::command().debug_assert();
        // The environment of `cargo test` is not the demo's: only flags here.
        let config = run(&["--addr", "127.0.0.1:9000", "--api-addr=127.0.0.1:9001"])?;
        assert_eq!((config.addr.port(), config.api_addr.port()), (9000, 9001));
        assert_eq!(run(&["--tags", "off"])?.tags, Tags::Off);
        assert_eq!(run(&["--tags=constant"])?.tags, Tags::Constant);
        let config = run(&["--dsn", "http://a@b/1", "--data-dir", "/tmp/x"])?;
        assert_eq!(config.dsn.as_deref(), Some("http://a@b/1"));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        for bad in [
            &["--addr"][..],
            &["--addr", "nope"],
            &["--bogus"],
            &["--tags", "maybe"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
