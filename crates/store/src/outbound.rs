//! Outbound calls placed through the API: the call record and its durable dial job in one
//! transaction, idempotent requests, the dial's progress, and cancellation.

use crate::conversations::{call_from_row, insert_call, insert_conversation, CALL_COLUMNS};
use crate::jobs::{insert_job, NewJob};
use crate::rows::{col, to_json};
use crate::{Access, Scope, Store, StoreError};
use serde_json::{json, Value};
use switchboard_domain::entities::{Call, NewCall, NewConversation};
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::values::{CallStatus, Direction};
use switchboard_domain::Timestamp;

/// The job that dials an outbound call.
pub const DIAL_JOB: &str = "voice.dial";

/// The stored `call_sid` of a call not dialled yet (`call_sid` is unique and required): the
/// API shows it as an empty string.
pub(crate) const PENDING_SID: &str = "pending:";

/// An outbound call to place.
#[derive(Debug, Clone)]
pub struct NewOutboundCall {
    /// Its conversation (direction outbound, channel voice, with the variables).
    pub conversation: NewConversation,
    /// Our number.
    pub from_number: String,
    /// The callee.
    pub to_number: String,
    /// Opaque JSON for the caller of the API.
    pub metadata: Option<Value>,
    /// When to dial.
    pub dial_at: Timestamp,
    /// `Idempotency-Key` and a hash of the request body.
    pub idempotency: Option<(String, String)>,
    /// `hangup` or `leave_message` for this call (else the agent's setting).
    pub voicemail_mode: Option<String>,
    /// Whether Twilio records it.
    pub record: bool,
    /// The campaign and recipient it is placed for.
    pub campaign: Option<(String, String)>,
    /// Now.
    pub now: Timestamp,
}

/// What placing a call did.
#[derive(Debug, Clone)]
pub enum Placed {
    /// A new call, queued.
    New(Call),
    /// The same request came before: its call.
    Existing(Call),
}

/// Where a dial job stands for its call.
#[derive(Debug, Clone)]
pub enum DialStart {
    /// Dial now (the start is recorded).
    Dial(Call),
    /// A dial started before and its outcome is unknown (the server stopped mid-request).
    Unknown(Call),
    /// The organization's outbound calls are at their cap: try again when one ends.
    Wait,
    /// Nothing to do: the call was dialled, cancelled or has ended.
    Done,
}

