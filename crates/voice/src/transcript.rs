//! The transcript writer: a helper task per call that stores items in the order the session
//! produces them, so database latency never stalls the audio path. It also applies barge-in
//! cuts to agent turns, whichever arrives first (the cut or the turn).

use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard_domain::entities::NewMessage;
use switchboard_domain::ids::{ConversationId, MessageId, OrgId};
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::Store;
use tokio::sync::mpsc;

/// One thing to write.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A plain item (caller turn, function call, function output).
    Item {
        role: MessageRole,
        kind: MessageKind,
        content: Value,
        at: Timestamp,
    },
    /// An agent turn from `response.done`, keyed by the model's item id.
    Agent {
        item_id: String,
        content: Value,
        at: Timestamp,
    },
    /// The caller interrupted the agent's item after hearing `heard_ms` of `sent_ms`.
    Cut {
        item_id: String,
        heard_ms: u64,
        sent_ms: u64,
    },
}

/// Keeps the words a caller heard: the same share of the text as of the audio, ending on a
/// word boundary. Speech rate is not uniform, so this is an estimate; the model itself drops
/// the transcript of a truncated item, so there is nothing more exact to keep.
pub(crate) fn heard_text(text: &str, heard_ms: u64, total_ms: u64) -> String {
    if total_ms == 0 || heard_ms >= total_ms {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let keep = (chars.len() as u64 * heard_ms / total_ms) as usize;
    let mut cut: String = chars[..keep.min(chars.len())].iter().collect();
    let whole_word = chars.get(keep).is_none_or(|c| c.is_whitespace());
    if !whole_word {
        match cut.rfind(char::is_whitespace) {
            Some(i) => cut.truncate(i),
            None => cut.clear(),
        }
    }
    cut.trim_end().to_owned()
}

fn apply_cut(content: &mut Value, heard_ms: u64, sent_ms: u64) {
    let full = content["text"].as_str().unwrap_or_default().to_owned();
    // `sent_ms` counts audio sent when the caller spoke; the whole turn may be longer.
    let total = content["audio_ms"].as_u64().unwrap_or(sent_ms).max(sent_ms);
    content["text"] = json!(heard_text(&full, heard_ms, total));
    content["generated_text"] = json!(full);
    content["interrupted"] = json!(true);
    content["audio_end_ms"] = json!(heard_ms);
}

/// Runs until the sender is dropped.
pub(crate) async fn run(
    store: Store,
    org: OrgId,
    conversation: ConversationId,
    mut rx: mpsc::Receiver<Entry>,
) {
    let mut agent_items: HashMap<String, (MessageId, Value)> = HashMap::new();
    let mut cuts: HashMap<String, (u64, u64)> = HashMap::new();
    while let Some(entry) = rx.recv().await {
        match entry {
            Entry::Item {
                role,
                kind,
                content,
                at,
            } => {
                append(&store, &org, &conversation, role, kind, content, at).await;
            }
            Entry::Agent {
                item_id,
                mut content,
                at,
            } => {
                if let Some((heard, sent)) = cuts.remove(&item_id) {
                    apply_cut(&mut content, heard, sent);
                }
                let kind = MessageKind::Message;
                if let Some(id) = append(
                    &store,
                    &org,
                    &conversation,
                    MessageRole::Assistant,
                    kind,
                    content.clone(),
                    at,
                )
                .await
                {
                    agent_items.insert(item_id, (id, content));
                }
            }
            Entry::Cut {
                item_id,
                heard_ms,
                sent_ms,
            } => match agent_items.get_mut(&item_id) {
                Some((id, content)) => {
                    apply_cut(content, heard_ms, sent_ms);
                    if let Err(e) = store.update_message_content(&org, id, content).await {
                        tracing::error!(error = %e, "cannot store the heard part of an agent turn");
                    }
                }
                None => {
                    cuts.insert(item_id, (heard_ms, sent_ms));
                }
            },
        }
    }
}

async fn append(
    store: &Store,
    org: &OrgId,
    conversation: &ConversationId,
    role: MessageRole,
    kind: MessageKind,
    content: Value,
    at: Timestamp,
) -> Option<MessageId> {
    let msg = NewMessage {
        conversation_id: conversation.clone(),
        role,
        kind,
        content,
        external_id: None,
        delivery_status: None,
        created_at: at,
    };
    match store.append_message(org, msg).await {
        Ok(m) => Some(m.id),
        Err(e) => {
            tracing::error!(error = %e, "cannot store a transcript item");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_text_ends_on_a_word() {
        let t = "Our opening hours are nine to five on weekdays.";
        assert_eq!(heard_text(t, 1000, 1000), t);
        assert_eq!(heard_text(t, 500, 1000), "Our opening hours are");
        assert_eq!(heard_text(t, 0, 1000), "");
        assert_eq!(heard_text(t, 10, 1000), "");
    }
}
