//! The load: a fixed number of page requests from a fixed number of concurrent clients, each on
//! its own keep-alive connection, paced to a total rate (or as fast as the server answers), with
//! or without incoming trace headers. Every answer is kept: its status, latency and tags.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    /// The page's URL.
    pub url: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests in all.
    pub requests: usize,
    /// Requests per second in all (paced per client); `None`: as fast as answered.
    pub rate: Option<f64>,
    /// Whether each request carries a fresh caller trace (`sentry-trace` and `baggage`).
    pub trace_headers: bool,
    /// Give up on the run after this long.
    pub deadline: Duration,
}

/// The trace a request came with.
#[derive(Debug, Clone)]
pub struct Sent {
    pub trace_id: String,
    pub parent_span_id: String,
}

/// The tags of an answered page.
#[derive(Debug, Clone)]
pub struct Tags {
    pub trace_id: String,
    pub span_id: String,
    /// `sentry-trace_id` of the baggage tag.
    pub baggage_trace_id: Option<String>,
    /// The DSC of the baggage tag, `(key, value)` sorted by key.
    pub dsc: Vec<(String, String)>,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub sent: Option<Sent>,
    /// The HTTP status, or the transport error.
    pub outcome: Result<u16, String>,
    pub latency: Duration,
    pub tags: Option<Tags>,
}

/// An HTTP client that keeps up to `clients` idle keep-alive connections per host, so that runs
/// after the first (a warm-up) reuse the connections it opened and time no connection set-up.
pub fn http_client(clients: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `load` with `http` and returns every exchange (fewer than asked if the deadline passed).
pub async fn run(http: &reqwest::Client, load: &Load) -> Result<Vec<Exchange>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let deadline = start + load.deadline;
    let mut tasks = Vec::with_capacity(load.clients);
    for client in 0..load.clients {
        let (http, next, load) = (http.clone(), next.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            // Client `c` sends its k-th request at start + (k * clients + c) / rate.
            let period = load.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
            let mut k = 0u32;
            loop {
                if next.fetch_add(1, Ordering::Relaxed) >= load.requests {
                    break;
                }
                if let Some(period) = period {
                    let slot = k as usize * load.clients + client;
                    tokio::time::sleep_until(start + period * slot as u32).await;
                }
                k += 1;
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                done.push(exchange(&http, &load).await);
            }
            done
        }));
    }
    let mut all = Vec::with_capacity(load.requests);
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())?);
    }
    Ok(all)
}

async fn exchange(http: &reqwest::Client, load: &Load) -> Exchange {
    let sent = load.trace_headers.then(|| {
        let mut rng = rand::rng();
        Sent {
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            parent_span_id: format!("{:016x}", rng.random::<u64>() | 1),
        }
    });
    let mut request = http.get(&load.url);
    if let Some(sent) = &sent {
        request = request
            .header(
                "sentry-trace",
                format!("{}-{}-1", sent.trace_id, sent.parent_span_id),
            )
            .header(
                "baggage",
                format!(
                    "sentry-trace_id={},sentry-public_key={},sentry-sample_rate=1,\
                     sentry-sampled=true,sentry-environment=load,sentry-release=load%401",
                    sent.trace_id,
                    sentry_meta_demo::SINK_PUBLIC_KEY
                ),
            );
    }
    let begun = Instant::now();
    let answer = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            response
                .text()
                .await
                .map(|body| (status, body))
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let latency = begun.elapsed();
    match answer {
        Ok((status, body)) => Exchange {
            sent,
            outcome: Ok(status),
            latency,
            tags: tags(&body),
        },
        Err(e) => Exchange {
            sent,
            outcome: Err(e),
            latency,
            tags: None,
        },
    }
}

/// The value of the first `<meta name="NAME" content="…">` the demo writes.
fn meta<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<meta name=\"{name}\" content=\"");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find('"')?;
    Some(&body[start..start + len])
}

fn tags(body: &str) -> Option<Tags> {
    let mut parts = meta(body, "sentry-trace")?.split('-');
    let (trace_id, span_id) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let baggage = html_escape::decode_html_entities(meta(body, "baggage").unwrap_or_default());
    let dsc = sentry_meta::DynamicSamplingContext::from_baggage([baggage.as_bytes()]);
    let baggage_trace_id = dsc.get(sentry_meta::DscKey::TraceId).map(str::to_owned);
    let mut dsc: Vec<(String, String)> = dsc
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    dsc.sort();
    Some(Tags {
        trace_id,
        span_id,
        baggage_trace_id,
        dsc,
    })
}

/// p50 and p99 of `latencies`.
pub fn p50_p99(latencies: &[Duration]) -> (Duration, Duration) {
    let mut sorted = latencies.to_vec();
    // Sorted by the first call: the second finds it sorted.
    (percentile(&mut sorted, 50.0), percentile(&mut sorted, 99.0))
}

/// The `p`-th percentile of `latencies` (sorted here), nearest rank.
fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tags() {
        let page = "<head><meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1\"/>\n\
                    <meta name=\"baggage\" content=\"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sampled=true\"/>";
        let tags = tags(page).expect("tags");
        assert_eq!(tags.trace_id, "771a43a4192642f0b136d5159a501700");
        assert_eq!(tags.span_id, "b7ad6b7169203331");
        assert_eq!(
            tags.baggage_trace_id.as_deref(),
            Some("771a43a4192642f0b136d5159a501700")
        );
        assert!(super::tags("<head></head>").is_none());
    }

    #[test]
    fn percentiles() {
        let mut l: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut l, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut l, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 99.0), Duration::ZERO);
    }
}
