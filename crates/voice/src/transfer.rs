//! Putting the caller through to a person (`transfer_call`, or staff's `transfer` action).
//!
//! **Cold.** The call's TwiML is replaced by `<Say>` (the agent's optional line) and
//! `<Dial action>`. The task ends without finalizing the call: the transcript is written,
//! the transfer is recorded and the media stream released in one write, and Twilio's
//! `<Dial action>` callback (any instance, `web::twilio_transfer`) settles it: the bridged
//! call is over (`transferred`), or the target was busy, did not answer or failed, and the
//! caller comes back to the agent on a new stream (`resume.rs`) that carries the
//! conversation.
//!
//! **Warm.** The caller is put on hold in a conference of their own (Twilio's hold music) and
//! the person is called. When they answer they hear the summary (Twilio's `<Say>` voice,
//! not the agent's) and accept (1 or "yes": they join the conference, the call ends
//! `transferred` for us) or decline (2, "no", silence, hanging up: the caller comes back to
//! the agent). `web::twilio_warm` handles the person's side.

use crate::session::{Session, WsFrame};
use crate::transcript::Entry;
use crate::VoiceServices;
use futures_util::{Sink, Stream};
use serde_json::json;
use std::fmt::Display;
use switchboard_domain::call::EndReason;
use switchboard_domain::entities::{Call, NewMessage};
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::transfer::{
    CallTransfer, CallerIdPolicy, TransferMode, TransferStatus, TransferTarget,
};
use switchboard_domain::values::{Direction, MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::{CallEnd, StoreError};
use switchboard_twilio::rest::{CallUpdate, OutboundCall};
use switchboard_twilio::twiml;

/// What the caller hears while a warm transfer calls the person, unless the agent has its
/// own `transfer_message`.
const HOLD_LINE: &str = "Please hold while I connect you.";
/// How long the person's phone rings on a warm transfer.
const WARM_RING_SECONDS: u32 = 30;

/// A transfer asked for by the agent or staff.
#[derive(Debug, Clone)]
pub(crate) struct TransferRequest {
    pub(crate) target: TransferTarget,
    /// `"agent"` or `"staff"`.
    pub(crate) by: &'static str,
    pub(crate) mode: TransferMode,
    /// Warm: what the person hears first.
    pub(crate) summary: Option<String>,
}

/// The name of a call's warm-transfer conference.
pub fn conference_name(call: &CallId) -> String {
    format!("sb-{call}")
}

/// A failed transfer: settled with `outcome` (`call.transfer_failed`) and, the first time, a
/// system note in the transcript that tells the agent why the caller is back. `None` when no
/// transfer was in flight.
pub async fn transfer_failed(
    store: &switchboard_store::Store,
    org: &OrgId,
    call: &CallId,
    outcome: &str,
    at: Timestamp,
) -> Result<Option<Call>, StoreError> {
    let Some(settled) = store
        .settle_transfer(org, call, TransferStatus::Failed, Some(outcome), at)
        .await?
    else {
        return Ok(None);
    };
    if let Some(t) = &settled.transfer {
        let note = json!({"text": t.failure_note(),
            "transfer": {"target": t.target, "outcome": outcome}});
        transfer_note(store, org, &settled, note).await;
    }
    Ok(Some(settled))
}

/// TwiML that brings a caller back to the agent: a new stream to the call (`resume`), whose
/// session carries the conversation (`resume.rs`).
pub fn resume_twiml(svc: &VoiceServices, public: &str, org: &OrgId, call: &CallId) -> String {
    crate::stream::stream_twiml(
        svc,
        public,
        org,
        call,
        svc.clock.now(),
        &[("resume", "transfer")],
    )
}

/// A warm transfer did not go through (`outcome`): the caller, on hold, comes back to the
/// agent. Nothing happens when the transfer was settled already.
pub async fn bring_back(
    svc: &VoiceServices,
    org: &OrgId,
    call: &CallId,
    outcome: &str,
) -> Result<bool, String> {
    let settled = transfer_failed(&svc.store, org, call, outcome, svc.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    let Some(settled) = settled else {
        return Ok(false);
    };
    let public = svc
        .public_url
        .clone()
        .ok_or("SWITCHBOARD_PUBLIC_URL is not set")?;
    let creds = svc
        .store
        .twilio_credentials(org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the organization has no Twilio credentials")?;
    let update = CallUpdate::Twiml(resume_twiml(svc, &public, org, call));
    tracing::info!(org_id = %org, call_id = %call, outcome, "warm transfer did not go through; the caller comes back to the agent");
    if let Err(e) = svc
        .twilio
        .at(creds.space.as_deref())
        .update_call(
            &creds.account_sid,
            creds.auth_token.expose(),
            &settled.call_sid,
            &update,
        )
        .await
    {
        // The caller is gone (hung up on hold) or Twilio is unreachable: nothing to bring
        // back; Twilio's status callback or the sweep ends the call.
        return Err(format!("cannot bring the caller back: {e}"));
    }
    Ok(true)
}

impl Session {
    /// Starts the transfer asked for in `req`.
    pub(crate) async fn transfer_out<S, E>(&mut self, socket: &mut S, req: TransferRequest)
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let agent = self.setup.as_ref().ok().map(|r| r.agent.clone());
        let (ours, theirs) = match self.call.direction {
            Direction::Inbound => (self.call.to_number.clone(), self.call.from_number.clone()),
            Direction::Outbound => (self.call.from_number.clone(), self.call.to_number.clone()),
        };
        // A SIP target accepts any caller id; a number needs ours or the caller's. A warm
        // transfer's call to the person is a new call, which must come from our number.
        let caller_id = match agent.as_ref().map(|a| a.transfer_caller_id) {
            Some(CallerIdPolicy::Caller) if req.mode == TransferMode::Cold => theirs,
            _ => ours.clone(),
        };
        let message = agent.as_ref().and_then(|a| a.transfer_message.clone());
        let target = req.target.clone();
        tracing::info!(to = %target, by = req.by, mode = req.mode.as_str(), "transferring the call");
        if let Some(w) = &self.writer {
            let entry = Entry::Item {
                key: None,
                role: MessageRole::System,
                kind: MessageKind::Message,
                content: json!({"text": format!("Transferring the call to {target} ({})", req.mode.as_str()),
                    "transfer": {"target": target, "requested_by": req.by, "mode": req.mode}}),
                at: Timestamp::now(),
            };
            if w.try_send(entry).is_err() {
                tracing::error!("transcript queue full; the transfer item was dropped");
            }
        }
        // Without a public URL Twilio cannot tell us how the dial went: the call is handed
        // over for good, as a plain `<Dial>` (a warm transfer needs the callbacks too).
        let (Some(public), Some(creds)) = (
            self.svc.public_url.clone(),
            self.setup.as_ref().ok().and_then(|r| r.creds.clone()),
        ) else {
            self.finish(EndReason::Transferred, None).await;
            let twiml = twiml::say_dial_to(message.as_deref(), target.as_str(), &caller_id);
            self.redirect_then_close(socket, CallUpdate::Twiml(twiml))
                .await;
            return;
        };
        // The transcript is complete before the call is released: a caller who comes back
        // gets a session built from it.
        self.flush_transcript().await;
        let transfer = CallTransfer {
            target: target.clone(),
            mode: req.mode.as_str().into(),
            requested_by: req.by.into(),
            agent_id: agent.as_ref().map(|a| a.id.clone()),
            status: TransferStatus::Dialing,
            outcome: None,
            started_at: self.svc.clock.now(),
            ended_at: None,
            summary: (req.mode == TransferMode::Warm).then(|| {
                req.summary.clone().unwrap_or_else(|| {
                    format!(
                        "A caller from {theirs_or} needs help.",
                        theirs_or = self.call.from_number
                    )
                })
            }),
            leg_call_sid: None,
            resumed: false,
        };
        match self
            .svc
            .store
            .start_transfer(&self.org, &self.call.id, &transfer)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::info!("the call ended before the transfer started");
                self.finished = true;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record the transfer; ending the call");
                self.finish(
                    EndReason::ModelError,
                    Some(format!("cannot record the transfer: {e}")),
                )
                .await;
                let twiml = twiml::say_hangup(&self.svc.config.apology);
                self.redirect_then_close(socket, CallUpdate::Twiml(twiml))
                    .await;
                return;
            }
        }
        // The call is Twilio's now; the callbacks settle and finalize it.
        self.finished = true;
        let twiml = match req.mode {
            TransferMode::Cold => {
                let action = format!("{public}/twilio/voice/dial?call_id={}", self.call.id);
                twiml::say_dial_action(
                    message.as_deref(),
                    target.as_str(),
                    &caller_id,
                    Some(&action),
                )
            }
            TransferMode::Warm => twiml::hold_in_conference(
                message.as_deref().unwrap_or(HOLD_LINE),
                &conference_name(&self.call.id),
            ),
        };
        if !self
            .redirect_then_close(socket, CallUpdate::Twiml(twiml))
            .await
        {
            // Twilio did not take the new TwiML: the stream is closed and the call ends.
            self.transfer_refused("Twilio did not take the transfer")
                .await;
            return;
        }
        if req.mode == TransferMode::Warm {
            self.call_the_person(&public, &creds, &ours, &target).await;
        }
    }

    /// Warm: the call to the person, once the caller is on hold.
    async fn call_the_person(
        &self,
        public: &str,
        creds: &switchboard_store::TwilioCredentials,
        from: &str,
        target: &TransferTarget,
    ) {
        let id = &self.call.id;
        let url = format!("{public}/twilio/voice/warm?call_id={id}");
        let status = format!("{public}/twilio/voice/warm/status?call_id={id}");
        let leg = OutboundCall {
            to: target.as_str(),
            from,
            url: &url,
            status_callback: &status,
            timeout_seconds: WARM_RING_SECONDS,
            amd_callback: None,
            recording_callback: None,
        };
        let created = self
            .svc
            .twilio
            .at(creds.space.as_deref())
            .create_call(&creds.account_sid, creds.auth_token.expose(), &leg)
            .await;
        match created {
            Ok(c) => {
                if let Err(e) = self.svc.store.set_transfer_leg(&self.org, id, &c.sid).await {
                    tracing::error!(error = %e, "cannot store the transfer's call");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot call the person for a warm transfer");
                if let Err(e) = bring_back(&self.svc, &self.org, id, "failed").await {
                    tracing::error!(error = %e, "the caller could not be brought back");
                }
            }
        }
    }

    /// Twilio refused the transfer's TwiML: the call ends, recorded with why.
    async fn transfer_refused(&self, why: &str) {
        let now = self.svc.clock.now();
        let store = &self.svc.store;
        if let Err(e) = store
            .settle_transfer(
                &self.org,
                &self.call.id,
                TransferStatus::Failed,
                Some("failed"),
                now,
            )
            .await
        {
            tracing::error!(error = %e, "cannot record the failed transfer");
        }
        let end = CallEnd {
            reason: EndReason::TwilioFailed,
            error: Some(why.into()),
            at: now,
        };
        if let Err(e) = store.finalize_call(&self.org, &self.call.id, &end).await {
            tracing::error!(error = %e, "cannot finalize the call");
        }
    }
}

/// What the person taking a warm transfer hears before joining the caller.
pub const CONNECTING: &str = "Connecting you now.";
/// What the person who declines hears.
pub const DECLINED: &str = "Okay, the caller stays with the assistant. Goodbye.";

/// TwiML that joins the person to the caller on hold.
pub fn join_twiml(call: &CallId) -> String {
    twiml::join_conference(CONNECTING, &conference_name(call))
}

/// A system item (`content` has its `text`) in the call's transcript, written directly: no
/// call task runs while a transfer is in flight.
pub async fn transfer_note(
    store: &switchboard_store::Store,
    org: &OrgId,
    call: &Call,
    content: serde_json::Value,
) {
    let item = NewMessage {
        conversation_id: call.conversation_id.clone(),
        role: MessageRole::System,
        kind: MessageKind::Message,
        content,
        external_id: None,
        delivery_status: None,
        created_at: Timestamp::now(),
    };
    if let Err(e) = store.append_message(org, item).await {
        tracing::error!(error = %e, "cannot store a transfer note");
    }
}

/// The person accepted a warm transfer: settled (`call.transfer_completed`), noted, and the
/// call ends `transferred` for us (the caller is about to be joined by the person). `false`
/// when the transfer was no longer in flight (the caller hung up, or it was settled).
pub async fn accept_warm(
    store: &switchboard_store::Store,
    org: &OrgId,
    call: &CallId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let Some(settled) = store
        .settle_transfer(org, call, TransferStatus::Completed, Some("accepted"), at)
        .await?
    else {
        return Ok(false);
    };
    let target = settled
        .transfer
        .as_ref()
        .map(|t| t.target.to_string())
        .unwrap_or_default();
    let text = format!("{target} accepted the call");
    transfer_note(store, org, &settled, json!({"text": text})).await;
    let end = CallEnd {
        reason: EndReason::Transferred,
        error: None,
        at,
    };
    store.finalize_call(org, call, &end).await?;
    tracing::info!(org_id = %org, call_id = %call, "warm transfer accepted; joining the caller");
    Ok(true)
}

/// The caller hung up while a warm transfer was calling the person: the transfer fails
/// (`caller-hung-up`), the call ends `caller_hung_up` now, and the person's call is
/// cancelled (or hung up, once answered) so nobody is briefed about a caller who is gone.
/// Cold transfers are left to their `<Dial action>`, which says how the bridge ended.
pub async fn caller_left(svc: &VoiceServices, org: &OrgId, call: &CallId) -> Result<(), String> {
    let current = svc
        .store
        .get_call(org, call)
        .await
        .map_err(|e| e.to_string())?;
    let warm_in_flight = current.ended_at.is_none()
        && current.transfer.as_ref().is_some_and(|t| {
            t.mode == "warm"
                && matches!(t.status, TransferStatus::Dialing | TransferStatus::Answered)
        });
    if !warm_in_flight {
        return Ok(());
    }
    let now = svc.clock.now();
    let Some(settled) = svc
        .store
        .settle_transfer(
            org,
            call,
            TransferStatus::Failed,
            Some("caller-hung-up"),
            now,
        )
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let end = CallEnd {
        reason: EndReason::CallerHungUp,
        error: None,
        at: now,
    };
    svc.store
        .finalize_call(org, call, &end)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(org_id = %org, call_id = %call, "the caller hung up on hold; ending the call to the person");
    let Some(leg) = settled.transfer.and_then(|t| t.leg_call_sid) else {
        return Ok(());
    };
    let creds = svc
        .store
        .twilio_credentials(org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the organization has no Twilio credentials")?;
    let (sid, token) = (&creds.account_sid, creds.auth_token.expose());
    // A ringing call can only be cancelled, an answered one only hung up.
    if svc
        .twilio
        .at(creds.space.as_deref())
        .update_call(sid, token, &leg, &CallUpdate::Cancel)
        .await
        .is_err()
    {
        svc.twilio
            .at(creds.space.as_deref())
            .update_call(sid, token, &leg, &CallUpdate::Hangup)
            .await
            .map_err(|e| format!("cannot end the call to the person: {e}"))?;
    }
    Ok(())
}
