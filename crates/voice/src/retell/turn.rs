//! One answer on Retell's socket: the chat model streamed with the agent's instructions,
//! the call's transcript and its tools, each text piece sent to Retell as it is written (so
//! the caller hears the answer start before the model finishes), tools run inside the
//! organization and shown to Retell, and the answer always closed with
//! `content_complete: true` (an open answer leaves the agent silent).
//!
//! Only the latest `response_id` matters to Retell: when the caller speaks again the answer
//! is stale, the model's stream is dropped at once, and no new tool starts. A tool already
//! running finishes and is recorded (its side effect happened).

use super::RetellFront;
use serde_json::{json, Value};
use std::time::Instant;
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::entities::{Call, NewMessage};
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_llm::{history_messages, Request, StreamEvent};
use switchboard_retell::socket::{self, After};
use switchboard_tools::{Effect, ToolContext};
use tokio::sync::{mpsc, watch};

/// Model rounds per answer (tools, then words); the last round may not call tools.
const ROUNDS: usize = 4;
/// Transcript items given to the model.
const HISTORY: i64 = 200;
/// Said when the model fails mid-answer, so the caller never hears dead air.
pub(crate) const TURN_APOLOGY: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again?";
/// Added for `reminder_required`.
const REMINDER: &str = "The caller has been silent for a while. Briefly and kindly check \
    whether they are still there, or offer help, in one short sentence.";
/// Added to the instructions: how the words are delivered.
const PHONE_NOTE: &str = "You are on a phone call; your words are spoken aloud. Answer \
    briefly and conversationally, in plain sentences without Markdown or lists.";

/// What a turn needs.
pub(crate) struct Turn {
    pub front: RetellFront,
    pub org: OrgId,
    pub call: Call,
    pub agent: Agent,
    pub variables: Value,
    pub ctx: ToolContext,
    pub response_id: i64,
    pub reminder: bool,
    /// The latest response id Retell asked for.
    pub latest: watch::Receiver<i64>,
    /// Frames for the socket.
    pub out: mpsc::Sender<String>,
}

/// How an answer ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The caller spoke again before it was complete.
    #[default]
    Stale,
    /// Written to the end.
    Done,
    /// The chat model failed; an apology was said.
    Failed,
}

/// How a turn ended.
#[derive(Debug, Default)]
pub(crate) struct TurnEnd {
    /// Whether it was answered.
    pub outcome: Outcome,
    /// The agent the call continues with, after a handoff.
    pub handoff: Option<Agent>,
    /// From the request to the first piece of text sent, in ms.
    pub latency_ms: Option<i64>,
}

impl Turn {
    fn stale(&self) -> bool {
        *self.latest.borrow() != self.response_id
    }

    async fn send(&self, frame: String) -> bool {
        !self.stale() && self.out.send(frame).await.is_ok()
    }

    async fn piece(&self, text: &str) -> bool {
        self.send(socket::response(
            self.response_id,
            text,
            false,
            &After::Nothing,
        ))
        .await
    }

    /// Runs the turn to its end (or until it is superseded), counted.
    pub(crate) async fn run(self) -> TurnEnd {
        let stats = self.front.stats.clone();
        let end = self.answer().await;
        super::bump(match end.outcome {
            Outcome::Done => &stats.turns,
            Outcome::Stale => &stats.stale_turns,
            Outcome::Failed => &stats.failed_turns,
        });
        end
    }

