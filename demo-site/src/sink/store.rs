//! The sink's SQLite database: the envelopes received (their header's `trace`), the spans read
//! from them, and one summary row per trace, kept up to date as spans arrive, so that the list
//! of traces reads one row per trace it shows. Kept across restarts.
//!
//! One connection writes (the sink's ingest thread); each read opens a connection of its own,
//! which WAL lets run beside the writer, and stops as soon as its [`Stop`] is set. At most
//! [`MAX_SPANS`] spans are kept (the least recently updated traces go first), at most
//! [`MAX_SPANS_PER_TRACE`] per trace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::envelope::{Envelope, ItemKind, SpanRecord, raw_json};

/// Spans beyond this many are deleted with their traces, the least recently updated first,
/// down to nine tenths of it.
pub const MAX_SPANS: i64 = 500_000;
/// Spans of a trace beyond this many are not stored (what its waterfall draws).
pub const MAX_SPANS_PER_TRACE: i64 = 1_000;
/// Envelopes without spans beyond this many (the oldest first) are deleted.
const MAX_ENVELOPES: i64 = 20_000;
/// A database written by another version of the schema is emptied.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS envelopes (id INTEGER PRIMARY KEY, received_at REAL NOT NULL, dsc TEXT);
CREATE TABLE IF NOT EXISTS spans (
    envelope_id INTEGER NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
    parent_span_id TEXT, segment_id TEXT, service TEXT NOT NULL, sdk TEXT NOT NULL,
    item TEXT NOT NULL, is_segment INTEGER NOT NULL, op TEXT, name TEXT NOT NULL, start REAL,
    end REAL, status TEXT, attributes TEXT, received_at REAL NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_envelope ON spans (envelope_id);
-- Replacing a trace's summary gives it a new, higher rowid: the rowid orders the list.
CREATE TABLE IF NOT EXISTS traces (
    seq INTEGER PRIMARY KEY, trace_id TEXT NOT NULL UNIQUE, last_received REAL NOT NULL,
    spans INTEGER NOT NULL, start REAL, end REAL, services TEXT NOT NULL, root_service TEXT,
    root_name TEXT
);
";

/// A trace's head: the earliest segment whose parent is not in the trace (the server's
/// transaction; the browser's pageload starts earlier but is its child).
const ROOT: &str = "
SELECT service, name FROM spans AS s WHERE trace_id = ?1 AND is_segment
ORDER BY EXISTS (SELECT 1 FROM spans AS p WHERE p.trace_id = s.trace_id
                                            AND p.span_id = s.parent_span_id),
         start IS NULL, start
LIMIT 1";

/// A trace's summary from its spans, at the head of the list: `?1` the trace, `?2` and `?3` its
/// head's service and name ([`ROOT`]).
const SUMMARIZE: &str = "
INSERT OR REPLACE INTO traces
SELECT NULL, ?1, MAX(received_at), COUNT(*), MIN(start), MAX(end),
       (SELECT json_group_array(service) FROM (SELECT DISTINCT service FROM spans
                                               WHERE trace_id = ?1)),
       ?2, ?3
FROM spans WHERE trace_id = ?1";

/// Set to stop a read: its caller gave up or ran out of time.
pub type Stop = Arc<AtomicBool>;

/// A span as stored: what was read from its envelope, and when it arrived. Written to JSON as
/// its fields, the envelope header's `trace` as `dsc`.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSpan {
    /// The span.
    #[serde(flatten)]
    pub span: SpanRecord,
    /// The item kind's name (see [`ItemKind::as_str`]).
    pub item: String,
    /// Seconds since the UNIX epoch.
    pub received_at: f64,
    /// Its envelope header's `trace` (the Dynamic Sampling Context), as it arrived.
    #[serde(serialize_with = "raw_json")]
    pub dsc: Option<String>,
}

/// One line of the list of traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// The trace id.
    pub trace_id: String,
    /// Its place in the list: the later a span of it arrived, the higher.
    #[serde(skip)]
    pub seq: i64,
    /// When its last span arrived (seconds since the UNIX epoch).
    pub last_received: f64,
    /// Its spans.
    pub spans: i64,
    /// The services it crossed, in alphabetical order.
    pub services: Vec<String>,
    /// The service of its head: the earliest segment whose parent is not in the trace (the
    /// server's transaction).
    pub root_service: String,
    /// The name of its head.
    pub root_name: String,
    /// From its first start to its last end, in seconds.
    pub duration: Option<f64>,
}

