//! In-call control inside the call's task: keypad presses (to a running `collect_digits`,
//! else to the model as a `[keypad] ...` turn) and handing the call to another agent in the
//! same model session.

use crate::live::{Live, Step};
use crate::rollover::History;
use crate::session::agent_session;
use crate::session::Exit;
use crate::transcript::Entry;
use serde_json::json;
use std::time::Duration;
use switchboard_domain::agent::Agent;
use switchboard_domain::call::EndReason;
use switchboard_domain::entities::CallHandoff;
use switchboard_domain::values::{Channel, MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_realtime::events as rt;

/// How long after the last key press the keys go to the model as one turn ("1", "2", "3"
/// typed in a row is one "[keypad] 123").
pub(crate) const KEYPAD_PAUSE: Duration = Duration::from_millis(1500);

/// The keys Twilio reports.
fn is_key(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

impl Live {
    /// A key the caller pressed.
    pub(crate) fn on_digit(&mut self, digit: &str) -> Step {
        let mut chars = digit.chars();
        let (Some(key), None) = (chars.next(), chars.next()) else {
            self.bad_frame("dtmf frame without a single key");
            return Step::Go;
        };
        if !is_key(key) {
            self.bad_frame("dtmf frame with an unknown key");
            return Step::Go;
        }
        tracing::info!(key = %key, "caller pressed a key");
        let Some(keypad) = &self.ready.tool_ctx.keypad else {
            return Step::Go;
        };
        if !keypad.press(key) {
            self.keys_due = Some(tokio::time::Instant::now() + KEYPAD_PAUSE);
        }
        Step::Go
    }

    /// The keys pressed since the last pause go to the model and the transcript as one
    /// caller turn, and the agent answers it (after the response in progress, if any).
    pub(crate) async fn flush_keys(&mut self) -> Step {
        self.keys_due = None;
        let keys = match &self.ready.tool_ctx.keypad {
            Some(k) => k.take_pending(),
            None => String::new(),
        };
        if keys.is_empty() {
            return Step::Go;
        }
        let text = format!("[keypad] {keys}");
        self.write(Entry::Item {
            key: None,
            role: MessageRole::User,
            kind: MessageKind::Message,
            content: json!({"text": text, "keypad": keys}),
            at: Timestamp::now(),
        });
        let item = History::user(&text);
        self.history.fill(None, item.clone());
        let create = json!({"type": "conversation.item.create", "item": item}).to_string();
        if let Err(e) = self.send_model(create).await {
            return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
        }
        if self.response_active || self.awaiting_response || self.batch_pending > 0 {
            self.deferred_response = true;
        } else {
            if let Err(e) = self.send_model(rt::response_create(None)).await {
                return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
            }
            self.awaiting_response = true;
        }
        Step::Go
    }

    /// Hands the call to `agent`: its instructions, tools and turn detection take effect in
    /// the same model session (`session.update`), the conversation stays. The voice does not
    /// change: OpenAI Realtime keeps a session's voice once it has spoken, so the receiving
    /// agent's voice applies to the calls it answers itself.
    pub(crate) async fn hand_off(
        &mut self,
        agent: Agent,
        reason: Option<String>,
    ) -> Result<(), String> {
        let from = self.ready.agent.clone();
        let toolset = self
            .svc
            .tools
            .toolset(&self.svc.store, &self.org, &agent, Channel::Voice)
            .await;
        // The receiving agent's session, except what a live session keeps: the model it was
        // opened with and the voice it has spoken in.
        let current = &self.ready.session_config;
        let mut config = agent_session(
            &agent,
            &self.ready.variables,
            &toolset,
            &current.transcription_model,
        );
        config.model = current.model.clone();
        config.voice = current.voice.clone();
        if agent.voice != config.voice {
            tracing::info!(voice = %config.voice, "the call keeps its voice: a Realtime session cannot change voices once it has spoken");
        }
        self.send_model(rt::session_update(self.svc.config.shape, &config))
            .await?;
        tracing::info!(from = %from.id, to = %agent.id, "call handed to another agent");
        self.ready.session_config = config;
        self.ready.tool_ctx.agent = agent.clone();
        self.ready.tool_ctx.toolset = std::sync::Arc::new(toolset);
        self.ready.tool_ctx.passed_agents.push(agent.id.clone());
        let handoff = CallHandoff {
            from_agent_id: from.id.clone(),
            to_agent_id: agent.id.clone(),
            reason: reason.clone(),
            at: Timestamp::now(),
        };
        self.write(Entry::Item {
            key: None,
            role: MessageRole::System,
            kind: MessageKind::Message,
            content: json!({"text": format!("{} handed the call to {}", from.name, agent.name),
                "handoff": handoff}),
            at: handoff.at,
        });
        self.ready.agent = agent;
        if let Err(e) = self
            .svc
            .store
            .record_call_handoff(&self.org, &self.call_id, &handoff)
            .await
        {
            tracing::error!(error = %e, "cannot record the handoff on the call");
        }
        Ok(())
    }
}
