//! Pressing keys on the line (`send_digits`), for an agent that calls into a phone menu.
//!
//! Twilio cannot send keys over a Media Stream, so the call's TwiML is replaced by
//! `<Play digits>` followed by a new `<Connect><Stream>` to the same call. The task keeps
//! the model session and the conversation: it releases the stream in the database, waits
//! for Twilio to stop the old stream and connect the new one, and takes the new socket over
//! from the stream handler (`hand_over`). The caller's side hears a short gap: the keys
//! (about 0.1 s each, `w` half a second) and the new stream's set-up, typically well under a
//! second on Twilio; audio the line plays meanwhile is not heard by the agent.
//!
//! Behind a load balancer the new stream may reach another instance: there it claims the
//! call as a resumed one (a new model session given the conversation from the transcript,
//! `resume.rs`), and this task, finding the call claimed, ends without touching it.

use crate::live::{Live, Step};
use crate::playback::Aligner;
use crate::session::{Exit, MediaSocket, WsFrame, REDIRECT_WAIT};
use crate::transcript::Entry;
use crate::VoiceServices;
use futures_util::StreamExt;
use serde_json::json;
use switchboard_domain::call::EndReason;
use switchboard_domain::ids::CallId;
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_tools::{Effect, ToolOutcome};
use switchboard_twilio::media::{self, Inbound, Start};
use switchboard_twilio::rest::CallUpdate;
use switchboard_twilio::twiml;

/// How long pressing keys waits for the transcript to be stored.
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A call's next stream, for the task that waits for it.
pub(crate) struct Handover {
    pub(crate) socket: MediaSocket,
    pub(crate) stream_sid: String,
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("stream_sid", &self.stream_sid)
            .finish_non_exhaustive()
    }
}

/// Gives a stream that arrived for a waiting task to it; `None` when it was taken.
pub(crate) fn hand_over(
    svc: &VoiceServices,
    call: &CallId,
    socket: MediaSocket,
    start: &Start,
) -> Option<MediaSocket> {
    if start.custom_parameters.get("resume").map(String::as_str) != Some("digits") {
        return Some(socket);
    }
    let Some(waiting) = svc.live.unpark(call) else {
        return Some(socket);
    };
    let handover = Handover {
        socket,
        stream_sid: start.stream_sid.clone(),
    };
    match waiting.send(handover) {
        Ok(()) => {
            tracing::info!(call_id = %call, stream_sid = %start.stream_sid, "the call's task took its new stream");
            None
        }
        // The task stopped waiting: the stream starts a resumed session instead.
        Err(h) => Some(h.socket),
    }
}

impl Live {
    /// Keys can be pressed only where Twilio can be told to and can reconnect: a failure the
    /// agent can speak otherwise.
    pub(crate) fn check_keys(&self, outcome: ToolOutcome) -> ToolOutcome {
        if matches!(outcome.effect, Some(Effect::Transfer { .. })) && self.ready.browser {
            return ToolOutcome {
                output: json!({"ok": false, "error": {"code": "transfer_unavailable",
                    "message": "This call comes from a browser test; it cannot be transferred to a phone."}}),
                status: "error",
                effect: None,
            };
        }
        if !matches!(outcome.effect, Some(Effect::SendDigits(_))) {
            return outcome;
        }
        if self.svc.public_url.is_some() && self.ready.creds.is_some() {
            return outcome;
        }
        tracing::warn!(
            "send_digits needs SWITCHBOARD_PUBLIC_URL and the organization's Twilio credentials"
        );
        ToolOutcome {
            output: json!({"ok": false, "error": {"code": "keys_unavailable",
                "message": "Keys cannot be pressed on this call."}}),
            status: "error",
            effect: None,
        }
    }

    /// Whether keys wait and the agent has finished speaking.
    pub(crate) fn keys_ready(&self) -> bool {
        self.keys_to_send.is_some()
            && !self.response_active
            && !self.awaiting_response
            && self.batch_pending == 0
            && !self.playback.audible()
            && self.ending.is_none()
    }

