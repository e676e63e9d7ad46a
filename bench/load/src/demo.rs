//! The demo under test: its release binary started as a process of its own (so that its memory
//! is its own), on free loopback ports, with a fresh data directory and a given DSN.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// CPU time used by a demo's threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// All threads.
    pub total: Duration,
    /// The `sentry` crate's transport thread, which sends the envelopes.
    pub transport: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            total: self.total.saturating_sub(earlier.total),
            transport: self.transport.saturating_sub(earlier.transport),
        }
    }
}

/// A running demo process.
pub struct Demo {
    child: Child,
    /// The web origin, `http://127.0.0.1:PORT`.
    pub web_url: String,
    /// Its data directory (`sink.sqlite` is the embedded sink's database).
    pub data_dir: PathBuf,
    /// Its standard error, collected in the background.
    stderr: tokio::task::JoinHandle<String>,
}

impl Demo {
    /// Starts `binary` with its data in `data_dir` (emptied first), reporting to `dsn` (`None`:
    /// the embedded sink), pinned with `taskset -c <cpu>` when given. Returns once it serves.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        dsn: Option<&str>,
        cpu: Option<usize>,
    ) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(data_dir);
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", &cpu.to_string()]).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args([
                "--addr",
                "127.0.0.1:0",
                "--api-addr",
                "127.0.0.1:0",
                "--actix-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(["--tags", "on"])
            .env_remove("SENTRY_DSN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dsn) = dsn {
            command.args(["--dsn", dsn]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // Bounded: a demo that logs without end must not fill this process.
                if text.len() < 1 << 20 {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        });
        // The demo prints its URLs on stdout, the web origin's index first.
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .map_err(|_| "the demo did not start within 300 s".to_owned())?
            .map_err(|e| e.to_string())?
            .ok_or("the demo exited before it served")?;
        let web_url = first.trim().trim_end_matches('/').to_owned();
        if !web_url.starts_with("http://") {
            return Err(format!("unexpected first line from the demo: {first}"));
        }
        // Keep reading stdout so the demo never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            web_url,
            data_dir: data_dir.to_owned(),
            stderr,
        })
    }

    /// The process's resident memory, in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The process's peak resident memory, in KiB (`VmHWM`), since it started or since
    /// [`reset_peak_rss`](Self::reset_peak_rss).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// A `kB` line of `/proc/PID/status`. With `taskset` in front, the demo is the process
    /// `taskset` exec'd into: same pid.
    fn status_kib(&self, key: &str) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resets the peak that [`peak_rss_kib`](Self::peak_rss_kib) reads to the current resident
    /// memory (`5` to `/proc/PID/clear_refs`, Linux 4.0+); whether it could.
    pub fn reset_peak_rss(&self) -> bool {
        self.child
            .id()
            .is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    /// The CPU time the demo's threads have run so far: all of them, and the `sentry` crate's
    /// transport thread (`sentry-transport`, `sentry-transpor` in `comm`), from each thread's
    /// `/proc/PID/task/TID/schedstat` (nanoseconds on a CPU). Threads that have exited are not
    /// counted; the demo's threads live as long as it does.
    pub fn cpu(&self) -> Option<Cpu> {
        let pid = self.child.id()?;
        let mut cpu = Cpu::default();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let path = task.path();
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            else {
                continue;
            };
            let ran = Duration::from_nanos(ns);
            cpu.total += ran;
            // A thread's `comm` keeps the first 15 bytes of its name.
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            if !comm.is_empty() && "sentry-transport".starts_with(comm) {
                cpu.transport += ran;
            }
        }
        Some(cpu)
    }

    /// The CPU time of the whole process so far, threads that have exited included (`utime` +
    /// `stime` of `/proc/PID/stat`, in ticks of 10 ms).
    pub fn process_cpu(&self) -> Option<Duration> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command (which may hold spaces), from the 3rd (state) on.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// The `sink.sqlite` of the embedded sink.
    pub fn sink_path(&self) -> PathBuf {
        self.data_dir.join("sink.sqlite")
    }

    /// Stops the demo (SIGKILL: what it holds is not needed) and returns its standard error.
    pub async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.stderr.await.unwrap_or_default()
    }
}
