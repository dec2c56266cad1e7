//! Sending stored messages through the Twilio REST API, and merging delivery reports. A
//! message is written (`pending`) before it is sent and moves to `sending` just before the
//! request, so a restart can tell "never tried" (send it) from "outcome unknown" (do not send
//! it twice).

use crate::{bump, EventBus, MessagingError, MessagingStats};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use switchboard_domain::entities::{Conversation, Message, NewConversation};
use switchboard_domain::ids::{MessageId, OrgId};
use switchboard_domain::messaging::{address, delivery_failed};
use switchboard_domain::values::{
    Channel, Direction, MessageKind, MessageRole, NumberChannel, PhoneNumber,
};
use switchboard_domain::Clock;
use switchboard_store::{Store, TwilioCredentials};
use switchboard_tools::{TextSender, ToolContext, ToolError};
use switchboard_twilio::rest::{OutboundMessage, RestClient, RestError};

/// Why a send did not go through.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Certainly not sent (connection refused, rate limited): the message is `pending` again
    /// and may be retried.
    Retry(String),
    /// Refused, or the outcome is unknown: the message is `failed` and is not resent.
    Failed(MessagingError),
}

/// The delivery path shared by replies, API sends and the `send_sms` tool.
pub struct Delivery {
    store: Store,
    rest: RestClient,
    public_url: Option<String>,
    events: EventBus,
    clock: Clock,
    stats: Arc<MessagingStats>,
}

/// A WhatsApp template to send instead of a body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Template<'a> {
    pub(crate) content_sid: &'a str,
    pub(crate) variables: Option<&'a str>,
}

fn describe(e: &RestError) -> String {
    match e {
        RestError::Api {
            code: Some(code),
            message,
            ..
        } => format!("twilio {code}: {message}"),
        other => other.to_string(),
    }
}

impl Delivery {
    pub(crate) fn new(
        store: Store,
        rest: RestClient,
        public_url: Option<String>,
        events: EventBus,
        clock: Clock,
        stats: Arc<MessagingStats>,
    ) -> Delivery {
        Delivery {
            store,
            rest,
            public_url,
            events,
            clock,
            stats,
        }
    }

