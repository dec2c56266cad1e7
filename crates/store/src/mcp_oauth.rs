//! OAuth to organizations' external MCP servers: the client configuration and tokens a
//! completed flow left on the server's row, the flows under way, and the lock that keeps two
//! instances from refreshing the same tokens at once.
//!
//! The store keeps the documents opaque (JSON text the tools crate writes): it knows when a
//! server was connected and when its access token expires, nothing of the protocol.

use crate::rows::{col, ts};
use crate::secrets::{Owner, MCP_OAUTH_CLIENT, MCP_OAUTH_FLOW, MCP_OAUTH_TOKENS};
use crate::{Access, Backend, Scope, Store, StoreError};
use switchboard_domain::ids::{McpServerId, OrgId, UserId};
use switchboard_domain::{Secret, Timestamp};

/// What a completed authorization left on a server.
#[derive(Debug, Clone, Default)]
pub struct McpOAuthHeld {
    /// The client configuration, metadata and resource (JSON), when a flow completed.
    pub client: Option<Secret>,
    /// The tokens (JSON), while connected.
    pub tokens: Option<Secret>,
    /// When the flow completed; identifies this grant (a refresh saves only onto the grant
    /// it refreshed).
    pub connected_at: Option<Timestamp>,
}

/// A flow under way, as the callback finds it.
#[derive(Debug, Clone)]
pub struct McpOAuthFlow {
    /// The server being connected.
    pub server_id: McpServerId,
    /// The admin who started it.
    pub user_id: UserId,
    /// The flow's document (JSON): PKCE verifier, client configuration.
    pub data: Secret,
    /// Started.
    pub created_at: Timestamp,
}

/// Held while one instance refreshes a server's tokens; on PostgreSQL an advisory lock on a
/// connection of its own, released when this is dropped (on SQLite there is one instance and
/// the caller's in-process lock suffices).
pub struct McpRefreshLock {
    conn: Option<(sqlx::pool::PoolConnection<sqlx::Any>, i64)>,
}

impl std::fmt::Debug for McpRefreshLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpRefreshLock")
            .field("advisory", &self.conn.is_some())
            .finish()
    }
}

impl McpRefreshLock {
    /// Releases the lock now (dropping it releases it too, a moment later).
    pub async fn release(mut self) {
        if let Some((conn, key)) = self.conn.take() {
            unlock(conn, key).await;
        }
    }
}

/// Releases the advisory lock; a connection that cannot is closed, which releases it too.
async fn unlock(mut conn: sqlx::pool::PoolConnection<sqlx::Any>, key: i64) {
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    if let Err(e) = unlocked {
        tracing::warn!(error = %e, "cannot release the MCP token refresh lock; closing its connection");
        conn.close_on_drop();
    }
}

impl Drop for McpRefreshLock {
    fn drop(&mut self) {
        if let Some((mut conn, key)) = self.conn.take() {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                // No runtime to unlock on: closing the connection releases the lock.
                conn.close_on_drop();
                return;
            };
            rt.spawn(unlock(conn, key));
        }
    }
}

/// Drops a server's OAuth client, tokens and flows (its URL or credentials changed).
pub(crate) async fn forget(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &McpServerId,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mcp_servers SET oauth_client = NULL, oauth_tokens = NULL, \
         oauth_connected_at = NULL, oauth_expires_at = NULL WHERE org_id = $1 AND id = $2",
    )
    .bind(org.as_str())
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM mcp_oauth_flows WHERE org_id = $1 AND server_id = $2")
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A stable 64-bit key for the advisory lock of one server.
fn lock_key(id: &McpServerId) -> i64 {
    let digest = switchboard_domain::auth::hash_api_key(&format!("mcp-oauth-refresh:{id}"));
    let hex = digest.get(..16).unwrap_or("0");
    u64::from_str_radix(hex, 16).map_or(0, |v| v as i64)
}

impl Store {
    /// The OAuth client and tokens a server holds.
    pub async fn mcp_oauth_held(
        &self,
        org: &OrgId,
        id: &McpServerId,
    ) -> Result<McpOAuthHeld, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(
            "SELECT oauth_client, oauth_tokens, oauth_connected_at FROM mcp_servers \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_optional(r.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
        r.finish().await?;
        let owner = Owner::Org(org);
        Ok(McpOAuthHeld {
            client: self.unseal_opt(owner, MCP_OAUTH_CLIENT, col(&row, "oauth_client")?)?,
            tokens: self.unseal_opt(owner, MCP_OAUTH_TOKENS, col(&row, "oauth_tokens")?)?,
            connected_at: crate::rows::ts_opt(&row, "oauth_connected_at")?,
        })
    }