/// The sink's database.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// The connection that writes, and how many spans are stored.
    writer: Mutex<(Connection, i64)>,
    /// Spans kept, all and per trace.
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
        connection.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY")?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version != SCHEMA_VERSION {
            connection.execute_batch(
                "DROP TABLE IF EXISTS envelopes; DROP TABLE IF EXISTS spans;
                 DROP TABLE IF EXISTS traces;",
            )?;
        }
        connection.execute_batch(SCHEMA)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let spans =
            connection.query_row("SELECT COALESCE(SUM(spans), 0) FROM traces", [], |row| {
                row.get(0)
            })?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new((connection, spans)),
            limits: (MAX_SPANS, MAX_SPANS_PER_TRACE),
        })
    }

    /// The store with other limits: spans in all, and per trace.
    pub fn with_limits(mut self, spans: i64, spans_per_trace: i64) -> Self {
        self.limits = (spans, spans_per_trace);
        self
    }

    /// Stores envelopes' header `trace` and their spans, in one transaction, and updates the
    /// summaries of their traces. A span sent again replaces the earlier copy; a trace's spans
    /// beyond [`MAX_SPANS_PER_TRACE`] are dropped.
    pub fn insert(&self, received_at: f64, envelopes: &[Envelope]) -> rusqlite::Result<()> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let (connection, stored) = &mut *writer;
        let (max_spans, max_per_trace) = self.limits;
        let transaction = connection.transaction()?;
        let mut traces = Traces::default();
        let mut envelope_id = 0;
        for envelope in envelopes {
            envelope_id = insert_envelope(
                &transaction,
                received_at,
                envelope,
                &mut traces,
                max_per_trace,
            )?;
        }
        {
            let mut root = transaction.prepare_cached(ROOT)?;
            let mut summarize = transaction.prepare_cached(SUMMARIZE)?;
            for trace_id in &traces.order {
                let (service, name): (Option<String>, Option<String>) = root
                    .query_row([trace_id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?
                    .unwrap_or_default();
                summarize.execute(params![trace_id, service, name])?;
            }
        }
        let added = traces.added;
        let mut spans = *stored + added;
        if spans > max_spans {
            spans -= evict_oldest(&transaction, spans - max_spans * 9 / 10)?;
        }
        if envelope_id % 500 < envelopes.len() as i64 || spans < *stored + added {
            // Envelopes whose spans are all gone, but the newest.
            transaction.execute(
                "DELETE FROM envelopes WHERE id <= ?1
                 AND NOT EXISTS (SELECT 1 FROM spans WHERE envelope_id = envelopes.id)",
                [envelope_id - MAX_ENVELOPES],
            )?;
        }
        transaction.commit()?;
        *stored = spans;
        Ok(())
    }

    /// Runs `read` on a connection of its own, stopped (with an error) once `stop` is set.
    fn read<T>(
        &self,
        stop: &Stop,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        if stop.load(Ordering::Relaxed) {
            let interrupted = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT);
            return Err(rusqlite::Error::SqliteFailure(interrupted, None));
        }
        let mut connection = Connection::open(&self.path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let stop = Arc::clone(stop);
        connection.progress_handler(1_000, Some(move || stop.load(Ordering::Relaxed)))?;
        read(&connection)
    }

    /// Up to `limit` traces, the most recently updated first, from the one before `before` on
    /// (its [`seq`](TraceSummary::seq); `None`: the newest).
    pub fn recent_traces(
        &self,
        before: Option<i64>,
        limit: u32,
        stop: &Stop,
    ) -> rusqlite::Result<Vec<TraceSummary>> {
        self.read(stop, |connection| {
            let mut statement = connection.prepare(
                "SELECT trace_id, seq, last_received, spans, services, root_service, root_name,
                        start, end
                 FROM traces WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![before.unwrap_or(i64::MAX), limit], |row| {
                let services: String = row.get(4)?;
                let mut services: Vec<String> = serde_json::from_str(&services).unwrap_or_default();
                services.sort();
                let (start, end): (Option<f64>, Option<f64>) = (row.get(7)?, row.get(8)?);
                Ok(TraceSummary {
                    trace_id: row.get(0)?,
                    seq: row.get(1)?,
                    last_received: row.get(2)?,
                    spans: row.get(3)?,
                    services,
                    root_service: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    root_name: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    duration: start.zip(end).map(|(start, end)| (end - start).max(0.0)),
                })
            })?;
            rows.collect()
        })
    }

    /// The spans of a trace (at most [`MAX_SPANS_PER_TRACE`]), in the order they started.
    pub fn trace(&self, trace_id: &str, stop: &Stop) -> rusqlite::Result<Vec<StoredSpan>> {
        self.read(stop, |connection| {
            let mut statement = connection.prepare(&format!(
                "SELECT {SPAN_COLUMNS} FROM spans LEFT JOIN envelopes ON envelopes.id = envelope_id
                 WHERE trace_id = ?1 ORDER BY start IS NULL, start, spans.rowid LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![trace_id, MAX_SPANS_PER_TRACE], stored_span)?;
            rows.collect()
        })
    }

    /// Every span stored, in the order they arrived (what a test reads back after a run).
    pub fn all_spans(&self) -> rusqlite::Result<Vec<StoredSpan>> {
        self.read(&Stop::default(), |connection| {
            let mut statement = connection.prepare(&format!(
                "SELECT {SPAN_COLUMNS} FROM spans LEFT JOIN envelopes ON envelopes.id = envelope_id
                 ORDER BY spans.rowid"
            ))?;
            let rows = statement.query_map([], stored_span)?;
            rows.collect()
        })
    }

    /// How many envelopes were received (kept or deleted since).
    pub fn envelope_count(&self) -> rusqlite::Result<i64> {
        self.read(&Stop::default(), |connection| {
            connection.query_row("SELECT COALESCE(MAX(id), 0) FROM envelopes", [], |row| {
                row.get(0)
            })
        })
    }
}

/// The traces of the envelopes being stored: each one's spans, stored and new, and the order
/// they came in, which their summaries keep (the list of traces is ordered by them); and the
/// spans added in all.
#[derive(Default)]
struct Traces<'a> {
    spans: HashMap<&'a str, i64>,
    order: Vec<&'a str>,
    added: i64,
}