    /// Where Twilio should post this message's delivery reports (our id in the query, since
    /// a TwiML reply's SID is unknown until the first report).
    pub fn status_callback(&self, id: &MessageId) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/twilio/messaging/status?message_id={id}"))
    }

    pub(crate) async fn credentials(
        &self,
        org: &OrgId,
    ) -> Result<TwilioCredentials, MessagingError> {
        self.store.twilio_credentials(org).await?.ok_or_else(|| {
            MessagingError::NotConfigured(
                "the organization has no Twilio credentials (PUT /api/v1/settings)".into(),
            )
        })
    }

    /// Sends a stored `pending` message of `conv` (a body, or a WhatsApp template).
    pub(crate) async fn send_stored(
        &self,
        org: &OrgId,
        conv: &Conversation,
        msg: &Message,
        template: Option<Template<'_>>,
    ) -> Result<Message, SendError> {
        let creds = match self.credentials(org).await {
            Ok(c) => c,
            Err(e) => {
                self.failed(org, msg, &e.to_string()).await;
                return Err(SendError::Failed(e));
            }
        };
        let Some(our) = conv.our_number.as_deref() else {
            self.failed(org, msg, "no sender number").await;
            return Err(SendError::Failed(MessagingError::UnsupportedChannel(
                "the conversation has no sender number".into(),
            )));
        };
        let store_err = |e| SendError::Failed(MessagingError::Store(e));
        self.store
            .set_delivery(org, &msg.id, "sending", None, None)
            .await
            .map_err(store_err)?;
        let to = address(conv.channel, &conv.contact_number);
        let from = address(conv.channel, our);
        let callback = self.status_callback(&msg.id);
        let body = msg.content.get("text").and_then(Value::as_str);
        let out = OutboundMessage {
            to: &to,
            from: &from,
            body: if template.is_some() { None } else { body },
            content_sid: template.map(|t| t.content_sid),
            content_variables: template.and_then(|t| t.variables),
            status_callback: callback.as_deref(),
        };
        match self
            .rest
            .at(creds.space.as_deref())
            .send_message(&creds.account_sid, creds.auth_token.expose(), &out)
            .await
        {
            Ok(sent) => {
                self.store
                    .set_delivery(org, &msg.id, &sent.status, Some(&sent.sid), None)
                    .await
                    .map_err(store_err)?;
                bump(&self.stats.sent);
                let mut sent_msg = msg.clone();
                sent_msg.delivery_status = Some(sent.status);
                sent_msg.external_id = Some(sent.sid);
                self.events
                    .message("message.sent", org, &sent_msg, self.clock.now());
                Ok(sent_msg)
            }
            Err(e) => {
                let transient = match &e {
                    RestError::Transport(t) => t.is_connect(),
                    RestError::Api { status, .. } => *status == 429,
                    RestError::Malformed(_) => false,
                };
                let why = describe(&e);
                if transient {
                    tracing::warn!(org_id = %org, message_id = %msg.id, error = %why, "message not sent; will retry");
                    self.store
                        .set_delivery(org, &msg.id, "pending", None, Some(&why))
                        .await
                        .map_err(store_err)?;
                    return Err(SendError::Retry(why));
                }
                let why = if e.outcome_unknown() {
                    format!("outcome unknown, not resent to avoid a duplicate: {why}")
                } else {
                    why
                };
                self.failed(org, msg, &why).await;
                Err(SendError::Failed(e.into()))
            }
        }
    }

    /// [`Delivery::send_stored`] for a send no job will retry (an API call, a tool): a
    /// message that could be retried later is failed now, and the caller gets the error.
    pub(crate) async fn send_once(
        &self,
        org: &OrgId,
        conv: &Conversation,
        msg: &Message,
        template: Option<Template<'_>>,
    ) -> Result<Message, MessagingError> {
        match self.send_stored(org, conv, msg, template).await {
            Ok(sent) => Ok(sent),
            Err(SendError::Retry(why)) => {
                self.failed(org, msg, &why).await;
                Err(MessagingError::TwilioUnreachable(why))
            }
            Err(SendError::Failed(e)) => Err(e),
        }
    }

    /// Marks a message failed, counts and publishes it.
    pub(crate) async fn failed(&self, org: &OrgId, msg: &Message, why: &str) {
        tracing::warn!(org_id = %org, message_id = %msg.id, error = %why, "message failed");
        if let Err(se) = self
            .store
            .set_delivery(org, &msg.id, "failed", None, Some(why))
            .await
        {
            tracing::error!(error = %se, "cannot record a failed message");
        }
        bump(&self.stats.failed);
        let mut failed = msg.clone();
        failed.delivery_status = Some("failed".into());
        failed.delivery_error = Some(why.to_owned());
        self.events
            .message("message.failed", org, &failed, self.clock.now());
    }

    /// Merges a Twilio delivery report (forward-only). Unknown messages are ignored.
    pub async fn apply_report(
        &self,
        org: &OrgId,
        id: Option<&MessageId>,
        sid: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<Option<Message>, MessagingError> {
        let error = error_code
            .filter(|c| !c.is_empty())
            .map(|c| format!("twilio {c}"));
        let Some((msg, changed)) = self
            .store
            .apply_delivery_report(org, id, sid, status, error.as_deref())
            .await?
        else {
            return Ok(None);
        };
        if changed && delivery_failed(status) {
            bump(&self.stats.failed);
            self.events
                .message("message.failed", org, &msg, self.clock.now());
        }
        Ok(Some(msg))
    }

    /// Sends an SMS to a contact for the `send_sms` tool: from the organization's first
    /// active SMS number, in the open (or a new business-started) session with that contact.
    async fn tool_sms(
        &self,
        ctx: &ToolContext,
        to: &PhoneNumber,
        text: &str,
    ) -> Result<Value, ToolError> {
        let org = &ctx.org;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "send_sms failed");
            ToolError::new(
                "unavailable",
                "The text could not be sent right now; please try again later.",
            )
        };
        let from = match self.store.active_numbers(org, NumberChannel::Sms).await {
            Ok(list) => match list.into_iter().next() {
                Some(n) => n.number,
                None => {
                    return Err(ToolError::new(
                        "no_sms_number",
                        "We have no number to send text messages from.",
                    ))
                }
            },
            Err(e) => return Err(unavailable(&e)),
        };
        match self.store.contact_opted_out(org, to.as_str()).await {
            Ok(true) => {
                return Err(ToolError::new(
                    "opted_out",
                    "That person has opted out of text messages, so I cannot text them.",
                ))
            }
            Ok(false) => {}
            Err(e) => return Err(unavailable(&e)),
        }
        let now = self.clock.now();
        let (conv, started, closed) = self
            .store
            .join_or_start_session(
                org,
                NewConversation {
                    channel: Channel::Sms,
                    direction: Direction::Outbound,
                    contact_number: to.to_string(),
                    our_number: Some(from.to_string()),
                    agent_id: Some(ctx.agent.id.clone()),
                    variables: json!({"contact_number": to, "our_number": from,
                        "source_conversation_id": ctx.conversation_id}),
                    started_at: now,
                },
            )
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(c) = &closed {
            self.events.conversation("conversation.closed", org, c, now);
        }
        if started {
            self.events
                .conversation("conversation.started", org, &conv, now);
        }
        let msg = Message {
            id: MessageId::generate(),
            conversation_id: conv.id.clone(),
            role: MessageRole::Assistant,
            kind: MessageKind::Message,
            content: json!({"text": text, "sent_by_tool": "send_sms",
                "source_conversation_id": ctx.conversation_id}),
            external_id: None,
            delivery_status: Some("pending".into()),
            delivery_error: None,
            created_at: now,
        };
        self.store
            .store_outbound(org, &conv.id, std::slice::from_ref(&msg), false, None)
            .await
            .map_err(|e| unavailable(&e))?;
        // No job retries a tool's text: the agent is told now and can say so.
        match self.send_once(org, &conv, &msg, None).await {
            Ok(sent) => Ok(json!({"ok": true, "message_id": sent.id,
                "conversation_id": conv.id, "status": sent.delivery_status})),
            Err(e) => Err(ToolError::new(
                "send_failed",
                format!("The text could not be sent ({e})."),
            )),
        }
    }
}

impl TextSender for Delivery {
    fn send_sms<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send + 'a>> {
        Box::pin(self.tool_sms(ctx, to, text))
    }
}
