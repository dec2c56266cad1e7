//! Staff actions on live calls: recorded when asked (addressed to the instance holding the
//! call), delivered to that instance (at once when it is this one, else by a PostgreSQL
//! notification with a polled fallback), acknowledged with the call's result.

use crate::rows::{col, json, json_opt, to_json, ts, ts_opt};
use crate::{Access, Backend, Scope, Store, StoreError};
use serde_json::Value;
use sqlx::any::AnyRow;
use switchboard_domain::call_action::CallAction;
use switchboard_domain::ids::{CallActionId, CallId, OrgId};
use switchboard_domain::Timestamp;

/// The PostgreSQL notification channel of new actions; the payload is the instance id
/// addressed.
pub const CHANNEL: &str = "switchboard_call_actions";
/// The channel of acknowledged actions; the payload is the action id.
pub const DONE_CHANNEL: &str = "switchboard_call_actions_done";

/// What woke a listener.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionNews {
    /// An action was addressed to this instance (or the notifications were interrupted:
    /// look anyway).
    Addressed,
    /// An action was carried out somewhere.
    Done(CallActionId),
}

const COLUMNS: &str = "id, call_id, request, actor, status, result, created_at, acknowledged_at";

fn action_from_row(row: &AnyRow) -> Result<CallAction, StoreError> {
    Ok(CallAction {
        id: CallActionId::from_db(col(row, "id")?),
        call_id: CallId::from_db(col(row, "call_id")?),
        request: json(row, "request")?,
        actor: col(row, "actor")?,
        status: col(row, "status")?,
        result: json_opt(row, "result")?,
        created_at: ts(row, "created_at")?,
        acknowledged_at: ts_opt(row, "acknowledged_at")?,
    })
}

/// An action waiting for delivery to this instance.
#[derive(Debug, Clone)]
pub struct UndeliveredAction {
    /// Its organization.
    pub org: OrgId,
    /// Its id.
    pub id: CallActionId,
    /// The call.
    pub call_id: CallId,
}

/// Wakes an instance when an action is addressed to it: a PostgreSQL `LISTEN` (SQLite has
/// one instance, which delivers its actions itself, so this never fires there).
pub struct ActionSignal {
    listener: Option<sqlx::postgres::PgListener>,
}

impl std::fmt::Debug for ActionSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionSignal")
            .field("listening", &self.listener.is_some())
            .finish()
    }
}

impl ActionSignal {
    /// The next notification for `instance` (actions addressed to others are skipped).
    /// Errors (a lost connection) are logged and the listener reconnects itself; callers
    /// poll as well.
    pub async fn next(&mut self, instance: &str) -> ActionNews {
        let Some(l) = self.listener.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match l.recv().await {
                Ok(n) if n.channel() == DONE_CHANNEL => {
                    if let Some(id) = CallActionId::parse(n.payload()) {
                        return ActionNews::Done(id);
                    }
                }
                Ok(n) if n.payload() == instance => return ActionNews::Addressed,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "call action notifications interrupted; polling meanwhile");
                    return ActionNews::Addressed;
                }
            }
        }
    }
}

impl Store {
    /// Records an action on a live call, addressed to the instance holding it, and wakes
    /// that instance. `NotFound` for an unknown call (or another organization's);
    /// `Conflict` when the call is not live. Answers the action and the instance.
    pub async fn create_call_action(
        &self,
        org: &OrgId,
        call: &CallId,
        request: &Value,
        actor: &str,
        now: Timestamp,
    ) -> Result<(CallAction, String), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(
            "SELECT ended_at, stream_sid, instance_id FROM calls WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let ended: Option<i64> = col(&row, "ended_at")?;
        let stream: Option<String> = col(&row, "stream_sid")?;
        let instance: Option<String> = col(&row, "instance_id")?;
        let (None, Some(_), Some(instance)) = (ended, stream, instance) else {
            tx.commit().await?;
            return Err(StoreError::Conflict(
                "the call is not live: it has ended or its audio is not connected".into(),
            ));
        };
        let action = CallAction {
            id: CallActionId::generate(),
            call_id: call.clone(),
            request: request.clone(),
            actor: actor.to_owned(),
            status: "pending".into(),
            result: None,
            created_at: now,
            acknowledged_at: None,
        };
        sqlx::query(
            "INSERT INTO call_actions (id, org_id, call_id, request, actor, instance_id, status, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
        )
        .bind(action.id.as_str())
        .bind(org.as_str())
        .bind(call.as_str())
        .bind(to_json(request)?)
        .bind(actor)
        .bind(instance.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        if self.backend() == Backend::Postgres {
            // Delivered at commit.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(instance.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((action, instance))
    }

    /// One action of the organization.
    pub async fn get_call_action(
        &self,
        org: &OrgId,
        id: &CallActionId,
    ) -> Result<CallAction, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM call_actions WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_optional(r.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
        r.finish().await?;
        action_from_row(&row)
    }

    /// A call's actions, oldest first.
    pub async fn list_call_actions(
        &self,
        org: &OrgId,
        call: &CallId,
    ) -> Result<Vec<CallAction>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM call_actions WHERE org_id = $1 AND call_id = $2 \
             ORDER BY created_at, id LIMIT 500"
        ))
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter().map(action_from_row).collect()
    }

    /// Actions addressed to `instance` and not delivered yet, oldest first.
    pub async fn undelivered_call_actions(
        &self,
        instance: &str,
    ) -> Result<Vec<UndeliveredAction>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_undelivered_call_actions($1)",
            "SELECT org_id, id, call_id FROM call_actions \
             WHERE instance_id = $1 AND delivered_at IS NULL ORDER BY created_at, id LIMIT 200",
        ))
        .bind(instance)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(UndeliveredAction {
                    org: OrgId::from_db(col(r, "org_id")?),
                    id: CallActionId::from_db(col(r, "id")?),
                    call_id: CallId::from_db(col(r, "call_id")?),
                })
            })
            .collect()
    }

    /// Marks an action delivered (once): `false` when another delivery got it first.
    pub async fn mark_call_action_delivered(
        &self,
        org: &OrgId,
        id: &CallActionId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let n = sqlx::query(
            "UPDATE call_actions SET delivered_at = $1 \
             WHERE org_id = $2 AND id = $3 AND delivered_at IS NULL",
        )
        .bind(at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Records what the call did with an action (`done` or `failed`).
    pub async fn finish_call_action(
        &self,
        org: &OrgId,
        id: &CallActionId,
        ok: bool,
        result: &Value,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE call_actions SET status = $1, result = $2, acknowledged_at = $3, \
             delivered_at = COALESCE(delivered_at, $3) WHERE org_id = $4 AND id = $5",
        )
        .bind(if ok { "done" } else { "failed" })
        .bind(to_json(result)?)
        .bind(at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if self.backend() == Backend::Postgres {
            // The requester may be waiting on another instance.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(DONE_CHANNEL)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A listener for actions addressed to instances (PostgreSQL; inert on SQLite).
    pub async fn call_action_signal(&self) -> Result<ActionSignal, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(ActionSignal { listener: None });
        }
        let mut l = sqlx::postgres::PgListener::connect(&self.inner.url).await?;
        l.listen_all([CHANNEL, DONE_CHANNEL]).await?;
        Ok(ActionSignal { listener: Some(l) })
    }
}
