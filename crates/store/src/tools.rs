//! What agent tools touch besides the calendar: the tool invocation audit log, contacts by
//! number, and platform secrets.

use crate::rows::{col, json, json_opt, push_range, to_json, ts, ts_opt, Newest, Sql};
use crate::{Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::entities::{Cursor, Page, ToolInvocation, ToolInvocationFilter};
use switchboard_domain::ids::{random_token, CallId, ConversationId, OrgId};
use switchboard_domain::{Secret, Timestamp};

const TOOL_COLUMNS: &str = "id, conversation_id, call_id, external_id, tool, arguments, result, \
    status, actor, source, started_at, finished_at";

fn tool_from_row(row: &AnyRow) -> Result<ToolInvocation, StoreError> {
    Ok(ToolInvocation {
        id: col(row, "id")?,
        conversation_id: col::<Option<String>>(row, "conversation_id")?
            .map(ConversationId::from_db),
        call_id: col::<Option<String>>(row, "call_id")?.map(CallId::from_db),
        external_id: col(row, "external_id")?,
        tool: col(row, "tool")?,
        arguments: json(row, "arguments")?,
        result: json_opt(row, "result")?,
        status: col(row, "status")?,
        actor: col(row, "actor")?,
        source: col(row, "source")?,
        started_at: ts(row, "started_at")?,
        finished_at: ts_opt(row, "finished_at")?,
        duration_ms: None,
    })
    .map(|mut t: ToolInvocation| {
        t.duration_ms = t
            .finished_at
            .map(|f| (f.millis() - t.started_at.millis()).max(0));
        t
    })
}

/// The start of a tool execution, for the audit log.
#[derive(Debug, Clone)]
pub struct NewToolInvocation {
    /// Conversation.
    pub conversation_id: Option<ConversationId>,
    /// Call.
    pub call_id: Option<CallId>,
    /// The model's call id (a tool call runs at most once per call and id).
    pub external_id: Option<String>,
    /// Tool name.
    pub tool: String,
    /// Arguments.
    pub arguments: serde_json::Value,
    /// Who runs it.
    pub actor: String,
    /// `call` or `text`.
    pub source: String,
}

impl Store {
    /// Records the start of a tool execution. Returns `None` when this (call, model call id)
    /// already ran: the database enforces "once per call_id" even if the caller repeats.
    pub async fn start_tool_invocation(
        &self,
        org: &OrgId,
        input: &NewToolInvocation,
    ) -> Result<Option<String>, StoreError> {
        let id = format!("tin_{}", random_token(16));
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let res = sqlx::query(
            "INSERT INTO tool_invocations (id, org_id, conversation_id, call_id, external_id, \
             tool, arguments, status, actor, source, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10)",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(input.conversation_id.as_ref().map(|c| c.to_string()))
        .bind(input.call_id.as_ref().map(|c| c.to_string()))
        .bind(input.external_id.clone())
        .bind(input.tool.as_str())
        .bind(to_json(&input.arguments)?)
        .bind(input.actor.as_str())
        .bind(input.source.as_str())
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Records how a tool execution ended.
    pub async fn finish_tool_invocation(
        &self,
        org: &OrgId,
        id: &str,
        status: &str,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE tool_invocations SET status = $1, result = $2, finished_at = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(status)
        .bind(to_json(result)?)
        .bind(Timestamp::now().millis())
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let inv = crate::rows::fetch_scoped(
            &mut tx,
            "tool_invocations",
            TOOL_COLUMNS,
            org,
            id,
            "",
            tool_from_row,
        )
        .await?;
        let subject = inv
            .conversation_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| inv.id.clone());
        let ev = crate::outbox::NewEvent::new(
            "tool.executed",
            subject,
            serde_json::json!({"tool_invocation": inv}),
        );
        crate::outbox::emit(&mut tx, org, &[ev], Timestamp::now()).await?;
        self.commit_events(tx).await?;
        Ok(())
    }

    /// A conversation's tool executions, oldest first.
    pub async fn list_tool_invocations(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
    ) -> Result<Vec<ToolInvocation>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(&format!(
            "SELECT {TOOL_COLUMNS} FROM tool_invocations WHERE org_id = $1 \
             AND conversation_id = $2 ORDER BY started_at, id LIMIT 1000"
        ))
        .bind(org.as_str())
        .bind(conversation.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(tool_from_row).collect()
    }

    /// Tool executions of the organization, newest first.
    pub async fn search_tool_invocations(
        &self,
        org: &OrgId,
        filter: &ToolInvocationFilter,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<ToolInvocation>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {TOOL_COLUMNS} FROM tool_invocations WHERE "
        ));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(c) = &filter.conversation_id {
            sql.push_arg(" AND conversation_id = {}", c.to_string())?;
        }
        if let Some(c) = &filter.call_id {
            sql.push_arg(" AND call_id = {}", c.to_string())?;
        }
        for (col, v) in [
            ("tool", &filter.tool),
            ("status", &filter.status),
            ("source", &filter.source),
        ] {
            if let Some(v) = v {
                sql.push_arg(&format!(" AND {col} = {{}}"), v.clone())?;
            }
        }
        push_range(&mut sql, "started_at", filter.from, filter.to)?;
        let order = Newest {
            col: "started_at",
            key: |t: &ToolInvocation| Cursor {
                at: t.started_at.millis(),
                id: t.id.clone(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, tool_from_row)
            .await
    }

    /// A platform secret, created with 32 random bytes the first time it is asked for.
    /// Every instance sharing the database gets the same value.
    pub async fn platform_secret(&self, name: &str) -> Result<Secret, StoreError> {
        let purpose = crate::secrets::platform_purpose(name);
        let owner = crate::secrets::Owner::Platform;
        let fresh = self.seal(owner, &purpose, &random_token(43))?;
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query(
            "INSERT INTO platform_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        let value: String =
            sqlx::query_scalar("SELECT value FROM platform_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        self.unseal(owner, &purpose, &value)
    }
}
