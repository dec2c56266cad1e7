//! After a conversation: the analysis job and the call e-mail, queued by the transaction
//! that ends the call or closes the conversation; the analysis result stored with its
//! `call.analyzed` event; and the e-mail notifications' records.

use crate::jobs::{insert_job, NewJob};
use crate::outbox::{emit, NewEvent};
use crate::rows::{col, json, ts, ts_opt, Newest, Sql};
use crate::{Access, Scope, Store, StoreError};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use switchboard_domain::entities::{Call, Cursor, Page};
use switchboard_domain::ids::{CallId, ConversationId, EmailId, OrgId};
use switchboard_domain::webhooks::EmailNotification;
use switchboard_domain::Timestamp;

/// The job that analyses a finished call or a closed text conversation.
pub const ANALYSIS_JOB: &str = "analysis.run";
/// The job that sends an e-mail notification.
pub const EMAIL_JOB: &str = "email.send";

/// Queues the analysis of a call (`call` set) or of a text conversation.
pub(crate) async fn queue_analysis(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: Option<&CallId>,
    conversation: &ConversationId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let subject = call
        .map(ToString::to_string)
        .unwrap_or_else(|| conversation.to_string());
    let job = NewJob {
        kind: ANALYSIS_JOB.into(),
        payload: json!({"call_id": call, "conversation_id": conversation}),
        run_at: now,
        lease: None,
        subject: Some(subject),
    };
    insert_job(tx, org, &job, now).await?;
    Ok(())
}

/// Queues the call's e-mail when the organization has recipients and wants call e-mails.
/// It runs after the bounded wait unless the analysis brings it forward.
pub(crate) async fn queue_call_email(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: &Call,
    now: Timestamp,
    wait_ms: i64,
) -> Result<(), StoreError> {
    let settings = crate::settings::read_settings(tx, org).await?;
    if settings.notification_emails.is_empty() || settings.notify_calls == "none" {
        return Ok(());
    }
    let id = EmailId::generate();
    sqlx::query(
        "INSERT INTO email_notifications (id, org_id, call_id, kind, recipients, status, \
         attempts, created_at, updated_at) VALUES ($1, $2, $3, 'call', $4, 'pending', 0, $5, $6)",
    )
    .bind(id.as_str())
    .bind(org.as_str())
    .bind(call.id.as_str())
    .bind(crate::rows::to_json(&settings.notification_emails)?)
    .bind(now.millis())
    .bind(now.millis())
    .execute(&mut **tx)
    .await?;
    let job = NewJob {
        kind: EMAIL_JOB.into(),
        payload: json!({"email_id": id}),
        run_at: Timestamp::from_millis(now.millis() + wait_ms),
        lease: None,
        subject: Some(call.id.to_string()),
    };
    insert_job(tx, org, &job, now).await?;
    Ok(())
}

const EMAIL_COLUMNS: &str = "id, call_id, kind, recipients, subject, status, attempts, \
    last_error, sent_at, created_at";

fn email_from_row(r: &sqlx::any::AnyRow) -> Result<EmailNotification, StoreError> {
    Ok(EmailNotification {
        id: EmailId::from_db(col(r, "id")?),
        call_id: col::<Option<String>>(r, "call_id")?.map(CallId::from_db),
        kind: col(r, "kind")?,
        recipients: json(r, "recipients")?,
        subject: col(r, "subject")?,
        status: col(r, "status")?,
        attempts: col(r, "attempts")?,
        last_error: col(r, "last_error")?,
        sent_at: ts_opt(r, "sent_at")?,
        created_at: ts(r, "created_at")?,
    })
}

impl Store {
    /// How long a call's e-mail waits for its analysis before it goes without one.
    pub fn set_email_analysis_wait(&self, wait: std::time::Duration) {
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
        self.email_wait().store(ms, Ordering::Relaxed);
    }

    /// Stores a call's analysis (or its failure, as `{"status": "failed", ...}`) and writes
    /// `call.analyzed` in the same transaction, then brings the call's e-mail forward.
    /// `call.ended` was written when the call was finalized, before this job existed, so
    /// the analysis can never be delivered before it.
    pub async fn store_call_analysis(
        &self,
        org: &OrgId,
        call: &CallId,
        analysis: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let conv: Option<String> = sqlx::query_scalar(
            "UPDATE calls SET analysis = $1 WHERE org_id = $2 AND id = $3 \
             RETURNING conversation_id",
        )
        .bind(crate::rows::to_json(analysis)?)
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let conv = conv.ok_or(StoreError::NotFound)?;
        let ev = NewEvent::new(
            "call.analyzed",
            conv.clone(),
            json!({"call_id": call, "conversation_id": conv, "analysis": analysis}),
        );
        emit(&mut tx, org, &[ev], now).await?;
        expedite(&mut tx, EMAIL_JOB, call.as_str(), now).await?;
        self.commit_events(tx).await
    }

