//! Switchboard's persistence. One implementation of every query, written once against sqlx's
//! `Any` driver, runs on SQLite (embedded default) and PostgreSQL (scale-out). The backends
//! differ only in their migrations and in how isolation is enforced: on PostgreSQL every
//! tenant transaction sets `switchboard.org_id` and row-level security filters every row a
//! second time, so even a query that forgot its `org_id` filter cannot cross tenants.
//!
//! Rule: every method on tenant data takes the organization first.

mod accounts;
mod activity;
mod agents;
mod alerts;
mod analytics;
mod appointments;
mod assistant;
mod audit;
mod backup;
mod call_actions;
mod calls;
mod campaigns;
mod contacts;
mod conversations;
#[cfg(feature = "testing")]
pub mod corpus;
mod custom_tools;
mod dashboard;
mod followups;
mod instances;
mod jobs;
pub mod keyring;
mod knowledge;
mod mcp;
mod mcp_oauth;
mod mcp_servers;
mod messaging;
mod migrate;
mod numbers;
pub use numbers::NumberCheck;
mod oauth;
mod outbound;
mod outbox;
mod rates;
mod recordings;
mod retell;
mod rows;
mod scheduled;
mod secrets;
#[cfg(feature = "testing")]
pub mod seed;
mod settings;
mod team;
#[cfg(feature = "testing")]
pub mod testing;
mod tools;
mod transfers;
mod tx;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::ids::OrgId;
use switchboard_domain::ValidationError;

pub use accounts::{Bootstrap, BootstrapInput};
pub use activity::CallCount;
pub use analytics::{AnalyticsQuery, ExportAfter};
pub use appointments::CalendarEntry;
pub use assistant::{AssistantSession, NewAction, StoredAction};
pub use call_actions::{ActionNews, ActionSignal, UndeliveredAction};
pub use calls::{CallEnd, StatusReport};
pub use campaigns::{CampaignAction, NewCampaignRow, Refusal};
pub use conversations::EarlierPage;
pub use custom_tools::MAX_CUSTOM_TOOLS;
pub use dashboard::{DashboardSession, Overview};
pub use followups::{ANALYSIS_JOB, EMAIL_JOB};
pub use instances::StrandedCall;
pub use jobs::{Job, NewJob};
pub use keyring::{KeyError, Keyring};
pub use knowledge::{NewSource, KNOWLEDGE_JOB};
pub use mcp_oauth::{McpOAuthFlow, McpOAuthHeld, McpRefreshLock};
pub use mcp_servers::MAX_MCP_SERVERS;
pub use messaging::{InboundResult, InboundText, Received};
pub use migrate::MigrationStatus;
pub use oauth::{ConnectedApp, IssuedTokens, OAuthCode, OAuthGrant, OAuthPrincipal, Refresh};
pub use outbound::{DialStart, NewOutboundCall, Placed, DIAL_JOB};
pub use outbox::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryFilter, DeliveryTarget, NewEvent,
};
pub use rates::Rate;
pub use recordings::{ExpiredRecording, RecordingReport, StoredRecording};
pub use retell::RetellRoute;
pub use scheduled::{SendStart, SCHEDULED_JOB};
pub use secrets::{Reseal, SecretsReport};
pub use settings::TwilioCredentials;
pub use team::LinkLookupError;
pub use tools::NewToolInvocation;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server with row-level security.
    Postgres,
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist in this organization (or at all: callers cannot tell).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// Input failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be read back (a bug or manual edits).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The store was configured wrongly.
    #[error("{0}")]
    Config(String),
    /// The COMMIT of a group of SQLite write transactions failed; nothing of it was kept.
    #[error("database error: commit failed: {0}")]
    Commit(String),
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The master keys that encrypt secrets at rest.
    pub keyring: Arc<Keyring>,
    /// `postgres://...` or `sqlite://...`; `None` means SQLite under `data_dir`.
    pub url: Option<String>,
    /// Where the default SQLite file lives.
    pub data_dir: PathBuf,
    /// Pool size.
    pub max_connections: u32,
    /// PostgreSQL role without BYPASSRLS that the application switches to when it connects as
    /// a superuser or a BYPASSRLS role.
    pub app_role: String,
    /// Refuse a PostgreSQL login that is a superuser or has BYPASSRLS (production): such a
    /// session can `RESET ROLE` out of the application role, so one injected statement would
    /// undo row-level security.
    pub refuse_privileged_login: bool,
}

