//! Putting the caller through to a person (`transfer_call`, or staff's `transfer` action).
//!
//! The call's TwiML is replaced by `<Say>` (the agent's optional line) and `<Dial action>`.
//! The task ends without finalizing the call: the transcript is written, the transfer is
//! recorded and the media stream released in one write, and Twilio's `<Dial action>`
//! callback (any instance, `web::twilio_transfer`) settles it: the bridged call is over
//! (`transferred`), or the target was busy, did not answer or failed, and the caller comes
//! back to the agent on a new stream (`resume.rs`) that carries the conversation.

use crate::session::{Session, WsFrame};
use crate::transcript::Entry;
use futures_util::{Sink, Stream};
use serde_json::json;
use std::fmt::Display;
use switchboard_domain::call::EndReason;
use switchboard_domain::transfer::{CallTransfer, CallerIdPolicy, TransferStatus, TransferTarget};
use switchboard_domain::values::{Direction, MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::CallEnd;
use switchboard_twilio::rest::CallUpdate;
use switchboard_twilio::twiml;

impl Session {
    /// Starts the transfer to `target`, asked for `by` the agent or staff.
    pub(crate) async fn transfer_out<S, E>(
        &mut self,
        socket: &mut S,
        target: TransferTarget,
        by: &'static str,
    ) where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let agent = self.setup.as_ref().ok().map(|r| r.agent.clone());
        let (ours, theirs) = match self.call.direction {
            Direction::Inbound => (&self.call.to_number, &self.call.from_number),
            Direction::Outbound => (&self.call.from_number, &self.call.to_number),
        };
        // A SIP target accepts any caller id; a number needs ours or the caller's.
        let caller_id = match agent.as_ref().map(|a| a.transfer_caller_id) {
            Some(CallerIdPolicy::Caller) => theirs.clone(),
            _ => ours.clone(),
        };
        let message = agent.as_ref().and_then(|a| a.transfer_message.clone());
        tracing::info!(to = %target, by, "transferring the call");
        if let Some(w) = &self.writer {
            let entry = Entry::Item {
                key: None,
                role: MessageRole::System,
                kind: MessageKind::Message,
                content: json!({"text": format!("Transferring the call to {target}"),
                    "transfer": {"target": target, "requested_by": by}}),
                at: Timestamp::now(),
            };
            if w.try_send(entry).is_err() {
                tracing::error!("transcript queue full; the transfer item was dropped");
            }
        }
        // Without a public URL Twilio cannot tell us how the dial went: the call is handed
        // over for good, as a plain `<Dial>`.
        let Some(public) = self.svc.public_url.clone() else {
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
            mode: "cold".into(),
            requested_by: by.into(),
            agent_id: agent.as_ref().map(|a| a.id.clone()),
            status: TransferStatus::Dialing,
            outcome: None,
            started_at: self.svc.clock.now(),
            ended_at: None,
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
        // The call is Twilio's now; the `<Dial action>` callback finalizes it.
        self.finished = true;
        let action = format!("{public}/twilio/voice/dial?call_id={}", self.call.id);
        let twiml = twiml::say_dial_action(
            message.as_deref(),
            target.as_str(),
            &caller_id,
            Some(&action),
        );
        if !self
            .redirect_then_close(socket, CallUpdate::Twiml(twiml))
            .await
        {
            // Twilio did not take the dial: the stream is closed and the call ends.
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
                error: Some("Twilio did not take the transfer".into()),
                at: now,
            };
            if let Err(e) = store.finalize_call(&self.org, &self.call.id, &end).await {
                tracing::error!(error = %e, "cannot finalize the call");
            }
        }
    }
}
