//! The browser bundle: `@sentry/browser` (pinned in `web/package.json` and
//! `web/package-lock.json`) and `web/src/demo.js`, bundled by esbuild into `web/dist/demo.js`.
//!
//! Built here, at run time, rather than in a `build.rs`: `cargo build` (and every crate that
//! depends on this one, such as the tests) then never needs Node.js, nothing runs npm behind
//! cargo's back on every build, and the progress of a first `npm ci` is shown to the person
//! who ran the demo. The bundle is rebuilt when an input changes (a fingerprint of the inputs is
//! kept next to it); `npm ci` runs when `package-lock.json` changes or `node_modules` is missing.
//! Third-party code is never committed: `web/dist/` and `web/node_modules/` are ignored by git.

use std::fs::{self, File};
use std::hash::Hasher as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// The files whose contents decide the bundle, relative to [`web_dir`].
const INPUTS: [&str; 3] = ["package.json", "package-lock.json", "src/demo.js"];
/// The bundle, relative to [`web_dir`] (the `build` script of `package.json` writes it).
const OUTPUT: &str = "dist/demo.js";
const FINGERPRINT: &str = "dist/.fingerprint";
const LOCK_FINGERPRINT: &str = "node_modules/.sentry-meta-demo-lock";

/// Why the bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// `npm` is not installed (or not on `PATH`).
    #[error(
        "`npm` was not found. The demo builds its browser bundle (@sentry/browser, bundled by \
         esbuild) with npm on its first run: install Node.js with npm (https://nodejs.org/, or \
         `apt-get install -y nodejs npm`) and run it again."
    )]
    NpmMissing,
    /// A command failed.
    #[error("{0}")]
    Command(String),
    /// A file could not be read or written.
    #[error("{path}: {1}", path = .0.display())]
    Io(PathBuf, io::Error),
}

/// `demo-site/web`, where `package.json` lives.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// FNV-1a (the `fnv` crate) over the inputs' names and contents: enough to notice a change.
fn fingerprint(dir: &Path, files: &[&str]) -> Result<String, BundleError> {
    let mut hasher = fnv::FnvHasher::default();
    for name in files {
        let path = dir.join(name);
        let bytes = fs::read(&path).map_err(|e| BundleError::Io(path, e))?;
        for part in [name.as_bytes(), &[0], &bytes, &[0]] {
            hasher.write(part);
        }
    }
    Ok(format!("{:016x}", hasher.finish()))
}

fn read_to_string_or_empty(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn write(path: &Path, contents: &str) -> Result<(), BundleError> {
    fs::write(path, contents).map_err(|e| BundleError::Io(path.to_owned(), e))
}

fn npm(dir: &Path, args: &[&str]) -> Result<(), BundleError> {
    eprintln!(
        "demo: running `npm {}` in {}",
        args.join(" "),
        dir.display()
    );
    // npm's output goes to the terminal (stderr), so a first `npm ci` shows its progress.
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit())
        .status();
    match status {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BundleError::NpmMissing),
        Err(e) => Err(BundleError::Command(format!(
            "could not run `npm {}`: {e}",
            args.join(" ")
        ))),
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(BundleError::Command(format!(
            "`npm {}` in {} failed ({status})",
            args.join(" "),
            dir.display()
        ))),
    }
}

/// Builds the bundle if it is missing or stale, and returns its path.
///
/// Safe to call from several threads and processes at once (a lock file serializes builds).
/// The first build needs the npm registry; later calls only hash three files.
pub fn ensure_bundle() -> Result<PathBuf, BundleError> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _in_process = IN_PROCESS.lock().unwrap_or_else(PoisonError::into_inner);

    let dir = web_dir();
    let output = dir.join(OUTPUT);
    let wanted = fingerprint(&dir, &INPUTS)?;
    if output.is_file() && read_to_string_or_empty(&dir.join(FINGERPRINT)) == wanted {
        return Ok(output);
    }

    let dist = dir.join("dist");
    fs::create_dir_all(&dist).map_err(|e| BundleError::Io(dist.clone(), e))?;
    let lock_path = dist.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| BundleError::Io(lock_path.clone(), e))?;
    lock.lock().map_err(|e| BundleError::Io(lock_path, e))?; // Released when `lock` drops.
    // Another process may have built it while this one waited.
    if output.is_file() && read_to_string_or_empty(&dir.join(FINGERPRINT)) == wanted {
        return Ok(output);
    }

    eprintln!(
        "demo: building the browser bundle (@sentry/browser + esbuild) into {}",
        output.display()
    );
    let lock_wanted = fingerprint(&dir, &["package-lock.json"])?;
    if read_to_string_or_empty(&dir.join(LOCK_FINGERPRINT)) != lock_wanted {
        npm(&dir, &["ci", "--no-audit", "--no-fund"])?;
        write(&dir.join(LOCK_FINGERPRINT), &lock_wanted)?;
    }
    npm(&dir, &["run", "--silent", "build"])?;
    if !output.is_file() {
        return Err(BundleError::Command(format!(
            "`npm run build` did not write {}",
            output.display()
        )));
    }
    write(&dir.join(FINGERPRINT), &wanted)?;
    eprintln!("demo: browser bundle ready");
    Ok(output)
}
