//! The call lifecycle in the database: stream claim, status callbacks merged forward-only,
//! exactly-once finalization, latency figures, and transcript corrections after barge-in.

use crate::conversations::{call_from_row, insert_call, insert_conversation, CALL_COLUMNS};
use crate::rows::{col, to_json};
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::call::{advance, disposition, is_terminal, EndReason};
use switchboard_domain::entities::{Call, NewCall, NewConversation};
use switchboard_domain::ids::{CallId, MessageId, OrgId};
use switchboard_domain::transfer::TransferStatus;
use switchboard_domain::values::CallStatus;
use switchboard_domain::Timestamp;

/// One Twilio status callback, parsed.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// `CallStatus`.
    pub status: CallStatus,
    /// `SequenceNumber`, when sent.
    pub sequence: Option<i64>,
    /// `CallDuration` in seconds (terminal callbacks only).
    pub duration_seconds: Option<i64>,
    /// `RecordingUrl`, when recording was on.
    pub recording_url: Option<String>,
    /// When it was received.
    pub at: Timestamp,
}

/// How a call ended, as decided by the call session.
#[derive(Debug, Clone)]
pub struct CallEnd {
    /// Why.
    pub reason: EndReason,
    /// Detail for failures.
    pub error: Option<String>,
    /// When.
    pub at: Timestamp,
}

impl Store {
    /// Creates the conversation and the call record of an incoming call in one transaction
    /// (`call.conversation_id` is replaced by the new conversation's id).
    pub async fn start_call(
        &self,
        org: &OrgId,
        conversation: NewConversation,
        call: NewCall,
    ) -> Result<Call, StoreError> {
        self.start_call_within(org, conversation, call, None)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an uncapped call was refused".into()))
    }

