//! Retell as a front end: Retell runs the telephony, speech recognition and voice of a call;
//! Switchboard writes the agent's words with the organization's agent, instructions and
//! tools, over Retell's custom-LLM WebSocket (`/retell/llm/{call_id}`, [`serve_socket`]), and
//! records the call from Retell's webhooks (`POST /retell/webhook`, [`RetellFront::webhook`])
//! with its transcript, recording link, analysis, webhooks and e-mails like any other call.
//!
//! Routing is by the Retell agent id an agent is connected to (unique across the platform),
//! else by a number the organization has proven; never by a default. The socket carries no
//! credentials, so a call the webhooks have not introduced is looked up at Retell with the
//! organization's key before anything is answered.

mod session;
mod turn;
mod webhook;

pub use session::{serve_socket, RetellIo, RetellOut, RetellSocket};
pub use webhook::{WebhookError, WebhookOutcome};

use crate::VoiceServices;
use serde_json::json;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_domain::agent::Agent;
use switchboard_domain::call::{retell_call_sid, EndReason};
use switchboard_domain::entities::{Call, NewCall, NewConversation, NewMessage};
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_domain::values::{
    CallStatus, Channel, Direction, MessageKind, MessageRole, NumberChannel, PhoneNumber,
};
use switchboard_domain::{Secret, Timestamp};
use switchboard_llm::ChatClient;
use switchboard_retell::{RetellApi, RetellCall, Utterance, UtteranceRole};
use switchboard_store::StoreError;

/// Everything the Retell front end needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct RetellFront {
    /// The voice services (store, tools, clock, drain signal).
    pub svc: VoiceServices,
    /// The chat model that writes the agent's words (`SWITCHBOARD_LLM_*`).
    pub llm: Option<ChatClient>,
    /// Retell's REST API (`SWITCHBOARD_RETELL_API_URL`).
    pub api: RetellApi,
    /// Counters for `/metrics`.
    pub stats: std::sync::Arc<RetellStats>,
}

/// Counters for `/metrics` (no ids, no numbers).
#[derive(Debug, Default)]
pub struct RetellStats {
    /// Sockets whose call was known or proven, and answered.
    pub sockets: AtomicU64,
    /// Sockets closed before anything was answered (unknown, unproven or another's call).
    pub refused_sockets: AtomicU64,
    /// Answers written to the end.
    pub turns: AtomicU64,
    /// Answers dropped because the caller spoke again.
    pub stale_turns: AtomicU64,
    /// Answers the chat model failed (an apology was said instead).
    pub failed_turns: AtomicU64,
    /// Webhooks recorded (or acknowledged and ignored).
    pub webhooks: AtomicU64,
    /// Webhooks refused (bad signature, unknown agent, no key, malformed).
    pub refused_webhooks: AtomicU64,
}

impl RetellStats {
    /// Prometheus text for these counters.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 7] = [
            (
                "switchboard_retell_sockets_total",
                "Retell sockets answered.",
                &self.sockets,
            ),
            (
                "switchboard_retell_refused_sockets_total",
                "Retell sockets closed before answering (unknown or unproven call).",
                &self.refused_sockets,
            ),
            (
                "switchboard_retell_turns_total",
                "Answers written on Retell sockets.",
                &self.turns,
            ),
            (
                "switchboard_retell_stale_turns_total",
                "Answers dropped because the caller spoke again.",
                &self.stale_turns,
            ),
            (
                "switchboard_retell_failed_turns_total",
                "Answers the chat model failed (apology said).",
                &self.failed_turns,
            ),
            (
                "switchboard_retell_webhooks_total",
                "Retell webhooks accepted.",
                &self.webhooks,
            ),
            (
                "switchboard_retell_refused_webhooks_total",
                "Retell webhooks refused.",
                &self.refused_webhooks,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Where a Retell call belongs.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub org: OrgId,
    pub agent: AgentId,
    pub key: Option<Secret>,
    pub org_active: bool,
}

/// What Retell sent that does not lead anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// No agent is connected to the Retell agent id, and no proven number of any
    /// organization matches.
    Unknown,
    /// The store failed.
    Store(String),
}

impl From<StoreError> for RouteError {
    fn from(e: StoreError) -> Self {
        RouteError::Store(e.to_string())
    }
}

impl RetellFront {
    /// The organization and agent a Retell call belongs to: the agent connected to its
    /// Retell agent id, else the agent of the organization's proven number (the called
    /// number of an inbound call, the calling number of an outbound one).
    pub(crate) async fn route(&self, call: &RetellCall) -> Result<Routed, RouteError> {
        let store = &self.svc.store;
        if switchboard_retell::valid_id(&call.agent_id) {
            if let Some(r) = store.route_retell_agent(&call.agent_id).await? {
                return Ok(Routed {
                    org: r.org_id,
                    agent: r.agent_id,
                    key: r.api_key,
                    org_active: r.org_active,
                });
            }
        }
        let ours = if outbound(call) {
            call.from_number.as_deref()
        } else {
            call.to_number.as_deref()
        };
        let Some(number) = ours.and_then(|n| PhoneNumber::parse(n).ok()) else {
            return Err(RouteError::Unknown);
        };
        match store.route_number(&number, NumberChannel::Voice).await? {
            // Only a proven claim: anyone can register a number they do not own.
            Some(route) if route.verified => {
                let Some(agent) = route.agent_id else {
                    return Err(RouteError::Unknown);
                };
                let key = store.retell_api_key(&route.org_id).await?;
                Ok(Routed {
                    org: route.org_id,
                    agent,
                    key,
                    org_active: route.active,
                })
            }
            _ => Err(RouteError::Unknown),
        }
    }

