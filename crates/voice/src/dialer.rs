//! The dialer: runs the durable `voice.dial` jobs that place outbound calls through Twilio's
//! Calls API. A call is dialled at most once: the start of the request is committed before it
//! is sent, and a job that finds a dial already started (the server stopped mid-request) does
//! not send another; the call then ends `failed` unless Twilio's callbacks tell what happened.

use std::future::Future;
use std::time::Duration;
use switchboard_domain::call::EndReason;
use switchboard_domain::ids::CallId;
use switchboard_domain::values::CallStatus;
use switchboard_domain::{Clock, Timestamp};
use switchboard_store::{CallEnd, DialStart, Job, Store, StoreError, DIAL_JOB};
use switchboard_twilio::rest::{CallUpdate, OutboundCall, RestClient, RestError};

/// How long Twilio lets an outbound call ring.
pub const RING_SECONDS: u32 = 30;
/// A dial job's lease.
const LEASE_MS: i64 = 60_000;
/// Dials of one batch in flight at once.
const DIALS_IN_FLIGHT: usize = 16;
/// Attempts when the request could not even be sent (connection refused).
const SEND_ATTEMPTS: i64 = 5;

/// The dial worker (cheap to clone).
#[derive(Debug, Clone)]
pub struct Dialer {
    store: Store,
    twilio: RestClient,
    clock: Clock,
    public_url: Option<String>,
    owner: String,
}

/// What one dial job did.
enum Outcome {
    Done,
    /// Try again at this time.
    Retry(Timestamp, String),
}

impl Dialer {
    /// A dialer whose calls fetch their TwiML and send their callbacks to `public_url`.
    pub fn new(
        store: Store,
        twilio: RestClient,
        clock: Clock,
        public_url: Option<String>,
        owner: &str,
    ) -> Dialer {
        Dialer {
            store,
            twilio,
            clock,
            public_url,
            owner: format!("dialer:{owner}"),
        }
    }

    /// Runs the dial jobs that are due; returns how many ran.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let jobs = self
            .store
            .claim_jobs(&self.owner, &[DIAL_JOB], self.clock.now(), LEASE_MS, 16)
            .await?;
        let n = jobs.len();
        // The batch's dials overlap their Twilio round trips (BENCHMARKS.md: on SQLite about
        // 1.5x the rate of dialling one by one). The organization's cap is held in begin_dial.
        use futures_util::StreamExt;
        futures_util::stream::iter(jobs)
            .map(|job| self.run_and_record(job))
            .buffer_unordered(DIALS_IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
        Ok(n)
    }

