//! What the REST API asks of messaging: business-initiated conversations, a human's message
//! into a live thread, and the web test chat.

use crate::agent::ToolRecord;
use crate::delivery::Template;
use crate::{Messaging, MessagingError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_domain::agent::Agent;
use switchboard_domain::entities::{Conversation, Message, NewConversation};
use switchboard_domain::ids::{AgentId, ConversationId, MessageId, OrgId};
use switchboard_domain::messaging::{
    number_channel, split_body, MAX_BODY_CHARS, WHATSAPP_WINDOW_MS,
};
use switchboard_domain::values::{
    Channel, ConversationStatus, Direction, MessageKind, MessageRole, PhoneNumber,
};
use switchboard_domain::ValidationError;
use switchboard_store::{InboundResult, StoreError};

/// The body of `POST /api/v1/conversations`: start a conversation with a contact. Give
/// exactly one of `first_message`, `generate_first_message: true` (the agent writes it from
/// its instructions and the variables) or `content_sid` (an approved WhatsApp template, the
/// only way to open a WhatsApp conversation more than 24 hours after the contact's last
/// message).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOutbound {
    /// `sms` or `whatsapp`.
    pub channel: Channel,
    /// The contact's E.164 number.
    pub contact_number: PhoneNumber,
    /// Our sender: one of the organization's active numbers on the channel. Default: the
    /// first one answered by `agent_id`, else the first one.
    #[serde(default)]
    pub from_number: Option<PhoneNumber>,
    /// The agent that continues the conversation. Default: the sender number's agent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<AgentId>,
    /// Variables for the agent's instructions (`{{customer_name}}`...), a JSON object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    /// The first message, sent as written (1 to 1,600 characters).
    #[serde(default)]
    pub first_message: Option<String>,
    /// Let the agent write the first message.
    #[serde(default)]
    pub generate_first_message: bool,
    /// WhatsApp template (`HX...`) to send instead of a free-form message.
    #[serde(default)]
    pub content_sid: Option<String>,
    /// The template's variables, e.g. `{"1": "Jane"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub content_variables: Option<Value>,
}

/// A started conversation and its first message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The conversation.
    pub conversation: Conversation,
    /// The first message as sent.
    pub message: Message,
}

/// One turn of the web test chat.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatTurn {
    /// The chat's conversation (the same one while the session is open).
    #[schema(value_type = String)]
    pub conversation_id: ConversationId,
    /// The agent's reply.
    pub reply: String,
    /// Tools the agent ran for this turn.
    pub tool_calls: Vec<ToolRecord>,
}