impl Store {
    /// Outbound calls dialled before `dialled_before` that no call task ever claimed and that
    /// have not ended: Twilio's callbacks about them were lost (a restart, a network split).
    /// The recovery sweep asks Twilio where they stand. Look-up scope: read only.
    pub async fn unsettled_outbound_calls(
        &self,
        dialled_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<(OrgId, CallId, String)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_unsettled_outbound_calls($1, $2)",
            "SELECT org_id, id, call_sid FROM calls WHERE direction = 'outbound' \
             AND ended_at IS NULL AND instance_id IS NULL AND call_sid NOT LIKE 'pending:%' \
             AND dial_started_at < $1 ORDER BY dial_started_at LIMIT $2",
        ))
        .bind(dialled_before.millis())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok((
                    OrgId::from_db(col(r, "org_id")?),
                    CallId::from_db(col(r, "id")?),
                    col(r, "call_sid")?,
                ))
            })
            .collect()
    }

    /// Creates the call (status `queued`), its conversation, `call.started` and the dial job in
    /// one transaction. With an idempotency key already used: the same body answers the same
    /// call; another body is a conflict.
    pub async fn place_call(
        &self,
        org: &OrgId,
        input: NewOutboundCall,
    ) -> Result<Placed, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        if let Some((key, hash)) = &input.idempotency {
            let row = sqlx::query(&format!(
                "SELECT {CALL_COLUMNS}, request_hash FROM calls WHERE org_id = $1 AND idempotency_key = $2"
            ))
            .bind(org.as_str())
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = row {
                let stored: Option<String> = col(&r, "request_hash")?;
                if stored.as_deref() != Some(hash.as_str()) {
                    return Err(StoreError::Conflict(
                        "this Idempotency-Key was used with a different request".into(),
                    ));
                }
                return Ok(Placed::Existing(call_from_row(&r)?));
            }
        }
        let call = insert_outbound(&mut tx, org, input).await?;
        self.commit_events(tx).await?;
        Ok(Placed::New(call))
    }

    /// The dial job starts: records when, unless a dial already started (outcome unknown) or
    /// there is nothing left to dial.
    pub async fn begin_dial(
        &self,
        org: &OrgId,
        call: &CallId,
        at: Timestamp,
    ) -> Result<DialStart, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS}, dial_started_at, call_sid AS raw_sid FROM calls \
             WHERE org_id = $1 AND id = $2{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        // Early answers commit (nothing was written) rather than drop the transaction: a
        // dropped one on PostgreSQL keeps its row locks until its connection is reused.
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(DialStart::Done);
        };
        let current = call_from_row(&row)?;
        let raw_sid: String = col(&row, "raw_sid")?;
        if current.ended_at.is_some() || !raw_sid.starts_with(PENDING_SID) {
            tx.commit().await?;
            return Ok(DialStart::Done);
        }
        if col::<Option<i64>>(&row, "dial_started_at")?.is_some() {
            tx.commit().await?;
            return Ok(DialStart::Unknown(current));
        }
        // The cap holds across instances: dial starts of one organization take its row lock
        // in turn (SQLite serialises writers anyway), and a started dial counts until the call
        // ends.
        self.lock_org(&mut tx, org).await?;
        let cap = crate::settings::read_settings(&mut tx, org)
            .await?
            .max_concurrent_outbound_calls;
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE org_id = $1 AND direction = 'outbound' \
             AND ended_at IS NULL AND dial_started_at IS NOT NULL",
        )
        .bind(org.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if busy >= cap {
            tx.commit().await?;
            return Ok(DialStart::Wait);
        }
        sqlx::query("UPDATE calls SET dial_started_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(at.millis())
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DialStart::Dial(current))
    }

    /// The dial request was never sent (Twilio unreachable): a later attempt may send it.
    pub async fn reset_dial(&self, org: &OrgId, call: &CallId) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("UPDATE calls SET dial_started_at = NULL WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Twilio accepted the dial: the call's CallSid and status. Returns whether the call had
    /// already ended here (cancelled while the dial was under way): the caller then ends it at
    /// Twilio too.
    pub async fn set_call_dialed(
        &self,
        org: &OrgId,
        call: &CallId,
        call_sid: &str,
        status: CallStatus,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT status, ended_at FROM calls WHERE org_id = $1 AND id = $2{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let current: String = col(&row, "status")?;
        let ended = col::<Option<i64>>(&row, "ended_at")?.is_some();
        let status = switchboard_domain::call::advance(
            CallStatus::parse(&current).unwrap_or(CallStatus::Queued),
            status,
        );
        sqlx::query(
            "UPDATE calls SET call_sid = $1, status = $2 WHERE org_id = $3 AND id = $4 \
             AND call_sid LIKE 'pending:%'",
        )
        .bind(call_sid)
        .bind(status.as_str())
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Keeps what Twilio said about a failed or refused attempt.
    pub async fn set_call_attempt_codes(
        &self,
        org: &OrgId,
        call: &CallId,
        sip_response_code: Option<i64>,
        twilio_error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE calls SET sip_response_code = COALESCE($1, sip_response_code), \
             twilio_error_code = COALESCE($2, twilio_error_code) WHERE org_id = $3 AND id = $4",
        )
        .bind(sip_response_code)
        .bind(twilio_error_code)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records who answered (Twilio's answering-machine detection) and, for a machine, what
    /// was done (`left` a message, `hung_up`). Returns the call.
    pub async fn set_answered_by(
        &self,
        org: &OrgId,
        call: &CallId,
        answered_by: &str,
        voicemail_outcome: Option<&str>,
    ) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE calls SET answered_by = $1, voicemail_outcome = COALESCE($2, voicemail_outcome) \
             WHERE org_id = $3 AND id = $4",
        )
        .bind(answered_by)
        .bind(voicemail_outcome)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        call_from_row(&row)
    }

    /// The voicemail behaviour asked for when the call was placed, if any.
    pub async fn call_voicemail_mode(
        &self,
        org: &OrgId,
        call: &CallId,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let mode: Option<Option<String>> =
            sqlx::query_scalar("SELECT voicemail_mode FROM calls WHERE org_id = $1 AND id = $2")
                .bind(org.as_str())
                .bind(call.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(mode.flatten())
    }

    /// Notes that the API asked to hang up the live call.
    pub async fn request_hangup(
        &self,
        org: &OrgId,
        call: &CallId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE calls SET hangup_requested_at = COALESCE(hangup_requested_at, $1) \
             WHERE org_id = $2 AND id = $3",
        )
        .bind(at.millis())
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Which organization a call id belongs to (Twilio's requests for an outbound call name
    /// our call id before its CallSid is stored). Runs in the narrow look-up scope.
    pub async fn find_call_org(&self, call: &CallId) -> Result<Option<OrgId>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let org: Option<String> = sqlx::query_scalar(self.lookup(
            "SELECT org_id FROM sb_find_call_org($1)",
            "SELECT org_id FROM calls WHERE id = $1",
        ))
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(org.map(OrgId::from_db))
    }
}

/// Inserts an outbound call in an open transaction: its conversation, the call (`queued`, its
/// sid a placeholder until dialled), the dial job at `dial_at`, and `call.started`.
pub(crate) async fn insert_outbound(
    tx: &mut crate::Tx,
    org: &OrgId,
    input: NewOutboundCall,
) -> Result<Call, StoreError> {
    let conv = insert_conversation(tx, org, input.conversation).await?;
    let call_id = CallId::generate();
    let mut call = insert_call(
        tx,
        org,
        NewCall {
            conversation_id: conv.id,
            call_sid: format!("{PENDING_SID}{call_id}"),
            direction: Direction::Outbound,
            from_number: input.from_number,
            to_number: input.to_number,
            agent_id: conv.agent_id,
            status: CallStatus::Queued,
            started_at: input.now,
        },
    )
    .await?;
    let (key, hash) = input.idempotency.unzip();
    sqlx::query(
        "UPDATE calls SET metadata = $1, dial_at = $2, idempotency_key = $3, request_hash = $4, \
             voicemail_mode = $5, record = $6, campaign_id = $7, campaign_recipient_id = $8 \
             WHERE org_id = $9 AND id = $10",
    )
    .bind(input.metadata.as_ref().map(to_json).transpose()?)
    .bind(input.dial_at.millis())
    .bind(key)
    .bind(hash)
    .bind(input.voicemail_mode.clone())
    .bind(i64::from(input.record))
    .bind(input.campaign.as_ref().map(|c| c.0.clone()))
    .bind(input.campaign.as_ref().map(|c| c.1.clone()))
    .bind(org.as_str())
    .bind(call.id.as_str())
    .execute(&mut **tx)
    .await?;
    call.metadata = input.metadata;
    call.scheduled_at = Some(input.dial_at);
    call.campaign_id = input.campaign.map(|c| c.0);
    call.call_sid = String::new();
    if input.record {
        call.recording = Some(switchboard_domain::entities::CallRecording {
            status: "requested".into(),
            duration_seconds: None,
            channels: None,
            deleted_at: None,
        });
    }
    let job = NewJob {
        kind: DIAL_JOB.into(),
        payload: json!({"call_id": call.id}),
        run_at: input.dial_at,
        lease: None,
        subject: Some(call.id.to_string()),
    };
    insert_job(tx, org, &job, input.now).await?;
    let ev = crate::outbox::call_event("call.started", &call);
    crate::outbox::emit(tx, org, &[ev], input.now).await?;
    Ok(call)
}
