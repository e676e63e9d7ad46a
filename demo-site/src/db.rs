//! The API's database: an embedded SQLite file, created and seeded on first start. Every query
//! runs in its own span (op `db.sql.query`, description = the SQL), a child of the span that
//! was active when it was asked for (the API's server transaction).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use sentry::{Hub, TransactionOrSpan};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pages (
    slug        TEXT PRIMARY KEY,
    engine      TEXT NOT NULL,
    helper      TEXT NOT NULL,
    position    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS page_views (
    id        INTEGER PRIMARY KEY,
    slug      TEXT NOT NULL,
    trace_id  TEXT,
    viewed_at REAL NOT NULL
);
-- Only the latest views are kept: the table must not grow with every request forever. A
-- trigger, so that recording a view stays one query (one span).
CREATE TRIGGER IF NOT EXISTS page_views_keep_latest AFTER INSERT ON page_views
BEGIN
    DELETE FROM page_views WHERE id <= NEW.id - 100000;
END;
";

/// How many products the catalog page lists: a page of about 45 KB, the size of a real one.
pub const PRODUCTS: usize = 220;

/// The demo's pages: slug, engine, how its layout writes the tags.
pub const PAGES: [(&str, &str, &str); 10] = [
    (
        "askama",
        "askama",
        "{{ sentry_meta::askama::sentry_meta() }}",
    ),
    ("minijinja", "minijinja", "{{ sentry_meta() }}"),
    ("maud", "maud", "(SentryMeta::current())"),
    ("tera", "tera", "{{ sentry_meta() }}"),
    ("handlebars", "handlebars", "{{sentry_meta}}"),
    (
        "injected",
        "none (InjectTraceMetaLayer)",
        "(nothing: the layer injects the tags before </head>)",
    ),
    (
        "catalog",
        "minijinja, 220 rows from SQLite",
        "{{ sentry_meta() }}",
    ),
    (
        "leptos",
        "leptos (leptos_axum, out-of-order streaming)",
        "<SentryMeta/>",
    ),
    (
        "actix",
        "minijinja, served by actix-web (SentryMetaMiddleware)",
        "{{ sentry_meta() }}",
    ),
    (
        "otel",
        "minijinja, traced with OpenTelemetry (SentrySpanProcessor)",
        "{{ sentry_meta() }}, given OtelMeta::current()",
    ),
];

/// A product of the catalog page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Product {
    /// Its stock-keeping unit, e.g. `SKU-0042`.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// A line about it.
    pub description: String,
    /// Its price, e.g. `12.34`.
    pub price: String,
    /// How many are in stock.
    pub stock: i64,
}

/// Fills the products table with [`PRODUCTS`] made-up products, the same on every machine.
fn seed_products(connection: &Connection) -> rusqlite::Result<()> {
    const ADJECTIVES: [&str; 8] = [
        "Sturdy", "Compact", "Quiet", "Bright", "Portable", "Classic", "Modular", "Rugged",
    ];
    const THINGS: [&str; 6] = [
        "lamp",
        "kettle",
        "backpack",
        "desk",
        "speaker",
        "bicycle bell",
    ];
    let mut insert = connection.prepare(
        "INSERT OR IGNORE INTO products (sku, name, description, price_cents, stock) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for i in 0..PRODUCTS {
        let (adjective, thing) = (ADJECTIVES[i % ADJECTIVES.len()], THINGS[i % THINGS.len()]);
        insert.execute(params![
            format!("SKU-{i:04}"),
            format!("{adjective} {thing} no. {i}"),
            format!(
                "A {} {thing} for everyday use, tested & shipped in 2 days.",
                adjective.to_lowercase()
            ),
            i64::try_from(199 + i * 137 % 9_800).unwrap_or(0),
            i64::try_from(i * 7 % 50).unwrap_or(0),
        ])?;
    }
    Ok(())
}

/// A page as the API describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageInfo {
    /// Its path, without the `/`.
    pub slug: String,
    /// The template engine that renders it.
    pub engine: String,
    /// What its layout writes in the `<head>`.
    pub helper: String,
}

/// The API's database.
#[derive(Debug, Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
}