    /// Presses the waiting keys and carries on with the call's next stream.
    pub(crate) async fn press_keys(&mut self, socket: &mut MediaSocket) -> Step {
        let Some(keys) = self.keys_to_send.take() else {
            return Step::Go;
        };
        let (Some(public), Some(creds)) = (self.svc.public_url.clone(), self.ready.creds.clone())
        else {
            return Step::Go;
        };
        let svc = self.svc.clone();
        let now = svc.clock.now();
        let stream = crate::stream::stream_twiml(
            &svc,
            &public,
            &self.org,
            &self.call_id,
            now,
            &[("resume", "digits")],
        );
        let update = CallUpdate::Twiml(twiml::play_digits_then(&keys, &stream));
        // The transcript is stored before the stream is let go: the next stream may start a
        // session elsewhere, built from it.
        self.write(Entry::Item {
            key: None,
            role: MessageRole::System,
            kind: MessageKind::Message,
            content: json!({"text": format!("The agent pressed {keys} on the keypad"),
                "keys_sent": keys}),
            at: Timestamp::now(),
        });
        let (synced, stored) = tokio::sync::oneshot::channel();
        self.write(Entry::Sync(synced));
        if tokio::time::timeout(SYNC_WAIT, stored).await.is_err() {
            tracing::warn!("the transcript was not stored in time before pressing keys");
        }
        let waiting = svc.live.park(&self.call_id);
        match svc
            .store
            .release_call_stream(&self.org, &self.call_id, &self.stream_sid)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                svc.live.unpark(&self.call_id);
                return Step::Exit(Exit::End(EndReason::CallerHungUp));
            }
            Err(e) => {
                svc.live.unpark(&self.call_id);
                return Step::Exit(Exit::Fail(
                    EndReason::ModelError,
                    format!("cannot release the stream to press keys: {e}"),
                ));
            }
        }
        tracing::info!(keys = %keys, "pressing keys on the line");
        let call_sid = match svc.store.get_call(&self.org, &self.call_id).await {
            Ok(c) => c.call_sid,
            Err(e) => {
                return Step::Exit(Exit::Fail(
                    EndReason::ModelError,
                    format!("cannot read the call to press keys: {e}"),
                ))
            }
        };
        if let Err(e) = svc
            .twilio
            .at(creds.space.as_deref())
            .update_call(
                &creds.account_sid,
                creds.auth_token.expose(),
                &call_sid,
                &update,
            )
            .await
        {
            // Nothing changed at Twilio: the stream goes on.
            svc.live.unpark(&self.call_id);
            svc.pending.arrived(&self.call_id);
            tracing::error!(error = %e, "Twilio did not take the keys");
            let reclaimed = svc
                .store
                .claim_call_stream(
                    &self.org,
                    &self.call_id,
                    "",
                    &self.stream_sid,
                    &svc.instance_id,
                    now,
                )
                .await;
            if !matches!(reclaimed, Ok(Some(_))) {
                return Step::Exit(Exit::End(EndReason::CallerHungUp));
            }
            return self.keys_failed(&keys, "Twilio did not take them").await;
        }
        // The old stream ends with `stop`; its last frames are of no use now.
        let drain = async {
            while let Some(Ok(frame)) = socket.next().await {
                if let WsFrame::Text(t) = frame {
                    if matches!(media::parse(&t), Ok(Inbound::Stop)) {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(REDIRECT_WAIT, drain).await;
        let next = tokio::time::timeout(svc.config.setup_timeout, waiting).await;
        let Ok(Ok(handover)) = next else {
            svc.live.unpark(&self.call_id);
            // The stream may have gone to another instance, which has the call now (this
            // task was handed none, so a claim is another's).
            let ended = matches!(svc.store.get_call(&self.org, &self.call_id).await,
                Ok(c) if c.ended_at.is_some());
            let claimed = matches!(
                svc.store
                    .call_stream_claimed(&self.org, &self.call_id)
                    .await,
                Ok(true)
            );
            return match (ended, claimed) {
                (true, _) | (_, true) => Step::Exit(Exit::Moved),
                _ => Step::Exit(Exit::Fail(
                    EndReason::StreamClosed,
                    "the call's stream did not come back after the keys were pressed".into(),
                )),
            };
        };
        *socket = handover.socket;
        self.stream_sid = handover.stream_sid;
        self.inbound = Aligner::default();
        tracing::info!("keys pressed; the call goes on on its new stream");
        Step::Go
    }

    /// The keys could not be pressed after all: the transcript and the model are told, and
    /// the model answers.
    async fn keys_failed(&mut self, keys: &str, why: &str) -> Step {
        let text = format!("The keys {keys} were not pressed: {why}");
        self.write(Entry::Item {
            key: None,
            role: MessageRole::System,
            kind: MessageKind::Message,
            content: json!({"text": text, "keys_sent": keys, "pressed": false}),
            at: Timestamp::now(),
        });
        let item = json!({"type": "message", "role": "system",
            "content": [{"type": "input_text", "text": format!("{text}. Tell the caller if it matters, or try another way.")}]});
        let create = json!({"type": "conversation.item.create", "item": item}).to_string();
        if let Err(e) = self.send_model(create).await {
            return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
        }
        if let Err(e) = self
            .send_model(switchboard_realtime::events::response_create(None))
            .await
        {
            return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
        }
        self.awaiting_response = true;
        Step::Go
    }
}
