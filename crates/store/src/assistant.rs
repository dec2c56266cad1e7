//! The operator assistant's sessions, messages and proposed actions. A session belongs to one
//! person (`principal`: `user:<id>` or `api_key:<id>`) in one organization; the key a client
//! chose for it only names it within that pair. Deciding an action is one conditional update,
//! so it happens once however many confirmations race.

use crate::rows::{col, json, to_json, ts, ts_opt};
use crate::{Access, Scope, Store, StoreError};
use serde_json::Value;
use sqlx::any::AnyRow;
use switchboard_domain::assistant::{ActionStatus, AssistantAction, ACTION_TTL_MS};
use switchboard_domain::ids::{random_token, OrgId};
use switchboard_domain::team::Actor;
use switchboard_domain::Timestamp;

/// A session of one person with the assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantSession {
    /// Id (`asst_...`).
    pub id: String,
    /// The key the client named it by.
    pub key: String,
    /// Its first words.
    pub title: String,
    /// Messages the person sent so far.
    pub turns: i64,
    /// Started.
    pub created_at: Timestamp,
    /// Last used.
    pub updated_at: Timestamp,
}

/// A proposed action to store.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// The session.
    pub session_id: String,
    /// Who it is proposed to.
    pub principal: String,
    /// The tool that would run.
    pub tool: String,
    /// Its arguments, as they will be run.
    pub arguments: Value,
    /// What will happen.
    pub summary: String,
    /// The details shown.
    pub preview: Value,
    /// What it would change, as of the preview (compared again at confirmation).
    pub fingerprint: String,
    /// The session's turn it was proposed in.
    pub turn: i64,
}

/// A stored action with what deciding it needs.
#[derive(Debug, Clone)]
pub struct StoredAction {
    /// The action as shown.
    pub action: AssistantAction,
    /// Its session.
    pub session_id: String,
    /// Who it was proposed to.
    pub principal: String,
    /// Its arguments.
    pub arguments: Value,
    /// What it would change, as of the preview.
    pub fingerprint: String,
    /// The turn it was proposed in.
    pub turn: i64,
}

const SESSION_COLUMNS: &str = "id, session_key, title, turns, created_at, updated_at";
const ACTION_COLUMNS: &str = "id, session_id, principal, tool, arguments, summary, preview, \
    fingerprint, status, turn, created_at, expires_at, decided_at, result";