fn check_text(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_object(field: &str, v: &Value) -> Result<(), ValidationError> {
    if !v.is_object() {
        return Err(ValidationError::new(field, "must be a JSON object"));
    }
    if v.to_string().len() > 16 * 1024 {
        return Err(ValidationError::new(field, "must be at most 16 KiB"));
    }
    Ok(())
}

fn not_found(e: StoreError, what: &'static str) -> MessagingError {
    match e {
        StoreError::NotFound => MessagingError::NotFound(what),
        other => other.into(),
    }
}

impl Messaging {
    async fn check_reachable(
        &self,
        org: &OrgId,
        channel: Channel,
        contact: &str,
        template: bool,
    ) -> Result<(), MessagingError> {
        let store = &self.inner.store;
        if store.contact_opted_out(org, contact).await? {
            return Err(MessagingError::OptedOut);
        }
        if channel == Channel::Whatsapp && !template {
            let open = store
                .last_inbound_at(org, channel, contact)
                .await?
                .is_some_and(|t| self.inner.clock.now().millis() - t.millis() < WHATSAPP_WINDOW_MS);
            if !open {
                return Err(MessagingError::WhatsappWindowClosed);
            }
        }
        Ok(())
    }

    /// Starts a business-initiated conversation: the first message is written (or generated),
    /// the conversation is stored with it, and it is sent through the REST API. An open
    /// session with the contact on that number is closed first. If Twilio refuses the
    /// message, the conversation is kept, marked `failed` with the reason, and the error is
    /// returned.
    /// Checks a business-started conversation request and resolves its sender number and
    /// agent: everything that can be refused before anything is sent.
    pub(crate) async fn resolve(
        &self,
        org: &OrgId,
        req: &NewOutbound,
    ) -> Result<(switchboard_domain::entities::OwnedNumber, Agent), MessagingError> {
        let inner = &self.inner;
        let store = &inner.store;
        let Some(nc) = number_channel(req.channel) else {
            return Err(ValidationError::new("channel", "must be `sms` or `whatsapp`").into());
        };
        let sources = usize::from(req.first_message.is_some())
            + usize::from(req.generate_first_message)
            + usize::from(req.content_sid.is_some());
        if sources != 1 {
            return Err(ValidationError::new(
                "first_message",
                "give exactly one of `first_message`, `generate_first_message: true` or `content_sid`",
            )
            .into());
        }
        if let Some(t) = &req.first_message {
            check_text("first_message", t)?;
        }
        if let Some(sid) = &req.content_sid {
            let ok = req.channel == Channel::Whatsapp
                && sid.len() == 34
                && sid.starts_with("HX")
                && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(ValidationError::new(
                    "content_sid",
                    "must be a WhatsApp content template SID: `HX` followed by 32 hexadecimal digits",
                )
                .into());
            }
        }
        if req.content_variables.is_some() && req.content_sid.is_none() {
            return Err(ValidationError::new("content_variables", "needs `content_sid`").into());
        }
        if let Some(v) = &req.content_variables {
            check_object("content_variables", v)?;
        }
        if let Some(v) = &req.variables {
            check_object("variables", v)?;
        }
        let numbers = store.active_numbers(org, nc).await?;
        let sender = match &req.from_number {
            Some(f) => numbers.iter().find(|n| &n.number == f).ok_or_else(|| {
                ValidationError::new(
                    "from_number",
                    format!(
                        "is not an active {} number of this organization",
                        req.channel
                    ),
                )
            })?,
            None => numbers
                .iter()
                .find(|n| req.agent_id.is_some() && n.agent_id == req.agent_id)
                .or(numbers.first())
                .ok_or_else(|| {
                    ValidationError::new(
                        "from_number",
                        format!("the organization has no active {} number", req.channel),
                    )
                })?,
        };
        let Some(agent_id) = req.agent_id.clone().or(sender.agent_id.clone()) else {
            return Err(ValidationError::new(
                "agent_id",
                "is required: the sender number has no agent",
            )
            .into());
        };
        let agent = match store.get_agent(org, &agent_id).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => {
                return Err(
                    ValidationError::new("agent_id", "no such agent in this organization").into(),
                )
            }
            Err(e) => return Err(e.into()),
        };
        let contact = req.contact_number.to_string();
        self.check_reachable(org, req.channel, &contact, req.content_sid.is_some())
            .await?;
        inner.delivery.credentials(org).await?;
        Ok((sender.clone(), agent))
    }

    pub async fn start_conversation(
        &self,
        org: &OrgId,
        req: NewOutbound,
    ) -> Result<Started, MessagingError> {
        let inner = &self.inner;
        let store = &inner.store;
        let (sender, agent) = self.resolve(org, &req).await?;
        let contact = req.contact_number.to_string();
        let known = store.ensure_contact(org, &req.contact_number).await?;
        let mut variables = req.variables.clone().unwrap_or_else(|| json!({}));
        if let Some(obj) = variables.as_object_mut() {
            let defaults = [
                ("contact_number", json!(contact)),
                ("our_number", json!(sender.number)),
                ("channel", json!(req.channel.as_str())),
                ("contact_name", json!(known.name)),
            ];
            for (k, v) in defaults {
                if !v.is_null() {
                    obj.entry(k).or_insert(v);
                }
            }
        }
        let (role, content) = match (&req.first_message, &req.content_sid) {
            (Some(text), _) => (MessageRole::Human, json!({"text": text})),
            (None, Some(sid)) => (
                MessageRole::Assistant,
                json!({"content_sid": sid, "content_variables": req.content_variables}),
            ),
            (None, None) => {
                let text = self.opening(&agent, req.channel, &variables).await?;
                (MessageRole::Assistant, json!({"text": text}))
            }
        };
        let now = inner.clock.now();
        let msg = Message {
            id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            role,
            kind: MessageKind::Message,
            content,
            external_id: None,
            delivery_status: Some("pending".into()),
            delivery_error: None,
            created_at: now,
        };
        let (conv, closed) = store
            .start_outbound_conversation(
                org,
                NewConversation {
                    channel: req.channel,
                    direction: Direction::Outbound,
                    contact_number: contact,
                    our_number: Some(sender.number.to_string()),
                    agent_id: Some(agent.id.clone()),
                    variables,
                    started_at: now,
                },
                Some(&msg),
            )
            .await?;
        if let Some(c) = &closed {
            inner
                .events
                .conversation("conversation.closed", org, c, now);
        }
        inner
            .events
            .conversation("conversation.started", org, &conv, now);
        let msg = Message {
            conversation_id: conv.id.clone(),
            ..msg
        };
        let variables_text = req.content_variables.as_ref().map(Value::to_string);
        let template = req.content_sid.as_deref().map(|sid| Template {
            content_sid: sid,
            variables: variables_text.as_deref(),
        });
        match inner.delivery.send_once(org, &conv, &msg, template).await {
            Ok(sent) => Ok(Started {
                conversation: conv,
                message: sent,
            }),
            Err(err) => {
                store
                    .fail_conversation(org, &conv.id, &err.to_string(), inner.clock.now())
                    .await?;
                Err(err)
            }
        }
    }

    /// The agent's opening message for a business-started conversation (no tools: nothing
    /// has been said yet).
    async fn opening(
        &self,
        agent: &Agent,
        channel: Channel,
        variables: &Value,
    ) -> Result<String, MessagingError> {
        let Some(llm) = &self.inner.llm else {
            return Err(MessagingError::NotConfigured(
                "no chat model is configured (SWITCHBOARD_LLM_API_KEY / SWITCHBOARD_LLM_BASE_URL)"
                    .into(),
            ));
        };
        let system = format!(
            "{}\n\n{}",
            switchboard_domain::agent::substitute(&agent.instructions, variables),
            crate::agent::channel_note(channel)
        );
        let req = switchboard_llm::Request {
            model: agent.chat_model.clone().unwrap_or_default(),
            messages: vec![
                json!({"role": "system", "content": system}),
                json!({"role": "user", "content": "[Write the first message you send to start this conversation. Answer with the message text only.]"}),
            ],
            temperature: agent.temperature,
            ..switchboard_llm::Request::default()
        };
        let completion = llm.complete(&req).await.inspect_err(|_| {
            crate::bump(&self.inner.stats.model_failures);
        })?;
        let text = completion.content.unwrap_or_default();
        // An opening longer than one message is cut at a word: it is a first text, not an essay.
        split_body(&text, MAX_BODY_CHARS)
            .into_iter()
            .next()
            .ok_or_else(|| {
                MessagingError::Model(switchboard_llm::LlmError::Malformed(
                    "the model wrote an empty first message".into(),
                ))
            })
    }

    /// Sends a message written by a person of the business into a live SMS or WhatsApp
    /// conversation; the agent sees it in later turns.
    pub async fn send_human(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        text: &str,
    ) -> Result<Message, MessagingError> {
        let inner = &self.inner;
        check_text("text", text)?;
        let conv = inner
            .store
            .get_conversation(org, conversation)
            .await
            .map_err(|e| not_found(e, "no such conversation"))?;
        if !matches!(conv.channel, Channel::Sms | Channel::Whatsapp) {
            return Err(MessagingError::UnsupportedChannel(format!(
                "messages can be sent into sms and whatsapp conversations, not {}",
                conv.channel
            )));
        }
        if conv.status != ConversationStatus::Active {
            return Err(MessagingError::ConversationClosed(conv.status.as_str()));
        }
        self.check_reachable(org, conv.channel, &conv.contact_number, false)
            .await?;
        let msg = Message {
            id: MessageId::generate(),
            conversation_id: conv.id.clone(),
            role: MessageRole::Human,
            kind: MessageKind::Message,
            content: json!({"text": text}),
            external_id: None,
            delivery_status: Some("pending".into()),
            delivery_error: None,
            created_at: inner.clock.now(),
        };
        inner
            .store
            .store_outbound(org, &conv.id, std::slice::from_ref(&msg), false, None)
            .await?;
        inner.delivery.send_once(org, &conv, &msg, None).await
    }

    /// One turn of the web test chat: the message joins the session's conversation (same
    /// session id, same agent, within the window) and the agent answers synchronously.
    pub async fn web_chat(
        &self,
        org: &OrgId,
        agent_id: &AgentId,
        session_id: &str,
        text: &str,
    ) -> Result<ChatTurn, MessagingError> {
        let inner = &self.inner;
        let ok = (1..=100).contains(&session_id.len())
            && session_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !ok {
            return Err(ValidationError::new(
                "session_id",
                "must be 1 to 100 letters, digits, `-`, `_`, `.` or `:`",
            )
            .into());
        }
        check_text("message", text)?;
        let agent = inner
            .store
            .get_agent(org, agent_id)
            .await
            .map_err(|e| not_found(e, "no such agent"))?;
        let now = inner.clock.now();
        let input = switchboard_store::InboundText {
            channel: Channel::Web,
            contact: session_id.to_owned(),
            our_number: agent.id.to_string(),
            agent_id: Some(agent.id.clone()),
            dedupe_key: None,
            external_id: None,
            content: json!({"text": text}),
            keyword: None,
            track_contact: false,
            variables: json!({"session_id": session_id, "channel": "web"}),
            at: now,
            reply: None,
            reply_cap: None,
        };
        let received = match inner.store.receive_text(org, &input).await? {
            InboundResult::Stored(r) => r,
            InboundResult::Duplicate { .. } => {
                return Err(MessagingError::Store(StoreError::Conflict(
                    "duplicate message".into(),
                )))
            }
        };
        crate::bump(&inner.stats.inbound);
        if received.started {
            inner
                .events
                .conversation("conversation.started", org, &received.conversation, now);
        }
        inner
            .events
            .message("message.received", org, &received.message, now);
        let conv = received.conversation;
        let generated = match self.generate(org, &conv, &agent).await {
            Ok(g) => g,
            Err(e) => {
                inner
                    .store
                    .set_conversation_error(org, &conv.id, Some(&e.to_string()))
                    .await?;
                return Err(e);
            }
        };
        let at = inner.clock.now();
        let parts: Vec<Message> = split_body(&generated.text, MAX_BODY_CHARS)
            .into_iter()
            .map(|t| Message {
                id: MessageId::generate(),
                conversation_id: conv.id.clone(),
                role: MessageRole::Assistant,
                kind: MessageKind::Message,
                content: json!({"text": t, "reply_to": received.message.id}),
                external_id: None,
                delivery_status: None,
                delivery_error: None,
                created_at: at,
            })
            .collect();
        inner
            .store
            .store_outbound(org, &conv.id, &parts, conv.error.is_some(), None)
            .await?;
        for p in &parts {
            inner.events.message("message.sent", org, p, at);
        }
        Ok(ChatTurn {
            conversation_id: conv.id,
            reply: generated.text,
            tool_calls: generated.tool_calls,
        })
    }
}
