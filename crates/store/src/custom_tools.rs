//! Custom HTTP tools, and the check that an agent only lists tools its organization has.

use crate::rows::{col, flag, json, parsed, ts};
use crate::secrets::{Owner, TOOL_HEADERS, TOOL_SECRET};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::agent::BUILTIN_TOOLS;
use switchboard_domain::custom_tool::{CustomTool, ToolHeaders, ToolMethod};
use switchboard_domain::ids::{CustomToolId, OrgId};
use switchboard_domain::{Secret, Timestamp, ValidationError};

const COLUMNS: &str = "id, name, description, parameters, url, method, headers, timeout_ms, \
    speak_while_waiting, waiting_message, signing_secret, previous_secret, \
    previous_secret_expires_at, created_at, updated_at";

/// Tools an organization may define.
pub const MAX_CUSTOM_TOOLS: i64 = 200;

const TAKEN: &str = "a custom tool with this name already exists";

fn tool_from_row(store: &Store, org: &OrgId, row: &AnyRow) -> Result<CustomTool, StoreError> {
    let owner = Owner::Org(org);
    let headers = store.unseal(owner, TOOL_HEADERS, &col::<String>(row, "headers")?)?;
    let headers: Vec<(String, String)> = serde_json::from_str(headers.expose())
        .map_err(|e| StoreError::Corrupt(format!("custom tool headers: {e}")))?;
    let mut secrets =
        vec![store.unseal(owner, TOOL_SECRET, &col::<String>(row, "signing_secret")?)?];
    // The previous secret signs too until its overlap ends.
    let previous: Option<String> = col(row, "previous_secret")?;
    let until: Option<i64> = col(row, "previous_secret_expires_at")?;
    if let (Some(p), Some(until)) = (previous, until) {
        if until > Timestamp::now().millis() {
            secrets.push(store.unseal(owner, TOOL_SECRET, &p)?);
        }
    }
    Ok(CustomTool {
        id: CustomToolId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        description: col(row, "description")?,
        parameters: json(row, "parameters")?,
        url: col(row, "url")?,
        method: parsed(row, "method", ToolMethod::parse)?,
        headers: ToolHeaders(
            headers
                .into_iter()
                .map(|(n, v)| (n, Secret::new(v)))
                .collect(),
        ),
        timeout_ms: col(row, "timeout_ms")?,
        speak_while_waiting: flag(row, "speak_while_waiting")?,
        waiting_message: col(row, "waiting_message")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        secrets,
    })
}

/// The headers as stored: their JSON pairs, sealed (the values are credentials).
fn sealed_headers(store: &Store, org: &OrgId, h: &ToolHeaders) -> Result<String, StoreError> {
    let pairs: Vec<(&str, &str)> = h.0.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
    store.seal(
        Owner::Org(org),
        TOOL_HEADERS,
        &crate::rows::to_json(&pairs)?,
    )
}

impl Store {
    /// Stores a new (validated) custom tool; `Conflict` when the name is taken.
    pub async fn create_custom_tool(
        &self,
        org: &OrgId,
        tool: &CustomTool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM custom_tools WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_CUSTOM_TOOLS {
            return Err(StoreError::Conflict(format!(
                "an organization can have at most {MAX_CUSTOM_TOOLS} custom tools"
            )));
        }
        let secret = self.seal(
            Owner::Org(org),
            TOOL_SECRET,
            tool.secrets.first().map(Secret::expose).unwrap_or_default(),
        )?;
        sqlx::query(
            "INSERT INTO custom_tools (id, org_id, name, description, parameters, url, method, \
             headers, timeout_ms, speak_while_waiting, waiting_message, signing_secret, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(tool.id.as_str())
        .bind(org.as_str())
        .bind(tool.name.as_str())
        .bind(tool.description.as_str())
        .bind(crate::rows::to_json(&tool.parameters)?)
        .bind(tool.url.as_str())
        .bind(tool.method.as_str())
        .bind(sealed_headers(self, org, &tool.headers)?)
        .bind(tool.timeout_ms)
        .bind(i64::from(tool.speak_while_waiting))
        .bind(tool.waiting_message.clone())
        .bind(secret)
        .bind(tool.created_at.millis())
        .bind(tool.updated_at.millis())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        tx.commit().await?;
        Ok(())
    }

    /// One custom tool.
    pub async fn get_custom_tool(
        &self,
        org: &OrgId,
        id: &CustomToolId,
    ) -> Result<CustomTool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let t = fetch_tool(self, &mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Every custom tool of the organization, by name (there are at most
    /// [`MAX_CUSTOM_TOOLS`]).
    pub async fn list_custom_tools(&self, org: &OrgId) -> Result<Vec<CustomTool>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM custom_tools WHERE org_id = $1 ORDER BY name"
        ))
        .bind(org.as_str())
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter().map(|r| tool_from_row(self, org, r)).collect()
    }

    /// Changes a custom tool with `change` (which validates the result). A new name is
    /// followed by every agent that lists the tool, in the same transaction.
    pub async fn update_custom_tool(
        &self,
        org: &OrgId,
        id: &CustomToolId,
        change: impl FnOnce(CustomTool) -> Result<CustomTool, ValidationError>,
    ) -> Result<CustomTool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch_tool(self, &mut tx, org, id, self.for_update()).await?;
        let old_name = current.name.clone();
        let tool = change(current)?;
        sqlx::query(
            "UPDATE custom_tools SET name = $1, description = $2, parameters = $3, url = $4, \
             method = $5, headers = $6, timeout_ms = $7, speak_while_waiting = $8, \
             waiting_message = $9, updated_at = $10 WHERE org_id = $11 AND id = $12",
        )
        .bind(tool.name.as_str())
        .bind(tool.description.as_str())
        .bind(crate::rows::to_json(&tool.parameters)?)
        .bind(tool.url.as_str())
        .bind(tool.method.as_str())
        .bind(sealed_headers(self, org, &tool.headers)?)
        .bind(tool.timeout_ms)
        .bind(i64::from(tool.speak_while_waiting))
        .bind(tool.waiting_message.clone())
        .bind(tool.updated_at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        if tool.name != old_name {
            rename_in_agents(&mut tx, org, &old_name, &tool.name).await?;
        }
        tx.commit().await?;
        Ok(tool)
    }

