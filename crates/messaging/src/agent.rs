//! Writing the agent's reply: the instructions with the conversation's variables, the
//! conversation's history, and a bounded tool loop through the shared registry. Function
//! calls and their outputs are stored as transcript items as they happen, so a reply retried
//! after a crash continues from what already ran instead of running tools again.

use crate::{bump, Messaging, MessagingError};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::entities::{Conversation, Message};
use switchboard_domain::ids::{MessageId, OrgId};
use switchboard_domain::values::{Channel, MessageKind, MessageRole, PhoneNumber};
use switchboard_llm::{Completion, Request, Tool};
use switchboard_tools::ToolContext;

/// A tool the agent ran while writing a reply.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ToolRecord {
    /// The model's call id.
    pub call_id: String,
    /// Tool name.
    pub name: String,
    /// Arguments the model gave.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// What the tool answered.
    #[schema(value_type = Object)]
    pub output: Value,
    /// `ok`, `error`, `timeout` or `duplicate`.
    pub status: String,
}

/// A reply the agent wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The text to send.
    pub text: String,
    /// Tools run on the way.
    pub tool_calls: Vec<ToolRecord>,
}

pub(crate) fn channel_note(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "You are texting with this person by SMS. Reply in plain text (no Markdown), briefly, like a text message.",
        Channel::Whatsapp => "You are chatting with this person on WhatsApp. Reply briefly and conversationally; plain text.",
        Channel::Web => "You are chatting with this person in a web chat. Reply briefly and conversationally.",
        Channel::Voice => "You are on a phone call.",
    }
}

fn text_of(m: &Message) -> String {
    m.content
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The conversation's transcript as chat-completions messages. Every assistant tool call gets
/// a tool result (an interrupted run left none: the model is told so), as the API requires.
pub(crate) fn history_messages(system: String, items: &[Message]) -> Vec<Value> {
    let mut out = vec![json!({"role": "system", "content": system})];
    let mut open_calls: Vec<String> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let close_open = |out: &mut Vec<Value>, open: &mut Vec<String>, answered: &HashSet<String>| {
        for id in open.drain(..) {
            if !answered.contains(&id) {
                out.push(json!({"role": "tool", "tool_call_id": id,
                    "content": json!({"ok": false, "error": {"code": "interrupted", "message": "This tool run was interrupted; its outcome is unknown."}}).to_string()}));
            }
        }
    };
    for m in items {
        match m.kind {
            MessageKind::FunctionCall => {
                let id = m
                    .content
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let name = m
                    .content
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let args = match m.content.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "{}".into(),
                };
                let call = json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}});
                // Calls of one model turn share one assistant message.
                let extend = !open_calls.is_empty()
                    && out.last().is_some_and(|l| l.get("tool_calls").is_some());
                if extend {
                    if let Some(calls) = out
                        .last_mut()
                        .and_then(|l| l.get_mut("tool_calls"))
                        .and_then(Value::as_array_mut)
                    {
                        calls.push(call);
                    }
                } else {
                    close_open(&mut out, &mut open_calls, &answered);
                    out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
                }
                open_calls.push(id);
            }
            MessageKind::FunctionOutput => {
                let id = m
                    .content
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if !open_calls.contains(&id) || answered.contains(&id) {
                    continue;
                }
                let output = m.content.get("output").cloned().unwrap_or(Value::Null);
                out.push(
                    json!({"role": "tool", "tool_call_id": id, "content": output.to_string()}),
                );
                answered.insert(id);
            }
            MessageKind::Message => {
                close_open(&mut out, &mut open_calls, &answered);
                let text = text_of(m);
                if text.is_empty() {
                    continue;
                }
                match m.role {
                    MessageRole::User => out.push(json!({"role": "user", "content": text})),
                    MessageRole::Assistant => {
                        out.push(json!({"role": "assistant", "content": text}))
                    }
                    // A person from the business wrote into the thread: the contact saw it as
                    // coming from us, so it is our side of the conversation.
                    MessageRole::Human => out.push(json!({"role": "assistant",
                        "content": format!("[Sent by a staff member] {text}")})),
                    // Compliance answers and notes are not the agent's words.
                    MessageRole::System | MessageRole::Tool => {}
                }
            }
        }
    }
    close_open(&mut out, &mut open_calls, &answered);
    out
}