fn session_from_row(row: &AnyRow) -> Result<AssistantSession, StoreError> {
    Ok(AssistantSession {
        id: col(row, "id")?,
        key: col(row, "session_key")?,
        title: col(row, "title")?,
        turns: col(row, "turns")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn action_from_row(row: &AnyRow, now: Timestamp) -> Result<StoredAction, StoreError> {
    let expires_at = ts(row, "expires_at")?;
    let status: String = col(row, "status")?;
    let result: Option<String> = col(row, "result")?;
    Ok(StoredAction {
        action: AssistantAction {
            id: col(row, "id")?,
            tool: col(row, "tool")?,
            summary: col(row, "summary")?,
            preview: json(row, "preview")?,
            status: ActionStatus::read(&status, expires_at, now)
                .ok_or_else(|| StoreError::Corrupt(format!("action status {status}")))?,
            created_at: ts(row, "created_at")?,
            expires_at,
            decided_at: ts_opt(row, "decided_at")?,
            result: result
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("action result: {e}")))?,
        },
        session_id: col(row, "session_id")?,
        principal: col(row, "principal")?,
        arguments: json(row, "arguments")?,
        fingerprint: col(row, "fingerprint")?,
        turn: col(row, "turn")?,
    })
}

impl Store {
    /// The person's session named `key`, started now (titled `title`) when new.
    pub async fn open_assistant_session(
        &self,
        org: &OrgId,
        principal: &str,
        key: &str,
        title: &str,
        now: Timestamp,
    ) -> Result<AssistantSession, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let select = format!(
            "SELECT {SESSION_COLUMNS} FROM assistant_sessions \
             WHERE org_id = $1 AND principal = $2 AND session_key = $3"
        );
        let found = sqlx::query(&select)
            .bind(org.as_str())
            .bind(principal)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let row = match found {
            Some(r) => r,
            None => {
                // Two first messages of one session at once: the second finds the first's.
                sqlx::query(
                    "INSERT INTO assistant_sessions (id, org_id, principal, session_key, title, \
                     turns, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6) \
                     ON CONFLICT (org_id, principal, session_key) DO NOTHING",
                )
                .bind(format!("asst_{}", random_token(24)))
                .bind(org.as_str())
                .bind(principal)
                .bind(key)
                .bind(title)
                .bind(now.millis())
                .execute(&mut *tx)
                .await?;
                sqlx::query(&select)
                    .bind(org.as_str())
                    .bind(principal)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        session_from_row(&row)
    }

    /// The person's session named `key`.
    pub async fn get_assistant_session(
        &self,
        org: &OrgId,
        principal: &str,
        key: &str,
    ) -> Result<AssistantSession, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM assistant_sessions \
             WHERE org_id = $1 AND principal = $2 AND session_key = $3"
        ))
        .bind(org.as_str())
        .bind(principal)
        .bind(key)
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        session_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    /// The person's sessions, most recently used first.
    pub async fn list_assistant_sessions(
        &self,
        org: &OrgId,
        principal: &str,
        limit: u32,
    ) -> Result<Vec<AssistantSession>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM assistant_sessions WHERE org_id = $1 AND principal = $2 \
             ORDER BY updated_at DESC, id LIMIT $3"
        ))
        .bind(org.as_str())
        .bind(principal)
        .bind(i64::from(limit.clamp(1, 200)))
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter().map(session_from_row).collect()
    }

    /// A session's messages as the chat model reads them, oldest first, with their turn.
    pub async fn assistant_messages(
        &self,
        org: &OrgId,
        session_id: &str,
    ) -> Result<Vec<(i64, Value)>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(
            "SELECT turn, message FROM assistant_messages WHERE org_id = $1 AND session_id = $2 \
             ORDER BY id",
        )
        .bind(org.as_str())
        .bind(session_id)
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter()
            .map(|row| Ok((col(row, "turn")?, json(row, "message")?)))
            .collect()
    }

    /// Appends one turn's messages (the person's, the model's, the tools') and counts it.
    pub async fn append_assistant_turn(
        &self,
        org: &OrgId,
        session_id: &str,
        turn: i64,
        messages: &[Value],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        for m in messages {
            sqlx::query(
                "INSERT INTO assistant_messages (org_id, session_id, turn, message, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(org.as_str())
            .bind(session_id)
            .bind(turn)
            .bind(to_json(m)?)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        let n = sqlx::query(
            "UPDATE assistant_sessions SET turns = $1, updated_at = $2 \
             WHERE org_id = $3 AND id = $4",
        )
        .bind(turn)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a proposed action, pending for [`ACTION_TTL_MS`], with its audit line.
    pub async fn create_assistant_action(
        &self,
        org: &OrgId,
        actor: &Actor,
        input: &NewAction,
        now: Timestamp,
    ) -> Result<AssistantAction, StoreError> {
        let id = format!("act_{}", random_token(24));
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "INSERT INTO assistant_actions (id, org_id, session_id, principal, tool, arguments, \
             summary, preview, fingerprint, status, turn, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12)",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(input.session_id.as_str())
        .bind(input.principal.as_str())
        .bind(input.tool.as_str())
        .bind(to_json(&input.arguments)?)
        .bind(input.summary.as_str())
        .bind(to_json(&input.preview)?)
        .bind(input.fingerprint.as_str())
        .bind(input.turn)
        .bind(now.millis())
        .bind(now.millis() + ACTION_TTL_MS)
        .execute(&mut *tx)
        .await?;
        crate::audit::audit(
            &mut tx,
            org,
            actor,
            "assistant.preview",
            &id,
            Some(&format!("{}: {}", input.tool, input.summary)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(AssistantAction {
            id,
            tool: input.tool.clone(),
            summary: input.summary.clone(),
            preview: input.preview.clone(),
            status: ActionStatus::Pending,
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + ACTION_TTL_MS),
            decided_at: None,
            result: None,
        })
    }

    /// One action of the organization.
    pub async fn get_assistant_action(
        &self,
        org: &OrgId,
        id: &str,
        now: Timestamp,
    ) -> Result<StoredAction, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM assistant_actions WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id)
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        action_from_row(&row.ok_or(StoreError::NotFound)?, now)
    }

    /// A session's actions, oldest first.
    pub async fn session_actions(
        &self,
        org: &OrgId,
        session_id: &str,
        now: Timestamp,
    ) -> Result<Vec<AssistantAction>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM assistant_actions WHERE org_id = $1 AND session_id = $2 \
             ORDER BY created_at, id"
        ))
        .bind(org.as_str())
        .bind(session_id)
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter()
            .map(|row| action_from_row(row, now).map(|a| a.action))
            .collect()
    }

    /// Moves a pending, unexpired action proposed to `principal` to `to` (`running`,
    /// `canceled` or `stale`), with its audit line; `false` when it was no longer pending
    /// (another decision won).
    pub async fn decide_assistant_action(
        &self,
        org: &OrgId,
        id: &str,
        principal: &str,
        to: ActionStatus,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let n = sqlx::query(
            "UPDATE assistant_actions SET status = $1, decided_at = $2 \
             WHERE org_id = $3 AND id = $4 AND principal = $5 AND status = 'pending' \
             AND expires_at > $2",
        )
        .bind(to.as_str())
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id)
        .bind(principal)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let what = match to {
            ActionStatus::Running => "assistant.confirm",
            ActionStatus::Canceled => "assistant.cancel",
            _ => "assistant.stale",
        };
        crate::audit::audit(&mut tx, org, actor, what, id, None, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records how carrying out a confirmed action ended (`done` or `failed`), with its
    /// audit line.
    pub async fn finish_assistant_action(
        &self,
        org: &OrgId,
        id: &str,
        ok: bool,
        result: &Value,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE assistant_actions SET status = $1, result = $2 \
             WHERE org_id = $3 AND id = $4 AND status = 'running'",
        )
        .bind(if ok { "done" } else { "failed" })
        .bind(to_json(result)?)
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = if ok {
            None
        } else {
            result["error"]["message"].as_str().map(str::to_owned)
        };
        crate::audit::audit(
            &mut tx,
            org,
            actor,
            if ok {
                "assistant.execute"
            } else {
                "assistant.execute_failed"
            },
            id,
            detail.as_deref(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
