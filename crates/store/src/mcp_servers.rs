//! External MCP servers of an organization.

use crate::rows::{col, json, ts, ts_opt};
use crate::secrets::{Owner, MCP_AUTH};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::ids::{McpServerId, OrgId};
use switchboard_domain::mcp_server::{McpAuth, McpOAuthStatus, McpServer, AGENT_PREFIX};
use switchboard_domain::{Secret, ValidationError};

const COLUMNS: &str = "id, name, url, transport, auth, allowed_tools, last_error, last_error_at, \
    oauth_connected_at, oauth_expires_at, created_at, updated_at";
const TAKEN: &str = "an MCP server with this name already exists";
/// Servers an organization may register.
pub const MAX_MCP_SERVERS: i64 = 50;

/// `auth` as stored: this JSON, sealed (see [`crate::secrets`]).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StoredAuth {
    None,
    Header {
        name: String,
        value: String,
    },
    Oauth {
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        client_secret: Option<String>,
    },
}

fn sealed_auth(store: &Store, org: &OrgId, a: &McpAuth) -> Result<String, StoreError> {
    let json = crate::rows::to_json(&match a {
        McpAuth::None => StoredAuth::None,
        McpAuth::Header { name, value } => StoredAuth::Header {
            name: name.clone(),
            value: value.expose().to_owned(),
        },
        McpAuth::Oauth {
            scopes,
            client_id,
            client_secret,
        } => StoredAuth::Oauth {
            scopes: scopes.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.as_ref().map(|s| s.expose().to_owned()),
        },
    })?;
    store.seal(Owner::Org(org), MCP_AUTH, &json)
}

fn server_from_row(store: &Store, org: &OrgId, row: &AnyRow) -> Result<McpServer, StoreError> {
    let stored = store.unseal(Owner::Org(org), MCP_AUTH, &col::<String>(row, "auth")?)?;
    let stored: StoredAuth = serde_json::from_str(stored.expose())
        .map_err(|e| StoreError::Corrupt(format!("MCP server auth: {e}")))?;
    let auth = match stored {
        StoredAuth::None => McpAuth::None,
        StoredAuth::Header { name, value } => McpAuth::Header {
            name,
            value: Secret::new(value),
        },
        StoredAuth::Oauth {
            scopes,
            client_id,
            client_secret,
        } => McpAuth::Oauth {
            scopes,
            client_id,
            client_secret: client_secret.map(Secret::new),
        },
    };
    let oauth = match auth {
        McpAuth::Oauth { .. } => {
            let connected_at = ts_opt(row, "oauth_connected_at")?;
            Some(McpOAuthStatus {
                state: if connected_at.is_some() {
                    "connected"
                } else {
                    "not_connected"
                }
                .into(),
                connected_at,
                access_expires_at: ts_opt(row, "oauth_expires_at")?,
            })
        }
        _ => None,
    };
    Ok(McpServer {
        id: McpServerId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        url: col(row, "url")?,
        transport: col(row, "transport")?,
        auth,
        allowed_tools: json(row, "allowed_tools")?,
        oauth,
        last_error: col(row, "last_error")?,
        last_error_at: ts_opt(row, "last_error_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn fetch(
    store: &Store,
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &McpServerId,
    lock: &str,
) -> Result<McpServer, StoreError> {
    crate::rows::fetch_scoped(tx, "mcp_servers", COLUMNS, org, id.as_str(), lock, |r| {
        server_from_row(store, org, r)
    })
    .await
}

impl Store {
    /// Stores a new (validated) server; `Conflict` when the name is taken.
    pub async fn create_mcp_server(&self, org: &OrgId, s: &McpServer) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mcp_servers WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_MCP_SERVERS {
            return Err(StoreError::Conflict(format!(
                "an organization can register at most {MAX_MCP_SERVERS} MCP servers"
            )));
        }
        sqlx::query(
            "INSERT INTO mcp_servers (id, org_id, name, url, transport, auth, allowed_tools, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id.as_str())
        .bind(org.as_str())
        .bind(s.name.as_str())
        .bind(s.url.as_str())
        .bind(s.transport.as_str())
        .bind(sealed_auth(self, org, &s.auth)?)
        .bind(crate::rows::to_json(&s.allowed_tools)?)
        .bind(s.created_at.millis())
        .bind(s.updated_at.millis())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        tx.commit().await?;
        Ok(())
    }

    /// One server.
    pub async fn get_mcp_server(
        &self,
        org: &OrgId,
        id: &McpServerId,
    ) -> Result<McpServer, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let s = fetch(self, &mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(s)
    }

    /// The organization's servers, by name.
    pub async fn list_mcp_servers(&self, org: &OrgId) -> Result<Vec<McpServer>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM mcp_servers WHERE org_id = $1 ORDER BY name"
        ))
        .bind(org.as_str())
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter().map(|r| server_from_row(self, org, r)).collect()
    }

    /// Changes a server with `change`; a new name is followed by the agents listing it. A new
    /// URL or other credentials drop the OAuth tokens and flows under way (they were for the
    /// old ones).
    pub async fn update_mcp_server(
        &self,
        org: &OrgId,
        id: &McpServerId,
        change: impl FnOnce(McpServer) -> Result<McpServer, ValidationError>,
    ) -> Result<McpServer, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch(self, &mut tx, org, id, self.for_update()).await?;
        let old = format!("{AGENT_PREFIX}{}", current.name);
        let (old_url, old_auth) = (current.url.clone(), current.auth.clone());
        let mut s = change(current)?;
        if s.url != old_url || !old_auth.keeps_oauth_tokens(&s.auth) {
            crate::mcp_oauth::forget(&mut tx, org, id).await?;
            s.oauth = Some(McpOAuthStatus::not_connected());
        }
        if !matches!(s.auth, McpAuth::Oauth { .. }) {
            s.oauth = None;
        }
        sqlx::query(
            "UPDATE mcp_servers SET name = $1, url = $2, auth = $3, allowed_tools = $4, \
             updated_at = $5 WHERE org_id = $6 AND id = $7",
        )
        .bind(s.name.as_str())
        .bind(s.url.as_str())
        .bind(sealed_auth(self, org, &s.auth)?)
        .bind(crate::rows::to_json(&s.allowed_tools)?)
        .bind(s.updated_at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        let new = format!("{AGENT_PREFIX}{}", s.name);
        if new != old {
            crate::custom_tools::rename_in_agents(&mut tx, org, &old, &new).await?;
        }
        tx.commit().await?;
        Ok(s)
    }

    /// Records whether a conversation could reach the server: `Some(why)` when it could not,
    /// `None` to clear an earlier failure.
    pub async fn record_mcp_server_status(
        &self,
        org: &OrgId,
        id: &McpServerId,
        error: Option<&str>,
        now: switchboard_domain::Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE mcp_servers SET last_error = $1, last_error_at = $2 \
             WHERE org_id = $3 AND id = $4",
        )
        .bind(error.map(|e| e.chars().take(500).collect::<String>()))
        .bind(error.map(|_| now.millis()))
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a server; `Conflict` naming the agents while any lists it.
    pub async fn delete_mcp_server(&self, org: &OrgId, id: &McpServerId) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let s = fetch(self, &mut tx, org, id, self.for_update()).await?;
        crate::custom_tools::refuse_if_listed(
            &mut tx,
            org,
            &format!("{AGENT_PREFIX}{}", s.name),
            "the MCP server",
        )
        .await?;
        sqlx::query("DELETE FROM mcp_servers WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