    async fn answer(mut self) -> TurnEnd {
        let started = Instant::now();
        let mut end = TurnEnd::default();
        let mut after = After::Nothing;
        let Some(llm) = self.front.llm.clone() else {
            // Checked when the socket opened; kept for a configuration reloaded under it.
            self.piece(TURN_APOLOGY).await;
            end.outcome = Outcome::Failed;
            self.finish(&After::EndCall).await;
            return end;
        };
        for round in 0..ROUNDS {
            if self.stale() {
                return end;
            }
            let request = match self.request(round + 1 == ROUNDS).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the call's transcript for the model");
                    self.piece(TURN_APOLOGY).await;
                    end.outcome = Outcome::Failed;
                    break;
                }
            };
            let mut stream = match llm.stream(&request).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the chat model failed before answering");
                    self.piece(TURN_APOLOGY).await;
                    end.outcome = Outcome::Failed;
                    break;
                }
            };
            let mut latest = self.latest.clone();
            let id = self.response_id;
            let completion = loop {
                let event = tokio::select! {
                    ev = stream.next() => ev,
                    // The caller spoke again: drop the stream (closing it stops the model).
                    _ = async { drop(latest.wait_for(|v| *v != id).await) } => return end,
                };
                match event {
                    Ok(Some(StreamEvent::Text(t))) => {
                        if end.latency_ms.is_none() {
                            end.latency_ms = Some(started.elapsed().as_millis() as i64);
                        }
                        if !self.piece(&t).await {
                            return end;
                        }
                    }
                    Ok(Some(StreamEvent::Done(c))) => break Some(c),
                    Ok(None) => break None,
                    Err(e) => {
                        tracing::warn!(error = %e, "the chat model's stream failed");
                        self.piece(TURN_APOLOGY).await;
                        end.outcome = Outcome::Failed;
                        break None;
                    }
                }
            };
            let Some(completion) = completion else { break };
            if completion.tool_calls.is_empty() || request.forbid_tools {
                break;
            }
            for call in &completion.tool_calls {
                if self.stale() {
                    return end;
                }
                match self.tool(&call.id, &call.name, &call.arguments).await {
                    Some(Effect::EndCall) => after = After::EndCall,
                    Some(Effect::Transfer { target, .. }) => match target {
                        switchboard_domain::transfer::TransferTarget::Number(n) => {
                            after = After::Transfer(n.as_str().to_owned())
                        }
                        switchboard_domain::transfer::TransferTarget::Sip(_) => tracing::warn!(
                            "Retell transfers to phone numbers only; a SIP transfer was not made"
                        ),
                    },
                    Some(Effect::SendDigits(d)) => after = After::Digits(d),
                    Some(Effect::Handoff { agent, reason }) => {
                        let handoff = switchboard_domain::entities::CallHandoff {
                            from_agent_id: self.agent.id.clone(),
                            to_agent_id: agent.id.clone(),
                            reason,
                            at: self.front.svc.clock.now(),
                        };
                        if let Err(e) = self
                            .front
                            .svc
                            .store
                            .record_call_handoff(&self.org, &self.call.id, &handoff)
                            .await
                        {
                            tracing::error!(error = %e, "cannot record the handoff on the call");
                        }
                        self.ctx.toolset = std::sync::Arc::new(
                            self.front
                                .svc
                                .tools
                                .toolset(&self.front.svc.store, &self.org, &agent, self.ctx.channel)
                                .await,
                        );
                        self.ctx.passed_agents.push(agent.id.clone());
                        self.ctx.agent = (*agent).clone();
                        self.agent = (*agent).clone();
                        end.handoff = Some(*agent);
                    }
                    None => {}
                }
            }
        }
        self.finish(&after).await;
        if end.outcome != Outcome::Failed {
            end.outcome = Outcome::Done;
        }
        end
    }

    /// Closes the answer (Retell waits on an open one).
    async fn finish(&self, after: &After) {
        self.send(socket::response(self.response_id, "", true, after))
            .await;
    }

    /// The model request: instructions, the stored transcript (Retell's words and the
    /// tools run), the tools.
    async fn request(&self, last_round: bool) -> Result<Request, switchboard_store::StoreError> {
        let items = self
            .front
            .svc
            .store
            .recent_messages(&self.org, &self.call.conversation_id, HISTORY)
            .await?;
        let system = format!(
            "{}\n\n{PHONE_NOTE}",
            substitute(&self.agent.instructions, &self.variables)
        );
        let mut messages = history_messages(system, &items);
        if self.reminder {
            messages.push(json!({"role": "system", "content": REMINDER}));
        }
        Ok(Request {
            model: self.agent.chat_model.clone().unwrap_or_default(),
            messages,
            tools: self.ctx.toolset.chat_tools(),
            forbid_tools: last_round,
            temperature: self.agent.temperature,
            response_format: None,
        })
    }

    /// Runs one tool call: shown to Retell, recorded before and after, run once per call id.
    async fn tool(&self, id: &str, name: &str, arguments: &str) -> Option<Effect> {
        let store = &self.front.svc.store;
        self.send(socket::tool_call_invocation(id, name, arguments))
            .await;
        let args: Value =
            serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.into()));
        let item = |key: String, role, kind, content| {
            (
                key,
                NewMessage {
                    conversation_id: self.call.conversation_id.clone(),
                    role,
                    kind,
                    content,
                    external_id: Some(id.to_owned()),
                    delivery_status: None,
                    created_at: self.front.svc.clock.now(),
                },
            )
        };
        let call_item = item(
            format!("t:{id}:call"),
            MessageRole::Assistant,
            MessageKind::FunctionCall,
            json!({"call_id": id, "name": name, "arguments": args}),
        );
        if let Err(e) = store
            .record_call_items(&self.org, &self.call.id, vec![call_item])
            .await
        {
            tracing::error!(error = %e, tool = name, "cannot record a tool call");
        }
        let (output, status, effect) = match self
            .front
            .svc
            .tools
            .execute(&self.ctx, Some(id), name, arguments)
            .await
        {
            Some(o) => (o.output, o.status.to_owned(), o.effect),
            None => (
                json!({"ok": false, "error": {"code": "duplicate", "message": "This tool call already ran."}}),
                "duplicate".to_owned(),
                None,
            ),
        };
        let out_item = item(
            format!("t:{id}:out"),
            MessageRole::Tool,
            MessageKind::FunctionOutput,
            json!({"call_id": id, "name": name, "output": output, "status": status}),
        );
        if let Err(e) = store
            .record_call_items(&self.org, &self.call.id, vec![out_item])
            .await
        {
            tracing::error!(error = %e, tool = name, "cannot record a tool result");
        }
        self.send(socket::tool_call_result(
            id,
            &output.to_string(),
            status == "ok",
        ))
        .await;
        effect
    }
}
