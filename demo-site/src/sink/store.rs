//! The sink's SQLite database: the envelopes received (their header's `trace`), the spans read
//! from them, and one summary row per trace, kept up to date as spans arrive, so that the list
//! of traces reads one row per trace it shows. Kept across restarts.
//!
//! One connection writes (the sink's ingest thread); each read takes a connection of its own,
//! which WAL lets run beside the writer, and stops as soon as its [`Stop`] is set. At most
//! [`MAX_SPANS`] spans are kept (the least recently updated traces go first), at most
//! [`MAX_SPANS_PER_TRACE`] per trace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::envelope::{Envelope, ItemKind, SpanRecord};

/// Spans beyond this many are deleted with their traces, the least recently updated first,
/// down to nine tenths of it.
pub const MAX_SPANS: i64 = 500_000;
/// Spans of a trace beyond this many are not stored (what its waterfall draws).
pub const MAX_SPANS_PER_TRACE: i64 = 5_000;
/// Envelopes without spans beyond this many (the oldest first) are deleted.
const MAX_ENVELOPES: i64 = 20_000;
/// Connections kept open for reads between them.
const IDLE_READERS: usize = 4;
/// A database written by another version of the schema is emptied.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS envelopes (
    id          INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    dsc         TEXT
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
CREATE TABLE IF NOT EXISTS traces (
    trace_id      TEXT PRIMARY KEY,
    seq           INTEGER NOT NULL,
    last_received REAL NOT NULL,
    spans         INTEGER NOT NULL,
    start         REAL,
    end           REAL,
    services      TEXT NOT NULL,
    root_service  TEXT,
    root_name     TEXT
);
CREATE INDEX IF NOT EXISTS traces_by_seq ON traces (seq);
";

/// A trace's summary from its spans: `?1` the trace, `?2` its new place in the list. Its head
/// is the earliest segment whose parent is not in the trace (the server's transaction; the
/// browser's pageload starts earlier but is its child).
const SUMMARIZE: &str = "
WITH root AS (
    SELECT service, name FROM spans AS s WHERE trace_id = ?1 AND is_segment
    ORDER BY EXISTS (SELECT 1 FROM spans AS p WHERE p.trace_id = s.trace_id
                                                AND p.span_id = s.parent_span_id),
             start IS NULL, start
    LIMIT 1)
INSERT OR REPLACE INTO traces
SELECT ?1, ?2, MAX(received_at), COUNT(*), MIN(start), MAX(end),
       (SELECT json_group_array(service) FROM (SELECT DISTINCT service FROM spans
                                               WHERE trace_id = ?1)),
       (SELECT service FROM root), (SELECT name FROM root)
FROM spans WHERE trace_id = ?1";

/// Set to stop a read: its caller gave up or ran out of time.
pub type Stop = Arc<AtomicBool>;

/// A span as stored: what was read from its envelope, and when it arrived.
#[derive(Debug, Clone)]
pub struct StoredSpan {
    /// The span.
    pub span: SpanRecord,
    /// The item kind's name (see [`ItemKind::as_str`]).
    pub item: String,
    /// Seconds since the UNIX epoch.
    pub received_at: f64,
    /// Its envelope header's `trace` (the Dynamic Sampling Context), as it arrived.
    pub dsc: Option<String>,
}

/// One line of the list of traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace id.
    pub trace_id: String,
    /// Its place in the list: the later a span of it arrived, the higher.
    pub seq: i64,
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

/// The writer's connection and what it keeps count of.
#[derive(Debug)]
struct Writer {
    connection: Connection,
    /// Spans stored.
    spans: i64,
    /// The last place given in the list of traces.
    seq: i64,
    /// Envelopes stored since the last pruning.
    since_pruned: i64,
}

