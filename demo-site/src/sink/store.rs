//! The sink's SQLite database: every envelope received and the spans read from it, kept across
//! restarts.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::envelope::SpanRecord;

/// Envelopes beyond this many (the oldest first) are deleted with their spans.
const MAX_ENVELOPES: i64 = 20_000;
/// Nor do the kept envelopes' bodies exceed this many bytes in all (each may be 4 MiB).
const MAX_ENVELOPE_BYTES: i64 = 256 << 20;
/// A body at least this large prunes at once rather than at the next 500th envelope.
const LARGE_BODY: usize = 1 << 20;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS envelopes (
    id          INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    body        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
    envelope_id    INTEGER NOT NULL,
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT,
    segment_id     TEXT,
    service        TEXT NOT NULL,
    sdk            TEXT NOT NULL,
    item           TEXT NOT NULL,
    is_segment     INTEGER NOT NULL,
    op             TEXT,
    name           TEXT NOT NULL,
    start          REAL,
    end            REAL,
    status         TEXT,
    attributes     TEXT,
    received_at    REAL NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_envelope ON spans (envelope_id);
CREATE INDEX IF NOT EXISTS spans_by_received ON spans (received_at);
";

/// A span as stored: what was read from its envelope, and when it arrived.
#[derive(Debug, Clone)]
pub struct StoredSpan {
    /// The span.
    pub span: SpanRecord,
    /// The item kind's name (see [`ItemKind::as_str`](super::envelope::ItemKind::as_str)).
    pub item: String,
    /// Seconds since the UNIX epoch.
    pub received_at: f64,
}

/// One line of the list of recent traces.
#[derive(Debug, Clone)]
pub struct TraceSummary {
    /// The trace id.
    pub trace_id: String,
    /// When its last span arrived (seconds since the UNIX epoch).
    pub last_received: f64,
    /// Its spans.
    pub spans: i64,
    /// The services it crossed, in alphabetical order.
    pub services: Vec<String>,
    /// The service and name of its head: the earliest segment whose parent is not in the
    /// trace (the server's transaction).
    pub root: (String, String),
    /// From its first start to its last end, in seconds.
    pub duration: Option<f64>,
}

/// The sink's database.
#[derive(Debug)]
pub struct Store {
    connection: Mutex<Connection>,
    /// How many envelopes, and how many bytes of them, are kept.
    limits: (i64, i64),
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        // In WAL mode, NORMAL syncs at checkpoints rather than on every commit: the database
        // stays consistent, a power loss may only lose the last envelopes, and a busy page's
        // transactions are stored as fast as the SDK sends them.
        connection.execute_batch("PRAGMA synchronous=NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            connection: Mutex::new(connection),
            limits: (MAX_ENVELOPES, MAX_ENVELOPE_BYTES),
        })
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores an envelope (its decompressed body) and its spans. A span sent again replaces
    /// the earlier copy.
    pub fn insert(
        &self,
        received_at: f64,
        body: &[u8],
        spans: &[SpanRecord],
    ) -> rusqlite::Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute(
            "INSERT INTO envelopes (received_at, body) VALUES (?1, ?2)",
            params![received_at, body],
        )?;
        let envelope_id = transaction.last_insert_rowid();
        {
            let mut insert = transaction.prepare(
                "INSERT OR REPLACE INTO spans (envelope_id, trace_id, span_id, parent_span_id,
                 segment_id, service, sdk, item, is_segment, op, name, start, end, status,
                 attributes, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for span in spans {
                insert.execute(params![
                    envelope_id,
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    span.segment_id,
                    span.service,
                    span.sdk,
                    span.item.as_str(),
                    span.is_segment,
                    span.op,
                    span.name,
                    span.start,
                    span.end,
                    span.status,
                    span.attributes,
                    received_at,
                ])?;
            }
        }
        if envelope_id % 500 == 0 || body.len() >= LARGE_BODY {
            transaction.execute(
                "DELETE FROM envelopes WHERE id <= ?1 OR id <= (
                     SELECT id FROM (SELECT id, SUM(length(body)) OVER (ORDER BY id DESC) AS newer
                                     FROM envelopes)
                     WHERE newer > ?2 ORDER BY id DESC LIMIT 1)",
                params![envelope_id - self.limits.0, self.limits.1],
            )?;
            transaction.execute(
                "DELETE FROM spans WHERE envelope_id < (SELECT MIN(id) FROM envelopes)",
                [],
            )?;
        }
        transaction.commit()
    }

    /// The most recent traces, newest first.
    pub fn recent_traces(&self, limit: u32) -> rusqlite::Result<Vec<TraceSummary>> {
        let connection = self.connection();
        let mut traces = connection.prepare(
            "SELECT trace_id, MAX(received_at), COUNT(*), GROUP_CONCAT(DISTINCT service),
                    MIN(start), MAX(end)
             FROM spans GROUP BY trace_id ORDER BY MAX(received_at) DESC LIMIT ?1",
        )?;
        // The head of the trace: a segment whose parent is not in the trace (the server's
        // transaction; the browser's pageload starts earlier but is its child).
        let mut root = connection.prepare(
            "SELECT service, name FROM spans AS s WHERE trace_id = ?1 AND is_segment
             ORDER BY EXISTS (SELECT 1 FROM spans AS p
                              WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_span_id),
                      start IS NULL, start
             LIMIT 1",
        )?;
        let rows = traces.query_map([limit], |row| {
            let services: Option<String> = row.get(3)?;
            let mut services: Vec<String> = services
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect();
            services.sort();
            let (start, end): (Option<f64>, Option<f64>) = (row.get(4)?, row.get(5)?);
            Ok(TraceSummary {
                trace_id: row.get(0)?,
                last_received: row.get(1)?,
                spans: row.get(2)?,
                services,
                root: (String::new(), String::new()),
                duration: start.zip(end).map(|(start, end)| (end - start).max(0.0)),
            })
        })?;
        let mut summaries = Vec::new();
        for summary in rows {
            let mut summary = summary?;
            summary.root = root
                .query_row([&summary.trace_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?
                .unwrap_or_default();
            summaries.push(summary);
        }
        Ok(summaries)
    }

    /// The spans of a trace (the first 5000), in the order they started.
    pub fn trace(&self, trace_id: &str) -> rusqlite::Result<Vec<StoredSpan>> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!(
            "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ?1 \
             ORDER BY start IS NULL, start, rowid LIMIT 5000"
        ))?;
        let rows = statement.query_map([trace_id], stored_span)?;
        rows.collect()
    }

    /// Every span stored, in the order they arrived (what a test reads back after a run).
    pub fn all_spans(&self) -> rusqlite::Result<Vec<StoredSpan>> {
        let connection = self.connection();
        let mut statement =
            connection.prepare(&format!("SELECT {SPAN_COLUMNS} FROM spans ORDER BY rowid"))?;
        let rows = statement.query_map([], stored_span)?;
        rows.collect()
    }

    /// How many envelopes were stored.
    pub fn envelope_count(&self) -> rusqlite::Result<i64> {
        self.connection()
            .query_row("SELECT COUNT(*) FROM envelopes", [], |row| row.get(0))
    }
}