    /// Deletes a custom tool; `Conflict` naming the agents while any lists it.
    pub async fn delete_custom_tool(
        &self,
        org: &OrgId,
        id: &CustomToolId,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let tool = fetch_tool(self, &mut tx, org, id, self.for_update()).await?;
        refuse_if_listed(&mut tx, org, &tool.name, "the tool").await?;
        sqlx::query("DELETE FROM custom_tools WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the signing secret; the current one keeps signing until `previous_until`.
    pub async fn rotate_custom_tool_secret(
        &self,
        org: &OrgId,
        id: &CustomToolId,
        secret: &Secret,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> Result<CustomTool, StoreError> {
        let secret = self.seal(Owner::Org(org), TOOL_SECRET, secret.expose())?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE custom_tools SET previous_secret = signing_secret, \
             previous_secret_expires_at = $1, signing_secret = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(previous_until.millis())
        .bind(&secret)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let t = fetch_tool(self, &mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(t)
    }
}

/// One tool of `org` inside an open transaction; `lock` is `""` or `FOR UPDATE`.
async fn fetch_tool(
    store: &Store,
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &CustomToolId,
    lock: &str,
) -> Result<CustomTool, StoreError> {
    crate::rows::fetch_scoped(tx, "custom_tools", COLUMNS, org, id.as_str(), lock, |r| {
        tool_from_row(store, org, r)
    })
    .await
}

/// Renames `old` to `new` in the tools of every agent of `org` that lists it.
pub(crate) async fn rename_in_agents(
    tx: &mut crate::Tx,
    org: &OrgId,
    old: &str,
    new: &str,
) -> Result<(), StoreError> {
    for (agent_id, mut tools) in agents_listing(tx, org, old).await? {
        for t in tools.iter_mut().filter(|t| *t == old) {
            *t = new.to_owned();
        }
        sqlx::query("UPDATE agents SET tools = $1 WHERE org_id = $2 AND id = $3")
            .bind(crate::rows::to_json(&tools)?)
            .bind(org.as_str())
            .bind(agent_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `Conflict` naming the agents of `org` that list `entry` (`what` says what it is).
pub(crate) async fn refuse_if_listed(
    tx: &mut crate::Tx,
    org: &OrgId,
    entry: &str,
    what: &str,
) -> Result<(), StoreError> {
    let users = agents_listing(tx, org, entry).await?;
    if users.is_empty() {
        return Ok(());
    }
    let mut listed = Vec::new();
    for (agent_id, _) in &users {
        let n: String = sqlx::query_scalar("SELECT name FROM agents WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(agent_id.as_str())
            .fetch_one(&mut **tx)
            .await?;
        listed.push(n);
    }
    Err(StoreError::Conflict(format!(
        "{what} is used by {} ({}); remove it from their tools first",
        if listed.len() == 1 {
            "an agent"
        } else {
            "agents"
        },
        listed.join(", ")
    )))
}

/// The agents (id, tools) of `org` that list `name`.
async fn agents_listing(
    tx: &mut crate::Tx,
    org: &OrgId,
    name: &str,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, tools FROM agents WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_all(&mut **tx)
            .await?;
    let mut out = Vec::new();
    for (id, tools) in rows {
        let tools: Vec<String> = serde_json::from_str(&tools)
            .map_err(|e| StoreError::Corrupt(format!("agent {id} tools: {e}")))?;
        if tools.iter().any(|t| t == name) {
            out.push((id, tools));
        }
    }
    Ok(out)
}

/// Checks (inside an agent's write) that every tool it lists is a built-in or one of the
/// organization's custom tools.
pub(crate) async fn check_agent_tools(
    tx: &mut crate::Tx,
    org: &OrgId,
    tools: &[String],
) -> Result<(), StoreError> {
    if tools.iter().all(|t| BUILTIN_TOOLS.contains(&t.as_str())) {
        return Ok(());
    }
    let mut known: Vec<String> =
        sqlx::query_scalar("SELECT name FROM custom_tools WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_all(&mut **tx)
            .await?;
    let servers: Vec<String> = sqlx::query_scalar("SELECT name FROM mcp_servers WHERE org_id = $1")
        .bind(org.as_str())
        .fetch_all(&mut **tx)
        .await?;
    known.extend(
        servers
            .into_iter()
            .map(|n| format!("{}{n}", switchboard_domain::mcp_server::AGENT_PREFIX)),
    );
    for (i, t) in tools.iter().enumerate() {
        if !BUILTIN_TOOLS.contains(&t.as_str()) && !known.contains(t) {
            return Err(StoreError::Invalid(ValidationError::new(
                format!("tools[{i}]"),
                format!(
                    "unknown tool `{t}`: neither a built-in tool ({}) nor a custom tool or MCP server (`mcp:<name>`) of this organization",
                    BUILTIN_TOOLS.join(", ")
                ),
            )));
        }
    }
    Ok(())
}
