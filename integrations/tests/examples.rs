//! The axum + minijinja example, run as its doc says: its page, fetched over HTTP and parsed as a
//! browser would, carries one `sentry-trace` and one `baggage` tag of one trace. The
//! OpenTelemetry example continues a caller by the rule of the rest of the crate.
//!
//! `cargo test --all-features` builds the package's examples next to the test binaries
//! (`target/debug/examples/`), which is where this test finds the example's binary (and builds
//! it when it is missing or older than its sources, as after `cargo test --test examples`).

#![cfg(all(feature = "axum", feature = "minijinja"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::SystemTime;

use scraper::{Html, Selector};

/// A running example, killed when the test ends (or fails).
struct Example {
    child: Child,
    /// Kept open: the example must not write to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Example {
    fn start(name: &str) -> Self {
        // target/debug/deps/examples-… → target/debug/examples/NAME
        let test = std::env::current_exe().expect("the test binary's path");
        let bin: PathBuf = (test.parent().and_then(|deps| deps.parent()))
            .expect("the test binary in target/…/deps")
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if !is_fresh(&bin, name) {
            build_example(name);
        }
        let mut child = Command::new(&bin)
            .env("ADDR", "127.0.0.1:0")
            // A closed port: the client sends nowhere, and pages still get their tags.
            .env("SENTRY_DSN", "http://public@127.0.0.1:9/1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} not started ({e}): not built?", bin.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let mut example = Self {
            child,
            _stdout: stdout,
            addr: String::new(),
        };
        read.expect("the example's first line");
        let addr = line.trim().strip_prefix("listening on http://");
        let addr = addr.unwrap_or_else(|| panic!("not `listening on http://ADDR`: {line:?}"));
        example.addr = addr.to_owned();
        example
    }

    /// The body of `GET path`, over HTTP/1.1 (a whole response, not chunked).
    fn get(&self, path: &str) -> String {
        self.get_with(path, &[])
    }

    /// The body of `GET path` with these request headers, each `name: value`.
    fn get_with(&self, path: &str, headers: &[&str]) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("the example accepts");
        let headers: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
            self.addr
        );
        stream
            .write_all(request.as_bytes())
            .expect("the request sent");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("the response read");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/html"),
            "{head}"
        );
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        body.to_owned()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `bin` was built after the last change to the sources it is made of. `cargo test`
/// builds the examples before it runs the tests, so they are fresh; `cargo test --test
/// examples` builds no example, and this test builds it then.
fn is_fresh(bin: &Path, name: &str) -> bool {
    fn newest(path: &Path) -> SystemTime {
        let modified = path
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let entries = std::fs::read_dir(path).into_iter().flatten().flatten();
        entries
            .map(|entry| newest(&entry.path()))
            .fold(modified, SystemTime::max)
    }
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        package.join("Cargo.toml"),
        package.join("src"),
        package.join("examples").join(format!("{name}.rs")),
        package.join("../core/src"),
        package.join("../Cargo.lock"),
    ];
    let built = bin.metadata().and_then(|m| m.modified());
    built.is_ok_and(|built| sources.iter().all(|source| newest(source) <= built))
}

/// Builds the example as `cargo test -p sentry-meta --all-features` would have.
fn build_example(name: &str) {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "sentry-meta",
            "--all-features",
            "--example",
            name,
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the example {name} did not build");
}

/// The `content` of every `<meta name="{name}">` in the parsed page.
fn meta_contents(page: &Html, name: &str) -> Vec<String> {
    let selector = Selector::parse(&format!(r#"meta[name="{name}"]"#)).expect("a selector");
    let contents = page
        .select(&selector)
        .map(|meta| meta.value().attr("content"));
    contents
        .map(|content| content.expect("a content").to_owned())
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn axum_minijinja_page_continues_in_the_browser() {
    let example = Example::start("axum_minijinja");
    let body = example.get("/");
    let page = Html::parse_document(&body);

    let traces = meta_contents(&page, "sentry-trace");
    let [trace] = traces.as_slice() else {
        panic!("one sentry-trace tag: {body}")
    };
    let parts: Vec<&str> = trace.split('-').collect();
    let [trace_id, span_id, "1"] = parts.as_slice() else {
        panic!("TRACE-SPAN-1: {trace}")
    };
    assert!(
        is_hex(trace_id, 32) && is_hex(span_id, 16),
        "TRACE-SPAN-1: {trace}"
    );

    let baggages = meta_contents(&page, "baggage");
    let [baggage] = baggages.as_slice() else {
        panic!("one baggage tag: {body}")
    };
    let members: Vec<&str> = baggage.split(',').collect();
    assert!(
        members.contains(&format!("sentry-trace_id={trace_id}").as_str()),
        "{baggage}"
    );
    assert!(members.contains(&"sentry-public_key=public"), "{baggage}");

    // A second request is a second trace.
    let second = meta_contents(&Html::parse_document(&example.get("/")), "sentry-trace");
    assert!(
        !second.iter().any(|other| other.starts_with(trace_id)),
        "{second:?}"
    );
}

#[cfg(feature = "opentelemetry")]
#[test]
fn opentelemetry_example_reads_every_header_value() {
    let example = Example::start("opentelemetry");
    let valid = "sentry-trace: 771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
    let tags = |headers: &[&str]| {
        let page = Html::parse_document(&example.get_with("/", headers));
        let [trace] = meta_contents(&page, "sentry-trace")
            .try_into()
            .expect("one tag");
        let [baggage] = meta_contents(&page, "baggage").try_into().expect("one tag");
        (trace, baggage)
    };
    // A caller's trace, with the members of every `baggage` header frozen.
    let (trace, baggage) = tags(&[
        valid,
        "baggage: sentry-release=a",
        "baggage: sentry-environment=b",
    ]);
    assert!(
        trace.starts_with("771a43a4192642f0b136d5159a501700-"),
        "{trace}"
    );
    assert!(
        trace.ends_with("-1") && !trace.contains("b7ad6b7169203331"),
        "{trace}"
    );
    assert!(baggage.contains("sentry-release=a") && baggage.contains("sentry-environment=b"));
    // Several `sentry-trace` values start a new trace, also when one of them is not text.
    for second in [valid, "sentry-trace: \u{e9}"] {
        let (trace, baggage) = tags(&[valid, second]);
        assert!(
            !trace.starts_with("771a43a4192642f0b136d5159a501700"),
            "{second}: {trace}"
        );
        assert!(
            baggage.contains("sentry-public_key=public"),
            "{second}: {baggage}"
        );
    }
}
