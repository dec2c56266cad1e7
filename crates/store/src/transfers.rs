//! A call's transfer in the database. While Twilio dials the target the call has neither a
//! media stream nor a task: [`Store::start_transfer`] releases both in the same write that
//! records the transfer, and the `<Dial action>` callback settles it
//! ([`Store::settle_transfer`]); a failed transfer brings the caller back on a new stream,
//! which claims the call again like the first one did.

use crate::rows::to_json;
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::entities::Call;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::transfer::{CallTransfer, TransferStatus};
use switchboard_domain::Timestamp;

impl Store {
    /// Records that the call is being transferred and releases its media stream and
    /// instance (the caller is with Twilio's `<Dial>` now); `call.transfer_started` follows.
    /// `Ok(None)` when the call has ended.
    pub async fn start_transfer(
        &self,
        org: &OrgId,
        call: &CallId,
        transfer: &CallTransfer,
    ) -> Result<Option<Call>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE calls SET transfer = $1, stream_sid = NULL, instance_id = NULL \
             WHERE org_id = $2 AND id = $3 AND ended_at IS NULL",
        )
        .bind(to_json(transfer)?)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let current = fetch(&mut tx, org, call, "").await?;
        emit(
            &mut tx,
            org,
            "call.transfer_started",
            &current,
            transfer.started_at,
        )
        .await?;
        self.commit_events(tx).await?;
        Ok(Some(current))
    }

    /// Moves the call's transfer in flight to `status` (`answered`, `completed` or `failed`)
    /// with Twilio's `outcome`; the matching `call.transfer_*` event follows. `Ok(None)` when
    /// no transfer is in flight (a repeated callback, or one for a call that has ended).
    pub async fn settle_transfer(
        &self,
        org: &OrgId,
        call: &CallId,
        status: TransferStatus,
        outcome: Option<&str>,
        at: Timestamp,
    ) -> Result<Option<Call>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch(&mut tx, org, call, self.for_update()).await?;
        let Some(mut transfer) = current.transfer.clone().filter(|t| {
            current.ended_at.is_none()
                && matches!(t.status, TransferStatus::Dialing | TransferStatus::Answered)
                && t.status != status
        }) else {
            tx.commit().await?;
            return Ok(None);
        };
        transfer.status = status;
        if let Some(o) = outcome {
            transfer.outcome = Some(o.to_owned());
        }
        if matches!(status, TransferStatus::Completed | TransferStatus::Failed) {
            transfer.ended_at = Some(at);
        }
        write_transfer(&mut tx, org, call, &transfer).await?;
        let updated = fetch(&mut tx, org, call, "").await?;
        let kind = match status {
            TransferStatus::Dialing => "call.transfer_started",
            TransferStatus::Answered => "call.transfer_answered",
            TransferStatus::Completed => "call.transfer_completed",
            TransferStatus::Failed => "call.transfer_failed",
        };
        emit(&mut tx, org, kind, &updated, at).await?;
        self.commit_events(tx).await?;
        Ok(Some(updated))
    }
}

/// Whether `call` has a transfer that Twilio has not settled yet.
pub(crate) fn in_flight(call: &Call) -> bool {
    call.transfer
        .as_ref()
        .is_some_and(|t| matches!(t.status, TransferStatus::Dialing | TransferStatus::Answered))
}

async fn emit(
    tx: &mut crate::Tx,
    org: &OrgId,
    kind: &'static str,
    call: &Call,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut ev = crate::outbox::call_event(kind, call);
    ev.data["transfer"] =
        serde_json::to_value(&call.transfer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::outbox::emit(tx, org, &[ev], at).await
}

/// The call, which must exist (`lock`: the store's `FOR UPDATE` or nothing).
async fn fetch(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: &CallId,
    lock: &str,
) -> Result<Call, StoreError> {
    crate::calls::fetch_call(tx, org, call, lock)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Writes the call's transfer.
pub(crate) async fn write_transfer(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: &CallId,
    transfer: &CallTransfer,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE calls SET transfer = $1 WHERE org_id = $2 AND id = $3")
        .bind(to_json(transfer)?)
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Records the CallSid of a warm transfer's call to the person.
    pub async fn set_transfer_leg(
        &self,
        org: &OrgId,
        call: &CallId,
        leg_call_sid: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut current = fetch(&mut tx, org, call, self.for_update()).await?;
        if let Some(t) = current.transfer.as_mut() {
            t.leg_call_sid = Some(leg_call_sid.to_owned());
            write_transfer(&mut tx, org, call, t).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