/// The columns [`stored_span`] reads, in its order.
const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, segment_id, service, sdk, item, \
     is_segment, op, name, start, end, status, attributes, received_at";

/// A row of [`SPAN_COLUMNS`].
fn stored_span(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSpan> {
    let item: String = row.get(6)?;
    Ok(StoredSpan {
        span: SpanRecord {
            trace_id: row.get(0)?,
            span_id: row.get(1)?,
            parent_span_id: row.get(2)?,
            segment_id: row.get(3)?,
            service: row.get(4)?,
            sdk: row.get(5)?,
            item: super::envelope::ItemKind::from_stored(&item),
            is_segment: row.get(7)?,
            op: row.get(8)?,
            name: row.get(9)?,
            start: row.get(10)?,
            end: row.get(11)?,
            status: row.get(12)?,
            attributes: row.get(13)?,
        },
        item,
        received_at: row.get(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::envelope::ItemKind;

    fn span(span_id: &str, parent: Option<&str>, start: f64) -> SpanRecord {
        SpanRecord {
            trace_id: "771a43a4192642f0b136d5159a501700".into(),
            span_id: span_id.into(),
            parent_span_id: parent.map(Into::into),
            segment_id: None,
            service: "web".into(),
            sdk: "sentry.rust".into(),
            item: ItemKind::Transaction,
            is_segment: parent.is_none(),
            op: Some("http.server".into()),
            name: "GET /".into(),
            start: Some(start),
            end: Some(start + 1.0),
            status: None,
            attributes: None,
        }
    }

    #[test]
    fn keeps_spans_across_reopening() -> rusqlite::Result<()> {
        let dir = std::env::temp_dir().join(format!("sink-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("sink.sqlite");
        let _ = std::fs::remove_file(&path);
        {
            let store = Store::open(&path)?;
            store.insert(5.0, b"{}", &[span("b7ad6b7169203331", None, 1.0)])?;
            store.insert(
                6.0,
                b"{}",
                &[span("c7ad6b7169203331", Some("b7ad6b7169203331"), 2.0)],
            )?;
        }
        let store = Store::open(&path)?;
        let spans = store.trace("771a43a4192642f0b136d5159a501700")?;
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].span.span_id, "b7ad6b7169203331");
        let recent = store.recent_traces(10)?;
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].spans, 2);
        assert_eq!(recent[0].root, ("web".to_owned(), "GET /".to_owned()));
        assert_eq!(store.envelope_count()?, 2);
        let all: Vec<_> = store.all_spans()?.into_iter().map(|s| s.span).collect();
        assert_eq!(all, [spans[0].span.clone(), spans[1].span.clone()]);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn large_envelopes_are_pruned_by_size() -> rusqlite::Result<()> {
        let dir = std::env::temp_dir().join(format!("sink-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("sink.sqlite");
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path)?;
        store.limits = (1000, 3 * LARGE_BODY as i64);
        let body = vec![b'x'; LARGE_BODY];
        for i in 0..6u8 {
            let id = format!("{i:016x}");
            store.insert(f64::from(i), &body, &[span(&id, None, f64::from(i))])?;
        }
        // The newest bodies that fit in the limit stay, with their spans; the rest are gone.
        assert_eq!(store.envelope_count()?, 3);
        let spans = store.trace("771a43a4192642f0b136d5159a501700")?;
        let ids: Vec<&str> = spans.iter().map(|s| s.span.span_id.as_str()).collect();
        assert_eq!(
            ids,
            ["0000000000000003", "0000000000000004", "0000000000000005"]
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
