//! The recovery sweep: finishes calls that no running call task will finish.
//!
//! - A call whose instance stopped heartbeating (crash, `kill -9`, a lost machine) is ended at
//!   Twilio (an apology and a hang-up, in case Twilio still holds the line) and finalized as
//!   `failed` / `instance_lost` with what was stored. Only the instance whose finalization
//!   wins (exactly once, in the store) calls Twilio, so several sweeping instances act once.
//! - A call that Twilio reported over while its task had not finalized it (the task waits for
//!   its transcript) is finalized with Twilio's outcome once [`TERMINAL_WAIT`] has passed: the
//!   bounded wait for a task that is gone or stuck.
//!
//! - An outbound call that no task ever claimed and whose callbacks were lost is settled with
//!   what Twilio's Calls API says (`reconcile.rs`).
//! - An inbound call answered with a media stream that never connected, for which Twilio sent
//!   no status (a number without a status callback, a proxy that drops WebSocket upgrades), is
//!   closed after [`NO_MEDIA_WAIT`] as `failed` / `no_media` and counted, so "active now" does
//!   not count it for ever.
//!
//! Calls of a live instance are never touched: its heartbeat is fresh.

use crate::DEFAULT_APOLOGY;
use std::future::Future;
use std::time::Duration;
use switchboard_domain::call::EndReason;
use switchboard_domain::{Clock, Timestamp};
use switchboard_store::{CallEnd, Store, StoreError, StrandedCall};
use switchboard_twilio::rest::{CallUpdate, RestClient};
use switchboard_twilio::twiml;

/// How long a call task gets to finalize a call after Twilio reported it over.
pub const TERMINAL_WAIT: Duration = Duration::from_secs(30);
/// How long an answered inbound call may wait for its media stream (Twilio connects it within
/// a second or two) before it is closed as `no_media`.
pub const NO_MEDIA_WAIT: Duration = Duration::from_secs(60);

/// The sweep (cheap to clone).
#[derive(Debug, Clone)]
pub struct Recovery {
    store: Store,
    twilio: RestClient,
    clock: Clock,
    lease: Duration,
    apology: String,
    stats: Option<std::sync::Arc<crate::VoiceStats>>,
}

impl Recovery {
    /// A sweep that considers an instance dead once its heartbeat is older than `lease`.
    pub fn new(store: Store, twilio: RestClient, clock: Clock, lease: Duration) -> Recovery {
        Recovery {
            store,
            twilio,
            clock,
            lease,
            apology: DEFAULT_APOLOGY.into(),
            stats: None,
        }
    }

    /// Counts the calls closed for lack of media in `stats`.
    pub fn with_stats(mut self, stats: std::sync::Arc<crate::VoiceStats>) -> Recovery {
        self.stats = Some(stats);
        self
    }

    /// What a caller still on the line hears (the voice apology by default).
    pub fn with_apology(mut self, apology: &str) -> Recovery {
        self.apology = apology.to_owned();
        self
    }

    /// Finishes every stranded call now, and settles outbound calls whose callbacks were
    /// lost (see `reconcile.rs`); returns how many calls this instance finalized.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let settled = crate::reconcile::reconcile(&self.store, &self.twilio, &self.clock).await?;
        let now = self.clock.now();
        let alive_since = Timestamp::from_millis(now.millis() - self.lease.as_millis() as i64);
        let terminal_before =
            Timestamp::from_millis(now.millis() - TERMINAL_WAIT.as_millis() as i64);
        let stranded = self
            .store
            .stranded_calls(alive_since, terminal_before)
            .await?;
        let mut done = settled;
        for s in stranded {
            match self.finish(&s).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(org_id = %s.org_id, call_id = %s.call_id, error = %e, "cannot recover a stranded call")
                }
            }
        }
        let waited_since = Timestamp::from_millis(now.millis() - NO_MEDIA_WAIT.as_millis() as i64);
        for (org, id) in self.store.unconnected_calls(waited_since).await? {
            match self.close_unconnected(&org, &id).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(org_id = %org, call_id = %id, error = %e, "cannot close a call whose media never connected")
                }
            }
        }
        Ok(done)
    }

    async fn close_unconnected(
        &self,
        org: &switchboard_domain::ids::OrgId,
        id: &switchboard_domain::ids::CallId,
    ) -> Result<bool, StoreError> {
        let end = CallEnd {
            reason: EndReason::NoMedia,
            error: Some(format!(
                "the media stream never connected within {} s and Twilio sent no status: check \
                 that wss://<public URL>/twilio/media reaches this server (a proxy must pass \
                 WebSocket upgrades) and that the number has a status callback",
                NO_MEDIA_WAIT.as_secs()
            )),
            at: self.clock.now(),
        };
        if !self.store.finalize_call(org, id, &end).await? {
            return Ok(false);
        }
        if let Some(s) = &self.stats {
            s.no_media
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let call = self.store.get_call(org, id).await?;
        tracing::warn!(org_id = %org, call_id = %id, call_sid = %call.call_sid,
            "closed a call whose media stream never connected (no_media)");
        self.hang_up(org, &call.call_sid).await?;
        Ok(true)
    }

    /// Ends a call at Twilio with the apology, in case the caller is still on the line.
    async fn hang_up(
        &self,
        org: &switchboard_domain::ids::OrgId,
        call_sid: &str,
    ) -> Result<(), StoreError> {
        if !switchboard_domain::call::is_twilio_call(call_sid) {
            return Ok(());
        }
        match self.store.twilio_credentials(org).await? {
            None => {
                tracing::warn!(org_id = %org, "no Twilio credentials: cannot end the call at Twilio")
            }
            Some(c) => {
                let update = CallUpdate::Twiml(twiml::say_hangup(&self.apology));
                match self
                    .twilio
                    .at(c.space.as_deref())
                    .update_call(&c.account_sid, c.auth_token.expose(), call_sid, &update)
                    .await
                {
                    Ok(()) => tracing::info!(call_sid, "call ended at Twilio"),
                    // Usually Twilio ended it already (21220: not in progress).
                    Err(e) => {
                        tracing::info!(call_sid, error = %e, "Twilio did not take the hang-up; the call is probably over already")
                    }
                }
            }
        }
        Ok(())
    }

    async fn finish(&self, s: &StrandedCall) -> Result<bool, StoreError> {
        let call = self.store.get_call(&s.org_id, &s.call_id).await?;
        let end = if s.instance_lost {
            CallEnd {
                reason: EndReason::InstanceLost,
                error: Some("the instance running this call stopped responding".into()),
                at: self.clock.now(),
            }
        } else {
            CallEnd {
                reason: EndReason::from_twilio(call.status).unwrap_or(EndReason::CallerHungUp),
                error: None,
                at: self.clock.now(),
            }
        };
        if !self
            .store
            .finalize_call(&s.org_id, &s.call_id, &end)
            .await?
        {
            // Another instance (or the call task itself) finished it first.
            return Ok(false);
        }
        tracing::warn!(org_id = %s.org_id, call_id = %s.call_id, call_sid = %call.call_sid,
            reason = end.reason.as_str(), "finalized a stranded call");
        if !s.instance_lost {
            return Ok(true);
        }
        // The caller may still be on the line, in silence: apologise and hang up.
        self.hang_up(&s.org_id, &call.call_sid).await?;
        Ok(true)
    }

    /// Sweeps at start and then every half lease until `stop` resolves.
    pub async fn run_worker(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let every = (self.lease / 2).max(Duration::from_millis(100));
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "stranded-call sweep failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
        }
    }
}