    /// Stores a closed text conversation's analysis with `conversation.analyzed`.
    pub async fn store_conversation_analysis(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        analysis: &Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done =
            sqlx::query("UPDATE conversations SET analysis = $1 WHERE org_id = $2 AND id = $3")
                .bind(crate::rows::to_json(analysis)?)
                .bind(org.as_str())
                .bind(conversation.as_str())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let ev = NewEvent::new(
            "conversation.analyzed",
            conversation.to_string(),
            json!({"conversation_id": conversation, "analysis": analysis}),
        );
        emit(&mut tx, org, &[ev], now).await?;
        self.commit_events(tx).await
    }

    /// Queues a new analysis of a finished call (`POST /api/v1/calls/{id}/analyze`).
    /// `Conflict` while the call is still going.
    pub async fn request_call_analysis(
        &self,
        org: &OrgId,
        call: &CallId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(
            "SELECT conversation_id, ended_at FROM calls WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if col::<Option<i64>>(&row, "ended_at")?.is_none() {
            return Err(StoreError::Conflict(
                "the call has not ended yet; it is analysed when it ends".into(),
            ));
        }
        let conv = ConversationId::from_db(col(&row, "conversation_id")?);
        queue_analysis(&mut tx, org, Some(call), &conv, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One e-mail notification.
    pub async fn get_email_notification(
        &self,
        org: &OrgId,
        id: &EmailId,
    ) -> Result<EmailNotification, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let email = crate::rows::fetch_scoped(
            &mut tx,
            "email_notifications",
            EMAIL_COLUMNS,
            org,
            id.as_str(),
            "",
            email_from_row,
        )
        .await?;
        tx.commit().await?;
        Ok(email)
    }

    /// How many call e-mails failed for good since `since`, and the last one's error.
    pub async fn email_failures_since(
        &self,
        org: &OrgId,
        since: Timestamp,
    ) -> Result<(i64, Option<String>), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM email_notifications WHERE org_id = $1 AND status = 'failed' \
             AND updated_at >= $2",
        )
        .bind(org.as_str())
        .bind(since.millis())
        .fetch_one(&mut *tx)
        .await?;
        let last: Option<Option<String>> = sqlx::query_scalar(
            "SELECT last_error FROM email_notifications WHERE org_id = $1 AND status = 'failed' \
             AND updated_at >= $2 ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(org.as_str())
        .bind(since.millis())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((n, last.flatten()))
    }

    /// E-mail notifications, newest first, optionally of one call.
    pub async fn list_email_notifications(
        &self,
        org: &OrgId,
        call: Option<&CallId>,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<EmailNotification>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {EMAIL_COLUMNS} FROM email_notifications WHERE "
        ));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(c) = call {
            sql.push_arg(" AND call_id = {}", c.to_string())?;
        }
        let order = Newest {
            col: "created_at",
            key: |e: &EmailNotification| Cursor {
                at: e.created_at.millis(),
                id: e.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, email_from_row)
            .await
    }

    /// Records an e-mail attempt: `sent`, `skipped`, `failed` (final) or `pending` (retry).
    pub async fn record_email(
        &self,
        org: &OrgId,
        id: &EmailId,
        status: &str,
        subject: Option<&str>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let sent = (status == "sent").then_some(now.millis());
        let attempted = i64::from(status != "skipped");
        sqlx::query(
            "UPDATE email_notifications SET status = $1, subject = COALESCE($2, subject), \
             last_error = $3, sent_at = COALESCE($4, sent_at), attempts = attempts + $5, \
             updated_at = $6 WHERE org_id = $7 AND id = $8",
        )
        .bind(status)
        .bind(subject.map(str::to_owned))
        .bind(error.map(str::to_owned))
        .bind(sent)
        .bind(attempted)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Moves pending jobs of `kind` about `subject` to now.
async fn expedite(
    tx: &mut crate::Tx,
    kind: &str,
    subject: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET run_at = $1 WHERE subject = $2 AND kind = $3 AND status = 'pending' \
         AND run_at > $4",
    )
    .bind(now.millis())
    .bind(subject)
    .bind(kind)
    .bind(now.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
