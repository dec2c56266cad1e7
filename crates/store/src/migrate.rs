//! A small migration runner: numbered SQL files embedded in the binary, applied in order,
//! each in its own transaction, recorded in `switchboard_migrations`.

use crate::{Backend, Store, StoreError};
use sqlx::{Connection, Executor};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "voice",
        sqlite: include_str!("../migrations/sqlite/0002_voice.sql"),
        postgres: include_str!("../migrations/postgres/0002_voice.sql"),
    },
    Migration {
        version: 3,
        name: "messaging",
        sqlite: include_str!("../migrations/sqlite/0003_messaging.sql"),
        postgres: include_str!("../migrations/postgres/0003_messaging.sql"),
    },
    Migration {
        version: 4,
        name: "outbox",
        sqlite: include_str!("../migrations/sqlite/0004_outbox.sql"),
        postgres: include_str!("../migrations/postgres/0004_outbox.sql"),
    },
    Migration {
        version: 5,
        name: "dashboard",
        sqlite: include_str!("../migrations/sqlite/0005_dashboard.sql"),
        postgres: include_str!("../migrations/postgres/0005_dashboard.sql"),
    },
    Migration {
        version: 6,
        name: "instances",
        sqlite: include_str!("../migrations/sqlite/0006_instances.sql"),
        postgres: include_str!("../migrations/postgres/0006_instances.sql"),
    },
    Migration {
        version: 7,
        name: "outbound",
        sqlite: include_str!("../migrations/sqlite/0007_outbound.sql"),
        postgres: include_str!("../migrations/postgres/0007_outbound.sql"),
    },
    Migration {
        version: 8,
        name: "recordings",
        sqlite: include_str!("../migrations/sqlite/0008_recordings.sql"),
        postgres: include_str!("../migrations/postgres/0008_recordings.sql"),
    },
    Migration {
        version: 9,
        name: "campaigns",
        sqlite: include_str!("../migrations/sqlite/0009_campaigns.sql"),
        postgres: include_str!("../migrations/postgres/0009_campaigns.sql"),
    },
    Migration {
        version: 10,
        name: "tool_audit",
        sqlite: include_str!("../migrations/sqlite/0010_tool_audit.sql"),
        postgres: include_str!("../migrations/postgres/0010_tool_audit.sql"),
    },
    Migration {
        version: 11,
        name: "custom_tools",
        sqlite: include_str!("../migrations/sqlite/0011_custom_tools.sql"),
        postgres: include_str!("../migrations/postgres/0011_custom_tools.sql"),
    },
    Migration {
        version: 12,
        name: "mcp_sessions",
        sqlite: include_str!("../migrations/sqlite/0012_mcp_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0012_mcp_sessions.sql"),
    },
    Migration {
        version: 13,
        name: "oauth",
        sqlite: include_str!("../migrations/sqlite/0013_oauth.sql"),
        postgres: include_str!("../migrations/postgres/0013_oauth.sql"),
    },
    Migration {
        version: 14,
        name: "mcp_servers",
        sqlite: include_str!("../migrations/sqlite/0014_mcp_servers.sql"),
        postgres: include_str!("../migrations/postgres/0014_mcp_servers.sql"),
    },
    Migration {
        version: 15,
        name: "mcp_oauth",
        sqlite: include_str!("../migrations/sqlite/0015_mcp_oauth.sql"),
        postgres: include_str!("../migrations/postgres/0015_mcp_oauth.sql"),
    },
    Migration {
        version: 16,
        name: "call_control",
        sqlite: include_str!("../migrations/sqlite/0016_call_control.sql"),
        postgres: include_str!("../migrations/postgres/0016_call_control.sql"),
    },
    Migration {
        version: 17,
        name: "call_actions",
        sqlite: include_str!("../migrations/sqlite/0017_call_actions.sql"),
        postgres: include_str!("../migrations/postgres/0017_call_actions.sql"),
    },
    Migration {
        version: 18,
        name: "call_transfers",
        sqlite: include_str!("../migrations/sqlite/0018_call_transfers.sql"),
        postgres: include_str!("../migrations/postgres/0018_call_transfers.sql"),
    },
    Migration {
        version: 19,
        name: "contact_scope",
        sqlite: include_str!("../migrations/sqlite/0019_contact_scope.sql"),
        postgres: include_str!("../migrations/postgres/0019_contact_scope.sql"),
    },
    Migration {
        version: SECRETS_AT_REST,
        name: "secrets_at_rest",
        sqlite: include_str!("../migrations/sqlite/0020_secrets_at_rest.sql"),
        postgres: include_str!("../migrations/postgres/0020_secrets_at_rest.sql"),
    },
    Migration {
        version: 21,
        name: "definer_lookups",
        sqlite: include_str!("../migrations/sqlite/0021_definer_lookups.sql"),
        postgres: include_str!("../migrations/postgres/0021_definer_lookups.sql"),
    },
    Migration {
        version: 22,
        name: "fair_webhook_claims",
        sqlite: include_str!("../migrations/sqlite/0022_fair_webhook_claims.sql"),
        postgres: include_str!("../migrations/postgres/0022_fair_webhook_claims.sql"),
    },
    Migration {
        version: 23,
        name: "live_calls",
        sqlite: include_str!("../migrations/sqlite/0023_live_calls.sql"),
        postgres: include_str!("../migrations/postgres/0023_live_calls.sql"),
    },
    Migration {
        version: 24,
        name: "api_rates",
        sqlite: include_str!("../migrations/sqlite/0024_api_rates.sql"),
        postgres: include_str!("../migrations/postgres/0024_api_rates.sql"),
    },
    Migration {
        version: 25,
        name: "number_verification",
        sqlite: include_str!("../migrations/sqlite/0025_number_verification.sql"),
        postgres: include_str!("../migrations/postgres/0025_number_verification.sql"),
    },
    Migration {
        version: 26,
        name: "appointments",
        sqlite: include_str!("../migrations/sqlite/0026_appointments.sql"),
        postgres: include_str!("../migrations/postgres/0026_appointments.sql"),
    },
    Migration {
        version: 27,
        name: "unconnected_calls",
        sqlite: include_str!("../migrations/sqlite/0027_unconnected_calls.sql"),
        postgres: include_str!("../migrations/postgres/0027_unconnected_calls.sql"),
    },
    Migration {
        version: 28,
        name: "team",
        sqlite: include_str!("../migrations/sqlite/0028_team.sql"),
        postgres: include_str!("../migrations/postgres/0028_team.sql"),
    },
    Migration {
        version: 29,
        name: "alert_notices",
        sqlite: include_str!("../migrations/sqlite/0029_alert_notices.sql"),
        postgres: include_str!("../migrations/postgres/0029_alert_notices.sql"),
    },
    Migration {
        version: 30,
        name: "knowledge",
        sqlite: include_str!("../migrations/sqlite/0030_knowledge.sql"),
        postgres: include_str!("../migrations/postgres/0030_knowledge.sql"),
    },
    Migration {
        version: 31,
        name: "assistant",
        sqlite: include_str!("../migrations/sqlite/0031_assistant.sql"),
        postgres: include_str!("../migrations/postgres/0031_assistant.sql"),
    },
    Migration {
        version: 32,
        name: "retell",
        sqlite: include_str!("../migrations/sqlite/0032_retell.sql"),
        postgres: include_str!("../migrations/postgres/0032_retell.sql"),
    },
    Migration {
        version: 33,
        name: "signalwire",
        sqlite: include_str!("../migrations/sqlite/0033_signalwire.sql"),
        postgres: include_str!("../migrations/postgres/0033_signalwire.sql"),
    },
    Migration {
        version: 34,
        name: "voice_pipeline",
        sqlite: include_str!("../migrations/sqlite/0034_voice_pipeline.sql"),
        postgres: include_str!("../migrations/postgres/0034_voice_pipeline.sql"),
    },
];