impl StoreOptions {
    /// Defaults (SQLite under `./data`) with the given keys.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self {
            keyring,
            url: None,
            data_dir: PathBuf::from("./data"),
            max_connections: 10,
            app_role: "switchboard_app".into(),
            refuse_privileged_login: false,
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    url: String,
    /// Readers. On PostgreSQL also the writers.
    read: AnyPool,
    /// On SQLite a single connection, so writers queue in-process instead of failing with
    /// SQLITE_BUSY when a read transaction upgrades; on PostgreSQL the same pool as `read`.
    write: AnyPool,
    /// SQLite: the writer's group commit over `write`.
    group: Option<Arc<tx::Group>>,
    /// The role connections switch to on PostgreSQL, when one is needed.
    app_role: Option<String>,
    description: String,
    /// Woken after a transaction that wrote outbox events commits, so this instance's
    /// delivery worker starts at once instead of at its next poll.
    outbox: Arc<tokio::sync::Notify>,
    /// How long a call's e-mail waits for the analysis, in ms.
    email_wait_ms: std::sync::atomic::AtomicI64,
    /// Encrypts and decrypts secrets at rest.
    keyring: Arc<Keyring>,
    /// SQLite: the API keys' request buckets (one instance; PostgreSQL keeps them in a table).
    rates: std::sync::Mutex<std::collections::HashMap<String, (f64, i64)>>,
}

/// Default bound on how long a call's e-mail waits for its analysis.
pub const DEFAULT_EMAIL_WAIT_MS: i64 = 10 * 60 * 1000;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("database", &self.inner.description)
            .finish()
    }
}

/// Who a transaction acts for.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One organization's rows.
    Org(&'a OrgId),
    /// No organization: platform tables (organizations, operator keys, migrations), and on
    /// PostgreSQL the pre-tenant look-ups and the delivery worker's claim, which read tenant
    /// tables only through their SECURITY DEFINER functions (see [`Store::lookup`]).
    Platform,
}

/// Read-only or read-write transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

pub(crate) use tx::{Expect, Tx};

