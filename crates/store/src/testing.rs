//! Test support: a fresh database per test on each configured backend.
//!
//! SQLite always runs. PostgreSQL runs when `SWITCHBOARD_TEST_POSTGRES` holds a server URL
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`); each test gets its own database created
//! from that server and dropped at the end.

use crate::{Backend, Store, StoreError, StoreOptions};
use sqlx::{Connection, Executor};
use std::path::PathBuf;
use switchboard_domain::ids::random_token;

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "SWITCHBOARD_TEST_POSTGRES";

/// The master key every test store and every server a test starts share (base64 of 32
/// bytes of 0x5b), so in-process stores and spawned servers read each other's secrets.
pub const TEST_MASTER_KEY: &str = "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1s=";

/// A keyring holding [`TEST_MASTER_KEY`].
pub fn test_keyring() -> std::sync::Arc<crate::Keyring> {
    let key = crate::keyring::decode_key(TEST_MASTER_KEY, "test key").expect("test key");
    std::sync::Arc::new(crate::Keyring::from_keys(&key, &[]).expect("test keyring"))
}

/// A database created for one test.
pub struct TestDb {
    /// The store, migrated.
    pub store: Store,
    /// The URL the store was opened with.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

/// The PostgreSQL test server URL, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

impl TestDb {
    /// A fresh, migrated database on `backend`, or `None` for PostgreSQL when no server is
    /// configured (the caller reports the skip).
    pub async fn new(backend: Backend) -> Result<Option<TestDb>, StoreError> {
        match backend {
            Backend::Sqlite => Self::sqlite().await.map(Some),
            Backend::Postgres => match postgres_url() {
                Some(url) => Self::postgres(&url).await.map(Some),
                None => {
                    announce_sqlite_only();
                    Ok(None)
                }
            },
        }
    }

    /// A fresh database on `backend` migrated only through version `last`, as an older
    /// release left it (upgrade tests); `None` for PostgreSQL without a server.
    pub async fn through(backend: Backend, last: i64) -> Result<Option<TestDb>, StoreError> {
        match backend {
            Backend::Sqlite => Self::sqlite_through(last).await.map(Some),
            Backend::Postgres => match postgres_url() {
                Some(url) => Self::postgres_through(&url, last).await.map(Some),
                None => {
                    announce_sqlite_only();
                    Ok(None)
                }
            },
        }
    }

    /// A fresh SQLite file in the system temporary directory.
    pub async fn sqlite() -> Result<TestDb, StoreError> {
        Self::sqlite_through(i64::MAX).await
    }

    async fn sqlite_through(last: i64) -> Result<TestDb, StoreError> {
        let dir = std::env::temp_dir().join(format!("switchboard-test-{}", random_token(12)));
        let store = Store::open(&StoreOptions {
            data_dir: dir.clone(),
            ..StoreOptions::new(test_keyring())
        })
        .await?;
        store.migrate_through(last).await?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("switchboard.db").display());
        Ok(TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        })
    }

    /// A fresh PostgreSQL database on the server at `admin_url`.
    pub async fn postgres(admin_url: &str) -> Result<TestDb, StoreError> {
        Self::postgres_through(admin_url, i64::MAX).await
    }

    async fn postgres_through(admin_url: &str, last: i64) -> Result<TestDb, StoreError> {
        sqlx::any::install_default_drivers();
        let name = format!("switchboard_test_{}", random_token(12));
        let mut admin = sqlx::AnyConnection::connect(admin_url).await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin.close().await?;
        let url = replace_database(admin_url, &name);
        let store = Store::open(&StoreOptions {
            url: Some(url.clone()),
            max_connections: 5,
            ..StoreOptions::new(test_keyring())
        })
        .await?;
        store.migrate_through(last).await?;
        Ok(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// Everything the database holds, as text, the way a dump would show it: on SQLite the
    /// bytes of the database file and its write-ahead log, on PostgreSQL every row of every
    /// table of the schema (read as the connecting login, past row-level security).
    pub async fn dump_text(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let mut text = String::new();
                for name in ["switchboard.db", "switchboard.db-wal"] {
                    if let Ok(bytes) = std::fs::read(dir.join(name)) {
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                text
            }
            Cleanup::Postgres { .. } => {
                let mut conn = sqlx::AnyConnection::connect(&self.url)
                    .await
                    .expect("connect for the dump");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                )
                .fetch_all(&mut conn)
                .await
                .expect("tables");
                let mut text = String::new();
                for t in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT t::text FROM \"{t}\" t"))
                            .fetch_all(&mut conn)
                            .await
                            .expect("rows");
                    for r in rows {
                        text.push_str(&r);
                        text.push('\n');
                    }
                }
                let _ = conn.close().await;
                text
            }
        }
    }

    /// Closes the store and removes the database.
    pub async fn drop_db(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}

/// Says once per test binary that the PostgreSQL variants are skipped. Written straight to
/// the stderr handle, which libtest does not capture, so `cargo test` shows it.
fn announce_sqlite_only() {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "{POSTGRES_ENV} is not set: PostgreSQL variants skipped, SQLite suite only"
        );
    });
}

/// Swaps the database name in a PostgreSQL URL, keeping credentials and query parameters.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Runs `$body` (an async block using `store: Store`) once per backend as separate tests,
/// `sqlite` and `postgres`, inside a module named after the test.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: &$crate::testing::TestDb) {
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::testing::TestDb::new($crate::Backend::Sqlite)
                    .await
                    .expect("sqlite test database")
                    .expect("sqlite is always available");
                run(&db).await;
                db.drop_db().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::testing::TestDb::new($crate::Backend::Postgres)
                    .await
                    .expect("postgres test database")
                else {
                    return;
                };
                run(&db).await;
                db.drop_db().await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/test?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}

/// What [`seed_history`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seeded {
    /// Conversations (every channel).
    pub conversations: u64,
    /// Voice calls (one per voice conversation).
    pub calls: u64,
    /// Contacts.
    pub contacts: u64,
}

/// Bulk-writes `conversations` closed conversations of `org` spread over the `days` before
/// `now` (a quarter of them voice calls with their call row) and `contacts` contacts, in
/// multi-row inserts, for list-page benchmarks. Not a product path: no events, no jobs.
pub async fn seed_history(
    store: &Store,
    org: &switchboard_domain::ids::OrgId,
    conversations: u64,
    contacts: u64,
    now: switchboard_domain::Timestamp,
    days: i64,
) -> Result<Seeded, StoreError> {
    use crate::rows::Sql;
    use crate::{Access, Scope};
    let span = (days.max(1) * 86_400_000) as u64;
    let step = (span / conversations.max(1)).max(1);
    let mut done = Seeded::default();
    let batch = 400u64;
    let mut i = 0u64;
    while i < conversations {
        let n = batch.min(conversations - i);
        let mut conv = Sql::new(
            "INSERT INTO conversations (id, org_id, channel, direction, contact_number, our_number, \
             agent_id, status, started_at, last_message_at, ended_at, variables) VALUES ",
        );
        let mut calls = Sql::new(
            "INSERT INTO calls (id, org_id, conversation_id, call_sid, direction, from_number, \
             to_number, agent_id, status, started_at, answered_at, ended_at, duration_seconds, \
             end_reason, disposition) VALUES ",
        );
        let mut ncalls = 0;
        for k in 0..n {
            let seq = i + k;
            let started = now.millis() - (span - seq * step) as i64;
            let channel = ["sms", "whatsapp", "web", "voice"][(seq % 4) as usize];
            let contact = format!("+1555{:07}", seq % 9_000_000);
            let id = format!("cnv_seed{seq:016}");
            if k > 0 {
                conv.push(", ");
            }
            let vals = [
                conv.arg(id.clone())?,
                conv.arg(org.to_string())?,
                conv.arg(channel.to_owned())?,
                conv.arg("inbound".to_owned())?,
                conv.arg(contact.clone())?,
                conv.arg("+15550001000".to_owned())?,
                conv.arg(None::<String>)?,
                conv.arg("closed".to_owned())?,
                conv.arg(started)?,
                conv.arg(started + 60_000)?,
                conv.arg(started + 120_000)?,
                conv.arg("{}".to_owned())?,
            ];
            conv.push(&format!("({})", vals.join(", ")));
            if channel == "voice" {
                if ncalls > 0 {
                    calls.push(", ");
                }
                ncalls += 1;
                let vals = [
                    calls.arg(format!("call_seed{seq:016}"))?,
                    calls.arg(org.to_string())?,
                    calls.arg(id)?,
                    calls.arg(format!("CA{seq:032}"))?,
                    calls.arg("inbound".to_owned())?,
                    calls.arg(contact)?,
                    calls.arg("+15550001000".to_owned())?,
                    calls.arg(None::<String>)?,
                    calls.arg("completed".to_owned())?,
                    calls.arg(started)?,
                    calls.arg(started + 2_000)?,
                    calls.arg(started + 120_000)?,
                    calls.arg(118i64)?,
                    calls.arg("caller_hung_up".to_owned())?,
                    calls.arg("completed".to_owned())?,
                ];
                calls.push(&format!("({})", vals.join(", ")));
            }
        }
        let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
        conv.query().execute(&mut *tx).await?;
        if ncalls > 0 {
            calls.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        done.conversations += n;
        done.calls += ncalls;
        i += n;
    }
    let mut i = 0u64;
    while i < contacts {
        let n = batch.min(contacts - i);
        let mut sql = Sql::new(
            "INSERT INTO contacts (id, org_id, number, name, metadata, opted_out, created_at, updated_at) VALUES ",
        );
        for k in 0..n {
            let seq = i + k;
            if k > 0 {
                sql.push(", ");
            }
            let at = now.millis() - (contacts - seq) as i64 * 1000;
            let vals = [
                sql.arg(format!("ct_seed{seq:016}"))?,
                sql.arg(org.to_string())?,
                sql.arg(format!("+1666{seq:07}"))?,
                sql.arg(format!("Contact {seq}"))?,
                sql.arg("{}".to_owned())?,
                sql.arg(i64::from(seq.is_multiple_of(50)))?,
                sql.arg(at)?,
                sql.arg(at)?,
            ];
            sql.push(&format!("({})", vals.join(", ")));
        }
        let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
        done.contacts += n;
        i += n;
    }
    // Planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE would have them
    // after a history this size grew; a bulk load leaves them stale.
    let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
    sqlx::query("ANALYZE").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done)
}
