//! Ingests that fail: a DSN whose host refuses connections, one that accepts and never answers,
//! and one that answers every envelope with an error status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use tokio::net::TcpListener;

/// How the ingest behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every envelope is answered `200 OK`, as Sentry's ingest does: the healthy case. (Not
    /// the demo's embedded sink, which stores envelopes on the demo's own CPU: faults would
    /// then look faster than health.)
    Healthy,
    /// Nothing listens on the port: connections are refused.
    ClosedPort,
    /// Connections are accepted and never read from or answered.
    BlackHole,
    /// Every envelope is answered `500 Internal Server Error`.
    Status500,
    /// Every envelope is answered `429 Too Many Requests` with `Retry-After: 60`.
    Status429,
}

impl Fault {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Healthy => "healthy (answers 200)",
            Fault::ClosedPort => "closed port",
            Fault::BlackHole => "black hole (accepts, never answers)",
            Fault::Status500 => "answers 500",
            Fault::Status429 => "answers 429 (Retry-After: 60)",
        }
    }
}

/// A running fake ingest: the DSN that points at it, and what it saw.
pub struct Ingest {
    /// The DSN of the ingest.
    pub dsn: String,
    /// Connections accepted (black hole) or envelopes answered (500/429).
    pub seen: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ingest {
    /// Starts the ingest of `fault` on a free loopback port.
    pub async fn start(fault: Fault) -> std::io::Result<Self> {
        let seen = Arc::new(AtomicU64::new(0));
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let port = listener.local_addr()?.port();
        let dsn = format!(
            "http://{}@127.0.0.1:{port}/1",
            sentry_meta_demo::SINK_PUBLIC_KEY
        );
        let task = match fault {
            // The port was free a moment ago and nothing listens on it once this is dropped.
            Fault::ClosedPort => {
                drop(listener);
                None
            }
            Fault::BlackHole => {
                let seen = seen.clone();
                Some(tokio::spawn(async move {
                    let mut held = Vec::new();
                    while let Ok((stream, _)) = listener.accept().await {
                        seen.fetch_add(1, Ordering::Relaxed);
                        // Held open, never read: the client waits for an answer that never
                        // comes. Bounded, in case a client reconnects without end.
                        if held.len() < 4096 {
                            held.push(stream);
                        }
                    }
                }))
            }
            Fault::Healthy | Fault::Status500 | Fault::Status429 => {
                let seen = seen.clone();
                let app = Router::new().fallback(move || {
                    let seen = seen.clone();
                    async move {
                        seen.fetch_add(1, Ordering::Relaxed);
                        if fault == Fault::Healthy {
                            (StatusCode::OK, "{}").into_response()
                        } else if fault == Fault::Status500 {
                            (StatusCode::INTERNAL_SERVER_ERROR, "ingest failure").into_response()
                        } else {
                            (
                                StatusCode::TOO_MANY_REQUESTS,
                                [(header::RETRY_AFTER, HeaderValue::from_static("60"))],
                                "slow down",
                            )
                                .into_response()
                        }
                    }
                });
                Some(tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }))
            }
        };
        Ok(Self { dsn, seen, task })
    }

    /// What the ingest saw so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