/// The sink's database.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    /// Spans kept, all and per trace.
    limits: (i64, i64),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (transactions roll back).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version != SCHEMA_VERSION {
            connection.execute_batch(
                "DROP TABLE IF EXISTS envelopes; DROP TABLE IF EXISTS spans;
                 DROP TABLE IF EXISTS traces;",
            )?;
        }
        connection.execute_batch(SCHEMA)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let (spans, seq) = connection.query_row(
            "SELECT COALESCE(SUM(spans), 0), COALESCE(MAX(seq), 0) FROM traces",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                connection,
                spans,
                seq,
                since_pruned: 0,
            }),
            readers: Mutex::new(Vec::new()),
            limits: (MAX_SPANS, MAX_SPANS_PER_TRACE),
        })
    }

    /// Stores an envelope's header `trace` and its spans, and updates the summaries of their
    /// traces. A span sent again replaces the earlier copy; a trace's spans beyond
    /// [`MAX_SPANS_PER_TRACE`] are dropped.
    pub fn insert(&self, received_at: f64, envelope: &Envelope) -> rusqlite::Result<()> {
        let mut writer = lock(&self.writer);
        let Writer {
            connection,
            spans: stored,
            seq,
            since_pruned,
        } = &mut *writer;
        let (max_spans, max_per_trace) = self.limits;
        let transaction = connection.transaction()?;
        transaction.execute(
            "INSERT INTO envelopes (received_at, dsc) VALUES (?1, ?2)",
            params![received_at, envelope.dsc],
        )?;
        let envelope_id = transaction.last_insert_rowid();
        // Each trace of the envelope and its spans, stored and new.
        let mut traces: HashMap<&str, i64> = HashMap::new();
        let mut added = 0;
        {
            let mut count = transaction.prepare("SELECT spans FROM traces WHERE trace_id = ?1")?;
            let mut known =
                transaction.prepare("SELECT 1 FROM spans WHERE trace_id = ?1 AND span_id = ?2")?;
            let mut insert = transaction.prepare(
                "INSERT OR REPLACE INTO spans (envelope_id, trace_id, span_id, parent_span_id,
                 segment_id, service, sdk, item, is_segment, op, name, start, end, status,
                 attributes, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for span in &envelope.spans {
                let spans = match traces.get_mut(span.trace_id.as_str()) {
                    Some(spans) => spans,
                    None => {
                        let spans = count
                            .query_row([&span.trace_id], |row| row.get(0))
                            .optional()?
                            .unwrap_or(0);
                        traces.entry(&span.trace_id).or_insert(spans)
                    }
                };
                if !known.exists(params![span.trace_id, span.span_id])? {
                    if *spans >= max_per_trace {
                        continue;
                    }
                    *spans += 1;
                    added += 1;
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
        }
        let mut next_seq = *seq;
        {
            let mut summarize = transaction.prepare(SUMMARIZE)?;
            for trace_id in traces.keys() {
                next_seq += 1;
                summarize.execute(params![trace_id, next_seq])?;
            }
        }
        let mut spans = *stored + added;
        if spans > max_spans {
            spans -= evict_oldest(&transaction, spans - max_spans * 9 / 10)?;
        }
        let prune = *since_pruned >= 500 || spans < *stored + added;
        if prune {
            // Envelopes whose spans are all gone, but the newest.
            transaction.execute(
                "DELETE FROM envelopes WHERE id <= ?1
                 AND NOT EXISTS (SELECT 1 FROM spans WHERE envelope_id = envelopes.id)",
                [envelope_id - MAX_ENVELOPES],
            )?;
        }
        transaction.commit()?;
        (*stored, *seq) = (spans, next_seq);
        *since_pruned = if prune { 0 } else { *since_pruned + 1 };
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
        let mut connection = match lock(&self.readers).pop() {
            Some(connection) => connection,
            None => {
                let connection = Connection::open(&self.path)?;
                connection.busy_timeout(std::time::Duration::from_secs(5))?;
                connection
            }
        };
        let stop = Arc::clone(stop);
        connection.progress_handler(1_000, Some(move || stop.load(Ordering::Relaxed)))?;
        let result = read(&connection);
        let _ = connection.progress_handler(0, None::<fn() -> bool>);
        let mut readers = lock(&self.readers);
        if readers.len() < IDLE_READERS {
            readers.push(connection);
        }
        result
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
                    root: (
                        row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    ),
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

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "771a43a4192642f0b136d5159a501700";

    fn span(trace_id: &str, span_id: &str, parent: Option<&str>, start: f64) -> SpanRecord {
        SpanRecord {
            trace_id: trace_id.into(),
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

    fn envelope(dsc: Option<&str>, spans: Vec<SpanRecord>) -> Envelope {
        Envelope {
            dsc: dsc.map(Into::into),
            spans,
        }
    }

    fn store(name: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("sink-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        (Store::open(&dir.join("sink.sqlite")).expect("store"), dir)
    }

    #[test]
    fn keeps_spans_summaries_and_dsc_across_reopening() -> rusqlite::Result<()> {
        let (store, dir) = store("reopen");
        let dsc = r#"{"trace_id":"771a43a4192642f0b136d5159a501700","zz":"kept"}"#;
        let mut child = span(TRACE, "c7ad6b7169203331", Some("b7ad6b7169203331"), 2.0);
        child.service = "a,b".into();
        store.insert(6.0, &envelope(None, vec![child]))?;
        let root = span(TRACE, "b7ad6b7169203331", None, 1.0);
        store.insert(5.0, &envelope(Some(dsc), vec![root]))?;
        drop(store);
        let store = Store::open(&dir.join("sink.sqlite"))?;
        let spans = store.trace(TRACE, &Stop::default())?;
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].span.span_id, "b7ad6b7169203331");
        assert_eq!(
            (spans[0].dsc.as_deref(), spans[1].dsc.as_deref()),
            (Some(dsc), None)
        );
        let recent = store.recent_traces(None, 10, &Stop::default())?;
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].spans, 2);
        assert_eq!(recent[0].services, ["a,b", "web"]);
        assert_eq!(recent[0].root, ("web".to_owned(), "GET /".to_owned()));
        assert_eq!(recent[0].duration, Some(2.0));
        assert_eq!(store.envelope_count()?, 2);
        let all: Vec<_> = store.all_spans()?.into_iter().map(|s| s.span).collect();
        assert_eq!(all.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn pages_and_evicts_the_oldest_traces() -> rusqlite::Result<()> {
        let (mut store, dir) = store("evict");
        store.limits = (20, 4);
        let stop = Stop::default();
        for t in 0..8u8 {
            let trace = format!("{t:032x}");
            let spans = (0..6u8)
                .map(|s| span(&trace, &format!("{s:016x}"), None, f64::from(s)))
                .collect();
            store.insert(f64::from(t), &envelope(None, spans))?;
        }
        // 4 spans per trace kept; 20 spans at most, down to 18: the 4 newest traces.
        let recent = store.recent_traces(None, 3, &stop)?;
        let ids: Vec<_> = recent.iter().map(|t| &t.trace_id[30..]).collect();
        assert_eq!(ids, ["07", "06", "05"]);
        assert!(recent.iter().all(|t| t.spans == 4));
        let older = store.recent_traces(Some(recent[2].seq), 3, &stop)?;
        let ids: Vec<_> = older.iter().map(|t| &t.trace_id[30..]).collect();
        assert_eq!(ids, ["04"]);
        assert!(store.trace(&format!("{:032x}", 1), &stop)?.is_empty());
        assert_eq!(store.all_spans()?.len(), 16);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn a_stopped_read_ends() -> rusqlite::Result<()> {
        let (store, dir) = store("stop");
        store.insert(
            1.0,
            &envelope(None, vec![span(TRACE, "b7ad6b7169203331", None, 1.0)]),
        )?;
        let stop = Stop::new(AtomicBool::new(true));
        assert!(store.trace(TRACE, &stop).is_err());
        assert_eq!(store.trace(TRACE, &Stop::default())?.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
