//! A caller coming back on a new media stream of the same call (after a transfer that did
//! not go through): the new task opens a new model session and gives it the conversation so
//! far, rebuilt from the stored transcript (caller and agent turns as heard, tool calls with
//! their results, and system notes such as why the transfer failed), then lets the agent
//! speak first. What the stored transcript lacks is lost, as in a rollover (`rollover.rs`):
//! the audio itself and any turn not yet transcribed when the call left.

use crate::rollover::History;
use serde_json::{json, Value};
use std::collections::HashSet;
use switchboard_domain::entities::Message;
use switchboard_domain::ids::{ConversationId, OrgId};
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_realtime::Shape;
use switchboard_store::{Store, StoreError};

/// A resumed call's conversation, and whether the agent speaks first (after a failed
/// transfer it says why the caller is back; after pressing keys the line speaks next).
#[derive(Debug)]
pub(crate) struct Resume {
    pub(crate) history: History,
    pub(crate) speak_first: bool,
}

/// The most transcript items replayed into a resumed session (the newest are kept).
const MAX_ITEMS: usize = 400;

/// The stored transcript of `conversation`, oldest first.
pub(crate) async fn transcript(
    store: &Store,
    org: &OrgId,
    conversation: &ConversationId,
) -> Result<Vec<Message>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_messages(org, conversation, Some(200), cursor.as_ref())
            .await?;
        out.extend(page.data);
        match page.next_cursor {
            Some(c) if out.len() < 5_000 => {
                cursor = Some(switchboard_domain::entities::Cursor::decode(&c).ok_or_else(
                    || StoreError::Corrupt("an unreadable transcript page cursor".into()),
                )?)
            }
            _ => return Ok(out),
        }
    }
}

/// The conversation items a new session is given for `messages`.
pub(crate) fn history(messages: &[Message], shape: Shape) -> History {
    // A function call is replayed only with its output, and an output only after its call
    // (the Realtime API refuses an output whose call it does not know).
    let outputs: HashSet<&str> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::FunctionOutput)
        .filter_map(|m| m.content["call_id"].as_str())
        .collect();
    let mut called: HashSet<String> = HashSet::new();
    let mut items: Vec<Value> = Vec::new();
    for m in messages {
        let text = m.content["text"].as_str().unwrap_or_default();
        let item = match (m.role, m.kind) {
            (MessageRole::User, MessageKind::Message) if !text.is_empty() => History::user(text),
            (MessageRole::Assistant, MessageKind::Message) if !text.is_empty() => {
                History::agent(shape, text)
            }
            (MessageRole::System, MessageKind::Message) if !text.is_empty() => json!({
                "type": "message", "role": "system",
                "content": [{"type": "input_text", "text": text}]}),
            (_, MessageKind::FunctionCall) => {
                let Some(id) = m.content["call_id"]
                    .as_str()
                    .filter(|id| outputs.contains(id))
                else {
                    continue;
                };
                called.insert(id.to_owned());
                let args = match &m.content["arguments"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                json!({"type": "function_call", "call_id": id,
                    "name": m.content["name"], "arguments": args})
            }
            (_, MessageKind::FunctionOutput) => {
                let Some(id) = m.content["call_id"]
                    .as_str()
                    .filter(|id| called.contains(*id))
                else {
                    continue;
                };
                json!({"type": "function_call_output", "call_id": id,
                    "output": m.content["output"].to_string()})
            }
            _ => continue,
        };
        items.push(item);
    }
    let skip = items.len().saturating_sub(MAX_ITEMS);
    let mut history = History::default();
    for item in items.into_iter().skip(skip) {
        history.fill(None, item);
    }
    history
}
