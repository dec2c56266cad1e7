//! Scheduled text messages: the request and its durable send job, committed together; a
//! send that starts is recorded first, so a send cut short by a crash is never repeated.

use crate::jobs::{insert_job, NewJob};
use crate::rows::{col, json, parsed, to_json, ts};
use crate::{Access, Scope, Store, StoreError};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use switchboard_domain::entities::ScheduledMessage;
use switchboard_domain::ids::{ConversationId, MessageId, OrgId};
use switchboard_domain::values::Channel;
use switchboard_domain::Timestamp;

/// The job that sends a scheduled message.
pub const SCHEDULED_JOB: &str = "messaging.scheduled";

const COLUMNS: &str = "id, channel, contact_number, request, send_at, status, conversation_id, \
    message_id, error, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<ScheduledMessage, StoreError> {
    Ok(ScheduledMessage {
        id: col(row, "id")?,
        channel: parsed(row, "channel", Channel::parse)?,
        contact_number: col(row, "contact_number")?,
        request: json(row, "request")?,
        send_at: ts(row, "send_at")?,
        status: col(row, "status")?,
        conversation_id: col::<Option<String>>(row, "conversation_id")?
            .map(ConversationId::from_db),
        message_id: col::<Option<String>>(row, "message_id")?.map(MessageId::from_db),
        error: col(row, "error")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Where a send job stands for its message.
#[derive(Debug, Clone)]
pub enum SendStart {
    /// Send now (the start is recorded).
    Send(ScheduledMessage),
    /// A send started before and its outcome is unknown.
    Unknown(ScheduledMessage),
    /// Nothing to do (sent, failed, cancelled).
    Done,
}

impl Store {
    /// Stores a message to send at `send_at` with its send job.
    pub async fn schedule_message(
        &self,
        org: &OrgId,
        channel: Channel,
        contact_number: &str,
        request: &Value,
        send_at: Timestamp,
        now: Timestamp,
    ) -> Result<ScheduledMessage, StoreError> {
        let id = format!("sch_{}", switchboard_domain::ids::random_token(20));
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO scheduled_messages (id, org_id, channel, contact_number, request, send_at, \
             status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8)",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(channel.as_str())
        .bind(contact_number)
        .bind(to_json(request)?)
        .bind(send_at.millis())
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        let job = NewJob {
            kind: SCHEDULED_JOB.into(),
            payload: json!({"scheduled_id": id}),
            run_at: send_at,
            lease: None,
            subject: Some(id.clone()),
        };
        insert_job(&mut tx, org, &job, now).await?;
        tx.commit().await?;
        Ok(ScheduledMessage {
            id,
            channel,
            contact_number: contact_number.to_owned(),
            request: request.clone(),
            send_at,
            status: "scheduled".into(),
            conversation_id: None,
            message_id: None,
            error: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// One scheduled message.
    pub async fn get_scheduled_message(
        &self,
        org: &OrgId,
        id: &str,
    ) -> Result<ScheduledMessage, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_messages WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref()
            .map(from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Scheduled messages, latest `send_at` first, optionally of one status (at most 200).
    pub async fn list_scheduled_messages(
        &self,
        org: &OrgId,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ScheduledMessage>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let limit = i64::from(limit.clamp(1, 200));
        let rows = match status {
            Some(st) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM scheduled_messages WHERE org_id = $1 AND status = $2 \
                     ORDER BY send_at DESC, id DESC LIMIT $3"
                ))
                .bind(org.as_str())
                .bind(st)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM scheduled_messages WHERE org_id = $1 \
                     ORDER BY send_at DESC, id DESC LIMIT $2"
                ))
                .bind(org.as_str())
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        rows.iter().map(from_row).collect()
    }

    /// Cancels a message not sent yet; `Conflict` once it is sending or done.
    pub async fn cancel_scheduled_message(
        &self,
        org: &OrgId,
        id: &str,
        now: Timestamp,
    ) -> Result<ScheduledMessage, StoreError> {
        let current = self.get_scheduled_message(org, id).await?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE scheduled_messages SET status = 'canceled', updated_at = $1 \
             WHERE org_id = $2 AND id = $3 AND status = 'scheduled'",
        )
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the message is {} and can no longer be cancelled",
                current.status
            )));
        }
        tx.commit().await?;
        self.get_scheduled_message(org, id).await
    }

    /// The send job starts: records it unless a send already started or nothing is left.
    pub async fn begin_scheduled_send(
        &self,
        org: &OrgId,
        id: &str,
        now: Timestamp,
    ) -> Result<SendStart, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_messages WHERE org_id = $1 AND id = $2{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(SendStart::Done);
        };
        let current = from_row(&row)?;
        match current.status.as_str() {
            "scheduled" => {}
            "sending" => return Ok(SendStart::Unknown(current)),
            _ => return Ok(SendStart::Done),
        }
        sqlx::query(
            "UPDATE scheduled_messages SET status = 'sending', updated_at = $1 \
             WHERE org_id = $2 AND id = $3",
        )
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SendStart::Send(current))
    }

    /// Records how a send ended: the conversation and message, or the error.
    pub async fn finish_scheduled_send(
        &self,
        org: &OrgId,
        id: &str,
        outcome: Result<(&ConversationId, &MessageId), &str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (status, conv, msg, error) = match outcome {
            Ok((c, m)) => ("sent", Some(c.to_string()), Some(m.to_string()), None),
            Err(e) => ("failed", None, None, Some(e.to_owned())),
        };
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE scheduled_messages SET status = $1, conversation_id = $2, message_id = $3, \
             error = $4, updated_at = $5 WHERE org_id = $6 AND id = $7",
        )
        .bind(status)
        .bind(conv)
        .bind(msg)
        .bind(error)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
