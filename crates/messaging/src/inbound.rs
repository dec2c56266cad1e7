//! The inbound text path behind `POST /twilio/messaging`: store the message in its session
//! (with the reply job in the same transaction), answer compliance keywords, and wait up to
//! the reply budget for the agent so the reply can ride on the webhook's TwiML answer.

use crate::jobs::{Rendezvous, Slot};
use crate::{bump, Messaging, MessagingError, REPLY_JOB};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard_domain::entities::Message;
use switchboard_domain::ids::{AgentId, MessageId, OrgId};
use switchboard_domain::messaging::{keyword, Keyword};
use switchboard_domain::values::{Channel, MessageKind, MessageRole, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{InboundResult, NewJob};
use switchboard_twilio::twiml;

const OPT_OUT_TEXT: &str = "You have been unsubscribed and will not receive any more messages from us. Reply START to resubscribe.";
const OPT_IN_TEXT: &str =
    "You have been resubscribed and can receive messages from us again. Reply STOP to unsubscribe.";

/// An inbound text after routing and the signature check.
#[derive(Debug, Clone)]
pub struct InboundText {
    /// The organization our number belongs to.
    pub org: OrgId,
    /// The agent the number routes to.
    pub agent_id: Option<AgentId>,
    /// `sms` or `whatsapp`.
    pub channel: Channel,
    /// The texter.
    pub contact: PhoneNumber,
    /// Our number.
    pub our_number: PhoneNumber,
    /// Twilio's MessageSid (the dedupe key).
    pub message_sid: String,
    /// The text.
    pub body: String,
    /// Attached media (URL, content type).
    pub media: Vec<(String, String)>,
    /// WhatsApp profile name, when sent.
    pub profile_name: Option<String>,
}

impl Messaging {
    /// Stores an inbound text and answers the webhook's TwiML: a compliance answer, the
    /// agent's reply when it is ready within the budget, or an empty response (the reply then
    /// follows through the REST API).
    pub async fn receive(&self, msg: InboundText) -> Result<String, MessagingError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let org = msg.org.clone();
        let mut content = json!({"text": msg.body});
        if !msg.media.is_empty() {
            content["media"] = Value::Array(
                msg.media
                    .iter()
                    .map(|(url, ct)| json!({"url": url, "content_type": ct}))
                    .collect(),
            );
        }
        if let Some(p) = &msg.profile_name {
            content["profile_name"] = json!(p);
        }
        let lease_until = Timestamp::from_millis(
            now.millis() + i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000),
        );
        let input = switchboard_store::InboundText {
            channel: msg.channel,
            contact: msg.contact.to_string(),
            our_number: msg.our_number.to_string(),
            agent_id: msg.agent_id.clone(),
            dedupe_key: Some(format!("twilio:{}", msg.message_sid)),
            external_id: Some(msg.message_sid.clone()),
            content,
            keyword: keyword(&msg.body),
            track_contact: true,
            variables: json!({
                "contact_number": msg.contact,
                "our_number": msg.our_number,
                "channel": msg.channel.as_str(),
                "contact_name": msg.profile_name,
            }),
            at: now,
            // Claimed by this instance at once: it runs inline below. If we die, the lease
            // expires and another worker sends the reply.
            reply: Some(NewJob {
                kind: REPLY_JOB.into(),
                payload: json!({}),
                run_at: now,
                lease: Some((inner.owner.clone(), lease_until)),
                subject: None,
            }),
            reply_cap: Some(inner.config.max_replies_per_org),
        };
        let received = match inner.store.receive_text(&org, &input).await? {
            InboundResult::Duplicate { message_id, .. } => {
                bump(&inner.stats.duplicates);
                tracing::info!(org_id = %org, message_id = %message_id, "retried webhook: message already stored, no second reply");
                return Ok(twiml::empty());
            }
            InboundResult::Stored(r) => r,
        };
        bump(&inner.stats.inbound);
        if let Some(c) = &received.closed {
            inner
                .events
                .conversation("conversation.closed", &org, c, now);
        }
        if received.started {
            inner
                .events
                .conversation("conversation.started", &org, &received.conversation, now);
        }
        inner
            .events
            .message("message.received", &org, &received.message, now);
        tracing::info!(org_id = %org, conversation_id = %received.conversation.id,
            channel = msg.channel.as_str(), started = received.started, "text received");

        let notice = match received.keyword {
            Some(Keyword::OptOut) => {
                bump(&inner.stats.opt_outs);
                // Confirmed once: a second STOP from an opted-out contact gets silence.
                (!received.was_opted_out).then(|| OPT_OUT_TEXT.to_owned())
            }
            Some(Keyword::OptIn) => Some(OPT_IN_TEXT.to_owned()),
            Some(Keyword::Help) => Some(self.help_text(&org).await?),
            None => None,
        };
        if let Some(text) = notice {
            let kind = received.keyword.map(Keyword::as_str).unwrap_or_default();
            let m = Message {
                id: MessageId::generate(),
                conversation_id: received.conversation.id.clone(),
                role: MessageRole::System,
                kind: MessageKind::Message,
                content: json!({"text": text, "compliance": kind}),
                external_id: None,
                delivery_status: Some("sending".into()),
                delivery_error: None,
                created_at: now,
            };
            inner
                .store
                .store_outbound(
                    &org,
                    &received.conversation.id,
                    std::slice::from_ref(&m),
                    false,
                    None,
                )
                .await?;
            inner.events.message("message.sent", &org, &m, now);
            let cb = inner.delivery.status_callback(&m.id);
            return Ok(twiml::messages(&[(&text, cb.as_deref())]));
        }
        if received.reply_waits {
            bump(&inner.stats.replies_deferred);
            tracing::info!(org_id = %org, conversation_id = %received.conversation.id,
                cap = inner.config.max_replies_per_org,
                "the organization is at its cap of replies in flight: the reply waits for a free slot and goes out through the REST API");
            return Ok(twiml::empty());
        }
        let Some(job) = received.job else {
            if received.opted_out {
                tracing::info!(org_id = %org, "contact opted out: stored, no reply");
            } else if received.conversation.agent_id.is_none() {
                tracing::warn!(org_id = %org, "number has no agent: stored, no reply");
            }
            return Ok(twiml::empty());
        };
        let rv = Arc::new(Rendezvous::default());
        let worker = self.clone();
        let task_rv = rv.clone();
        let conv = received.conversation.clone();
        tokio::spawn(async move { worker.run_guarded(job, Some(task_rv), Some(conv)).await });
        let _ = tokio::time::timeout(inner.config.reply_budget, rv.ready.notified()).await;
        let mut slot = rv.slot.lock().await;
        match std::mem::replace(&mut *slot, Slot::Gone) {
            Slot::Ready(parts) => {
                let callbacks: Vec<Option<String>> = parts
                    .iter()
                    .map(|p| inner.delivery.status_callback(&p.id))
                    .collect();
                let texts: Vec<String> = parts
                    .iter()
                    .map(|p| {
                        p.content
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect();
                let bodies: Vec<(&str, Option<&str>)> = texts
                    .iter()
                    .zip(&callbacks)
                    .map(|(t, c)| (t.as_str(), c.as_deref()))
                    .collect();
                Ok(twiml::messages(&bodies))
            }
            // Not ready in time (the task now sends it through the REST API), or nothing
            // to send (the model failed: the job retries later).
            _ => Ok(twiml::empty()),
        }
    }

    async fn help_text(&self, org: &OrgId) -> Result<String, MessagingError> {
        let settings = self.inner.store.get_settings(org).await?;
        Ok(match settings.help_text {
            Some(t) => t,
            None => {
                let name = self.inner.store.get_org(org).await?.name;
                format!("{name}: reply to this message and we will get back to you. Reply STOP to unsubscribe.")
            }
        })
    }
}