    /// The stored call for Retell's `call`, recorded now if neither the socket nor a webhook
    /// did yet. A call id already recorded in another organization is refused.
    pub(crate) async fn ensure_call(
        &self,
        routed: &Routed,
        call: &RetellCall,
    ) -> Result<Call, StoreError> {
        let store = &self.svc.store;
        let sid = retell_call_sid(&call.call_id);
        for _ in 0..2 {
            if let Some((org, id)) = store.find_call_by_sid(&sid).await? {
                if org != routed.org {
                    return Err(StoreError::Conflict(
                        "this Retell call belongs to another organization".into(),
                    ));
                }
                return store.get_call(&org, &id).await;
            }
            let now = self.svc.clock.now();
            let started = call
                .start_timestamp
                .map(Timestamp::from_millis)
                .unwrap_or(now);
            let out = outbound(call);
            let from = call.from_number.clone().unwrap_or_default();
            let to = call.to_number.clone().unwrap_or_default();
            let contact = if out { &to } else { &from };
            let ours = if out { &from } else { &to };
            let conversation = NewConversation {
                channel: Channel::Voice,
                direction: if out {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                contact_number: if contact.is_empty() {
                    "retell:web".to_owned()
                } else {
                    contact.clone()
                },
                our_number: Some(ours.clone()).filter(|n| !n.is_empty()),
                agent_id: Some(routed.agent.clone()),
                variables: json!({"caller_number": contact, "our_number": ours,
                    "call_sid": sid, "retell_call_id": call.call_id,
                    "retell_agent_id": call.agent_id}),
                started_at: started,
            };
            let new = NewCall {
                conversation_id: switchboard_domain::ids::ConversationId::generate(),
                call_sid: sid.clone(),
                direction: conversation.direction,
                from_number: from,
                to_number: to,
                agent_id: Some(routed.agent.clone()),
                status: CallStatus::InProgress,
                started_at: started,
            };
            match store
                .start_provider_call(&routed.org, conversation, new, &call.call_id)
                .await
            {
                Ok(c) => {
                    tracing::info!(org_id = %routed.org, call_id = %c.id, retell_call_id = %call.call_id, "Retell call recorded");
                    return Ok(c);
                }
                // The socket and a webhook raced: read what the other wrote.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(
            "the Retell call could not be recorded".into(),
        ))
    }

    /// Writes the final utterances of Retell's transcript that are not stored yet (each
    /// keyed by its position, so any number of reports write it once).
    pub(crate) async fn record_utterances(
        &self,
        org: &OrgId,
        call: &Call,
        transcript: &[Utterance],
    ) -> Result<usize, StoreError> {
        let now = self.svc.clock.now();
        let items = transcript
            .iter()
            .enumerate()
            .filter_map(|(i, u)| {
                let role = match u.role {
                    UtteranceRole::Agent => MessageRole::Assistant,
                    UtteranceRole::User => MessageRole::User,
                    UtteranceRole::System => return None,
                };
                let text = u.content.trim();
                (!text.is_empty()).then(|| {
                    (
                        format!("u:{i}"),
                        NewMessage {
                            conversation_id: call.conversation_id.clone(),
                            role,
                            kind: MessageKind::Message,
                            content: json!({"text": text}),
                            external_id: None,
                            delivery_status: None,
                            created_at: now,
                        },
                    )
                })
            })
            .collect();
        self.svc.store.record_call_items(org, &call.id, items).await
    }

    /// The agent as stored now.
    pub(crate) async fn agent(&self, org: &OrgId, id: &AgentId) -> Result<Agent, StoreError> {
        self.svc.store.get_agent(org, id).await
    }
}

/// Whether Retell placed the call (an outbound call's own number is its `from_number`).
fn outbound(call: &RetellCall) -> bool {
    call.direction.as_deref() == Some("outbound")
}

/// How a Retell call ended, from its `disconnection_reason`, and the detail stored as the
/// call's error when it was not a normal end.
pub(crate) fn end_reason(disconnection: Option<&str>) -> (EndReason, Option<String>) {
    let Some(r) = disconnection else {
        return (EndReason::CallerHungUp, None);
    };
    let reason = match r {
        "user_hangup" => EndReason::CallerHungUp,
        "agent_hangup" | "inactivity" => EndReason::AgentEnded,
        "call_transfer" => EndReason::Transferred,
        "max_duration_reached" => EndReason::MaxDuration,
        "voicemail_reached" => EndReason::VoicemailHungUp,
        "dial_busy" => EndReason::Busy,
        "dial_no_answer" => EndReason::NoAnswer,
        _ => EndReason::ProviderFailed,
    };
    let normal = matches!(
        reason,
        EndReason::CallerHungUp | EndReason::AgentEnded | EndReason::Transferred
    ) && r != "inactivity";
    let detail = (!normal).then(|| format!("Retell ended the call: {r}"));
    (reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons() {
        assert_eq!(
            end_reason(Some("user_hangup")),
            (EndReason::CallerHungUp, None)
        );
        assert_eq!(
            end_reason(Some("agent_hangup")),
            (EndReason::AgentEnded, None)
        );
        assert_eq!(end_reason(None), (EndReason::CallerHungUp, None));
        let (r, e) = end_reason(Some("error_llm_websocket_open"));
        assert_eq!(r, EndReason::ProviderFailed);
        assert!(e.is_some_and(|e| e.contains("error_llm_websocket_open")));
        assert_eq!(end_reason(Some("dial_no_answer")).0, EndReason::NoAnswer);
        assert_eq!(end_reason(Some("inactivity")).0, EndReason::AgentEnded);
        assert!(end_reason(Some("inactivity")).1.is_some());
    }
}