impl Messaging {
    /// Writes the agent's next reply in `conv` from its stored history.
    pub(crate) async fn generate(
        &self,
        org: &OrgId,
        conv: &Conversation,
        agent: &Agent,
    ) -> Result<Generated, MessagingError> {
        let inner = &self.inner;
        let Some(llm) = &inner.llm else {
            return Err(MessagingError::NotConfigured(
                "no chat model is configured (SWITCHBOARD_LLM_API_KEY / SWITCHBOARD_LLM_BASE_URL)"
                    .into(),
            ));
        };
        let toolset = inner
            .registry
            .toolset(&inner.store, org, agent, conv.channel)
            .await;
        let tools: Vec<Tool> = toolset
            .definitions()
            .iter()
            .map(|d| Tool {
                name: d.name.clone(),
                description: d.description.clone(),
                parameters: d.parameters.clone(),
            })
            .collect();
        let system = format!(
            "{}\n\n{}",
            substitute(&agent.instructions, &conv.variables),
            channel_note(conv.channel)
        );
        let ctx = ToolContext {
            store: inner.store.clone(),
            org: org.clone(),
            agent: agent.clone(),
            conversation_id: conv.id.clone(),
            call_id: None,
            contact_number: PhoneNumber::parse(&conv.contact_number).ok(),
            channel: conv.channel,
            toolset: std::sync::Arc::new(toolset),
            passed_agents: vec![agent.id.clone()],
            keypad: None,
        };
        let mut records = Vec::new();
        let rounds = inner.config.max_model_rounds.max(1);
        for round in 0..rounds {
            let history = inner
                .store
                .recent_messages(org, &conv.id, inner.config.history_items)
                .await?;
            let req = Request {
                model: agent.chat_model.clone().unwrap_or_default(),
                messages: history_messages(system.clone(), &history),
                tools: tools.clone(),
                // The loop is bounded: the last round must answer in words.
                forbid_tools: round + 1 == rounds,
                temperature: agent.temperature,
                response_format: None,
            };
            let completion: Completion = match llm.complete(&req).await {
                Ok(c) => c,
                Err(e) => {
                    bump(&inner.stats.model_failures);
                    return Err(e.into());
                }
            };
            if completion.tool_calls.is_empty() || req.forbid_tools {
                let Some(text) = completion.content else {
                    bump(&inner.stats.model_failures);
                    return Err(MessagingError::Model(switchboard_llm::LlmError::Malformed(
                        "the model answered no text on its last round".into(),
                    )));
                };
                return Ok(Generated {
                    text,
                    tool_calls: records,
                });
            }
            for call in &completion.tool_calls {
                let now = inner.clock.now();
                let args: Value = serde_json::from_str(&call.arguments)
                    .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                let item = Message {
                    id: MessageId::generate(),
                    conversation_id: conv.id.clone(),
                    role: MessageRole::Assistant,
                    kind: MessageKind::FunctionCall,
                    content: json!({"call_id": call.id, "name": call.name, "arguments": args}),
                    external_id: Some(call.id.clone()),
                    delivery_status: None,
                    delivery_error: None,
                    created_at: now,
                };
                inner
                    .store
                    .store_outbound(org, &conv.id, std::slice::from_ref(&item), false, None)
                    .await?;
                let (output, status) = match inner
                    .registry
                    .execute(&ctx, Some(&call.id), &call.name, &call.arguments)
                    .await
                {
                    Some(o) => (o.output, o.status.to_owned()),
                    None => (
                        json!({"ok": false, "error": {"code": "duplicate", "message": "This tool call already ran."}}),
                        "duplicate".to_owned(),
                    ),
                };
                let out_item = Message {
                    id: MessageId::generate(),
                    conversation_id: conv.id.clone(),
                    role: MessageRole::Tool,
                    kind: MessageKind::FunctionOutput,
                    content: json!({"call_id": call.id, "name": call.name, "output": output, "status": status}),
                    external_id: Some(call.id.clone()),
                    delivery_status: None,
                    delivery_error: None,
                    created_at: inner.clock.now(),
                };
                inner
                    .store
                    .store_outbound(org, &conv.id, std::slice::from_ref(&out_item), false, None)
                    .await?;
                records.push(ToolRecord {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: args,
                    output,
                    status,
                });
            }
        }
        // Unreachable: the last round forbids tools and returns above.
        Err(MessagingError::Model(switchboard_llm::LlmError::Malformed(
            "tool loop ended without an answer".into(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::ids::ConversationId;
    use switchboard_domain::Timestamp;

    fn item(role: MessageRole, kind: MessageKind, content: Value) -> Message {
        Message {
            id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            role,
            kind,
            content,
            external_id: None,
            delivery_status: None,
            delivery_error: None,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn history_pairs_every_tool_call_with_a_result() {
        let items = vec![
            item(
                MessageRole::User,
                MessageKind::Message,
                json!({"text": "Book me at 10"}),
            ),
            item(
                MessageRole::Assistant,
                MessageKind::FunctionCall,
                json!({"call_id": "c1", "name": "book_appointment", "arguments": {"start": "2026-11-23T10:00"}}),
            ),
            item(
                MessageRole::Assistant,
                MessageKind::FunctionCall,
                json!({"call_id": "c2", "name": "lookup_contact", "arguments": {}}),
            ),
            item(
                MessageRole::Tool,
                MessageKind::FunctionOutput,
                json!({"call_id": "c1", "output": {"ok": true}}),
            ),
            // c2's output never got written (a crash): the model is told it was interrupted.
            item(
                MessageRole::Human,
                MessageKind::Message,
                json!({"text": "Done by hand"}),
            ),
            item(
                MessageRole::System,
                MessageKind::Message,
                json!({"text": "You have been unsubscribed"}),
            ),
        ];
        let h = history_messages("sys".into(), &items);
        assert_eq!(h[0]["role"], "system");
        assert_eq!(h[1], json!({"role": "user", "content": "Book me at 10"}));
        assert_eq!(h[2]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            h[2]["tool_calls"][0]["function"]["arguments"],
            "{\"start\":\"2026-11-23T10:00\"}"
        );
        assert_eq!(h[3]["tool_call_id"], "c1");
        assert_eq!(h[4]["tool_call_id"], "c2");
        assert!(h[4]["content"]
            .as_str()
            .is_some_and(|c| c.contains("interrupted")));
        assert_eq!(h[5]["role"], "assistant");
        assert!(h[5]["content"]
            .as_str()
            .is_some_and(|c| c.ends_with("Done by hand")));
        assert_eq!(h.len(), 6);
    }
}
