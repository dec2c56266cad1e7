//! The transcript writer: a helper task per call that stores items in the order they were
//! spoken, so database latency never stalls the audio path. It also applies barge-in cuts to
//! agent turns, whichever arrives first (the cut or the turn).
//!
//! Spoken order is not arrival order: the caller's transcription comes from a separate model
//! and may arrive after the agent's answer to it has started or even finished (OpenAI
//! documents this). So the session *reserves* a place for a turn when its speech starts (the
//! caller's `speech_started`, the agent's first audio), and the item fills that place when it
//! is complete. Items are stored from the front of the queue as soon as they are filled; a
//! place that stays empty too long is given up (the item, if it still comes, is stored last),
//! so nothing is lost and nothing waits forever.

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use switchboard_domain::entities::NewMessage;
use switchboard_domain::ids::{ConversationId, MessageId, OrgId};
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::Store;
use tokio::sync::mpsc;

/// How long a reserved place waits for its caller turn's transcription.
const USER_HOLD: Duration = Duration::from_secs(10);
/// How long a reserved place waits for the agent's turn to complete.
const AGENT_HOLD: Duration = Duration::from_secs(30);

/// One thing to write.
#[derive(Debug)]
pub(crate) enum Entry {
    /// Reserve the next place for the turn `key` (`user:<item>` or `agent:<item>`).
    Reserve { key: String },
    /// The turn `key` will not come (its transcription failed).
    Release { key: String },
    /// A plain item (caller turn, function call, function output), in its reserved place
    /// when `key` names one.
    Item {
        key: Option<String>,
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
    /// Store everything queued now (places still empty are given up, their items will come
    /// last), then answer: another task is about to read the transcript.
    Sync(tokio::sync::oneshot::Sender<()>),
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

/// The key of a caller turn's place.
pub(crate) fn user_key(item_id: &str) -> String {
    format!("user:{item_id}")
}

/// The key of an agent turn's place.
pub(crate) fn agent_key(item_id: &str) -> String {
    format!("agent:{item_id}")
}

/// A place in the spoken order.
struct Slot {
    key: Option<String>,
    entry: Option<Entry>,
    deadline: Instant,
}

/// Stores entries in spoken order and applies cuts.
struct Writer {
    store: Store,
    org: OrgId,
    conversation: ConversationId,
    queue: VecDeque<Slot>,
    agent_items: HashMap<String, (MessageId, Value)>,
    cuts: HashMap<String, (u64, u64)>,
}

impl Writer {
    fn accept(&mut self, entry: Entry) -> Option<Entry> {
        let now = Instant::now();
        let key = match &entry {
            Entry::Reserve { key } => {
                let hold = if key.starts_with("user:") {
                    USER_HOLD
                } else {
                    AGENT_HOLD
                };
                self.queue.push_back(Slot {
                    key: Some(key.clone()),
                    entry: None,
                    deadline: now + hold,
                });
                return None;
            }
            Entry::Release { key } => {
                self.queue
                    .retain(|s| s.entry.is_some() || s.key.as_ref() != Some(key));
                return None;
            }
            // Cuts apply at once, to the stored turn or to the one still to come.
            Entry::Cut { .. } | Entry::Sync(_) => return Some(entry),
            Entry::Item { key, .. } => key.clone(),
            Entry::Agent { item_id, .. } => Some(agent_key(item_id)),
        };
        let place = key.as_ref().and_then(|k| {
            self.queue
                .iter_mut()
                .find(|s| s.entry.is_none() && s.key.as_ref() == Some(k))
        });
        match place {
            Some(slot) => slot.entry = Some(entry),
            None => self.queue.push_back(Slot {
                key,
                entry: Some(entry),
                deadline: now,
            }),
        }
        None
    }

    /// Writes every filled place at the front; gives up places past their deadline.
    async fn flush(&mut self, closing: bool) {
        let now = Instant::now();
        while let Some(front) = self.queue.front() {
            if front.entry.is_none() && !closing && front.deadline > now {
                break;
            }
            let Some(slot) = self.queue.pop_front() else {
                break;
            };
            match slot.entry {
                Some(entry) => self.write(entry).await,
                None => {
                    tracing::debug!(key = ?slot.key, "a transcript place was not filled in time; later items go on")
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.queue
            .front()
            .filter(|s| s.entry.is_none())
            .map(|s| s.deadline)
    }

    async fn write(&mut self, entry: Entry) {
        let (store, org, conversation) = (&self.store, &self.org, &self.conversation);
        match entry {
            Entry::Reserve { .. } | Entry::Release { .. } => {}
            Entry::Sync(done) => {
                let _ = done.send(());
            }
            Entry::Item {
                role,
                kind,
                content,
                at,
                ..
            } => {
                append(store, org, conversation, role, kind, content, at).await;
            }
            Entry::Agent {
                item_id,
                mut content,
                at,
            } => {
                if let Some((heard, sent)) = self.cuts.remove(&item_id) {
                    apply_cut(&mut content, heard, sent);
                }
                let kind = MessageKind::Message;
                if let Some(id) = append(
                    store,
                    org,
                    conversation,
                    MessageRole::Assistant,
                    kind,
                    content.clone(),
                    at,
                )
                .await
                {
                    self.agent_items.insert(item_id, (id, content));
                }
            }
            Entry::Cut {
                item_id,
                heard_ms,
                sent_ms,
            } => match self.agent_items.get_mut(&item_id) {
                Some((id, content)) => {
                    apply_cut(content, heard_ms, sent_ms);
                    if let Err(e) = store.update_message_content(org, id, content).await {
                        tracing::error!(error = %e, "cannot store the heard part of an agent turn");
                    }
                }
                None => {
                    self.cuts.insert(item_id, (heard_ms, sent_ms));
                }
            },
        }
    }
}

/// Runs until the sender is dropped, then writes everything still queued, in order.
pub(crate) async fn run(
    store: Store,
    org: OrgId,
    conversation: ConversationId,
    mut rx: mpsc::Receiver<Entry>,
) {
    let mut w = Writer {
        store,
        org,
        conversation,
        queue: VecDeque::new(),
        agent_items: HashMap::new(),
        cuts: HashMap::new(),
    };
    loop {
        let deadline = w.next_deadline();
        let received = tokio::select! {
            e = rx.recv() => e,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                w.flush(false).await;
                continue;
            }
        };
        let Some(entry) = received else {
            break;
        };
        if let Some(now) = w.accept(entry) {
            if matches!(now, Entry::Sync(_)) {
                w.flush(true).await;
            }
            w.write(now).await;
        }
        w.flush(false).await;
    }
    w.flush(true).await;
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
