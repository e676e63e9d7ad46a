//! Idle states held at polling for the length of a run, so that latency measures the demo and not
//! how long this machine takes to wake a halted CPU.
//!
//! On a virtual machine an idle CPU halts, and waking it costs an exit to the hypervisor: tens of
//! microseconds, paid by whichever request arrives first after a pause. A demo with less to do
//! (its ingest black-holed, or a 429 telling it to wait) pauses more often between paced requests
//! and pays that more often, so it would look slower than a busy one. Writing `0` to
//! `/dev/cpu_dma_latency` and keeping the file open asks the kernel's idle governor for a wake-up
//! latency of 0 µs, i.e. for its polling state only, until the file is closed: the PM QoS
//! interface that `cyclictest` and tuned's `latency-performance` profile use for the same reason.

use std::fs::{File, OpenOptions};
use std::io::Write;

/// While alive, CPUs poll when idle instead of halting (where the kernel allows it).
pub struct PollingIdle {
    _file: Option<File>,
    /// What the report says about it.
    pub description: String,
}

impl PollingIdle {
    /// Asks for polling idle states; says in [`description`](Self::description) whether it
    /// could (it needs root and the PM QoS device), and never fails the run.
    pub fn hold() -> Self {
        const DEVICE: &str = "/dev/cpu_dma_latency";
        let held = OpenOptions::new()
            .write(true)
            .open(DEVICE)
            .and_then(|mut file| {
                // The interface takes a native-endian 32-bit count of microseconds.
                file.write_all(&0i32.to_ne_bytes())?;
                Ok(file)
            });
        match held {
            Ok(file) => Self {
                _file: Some(file),
                description: format!(
                    "idle CPUs poll rather than halt for the whole run (`{DEVICE}` held at 0 µs)"
                ),
            },
            Err(e) => Self {
                _file: None,
                description: format!(
                    "idle states as the machine has them (`{DEVICE}` could not be held: {e}); \
                     latencies then include waking halted CPUs"
                ),
            },
        }
    }
}
