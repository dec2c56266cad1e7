//! The in-process event stream: what happened in conversations, for the dashboard, webhooks
//! and tests to follow. Published after the state change committed. Multi-instance delivery
//! (a durable outbox) replaces this bus later; the event shapes stay.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use switchboard_domain::entities::{Conversation, Message};
use switchboard_domain::ids::{ConversationId, MessageId, OrgId};
use switchboard_domain::Timestamp;
use tokio::sync::broadcast;

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unique id (`evt_...`).
    pub id: String,
    /// `message.received`, `message.sent`, `message.failed`, `conversation.started`,
    /// `conversation.closed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Organization.
    pub org_id: OrgId,
    /// When it happened.
    pub at: Timestamp,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Message, for message events.
    pub message_id: Option<MessageId>,
    /// The conversation or message as stored.
    pub data: Value,
}

/// A broadcast bus; slow subscribers miss old events rather than slowing the platform.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus {
    /// A bus keeping up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> EventBus {
        EventBus {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Follows events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    fn publish(&self, e: Event) {
        // No subscriber is not an error.
        let _ = self.tx.send(Arc::new(e));
    }

    /// `conversation.started` / `conversation.closed`.
    pub fn conversation(&self, kind: &'static str, org: &OrgId, c: &Conversation, at: Timestamp) {
        self.publish(Event {
            id: format!("evt_{}", switchboard_domain::ids::random_token(20)),
            kind,
            org_id: org.clone(),
            at,
            conversation_id: c.id.clone(),
            message_id: None,
            data: serde_json::to_value(c).unwrap_or(Value::Null),
        });
    }

    /// `message.received` / `message.sent` / `message.failed`.
    pub fn message(&self, kind: &'static str, org: &OrgId, m: &Message, at: Timestamp) {
        self.publish(Event {
            id: format!("evt_{}", switchboard_domain::ids::random_token(20)),
            kind,
            org_id: org.clone(),
            at,
            conversation_id: m.conversation_id.clone(),
            message_id: Some(m.id.clone()),
            data: serde_json::to_value(m).unwrap_or(Value::Null),
        });
    }
}
