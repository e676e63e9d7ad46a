//! The command line: `--addr`, `--api-addr`, `--dsn`, `--data-dir`, `--tags`, each with an
//! environment variable; a flag wins over its variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{Config, Tags};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the demo.
    Run(Config),
    /// Print the usage.
    Help,
}

/// The usage text.
pub const USAGE: &str = "\
sentry-meta-demo: SSR → browser → API → database in one Sentry trace

USAGE:
    cargo run -p sentry-meta-demo -- [OPTIONS]

OPTIONS:
    --addr <ADDR>        web pages and the trace sink   [env: SENTRY_META_DEMO_ADDR]     [default: 127.0.0.1:8080]
    --api-addr <ADDR>    the JSON API                   [env: SENTRY_META_DEMO_API_ADDR] [default: 127.0.0.1:8081]
    --dsn <DSN>          where both SDKs send; without one, the embedded sink of --addr
                                                        [env: SENTRY_DSN]
    --data-dir <DIR>     the SQLite files (app.sqlite, sink.sqlite)
                                                        [env: SENTRY_META_DEMO_DATA_DIR] [default: target/sentry-meta-demo]
    --tags <on|off|constant>
                         off: pages without trace tags; constant: the same bytes as on, made
                         once (the page benchmark's controls)
                                                        [env: SENTRY_META_DEMO_TAGS]     [default: on]
    -h, --help           print this
";

/// Reads the arguments (without the program name) and the environment through `env`.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, String> {
    let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut addr = non_empty("SENTRY_META_DEMO_ADDR");
    let mut api_addr = non_empty("SENTRY_META_DEMO_API_ADDR");
    let mut dsn = non_empty("SENTRY_DSN");
    let mut data_dir = non_empty("SENTRY_META_DEMO_DATA_DIR");
    let mut tags = non_empty("SENTRY_META_DEMO_TAGS");

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--addr" => &mut addr,
            "--api-addr" => &mut api_addr,
            "--dsn" => &mut dsn,
            "--data-dir" => &mut data_dir,
            "--tags" => &mut tags,
            _ => return Err(format!("unknown argument `{arg}` (see --help)")),
        };
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value (see --help)"))?,
        };
        *slot = Some(value);
    }

    let socket = |value: Option<String>, default: &str, what: &str| -> Result<SocketAddr, String> {
        let value = value.unwrap_or_else(|| default.to_owned());
        value
            .trim()
            .parse()
            .map_err(|_| format!("{what}: `{value}` is not an address like {default}"))
    };
    let tags = match tags.as_deref().map(str::trim) {
        None | Some("on") => Tags::On,
        Some("off") => Tags::Off,
        Some("constant") => Tags::Constant,
        Some(other) => {
            return Err(format!(
                "--tags: `{other}` is not `on`, `off` or `constant`"
            ));
        }
    };
    Ok(Command::Run(Config {
        addr: socket(addr, "127.0.0.1:8080", "--addr")?,
        api_addr: socket(api_addr, "127.0.0.1:8081", "--api-addr")?,
        dsn: dsn.map(|d| d.trim().to_owned()),
        data_dir: data_dir.map_or_else(crate::default_data_dir, PathBuf::from),
        tags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        match parse(args.iter().map(|a| (*a).to_owned()), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })? {
            Command::Run(config) => Ok(config),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_flags_and_env() -> Result<(), String> {
        let config = run(&[], &[])?;
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.api_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(config.dsn, None);
        assert_eq!(config.tags, Tags::On);
        assert_eq!(run(&["--tags", "off"], &[])?.tags, Tags::Off);
        assert_eq!(run(&["--tags=constant"], &[])?.tags, Tags::Constant);
        assert_eq!(
            run(&[], &[("SENTRY_META_DEMO_TAGS", "off")])?.tags,
            Tags::Off
        );
        assert_eq!(
            run(&["--tags=on"], &[("SENTRY_META_DEMO_TAGS", "off")])?.tags,
            Tags::On
        );

        let config = run(
            &["--addr", "127.0.0.1:9000", "--api-addr=127.0.0.1:9001"],
            &[("SENTRY_DSN", "https://k@o1.ingest.sentry.io/2")],
        )?;
        assert_eq!(config.addr.port(), 9000);
        assert_eq!(config.api_addr.port(), 9001);
        assert_eq!(
            config.dsn.as_deref(),
            Some("https://k@o1.ingest.sentry.io/2")
        );

        let config = run(
            &["--dsn", "http://a@b/1"],
            &[
                ("SENTRY_DSN", "http://x@y/2"),
                ("SENTRY_META_DEMO_ADDR", "0.0.0.0:1"),
            ],
        )?;
        assert_eq!(config.dsn.as_deref(), Some("http://a@b/1"));
        assert_eq!(config.addr.to_string(), "0.0.0.0:1");
        Ok(())
    }

    #[test]
    fn errors() {
        assert!(run(&["--addr"], &[]).is_err());
        assert!(run(&["--addr", "nope"], &[]).is_err());
        assert!(run(&["--bogus"], &[]).is_err());
        assert!(run(&["--tags", "maybe"], &[]).is_err());
        assert_eq!(run(&["--help"], &[]).err().as_deref(), Some("help"));
    }
}
