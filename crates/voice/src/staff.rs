//! Staff actions carried out by the call's own task: hang up, say a sentence next, add a
//! private instruction, mute and unmute the agent. Each is acknowledged with a result and put
//! on the call's timeline (a `human` transcript item).

use crate::actions::ActionCommand;
use crate::live::{Live, Step};
use crate::session::Exit;
use crate::transcript::Entry;
use futures_util::Sink;
use serde_json::{json, Value};
use std::fmt::Display;
use switchboard_domain::call::EndReason;
use switchboard_domain::call_action::NewCallAction;
use switchboard_domain::transfer::{TransferMode, TransferTarget};
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_realtime::events as rt;

/// The instructions of a sentence staff asked the agent to say.
fn say_instructions(text: &str) -> String {
    format!("Say exactly this to the caller, word for word, and nothing else: {text}")
}

impl Live {
    /// Carries out one staff action.
    pub(crate) async fn on_action<S>(&mut self, cmd: ActionCommand, socket: &mut S) -> Step
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        tracing::info!(action = cmd.request.name(), actor = %cmd.actor, action_id = %cmd.id, "staff action");
        let (outcome, step) = match &cmd.request {
            NewCallAction::Hangup {} => (
                Ok(json!({"ok": true, "ended": true})),
                Step::Exit(Exit::End(EndReason::HungUpByApi)),
            ),
            NewCallAction::Say { text } => (self.staff_say(text).await, Step::Go),
            NewCallAction::Instruct { text } => (self.staff_instruct(text).await, Step::Go),
            NewCallAction::MuteAgent {} => (self.mute(socket).await, Step::Go),
            NewCallAction::Unmute {} => {
                self.muted = false;
                (Ok(json!({"ok": true, "muted": false})), Step::Go)
            }
            NewCallAction::Transfer { .. } if self.ready.browser => (
                Err(Refusal::Tell(
                    "transfer_unavailable",
                    "This call comes from a browser; it cannot be transferred to a phone.".into(),
                )),
                Step::Go,
            ),
            NewCallAction::Transfer { to, mode, summary } => match transfer_target(
                self.svc.store.clone(),
                self.org.clone(),
                self.ready.agent.transfer_number.clone(),
                to.clone(),
            )
            .await
            {
                Ok(target) => {
                    let mode = match mode.as_deref() {
                        Some("warm") => TransferMode::Warm,
                        _ => TransferMode::Cold,
                    };
                    let summary = match (mode, summary) {
                        (TransferMode::Warm, None) => Some(self.staff_summary()),
                        (_, s) => s.clone(),
                    };
                    (
                        Ok(json!({"ok": true, "transferring_to": target, "mode": mode})),
                        Step::Exit(Exit::Transfer(crate::transfer::TransferRequest {
                            target,
                            by: "staff",
                            mode,
                            summary,
                        })),
                    )
                }
                Err(refusal) => (Err(refusal), Step::Go),
            },
        };
        let (ok, result, step) = match outcome {
            Ok(v) => (true, v, step),
            Err(Refusal::Tell(code, message)) => (
                false,
                json!({"ok": false, "error": {"code": code, "message": message}}),
                step,
            ),
            Err(Refusal::Broken(e)) => (
                false,
                json!({"ok": false, "error": {"code": "model_unavailable", "message": e}}),
                Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e)),
            ),
        };
        self.write(Entry::Item {
            key: None,
            role: MessageRole::Human,
            kind: MessageKind::Message,
            content: timeline(&cmd, ok),
            at: Timestamp::now(),
        });
        if let Err(e) = self
            .svc
            .store
            .finish_call_action(&self.org, &cmd.id, ok, &result, Timestamp::now())
            .await
        {
            tracing::error!(error = %e, "cannot record the staff action's result");
        }
        self.svc.live.acknowledged(&cmd.id);
        step
    }

    /// The agent says `text` next: now if it is silent, else after its current answer.
    async fn staff_say(&mut self, text: &str) -> Result<Value, Refusal> {
        if self.muted {
            return Err(Refusal::Tell(
                "agent_muted",
                "the agent is muted; unmute it first".into(),
            ));
        }
        if self.response_active || self.awaiting_response || self.batch_pending > 0 {
            self.says.push_back(text.to_owned());
            return Ok(json!({"ok": true, "queued": true}));
        }
        self.send_model(rt::response_say(&say_instructions(text)))
            .await
            .map_err(Refusal::Broken)?;
        self.awaiting_response = true;
        Ok(json!({"ok": true, "queued": false}))
    }

    /// A sentence staff queued, once nothing else is in flight.
    pub(crate) async fn next_staff_say(&mut self) -> Result<(), String> {
        if self.response_active || self.awaiting_response || self.batch_pending > 0 || self.muted {
            return Ok(());
        }
        if let Some(text) = self.says.pop_front() {
            self.send_model(rt::response_say(&say_instructions(&text)))
                .await?;
            self.awaiting_response = true;
        }
        Ok(())
    }

    /// A private instruction in the agent's context (kept across a session switch).
    async fn staff_instruct(&mut self, text: &str) -> Result<Value, Refusal> {
        let item = json!({"type": "message", "role": "system",
            "content": [{"type": "input_text", "text": format!("Instruction from staff (the caller does not hear this): {text}")}]});
        self.history.fill(None, item.clone());
        let create = json!({"type": "conversation.item.create", "item": item}).to_string();
        self.send_model(create).await.map_err(Refusal::Broken)?;
        Ok(json!({"ok": true}))
    }

    /// The agent stops speaking: the answer playing is cleared at Twilio and cut at the
    /// model, a response in progress is cancelled, and new ones are cancelled as they start
    /// until `unmute`.
    async fn mute<S>(&mut self, socket: &mut S) -> Result<Value, Refusal>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        self.muted = true;
        self.says.clear();
        if self.response_active {
            self.muted_response = true;
            self.send_model(json!({"type": "response.cancel"}).to_string())
                .await
                .map_err(Refusal::Broken)?;
        }
        if self.playback.audible() {
            self.cut_playback(socket).await.map_err(Refusal::Broken)?;
        }
        Ok(json!({"ok": true, "muted": true}))
    }
}