/// The SQL of the queries (each one is also the description of its span).
pub mod sql {
    /// One page by slug.
    pub const PAGE: &str = "SELECT slug, engine, helper FROM pages WHERE slug = ?1";
    /// Records a view.
    pub const RECORD_VIEW: &str =
        "INSERT INTO page_views (slug, trace_id, viewed_at) VALUES (?1, ?2, ?3)";
    /// Views of a page.
    pub const COUNT_VIEWS: &str = "SELECT COUNT(*) FROM page_views WHERE slug = ?1";
    /// Every page.
    pub const ALL_PAGES: &str = "SELECT slug, engine, helper FROM pages ORDER BY position";
    /// Every product.
    pub const PRODUCTS: &str =
        "SELECT sku, name, description, price_cents, stock FROM products ORDER BY sku";
}

impl Database {
    /// Opens the database at `path`, creating and seeding it on first start.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        for (position, (slug, engine, helper)) in PAGES.iter().enumerate() {
            connection.execute(
                "INSERT OR IGNORE INTO pages (slug, engine, helper, position) VALUES (?1, ?2, ?3, ?4)",
                params![slug, engine, helper, i64::try_from(position).unwrap_or(i64::MAX)],
            )?;
        }
        seed_products(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Every product, for the catalog page.
    pub async fn products(&self) -> rusqlite::Result<Vec<Product>> {
        self.query(sql::PRODUCTS, |c, sql| {
            let mut statement = c.prepare_cached(sql)?;
            let rows = statement.query_map([], |row| {
                let cents: i64 = row.get(3)?;
                Ok(Product {
                    sku: row.get(0)?,
                    name: row.get(1)?,
                    description: row.get(2)?,
                    price: format!("{}.{:02}", cents / 100, cents % 100),
                    stock: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Runs `f` on a blocking thread inside a child span of the current span (op
    /// `db.sql.query`, description `sql`), and finishes the span when `f` returns.
    pub async fn query<T: Send + 'static>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&Connection, &'static str) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<T> {
        let parent: Option<TransactionOrSpan> =
            Hub::current().configure_scope(|scope| scope.get_span());
        let connection = Arc::clone(&self.connection);
        let joined = tokio::task::spawn_blocking(move || {
            let span = parent.map(|parent| parent.start_child("db.sql.query", sql));
            if let Some(span) = &span {
                span.set_data("db.system", "sqlite".into());
            }
            let result = {
                let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                f(&connection, sql)
            };
            if let Some(span) = span {
                span.set_status(if result.is_ok() {
                    sentry::protocol::SpanStatus::Ok
                } else {
                    sentry::protocol::SpanStatus::InternalError
                });
                span.finish();
            }
            result
        })
        .await;
        joined.unwrap_or_else(|_| Err(rusqlite::Error::InvalidQuery))
    }

    /// The page with this slug.
    pub async fn page(&self, slug: String) -> rusqlite::Result<Option<PageInfo>> {
        self.query(sql::PAGE, move |c, sql| {
            c.query_row(sql, [&slug], |row| {
                Ok(PageInfo {
                    slug: row.get(0)?,
                    engine: row.get(1)?,
                    helper: row.get(2)?,
                })
            })
            .optional()
        })
        .await
    }

    /// Records a view of a page in a trace.
    pub async fn record_view(
        &self,
        slug: String,
        trace_id: Option<String>,
        at: f64,
    ) -> rusqlite::Result<()> {
        self.query(sql::RECORD_VIEW, move |c, sql| {
            c.execute(sql, params![slug, trace_id, at]).map(drop)
        })
        .await
    }

    /// How often a page was viewed.
    pub async fn count_views(&self, slug: String) -> rusqlite::Result<i64> {
        self.query(sql::COUNT_VIEWS, move |c, sql| {
            c.query_row(sql, [&slug], |row| row.get(0))
        })
        .await
    }

    /// Every page.
    pub async fn pages(&self) -> rusqlite::Result<Vec<PageInfo>> {
        self.query(sql::ALL_PAGES, |c, sql| {
            let mut statement = c.prepare(sql)?;
            let rows = statement.query_map([], |row| {
                Ok(PageInfo {
                    slug: row.get(0)?,
                    engine: row.get(1)?,
                    helper: row.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}
