//! Call recordings: starting one on an inbound call (outbound calls ask for it when they are
//! dialled), deleting one here and at Twilio, and the retention job that deletes recordings
//! older than their organization's `recording_retention_days`.

use std::future::Future;
use std::time::Duration;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Clock;
use switchboard_store::{RecordingReport, Store, StoreError, TwilioCredentials};
use switchboard_twilio::rest::{RestClient, RestError};

/// How often the retention job looks for old recordings.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Recordings deleted per pass (the next pass takes the rest).
const RETENTION_BATCH: i64 = 200;

/// Why a recording could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The call has no recording (or no such call).
    #[error("the call has no recording")]
    NoRecording,
    /// The organization has no Twilio credentials to delete it with.
    #[error("the organization has no Twilio credentials")]
    NoCredentials,
    /// Twilio refused or could not be reached; nothing was marked deleted.
    #[error("Twilio could not delete the recording: {0}")]
    Twilio(#[from] RestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Recording management (cheap to clone).
#[derive(Debug, Clone)]
pub struct Recordings {
    store: Store,
    twilio: RestClient,
    clock: Clock,
}

impl Recordings {
    /// Recordings kept in `store`, at the Twilio API `twilio` talks to.
    pub fn new(store: Store, twilio: RestClient, clock: Clock) -> Recordings {
        Recordings {
            store,
            twilio,
            clock,
        }
    }

    /// Deletes the call's recording at Twilio, then marks it deleted here. Returns `false`
    /// when it already was.
    pub async fn delete(&self, org: &OrgId, call: &CallId) -> Result<bool, DeleteError> {
        let rec = match self.store.call_recording(org, call).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(StoreError::NotFound) => return Err(DeleteError::NoRecording),
            Err(e) => return Err(e.into()),
        };
        if rec.deleted_at.is_some() {
            return Ok(false);
        }
        let creds = self
            .store
            .twilio_credentials(org)
            .await?
            .ok_or(DeleteError::NoCredentials)?;
        self.twilio
            .at(creds.space.as_deref())
            .delete_recording(&creds.account_sid, creds.auth_token.expose(), &rec.sid)
            .await?;
        let done = self
            .store
            .mark_recording_deleted(org, call, self.clock.now())
            .await?;
        tracing::info!(org_id = %org, call_id = %call, recording_sid = %rec.sid, "recording deleted");
        Ok(done)
    }

    /// Deletes the recordings past their organization's retention; returns how many.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let expired = self
            .store
            .expired_recordings(self.clock.now(), RETENTION_BATCH)
            .await?;
        let mut deleted = 0;
        for rec in expired {
            match self.delete(&rec.org_id, &rec.call_id).await {
                Ok(_) => deleted += 1,
                Err(e) => tracing::warn!(org_id = %rec.org_id, call_id = %rec.call_id,
                    error = %e, "cannot delete an expired recording; trying again next pass"),
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "old recordings deleted (retention)");
        }
        Ok(deleted)
    }

    /// Runs the retention job every hour until `stop`.
    pub async fn run_worker(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "recording retention pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(RETENTION_EVERY) => {}
                _ = &mut stop => return,
            }
        }
    }
}

/// Starts recording an inbound call whose agent records calls, once its media stream is up
/// (Twilio refuses to record a call that is not in progress). Runs beside the call: a failure
/// is logged and the call goes on unrecorded.
pub(crate) fn start_inbound(
    store: Store,
    twilio: RestClient,
    public_url: &str,
    org: OrgId,
    call: CallId,
    call_sid: String,
    creds: TwilioCredentials,
) {
    let callback = format!("{public_url}/twilio/voice/recording?call_id={call}");
    tokio::spawn(async move {
        if let Err(e) = store.set_call_recorded(&org, &call).await {
            tracing::warn!(call_id = %call, error = %e, "cannot note that the call is recorded");
        }
        let started = twilio
            .at(creds.space.as_deref())
            .start_recording(
                &creds.account_sid,
                creds.auth_token.expose(),
                &call_sid,
                &callback,
            )
            .await;
        let report = match started {
            Ok(rec) => RecordingReport {
                sid: rec.sid,
                status: rec.status,
                duration_seconds: None,
                channels: Some(2),
            },
            Err(e) => {
                tracing::warn!(call_id = %call, error = %e, "Twilio did not start the recording");
                if let Err(e) = store.set_recording_failed(&org, &call).await {
                    tracing::warn!(call_id = %call, error = %e, "cannot note the failed recording");
                }
                return;
            }
        };
        if let Err(e) = store.apply_recording(&org, &call, &report).await {
            tracing::warn!(call_id = %call, error = %e, "cannot store the recording's sid");
        }
    });
}
