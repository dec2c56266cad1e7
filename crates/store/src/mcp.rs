//! MCP server sessions: which organization and principal opened each, and the state any
//! instance needs to restore it.

use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;

/// Sessions unused for this long are forgotten (clients re-initialize on 404).
pub const MCP_SESSION_TTL_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Records that `org` (as `actor`) opened session `id`; an existing binding is kept.
    pub async fn bind_mcp_session(
        &self,
        id: &str,
        org: &OrgId,
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let bound: Option<Option<String>> =
            sqlx::query_scalar("SELECT org_id FROM mcp_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match bound {
            None => {
                sqlx::query(
                    "INSERT INTO mcp_sessions (id, org_id, actor, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(id)
                .bind(org.as_str())
                .bind(actor)
                .bind(now.millis())
                .execute(&mut *tx)
                .await?;
            }
            Some(None) => {
                sqlx::query(
                    "UPDATE mcp_sessions SET org_id = $1, actor = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(org.as_str())
                .bind(actor)
                .bind(now.millis())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            Some(Some(_)) => {}
        }
        tx.commit().await?;
        Ok(())
    }

    /// The organization that opened session `id`, when it is known and fresh.
    pub async fn mcp_session_org(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<OrgId>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let org: Option<Option<String>> =
            sqlx::query_scalar("SELECT org_id FROM mcp_sessions WHERE id = $1 AND updated_at > $2")
                .bind(id)
                .bind(now.millis() - MCP_SESSION_TTL_MS)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(org.flatten().map(OrgId::from_db))
    }

    /// Saves the state the SDK needs to restore session `id` on any instance.
    pub async fn save_mcp_session_state(
        &self,
        id: &str,
        state: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = sqlx::query("UPDATE mcp_sessions SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(now.millis())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO mcp_sessions (id, state, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(id)
            .bind(state)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The saved state of session `id`, when it is known and fresh.
    pub async fn load_mcp_session_state(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let state: Option<Option<String>> =
            sqlx::query_scalar("SELECT state FROM mcp_sessions WHERE id = $1 AND updated_at > $2")
                .bind(id)
                .bind(now.millis() - MCP_SESSION_TTL_MS)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(state.flatten())
    }

    /// Forgets session `id` (the client ended it).
    pub async fn delete_mcp_session(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