/// A connection for a single-statement read. On SQLite a plain pooled connection: one
/// statement is its own snapshot, and skipping BEGIN/COMMIT saves two round trips to the
/// SQLite worker thread on hot paths. On PostgreSQL a transaction that carries the scope
/// (row-level security needs it).
pub(crate) enum Reader {
    Tx(Tx),
    Conn(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl Reader {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        match self {
            Reader::Tx(t) => t,
            Reader::Conn(c) => c,
        }
    }

    pub(crate) async fn finish(self) -> Result<(), StoreError> {
        if let Reader::Tx(t) = self {
            t.commit().await?;
        }
        Ok(())
    }
}

impl Store {
    /// Opens the store (connects, prepares the PostgreSQL application role). Does not migrate.
    pub async fn open(opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = match &opts.url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create data directory {}: {e}",
                        opts.data_dir.display()
                    ))
                })?;
                let path = opts.data_dir.join("switchboard.db");
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Config(
                "database URL must start with postgres://, postgresql:// or sqlite://".into(),
            ));
        };
        let description = describe_url(&url);
        let connect = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid database URL: {e}")))?;
        match backend {
            Backend::Sqlite => {
                let write = sqlite_pool(connect.clone(), 1).await?;
                let read = sqlite_pool(connect, opts.max_connections.max(2)).await?;
                let group = Some(tx::Group::start(write.clone()));
                Ok(Store {
                    inner: Arc::new(Inner {
                        backend,
                        url,
                        read,
                        write,
                        group,
                        app_role: None,
                        description,
                        outbox: Arc::default(),
                        email_wait_ms: DEFAULT_EMAIL_WAIT_MS.into(),
                        keyring: opts.keyring.clone(),
                        rates: Default::default(),
                    }),
                })
            }
            Backend::Postgres => {
                let app_role =
                    prepare_pg_role(&url, &opts.app_role, opts.refuse_privileged_login).await?;
                let role = app_role.clone();
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(move |conn, _| {
                        let role = role.clone();
                        Box::pin(async move {
                            if let Some(role) = role {
                                conn.execute(format!("SET ROLE \"{role}\"").as_str())
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(connect)
                    .await?;
                Ok(Store {
                    inner: Arc::new(Inner {
                        backend,
                        url,
                        read: pool.clone(),
                        write: pool,
                        group: None,
                        app_role,
                        description,
                        outbox: Arc::default(),
                        email_wait_ms: DEFAULT_EMAIL_WAIT_MS.into(),
                        keyring: opts.keyring.clone(),
                        rates: Default::default(),
                    }),
                })
            }
        }
    }

    /// The engine in use.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// A loggable description of the database (no password).
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The role connections switch to on PostgreSQL, if any.
    pub fn app_role(&self) -> Option<&str> {
        self.inner.app_role.as_deref()
    }

    /// Notified when events were committed by this instance (see [`Inner::outbox`]).
    pub fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.outbox.clone()
    }

    pub(crate) fn email_wait(&self) -> &std::sync::atomic::AtomicI64 {
        &self.inner.email_wait_ms
    }

    /// Commits a transaction that wrote outbox events and wakes the delivery worker.
    pub(crate) async fn commit_events(&self, tx: Tx) -> Result<(), StoreError> {
        tx.commit().await?;
        // Every local worker loop (webhooks, jobs) waiting on it.
        self.inner.outbox.notify_waiters();
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.read).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.inner.read.close().await;
        self.inner.write.close().await;
    }

    /// Begins a transaction for `scope` (see [`Store::apply_scope`]).
    pub(crate) async fn begin(&self, scope: Scope<'_>, access: Access) -> Result<Tx, StoreError> {
        let pool = match (access, &self.inner.group) {
            (Access::Write, Some(group)) => return group.begin().await,
            (Access::Read, _) => &self.inner.read,
            (Access::Write, None) => &self.inner.write,
        };
        let mut tx = Tx::new(pool.begin().await?, self.inner.backend == Backend::Sqlite);
        self.apply_scope(&mut tx, scope).await?;
        Ok(tx)
    }

    /// A connection for one read statement in `scope` (see [`Reader`]).
    pub(crate) async fn reader(&self, scope: Scope<'_>) -> Result<Reader, StoreError> {
        match self.inner.backend {
            Backend::Postgres => Ok(Reader::Tx(self.begin(scope, Access::Read).await?)),
            Backend::Sqlite => Ok(Reader::Conn(self.inner.read.acquire().await?)),
        }
    }

    /// Sets who an open transaction acts for. On PostgreSQL the organization (or the look-up
    /// flag) is set transaction-locally, so it cannot leak to the next user of the connection;
    /// SQLite has no row-level security and relies on the queries' own `org_id` filters.
    pub(crate) async fn apply_scope(
        &self,
        tx: &mut Tx,
        scope: Scope<'_>,
    ) -> Result<(), StoreError> {
        if self.inner.backend != Backend::Postgres {
            return Ok(());
        }
        match scope {
            Scope::Org(org) => {
                sqlx::query("SELECT set_config('switchboard.org_id', $1, true)")
                    .bind(org.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
            Scope::Platform => {}
        }
        Ok(())
    }

    /// A query that runs before any organization is known (authentication, routing, the
    /// platform sweeps, the delivery worker's claim). On PostgreSQL the application role can
    /// read tenant tables only in its organization, so these run as `pg`: a call to a
    /// SECURITY DEFINER function (migration 0021) that returns exactly the needed columns for
    /// exactly the given key. SQLite has no row-level security and runs `sqlite`, the same
    /// query written out; both answer the same columns.
    pub(crate) fn lookup<'q>(&self, pg: &'q str, sqlite: &'q str) -> &'q str {
        match self.inner.backend {
            Backend::Postgres => pg,
            Backend::Sqlite => sqlite,
        }
    }

    /// Locks the organization's row for the rest of `tx`, so the caps counted in it
    /// (outbound dials, calls under way) are checked by one transaction at a time across
    /// instances (SQLite serialises writers anyway).
    pub(crate) async fn lock_org(&self, tx: &mut Tx, org: &OrgId) -> Result<(), StoreError> {
        // NO KEY UPDATE: exclusive among lockers, but it does not block the KEY SHARE locks
        // every insert referencing the organization takes for its foreign key.
        let lock = match self.inner.backend {
            Backend::Postgres => " FOR NO KEY UPDATE",
            Backend::Sqlite => "",
        };
        sqlx::query(&format!("SELECT id FROM organizations WHERE id = $1{lock}"))
            .bind(org.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        Ok(())
    }

    /// `FOR UPDATE` where the engine has it (SQLite serialises writers already).
    pub(crate) fn for_update(&self) -> &'static str {
        match self.inner.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

async fn sqlite_pool(connect: AnyConnectOptions, max: u32) -> Result<AnyPool, StoreError> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; the busy timeout covers the moments
                // another process (a CLI command beside a running server) holds the lock.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                // Reads through a shared memory map instead of a pread per page per
                // connection, and a larger page cache: the hot paths read the same pages.
                conn.execute("PRAGMA mmap_size = 268435456").await?;
                conn.execute("PRAGMA cache_size = -16384").await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await?)
}

/// Decides whether connections must `SET ROLE`, and creates the role when they must.
/// A superuser or BYPASSRLS login would see every tenant's rows despite the policies, so the
/// application switches to `role`, which has neither.
async fn prepare_pg_role(
    url: &str,
    role: &str,
    refuse_privileged: bool,
) -> Result<Option<String>, StoreError> {
    let role_ok = !role.is_empty()
        && role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !role_ok {
        return Err(StoreError::Config(format!(
            "database application role `{role}` must be lowercase letters, digits and `_`"
        )));
    }
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let (superuser, bypass): (i64, i64) = sqlx::query_as(
        "SELECT CAST(rolsuper AS INTEGER), CAST(rolbypassrls AS INTEGER) \
         FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await?;
    if superuser == 0 && bypass == 0 {
        // Row-level security already applies to this login (policies are FORCEd on owners).
        conn.close().await?;
        return Ok(None);
    }
    if refuse_privileged {
        conn.close().await?;
        return Err(StoreError::Config(format!(
            "in production the database login must not be a superuser or have BYPASSRLS (it \
             could RESET ROLE out of `{role}` and past row-level security): connect as a role \
             that owns the schema without those attributes (see the README, PostgreSQL logins)"
        )));
    }
    // Two instances may start at once: creating an existing role is not an error.
    let create = format!(
        "DO $$ BEGIN CREATE ROLE \"{role}\" NOLOGIN NOSUPERUSER NOBYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    conn.execute(create.as_str()).await?;
    if superuser == 0 {
        conn.execute(format!("GRANT \"{role}\" TO CURRENT_USER").as_str())
            .await
            .map_err(|e| {
                StoreError::Config(format!(
                    "this login bypasses row-level security and cannot switch to role `{role}`: {e}; \
                     connect as a role without BYPASSRLS or grant `{role}` to it"
                ))
            })?;
    }
    conn.close().await?;
    Ok(Some(role.to_owned()))
}

/// `postgres://user:secret@host/db` -> `postgres://user@host/db`.
fn describe_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.split('?').next().unwrap_or(url).to_owned(),
    }
}

/// Maps a database error: unique violations become `Conflict(msg)`.
pub(crate) fn conflict_on_unique(msg: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(msg.into()),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_passwords() {
        assert_eq!(
            describe_url("postgres://app:s3cret@db:5432/sb?sslmode=require"),
            "postgres://app@db:5432/sb?sslmode=require"
        );
        assert_eq!(
            describe_url("sqlite://./data/switchboard.db?mode=rwc"),
            "sqlite://./data/switchboard.db"
        );
    }
}
