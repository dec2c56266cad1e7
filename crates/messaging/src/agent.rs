//! Writing the agent's reply: the instructions with the conversation's variables, the
//! conversation's history, and a bounded tool loop through the shared registry. Function
//! calls and their outputs are stored as transcript items as they happen, so a reply retried
//! after a crash continues from what already ran instead of running tools again.

use crate::{bump, Messaging, MessagingError};
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::entities::{Conversation, Message};
use switchboard_domain::ids::{MessageId, OrgId};
use switchboard_domain::values::{Channel, MessageKind, MessageRole, PhoneNumber};
use switchboard_llm::{history_messages, Completion, Request, Tool};
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
        let tools: Vec<Tool> = toolset.chat_tools();
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