/// The migration after which secrets are sealed; applying it seals the rows in clear.
const SECRETS_AT_REST: i64 = 20;

/// Where the schema stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied.
    pub applied: Vec<i64>,
    /// Versions this binary knows but the database lacks.
    pub pending: Vec<i64>,
    /// Versions the database has that this binary does not know (a newer binary migrated it).
    pub unknown: Vec<i64>,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS switchboard_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Serialises concurrent `migrate` runs of several instances on PostgreSQL.
const PG_LOCK_KEY: i64 = 0x5357_4254_4348;

impl Store {
    /// Applies pending migrations; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        self.migrate_through(i64::MAX).await
    }

    /// [`Store::migrate`], but only up to version `last` (upgrade tests build a database as
    /// an older release left it, then migrate the rest).
    pub async fn migrate_through(&self, last: i64) -> Result<Vec<i64>, StoreError> {
        // Migrations run as the connecting login (the schema owner), not the app role.
        let mut conn = sqlx::AnyConnection::connect(&self.inner.url).await?;
        let postgres = self.inner.backend == Backend::Postgres;
        if postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_LOCK_KEY)
                .execute(&mut conn)
                .await?;
        } else {
            conn.execute("PRAGMA foreign_keys = ON").await?;
            conn.execute("PRAGMA busy_timeout = 5000").await?;
        }
        let result = self.migrate_locked(&mut conn, last).await;
        if postgres {
            let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_LOCK_KEY)
                .execute(&mut conn)
                .await;
            if let Err(e) = unlock {
                tracing::warn!(error = %e, "could not release the migration lock; it ends with the connection");
            }
        }
        conn.close().await?;
        let applied = result?;
        if applied.contains(&SECRETS_AT_REST) {
            // Rows written by earlier versions hold their secrets in clear.
            let report = self.reseal_secrets(crate::Reseal::Plaintext).await?;
            if report.resealed > 0 {
                self.forget_freed_pages().await?;
            }
        }
        Ok(applied)
    }

    async fn migrate_locked(
        &self,
        conn: &mut sqlx::AnyConnection,
        last: i64,
    ) -> Result<Vec<i64>, StoreError> {
        // An application login without CREATE on the schema (production) starts against an
        // up-to-date database: it must not need the right to create what exists.
        let exists = self.inner.backend == Backend::Postgres
            && sqlx::query_scalar::<_, i32>(
                "SELECT CAST(to_regclass('switchboard_migrations') IS NOT NULL AS INTEGER)",
            )
            .fetch_one(&mut *conn)
            .await?
                == 1;
        if !exists {
            conn.execute(CREATE_TABLE).await?;
        }
        let applied = applied_versions(conn).await?;
        let mut done = Vec::new();
        for m in MIGRATIONS
            .iter()
            .filter(|m| !applied.contains(&m.version) && m.version <= last)
        {
            let sql = match self.inner.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let mut tx = conn.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| {
                StoreError::Config(format!("migration {} ({}) failed: {e}", m.version, m.name))
            })?;
            sqlx::query(
                "INSERT INTO switchboard_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(switchboard_domain::Timestamp::now().millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            done.push(m.version);
        }
        if let Some(role) = &self.inner.app_role {
            grant_app_role(conn, role).await?;
        }
        Ok(done)
    }

    /// After secrets were sealed in place, SQLite still holds their clear text in freed
    /// pages and in the write-ahead log: rebuild the file and empty the log so a copy of the
    /// data directory does not reveal them. (PostgreSQL keeps old row versions until its own
    /// vacuum reuses them; they are not readable through SQL.)
    pub async fn forget_freed_pages(&self) -> Result<(), StoreError> {
        if self.inner.backend != Backend::Sqlite {
            return Ok(());
        }
        let mut conn = sqlx::AnyConnection::connect(&self.inner.url).await?;
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        conn.execute("VACUUM").await?;
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        conn.close().await?;
        Ok(())
    }

    /// Reports applied and pending migrations without changing anything.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let mut conn = self.inner.read.acquire().await?;
        let exists = match self.inner.backend {
            Backend::Sqlite => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'switchboard_migrations'",
                )
                .fetch_one(&mut *conn)
                .await?
            }
            Backend::Postgres => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = 'switchboard_migrations'",
                )
                .fetch_one(&mut *conn)
                .await?
            }
        } > 0;
        let applied = if exists {
            applied_versions(&mut conn).await?
        } else {
            Vec::new()
        };
        let known: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        Ok(MigrationStatus {
            pending: known
                .iter()
                .copied()
                .filter(|v| !applied.contains(v))
                .collect(),
            unknown: applied
                .iter()
                .copied()
                .filter(|v| !known.contains(v))
                .collect(),
            applied,
        })
    }
}

async fn applied_versions(conn: &mut sqlx::AnyConnection) -> Result<Vec<i64>, StoreError> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT version FROM switchboard_migrations ORDER BY version")
            .fetch_all(conn)
            .await?,
    )
}

/// Lets the application role use every table (run after each migration, idempotent).
async fn grant_app_role(conn: &mut sqlx::AnyConnection, role: &str) -> Result<(), StoreError> {
    let sql = format!(
        "DO $$ BEGIN \
           EXECUTE format('GRANT USAGE ON SCHEMA %I TO \"{role}\"', current_schema()); \
           EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO \"{role}\"', current_schema()); \
           EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO \"{role}\"', current_schema()); \
           EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO \"{role}\"', current_schema()); \
         END $$"
    );
    conn.execute(sql.as_str()).await?;
    Ok(())
}