    async fn run_and_record(&self, job: Job) {
        use tracing::Instrument;
        // Instrumented, not entered: dials of a batch interleave on one task, and a span
        // entered across an await would nest them wrongly (and tracing-subscriber panics).
        let span = tracing::info_span!("dial", org_id = %job.org_id,
            call_id = job.payload["call_id"].as_str().unwrap_or_default());
        let outcome = self.run(&job).instrument(span).await;
        let done = match outcome {
            Ok(Outcome::Done) => {
                self.store
                    .complete_job(&job.id, &self.owner, self.clock.now())
                    .await
            }
            Ok(Outcome::Retry(at, why)) => {
                self.store.retry_job(&job.id, &self.owner, at, &why).await
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "dial job failed");
                let at = Timestamp::from_millis(self.clock.now().millis() + 30_000);
                self.store
                    .retry_job(&job.id, &self.owner, at, &e.to_string())
                    .await
            }
        };
        if let Err(e) = done {
            tracing::error!(job_id = %job.id, error = %e, "cannot record a dial job's outcome");
        }
    }

    async fn run(&self, job: &Job) -> Result<Outcome, StoreError> {
        let Some(call_id) = job.payload["call_id"].as_str().and_then(CallId::parse) else {
            tracing::error!(job_id = %job.id, "dial job without a call id");
            return Ok(Outcome::Done);
        };
        let org = &job.org_id;
        let now = self.clock.now();
        let call = match self.store.begin_dial(org, &call_id, now).await? {
            DialStart::Done => return Ok(Outcome::Done),
            DialStart::Unknown(_) => {
                self.fail(org, &call_id, None,
                    "the server stopped while dialling, so whether Twilio placed the call is unknown; it was not dialled again to avoid calling twice".into()).await?;
                return Ok(Outcome::Done);
            }
            DialStart::Dial(call) => call,
            DialStart::Wait => {
                return Ok(Outcome::Retry(
                    Timestamp::from_millis(now.millis() + 1_000),
                    "waiting for a free outbound slot".into(),
                ))
            }
        };
        let Some(public) = &self.public_url else {
            self.fail(
                org,
                &call_id,
                None,
                "SWITCHBOARD_PUBLIC_URL is not set: Twilio could not reach the call".into(),
            )
            .await?;
            return Ok(Outcome::Done);
        };
        let Some(creds) = self.store.twilio_credentials(org).await? else {
            self.fail(
                org,
                &call_id,
                None,
                "the organization has no Twilio credentials".into(),
            )
            .await?;
            return Ok(Outcome::Done);
        };
        let url = format!("{public}/twilio/voice/outbound?call_id={call_id}");
        let status_callback = format!("{public}/twilio/voice/status?call_id={call_id}");
        let amd = format!("{public}/twilio/voice/amd?call_id={call_id}");
        let recording = format!("{public}/twilio/voice/recording?call_id={call_id}");
        let request = OutboundCall {
            to: &call.to_number,
            from: &call.from_number,
            url: &url,
            status_callback: &status_callback,
            timeout_seconds: RING_SECONDS,
            amd_callback: Some(&amd),
            recording_callback: call.recording.is_some().then_some(recording.as_str()),
        };
        match self
            .twilio
            .at(creds.space.as_deref())
            .create_call(&creds.account_sid, creds.auth_token.expose(), &request)
            .await
        {
            Ok(created) => {
                let status = CallStatus::parse(&created.status).unwrap_or(CallStatus::Queued);
                let ended = self
                    .store
                    .set_call_dialed(org, &call_id, &created.sid, status)
                    .await?;
                tracing::info!(call_sid = %created.sid, "outbound call placed");
                if ended {
                    // Cancelled while the request was under way: cancel it at Twilio too.
                    let cancel = self
                        .twilio
                        .at(creds.space.as_deref())
                        .update_call(
                            &creds.account_sid,
                            creds.auth_token.expose(),
                            &created.sid,
                            &CallUpdate::Cancel,
                        )
                        .await;
                    if let Err(e) = cancel {
                        tracing::warn!(error = %e, "cannot cancel a call cancelled while it was dialled");
                    }
                }
                Ok(Outcome::Done)
            }
            Err(RestError::Api {
                status,
                message,
                code,
            }) if status < 500 => {
                self.store
                    .set_call_attempt_codes(org, &call_id, None, code)
                    .await?;
                let code_text = code.map(|c| format!(" {c}")).unwrap_or_default();
                self.fail(
                    org,
                    &call_id,
                    None,
                    format!("Twilio refused the call ({status}{code_text}): {message}"),
                )
                .await?;
                Ok(Outcome::Done)
            }
            Err(e) if !e.outcome_unknown() && job.attempts < SEND_ATTEMPTS => {
                // Never sent (connection refused): safe to try again.
                self.store.reset_dial(org, &call_id).await?;
                tracing::warn!(error = %e, "Twilio unreachable; the dial is retried");
                let at = Timestamp::from_millis(
                    self.clock.now().millis() + 10_000 * job.attempts.max(1),
                );
                Ok(Outcome::Retry(at, e.to_string()))
            }
            Err(e) if !e.outcome_unknown() => {
                self.fail(
                    org,
                    &call_id,
                    None,
                    format!("Twilio could not be reached: {e}"),
                )
                .await?;
                Ok(Outcome::Done)
            }
            Err(e) => {
                // The request may have reached Twilio: its callbacks (which name our call id)
                // will say. The job looks again later and never dials a second time.
                tracing::warn!(error = %e, "the dial's outcome is unknown; waiting for Twilio's callbacks");
                let at = Timestamp::from_millis(self.clock.now().millis() + 60_000);
                Ok(Outcome::Retry(at, e.to_string()))
            }
        }
    }

    async fn fail(
        &self,
        org: &switchboard_domain::ids::OrgId,
        call: &CallId,
        reason: Option<EndReason>,
        error: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(error = %error, "outbound call not placed");
        let end = CallEnd {
            reason: reason.unwrap_or(EndReason::TwilioFailed),
            error: Some(error),
            at: self.clock.now(),
        };
        self.store.finalize_call(org, call, &end).await?;
        Ok(())
    }

    /// Runs due dial jobs every second (and when this instance commits new work) until `stop`.
    pub async fn run_worker(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let signal = self.store.outbox_signal();
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "dial worker could not claim jobs");
            }
            // Wake when the next scheduled dial is due (a `send_at` is met to the
            // millisecond, not the poll), and at least every second for other instances' work.
            let mut idle = Duration::from_secs(1);
            if let Ok(Some(at)) = self.store.next_job_at(&[DIAL_JOB]).await {
                let until = (at.millis() - self.clock.now().millis()).max(0) as u64;
                idle = idle.min(Duration::from_millis(until));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(idle) => {}
                _ = &mut stop => return,
            }
        }
    }
}