    /// [`Store::start_call`] unless the organization already has `max_live` calls under way
    /// (placed or answered, not ended; on every instance): then nothing is written and the
    /// answer is `None`. Calls of one organization are admitted one at a time (its row is
    /// locked), so two at once cannot both take the last place. A webhook Twilio retries for
    /// a call already admitted does not count against itself.
    pub async fn start_call_within(
        &self,
        org: &OrgId,
        conversation: NewConversation,
        mut call: NewCall,
        max_live: Option<i64>,
    ) -> Result<Option<Call>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        if let Some(max) = max_live {
            self.lock_org(&mut tx, org).await?;
            let live: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM calls WHERE org_id = $1 AND ended_at IS NULL \
                 AND status <> 'queued' AND call_sid <> $2",
            )
            .bind(org.as_str())
            .bind(&call.call_sid)
            .fetch_one(&mut *tx)
            .await?;
            if live >= max {
                tx.commit().await?;
                return Ok(None);
            }
        }
        let conv = insert_conversation(&mut tx, org, conversation).await?;
        call.conversation_id = conv.id;
        let call = insert_call(&mut tx, org, call).await?;
        let ev = crate::outbox::call_event("call.started", &call);
        crate::outbox::emit(&mut tx, org, &[ev], call.started_at).await?;
        self.commit_events(tx).await?;
        Ok(Some(call))
    }

    /// Finds which organization a CallSid belongs to (a status callback names only the sid).
    /// Runs in the narrow look-up scope.
    pub async fn find_call_by_sid(
        &self,
        call_sid: &str,
    ) -> Result<Option<(OrgId, CallId)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_find_call_by_sid($1)",
            "SELECT org_id, id FROM calls WHERE call_sid = $1",
        ))
        .bind(call_sid)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok((
                OrgId::from_db(col(&r, "org_id")?),
                CallId::from_db(col(&r, "id")?),
            ))
        })
        .transpose()
    }

    /// Claims the call's media stream for the call task of `instance`: succeeds once, for a
    /// call that has not ended. Marks the call answered and in progress. A stream that names
    /// another CallSid than the call's (`call_sid`, empty when the stream named none) is not
    /// that call's: `Conflict`, and nothing is claimed.
    pub async fn claim_call_stream(
        &self,
        org: &OrgId,
        call: &CallId,
        call_sid: &str,
        stream_sid: &str,
        instance: &str,
        at: Timestamp,
    ) -> Result<Option<Call>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let Some(current) = fetch_call(&mut tx, org, call, self.for_update()).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        if !call_sid.is_empty() && current.call_sid != call_sid {
            tx.commit().await?;
            return Err(StoreError::Conflict(format!(
                "the stream names CallSid {call_sid}, not the call's"
            )));
        }
        let status = advance(current.status, CallStatus::InProgress);
        let done = sqlx::query(
            "UPDATE calls SET stream_sid = $1, status = $2, answered_at = COALESCE(answered_at, $3), \
             instance_id = $4 WHERE org_id = $5 AND id = $6 AND stream_sid IS NULL AND ended_at IS NULL",
        )
        .bind(stream_sid)
        .bind(status.as_str())
        .bind(at.millis())
        .bind(instance)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Nothing written: commit so the row lock is released now.
            tx.commit().await?;
            return Ok(None);
        }
        let mut updated = fetch_call(&mut tx, org, call, "").await?;
        // A caller back from a failed transfer has reached the agent again.
        if let Some(t) = updated
            .as_mut()
            .and_then(|c| c.transfer.as_mut())
            .filter(|t| t.status == TransferStatus::Failed && !t.resumed)
        {
            t.resumed = true;
            crate::transfers::write_transfer(&mut tx, org, call, t).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Gives up the call's media stream `stream_sid` while its task stays (Twilio is about to
    /// connect a new stream to the call, which claims it like the first). `false` when the
    /// call has ended or holds another stream.
    pub async fn release_call_stream(
        &self,
        org: &OrgId,
        call: &CallId,
        stream_sid: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE calls SET stream_sid = NULL \
             WHERE org_id = $1 AND id = $2 AND stream_sid = $3 AND ended_at IS NULL",
        )
        .bind(org.as_str())
        .bind(call.as_str())
        .bind(stream_sid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether some task holds the call's media stream now.
    pub async fn call_stream_claimed(
        &self,
        org: &OrgId,
        call: &CallId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let claimed = stream_claimed(&mut tx, org, call).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Merges a status callback: the status only moves forward, and duration and recording are
    /// kept whenever they come. A terminal status finalizes the call if nothing else did,
    /// unless a call task owns the call (its media stream was claimed): that task finalizes
    /// it once the transcript is written, so analysis, `call.ended` and the e-mail see all of
    /// it. `terminal_at` is recorded instead, and the recovery sweep finalizes the call if
    /// the task never does.
    pub async fn apply_call_status(
        &self,
        org: &OrgId,
        call: &CallId,
        report: &StatusReport,
    ) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch_call(&mut tx, org, call, self.for_update())
            .await?
            .ok_or(StoreError::NotFound)?;
        let status = advance(current.status, report.status);
        let answered = (report.status == CallStatus::InProgress && current.answered_at.is_none())
            .then_some(report.at.millis());
        sqlx::query(
            "UPDATE calls SET status = $1, answered_at = COALESCE(answered_at, $2), \
             duration_seconds = COALESCE($3, duration_seconds), \
             recording_url = COALESCE($4, recording_url), \
             status_seq = CASE WHEN status_seq IS NULL OR status_seq < $5 THEN $6 ELSE status_seq END \
             WHERE org_id = $7 AND id = $8",
        )
        .bind(status.as_str())
        .bind(answered)
        .bind(report.duration_seconds)
        .bind(report.recording_url.clone())
        .bind(report.sequence.unwrap_or(-1))
        .bind(report.sequence)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        // A call task owns the call, or Twilio is dialling its transfer: the `<Dial
        // action>` callback says how it ended (the sweep finalizes it if that never comes).
        let owned = current.ended_at.is_none()
            && (crate::transfers::in_flight(&current)
                || stream_claimed(&mut tx, org, call).await?);
        if owned && is_terminal(report.status) {
            sqlx::query(
                "UPDATE calls SET terminal_at = COALESCE(terminal_at, $1) WHERE org_id = $2 AND id = $3",
            )
            .bind(report.at.millis())
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        } else if current.ended_at.is_none() && is_terminal(report.status) {
            if let Some(reason) = EndReason::from_twilio(report.status) {
                // A caller whose transfer failed and who never reached the agent again: the
                // new stream did not connect.
                let lost = current.transfer.as_ref().filter(|t| {
                    t.status == TransferStatus::Failed
                        && !t.resumed
                        && t.outcome.as_deref() != Some("canceled")
                });
                let end = match lost {
                    Some(t) => CallEnd {
                        reason: EndReason::StreamClosed,
                        error: Some(format!(
                            "the caller was not reconnected to the agent after the transfer to {} ({})",
                            t.target,
                            t.outcome.as_deref().unwrap_or("failed")
                        )),
                        at: report.at,
                    },
                    None => CallEnd {
                        reason,
                        error: None,
                        at: report.at,
                    },
                };
                let wait = self.email_wait().load(std::sync::atomic::Ordering::Relaxed);
                finalize(&mut tx, org, &current, &end, report.status, wait).await?;
            }
        }
        let updated = fetch_call(&mut tx, org, call, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        self.commit_events(tx).await?;
        Ok(updated)
    }

    /// Finalizes a call exactly once. Returns `false` when it was already finalized (by a
    /// status callback or an earlier path), in which case nothing changes.
    pub async fn finalize_call(
        &self,
        org: &OrgId,
        call: &CallId,
        end: &CallEnd,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch_call(&mut tx, org, call, self.for_update())
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.ended_at.is_some() {
            // Nothing written: commit so the row lock is released now.
            tx.commit().await?;
            return Ok(false);
        }
        let wait = self.email_wait().load(std::sync::atomic::Ordering::Relaxed);
        finalize(&mut tx, org, &current, end, end.reason.final_status(), wait).await?;
        self.commit_events(tx).await?;
        Ok(true)
    }

    /// Stores the per-turn latency figures of a call.
    pub async fn set_call_latencies(
        &self,
        org: &OrgId,
        call: &CallId,
        latencies_ms: &[i64],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("UPDATE calls SET turn_latencies_ms = $1 WHERE org_id = $2 AND id = $3")
            .bind(to_json(&latencies_ms)?)
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a live call passed from one agent to another (`call.handoff` follows,
    /// with the call as it is now and the handoff).
    pub async fn record_call_handoff(
        &self,
        org: &OrgId,
        call: &CallId,
        handoff: &switchboard_domain::entities::CallHandoff,
    ) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut current = fetch_call(&mut tx, org, call, self.for_update())
            .await?
            .ok_or(StoreError::NotFound)?;
        current.handoffs.push(handoff.clone());
        current.agents.push(handoff.to_agent_id.clone());
        sqlx::query("UPDATE calls SET handoffs = $1 WHERE org_id = $2 AND id = $3")
            .bind(to_json(&current.handoffs)?)
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        let mut ev = crate::outbox::call_event("call.handoff", &current);
        ev.data["handoff"] =
            serde_json::to_value(handoff).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        crate::outbox::emit(&mut tx, org, &[ev], handoff.at).await?;
        self.commit_events(tx).await?;
        Ok(current)
    }

    /// Replaces a transcript item's content (an agent turn cut short by the caller).
    pub async fn update_message_content(
        &self,
        org: &OrgId,
        id: &MessageId,
        content: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query("UPDATE messages SET content = $1 WHERE org_id = $2 AND id = $3")
            .bind(to_json(content)?)
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Whether a call task claimed the call's media stream.
async fn stream_claimed(tx: &mut crate::Tx, org: &OrgId, id: &CallId) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM calls WHERE org_id = $1 AND id = $2 AND stream_sid IS NOT NULL",
    )
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

pub(crate) async fn fetch_call(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &CallId,
    lock: &str,
) -> Result<Option<Call>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 AND id = $2{lock}"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(call_from_row).transpose()
}

/// Writes the end of a call and closes its conversation (inside the caller's transaction).
async fn finalize(
    tx: &mut crate::Tx,
    org: &OrgId,
    current: &Call,
    end: &CallEnd,
    status: CallStatus,
    email_wait_ms: i64,
) -> Result<(), StoreError> {
    // A machine took an outbound call, or the API hung it up: that, not the stream's end,
    // is how it ended.
    let row = sqlx::query(
        "SELECT voicemail_outcome, hangup_requested_at FROM calls WHERE org_id = $1 AND id = $2",
    )
    .bind(org.as_str())
    .bind(current.id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let outcome: Option<String> = col(&row, "voicemail_outcome")?;
    let hung_up: Option<i64> = col(&row, "hangup_requested_at")?;
    let voicemail = match (outcome.as_deref(), hung_up) {
        (Some("left"), _) => Some(EndReason::VoicemailLeft),
        (Some(_), _) => Some(EndReason::VoicemailHungUp),
        (None, Some(_)) => Some(EndReason::HungUpByApi),
        (None, None) => None,
    }
    .filter(|_| {
        matches!(
            end.reason,
            EndReason::CallerHungUp | EndReason::StreamClosed | EndReason::AgentEnded
        )
    });
    let (reason, status) = match voicemail {
        Some(r) => (r, r.final_status()),
        None => (end.reason, status),
    };
    let disposition_text = match voicemail {
        Some(r) if r != EndReason::HungUpByApi => r.as_str(),
        _ => disposition(status),
    };
    // Our own clock from answer to end; a later Twilio `CallDuration` replaces it.
    let since = current.answered_at.unwrap_or(current.started_at);
    let duration = (end.at.millis() - since.millis()).max(0) / 1000;
    sqlx::query(
        "UPDATE calls SET status = $1, ended_at = $2, end_reason = $3, disposition = $4, \
         error = $5, duration_seconds = COALESCE(duration_seconds, $6) \
         WHERE org_id = $7 AND id = $8 AND ended_at IS NULL",
    )
    .bind(status.as_str())
    .bind(end.at.millis())
    .bind(reason.as_str())
    .bind(disposition_text)
    .bind(end.error.clone())
    .bind(duration)
    .bind(org.as_str())
    .bind(current.id.as_str())
    .execute(&mut **tx)
    .await?;
    let conv_status = if status == CallStatus::Failed {
        "failed"
    } else {
        "closed"
    };
    sqlx::query(
        "UPDATE conversations SET status = $1, ended_at = COALESCE(ended_at, $2) \
         WHERE org_id = $3 AND id = $4",
    )
    .bind(conv_status)
    .bind(end.at.millis())
    .bind(org.as_str())
    .bind(current.conversation_id.as_str())
    .execute(&mut **tx)
    .await?;
    // `call.ended` carries the row as finalized: final status, duration and end reason.
    let ended = fetch_call(tx, org, &current.id, "")
        .await?
        .ok_or(StoreError::NotFound)?;
    // A campaign's recipient learns its outcome in the same transaction: retried or done.
    crate::campaigns::call_ended(tx, org, &ended, end.at).await?;
    crate::outbox::call_finalized(tx, org, &ended, end.at, email_wait_ms).await
}