/// Stores `envelope` and its spans (see [`Store::insert`]), counting them in `traces`; returns
/// the envelope's row id.
fn insert_envelope<'a>(
    transaction: &rusqlite::Transaction<'_>,
    received_at: f64,
    envelope: &'a Envelope,
    traces: &mut Traces<'a>,
    max_per_trace: i64,
) -> rusqlite::Result<i64> {
    transaction
        .prepare_cached("INSERT INTO envelopes (received_at, dsc) VALUES (?1, ?2)")?
        .execute(params![received_at, envelope.dsc])?;
    let envelope_id = transaction.last_insert_rowid();
    let mut count = transaction.prepare_cached("SELECT spans FROM traces WHERE trace_id = ?1")?;
    let mut known =
        transaction.prepare_cached("SELECT 1 FROM spans WHERE trace_id = ?1 AND span_id = ?2")?;
    let mut insert = transaction.prepare_cached(
        "INSERT OR REPLACE INTO spans (envelope_id, trace_id, span_id, parent_span_id,
         segment_id, service, sdk, item, is_segment, op, name, start, end, status,
         attributes, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for span in &envelope.spans {
        let spans = match traces.spans.get_mut(span.trace_id.as_str()) {
            Some(spans) => spans,
            None => {
                let spans = count
                    .query_row([&span.trace_id], |row| row.get(0))
                    .optional()?
                    .unwrap_or(0);
                traces.order.push(&span.trace_id);
                traces.spans.entry(&span.trace_id).or_insert(spans)
            }
        };
        if !known.exists(params![span.trace_id, span.span_id])? {
            if *spans >= max_per_trace {
                continue;
            }
            *spans += 1;
            traces.added += 1;
        }
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
    Ok(envelope_id)
}

/// Deletes the least recently updated traces with their spans, at least `excess` spans in all;
/// returns how many spans went.
fn evict_oldest(transaction: &rusqlite::Transaction<'_>, excess: i64) -> rusqlite::Result<i64> {
    let mut oldest = Vec::new();
    let mut evicted = 0;
    {
        let mut statement =
            transaction.prepare("SELECT trace_id, spans FROM traces ORDER BY seq")?;
        let mut rows = statement.query([])?;
        while evicted < excess
            && let Some(row) = rows.next()?
        {
            oldest.push(row.get::<_, String>(0)?);
            evicted += row.get::<_, i64>(1)?;
        }
    }
    for trace_id in &oldest {
        transaction.execute("DELETE FROM spans WHERE trace_id = ?1", [trace_id])?;
        transaction.execute("DELETE FROM traces WHERE trace_id = ?1", [trace_id])?;
    }
    Ok(evicted)
}

/// The columns [`stored_span`] reads, in its order.
const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, segment_id, service, sdk, item, \
     is_segment, op, name, start, end, status, attributes, spans.received_at, dsc";

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
            item: ItemKind::from_stored(&item),
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
        dsc: row.get(15)?,
    })
}