impl Live {
    /// What the person taking a warm transfer from staff hears when staff gave no summary:
    /// the caller's number and what the caller said last.
    fn staff_summary(&self) -> String {
        let from = self
            .ready
            .tool_ctx
            .contact_number
            .as_ref()
            .map(|n| format!(" from {n}"))
            .unwrap_or_default();
        let mut s = format!("A colleague is transferring a caller{from} to you.");
        if let Some(last) = self.history.last_user_text() {
            let last: String = last.chars().take(300).collect();
            s.push_str(&format!(" The caller's last words were: {last}"));
        }
        s
    }
}

/// Where a staff transfer goes: the agent's own destination (`own`) unless `to` names
/// another, which the organization's `transfer_destinations` must allow (with none
/// configured, only the agent's own destination is allowed).
async fn transfer_target(
    store: switchboard_store::Store,
    org: switchboard_domain::ids::OrgId,
    own: Option<TransferTarget>,
    to: Option<TransferTarget>,
) -> Result<TransferTarget, Refusal> {
    match (to, own) {
        (None, Some(own)) => Ok(own),
        (None, None) => Err(Refusal::Tell(
            "no_destination",
            "the agent has no transfer number; give `to`".into(),
        )),
        (Some(t), Some(own)) if t == own => Ok(own),
        (Some(t), _) => {
            let settings = store
                .get_settings(&org)
                .await
                .map_err(|e| Refusal::Tell("unavailable", e.to_string()))?;
            if settings.allows_transfer_to(&t) {
                Ok(t)
            } else {
                Err(Refusal::Tell(
                    "destination_not_allowed",
                    format!("{t} is not on the organization's transfer destinations"),
                ))
            }
        }
    }
}

/// Why an action was not carried out.
enum Refusal {
    /// A reason staff are told.
    Tell(&'static str, String),
    /// The model connection failed: the call ends.
    Broken(String),
}

/// The timeline item of an action.
fn timeline(cmd: &ActionCommand, ok: bool) -> Value {
    let text = match &cmd.request {
        NewCallAction::Hangup {} => "Staff hung up the call".to_owned(),
        NewCallAction::Say { text } => format!("Staff asked the agent to say: {text}"),
        NewCallAction::Instruct { text } => format!("Staff instruction to the agent: {text}"),
        NewCallAction::MuteAgent {} => "Staff muted the agent".to_owned(),
        NewCallAction::Unmute {} => "Staff unmuted the agent".to_owned(),
        NewCallAction::Transfer { to, .. } => match to {
            Some(t) => format!("Staff transferred the call to {t}"),
            None => "Staff transferred the call".to_owned(),
        },
    };
    json!({"text": text, "action_id": cmd.id, "action": cmd.request.name(),
        "actor": cmd.actor, "ok": ok})
}