    /// Records a completed authorization: the client it used and the tokens it obtained.
    pub async fn connect_mcp_oauth(
        &self,
        org: &OrgId,
        id: &McpServerId,
        client: &str,
        tokens: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let client = self.seal(Owner::Org(org), MCP_OAUTH_CLIENT, client)?;
        let tokens = self.seal(Owner::Org(org), MCP_OAUTH_TOKENS, tokens)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let n = sqlx::query(
            "UPDATE mcp_servers SET oauth_client = $1, oauth_tokens = $2, oauth_connected_at = $3, \
             oauth_expires_at = $4, last_error = NULL, last_error_at = NULL \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(&client)
        .bind(&tokens)
        .bind(now.millis())
        .bind(expires_at.map(Timestamp::millis))
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves refreshed tokens onto the grant `connected_at` identifies; `false` (nothing
    /// written) when that grant is gone (disconnected or connected again meanwhile).
    pub async fn refresh_mcp_oauth(
        &self,
        org: &OrgId,
        id: &McpServerId,
        connected_at: Timestamp,
        tokens: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let tokens = self.seal(Owner::Org(org), MCP_OAUTH_TOKENS, tokens)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let n = sqlx::query(
            "UPDATE mcp_servers SET oauth_tokens = $1, oauth_expires_at = $2 \
             WHERE org_id = $3 AND id = $4 AND oauth_connected_at = $5",
        )
        .bind(&tokens)
        .bind(expires_at.map(Timestamp::millis))
        .bind(org.as_str())
        .bind(id.as_str())
        .bind(connected_at.millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Drops a server's tokens (an admin disconnected it, or the authorization server
    /// refused to refresh them: `grant` names the grant refused, and a newer one is kept).
    /// The client registration stays for the next connection.
    pub async fn disconnect_mcp_oauth(
        &self,
        org: &OrgId,
        id: &McpServerId,
        grant: Option<Timestamp>,
        why: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut sql = String::from(
            "UPDATE mcp_servers SET oauth_tokens = NULL, oauth_connected_at = NULL, \
             oauth_expires_at = NULL, last_error = $1, last_error_at = $2 \
             WHERE org_id = $3 AND id = $4",
        );
        if grant.is_some() {
            sql.push_str(" AND oauth_connected_at = $5");
        }
        let mut q = sqlx::query(&sql)
            .bind(why.map(|w| w.chars().take(500).collect::<String>()))
            .bind(why.map(|_| now.millis()))
            .bind(org.as_str())
            .bind(id.as_str());
        if let Some(g) = grant {
            q = q.bind(g.millis());
        }
        let n = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Starts a flow: stored under the hash of its `state` until `expires_at`. Expired flows
    /// of the organization are swept at the same time.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_mcp_oauth_flow(
        &self,
        org: &OrgId,
        server: &McpServerId,
        user: &UserId,
        state_hash: &str,
        data: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let data = self.seal(Owner::Org(org), MCP_OAUTH_FLOW, data)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("DELETE FROM mcp_oauth_flows WHERE org_id = $1 AND expires_at <= $2")
            .bind(org.as_str())
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mcp_oauth_flows (state_hash, org_id, server_id, user_id, data, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(state_hash)
        .bind(org.as_str())
        .bind(server.as_str())
        .bind(user.as_str())
        .bind(&data)
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consumes a flow: it is deleted whether or not it is still valid; `None` when there is
    /// no such flow in the organization or it expired.
    pub async fn take_mcp_oauth_flow(
        &self,
        org: &OrgId,
        state_hash: &str,
        now: Timestamp,
    ) -> Result<Option<McpOAuthFlow>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(
            "DELETE FROM mcp_oauth_flows WHERE org_id = $1 AND state_hash = $2 \
             RETURNING server_id, user_id, data, created_at, expires_at",
        )
        .bind(org.as_str())
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        if ts(&row, "expires_at")? <= now {
            return Ok(None);
        }
        Ok(Some(McpOAuthFlow {
            server_id: McpServerId::from_db(col(&row, "server_id")?),
            user_id: UserId::from_db(col(&row, "user_id")?),
            data: self.unseal(
                Owner::Org(org),
                MCP_OAUTH_FLOW,
                &col::<String>(&row, "data")?,
            )?,
            created_at: ts(&row, "created_at")?,
        }))
    }

    /// Waits for the right to refresh a server's tokens across instances (PostgreSQL); held
    /// until the returned lock is dropped.
    pub async fn lock_mcp_oauth_refresh(
        &self,
        id: &McpServerId,
    ) -> Result<McpRefreshLock, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(McpRefreshLock { conn: None });
        }
        let key = lock_key(id);
        let mut conn = self.inner.write.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
        Ok(McpRefreshLock {
            conn: Some((conn, key)),
        })
    }

    /// Like [`Store::lock_mcp_oauth_refresh`] without waiting: `None` while another holder
    /// has it.
    pub async fn try_lock_mcp_oauth_refresh(
        &self,
        id: &McpServerId,
    ) -> Result<Option<McpRefreshLock>, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(Some(McpRefreshLock { conn: None }));
        }
        let key = lock_key(id);
        let mut conn = self.inner.write.acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(got.then_some(McpRefreshLock {
            conn: Some((conn, key)),
        }))
    }
}
