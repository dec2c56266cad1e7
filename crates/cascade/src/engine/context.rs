//! The conversation as the chat model sees it: chat-completions messages, each agent turn
//! with the record of which of its characters each piece of audio voiced, so that a cut
//! answer keeps only the words the caller heard.

use crate::text::heard_words;
use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard_llm::{tool_call_json, ToolCall};

/// Mu-law bytes per millisecond.
const BYTES_PER_MS: usize = 8;
/// Agent turns whose timing is kept for a later `truncate`.
const TIMELINES: usize = 8;

struct Entry {
    item: Option<String>,
    message: Value,
}

/// Where the audio of an answer reached which character: `(audio bytes, characters)`.
#[derive(Default)]
struct Timeline {
    marks: Vec<(usize, usize)>,
    text: String,
}

impl Timeline {
    /// Characters voiced by the first `bytes` of audio (linear within a piece).
    fn chars_at(&self, bytes: usize) -> usize {
        let mut prev = (0usize, 0usize);
        for &(b, c) in &self.marks {
            if b >= bytes {
                let span = b.saturating_sub(prev.0).max(1);
                let into = bytes.saturating_sub(prev.0);
                return prev.1 + (c.saturating_sub(prev.1)) * into / span;
            }
            prev = (b, c);
        }
        prev.1
    }
}

#[derive(Default)]
pub(super) struct Context {
    entries: Vec<Entry>,
    timelines: HashMap<String, Timeline>,
    order: Vec<String>,
}

/// The text parts of a Realtime message item, joined.
fn item_text(item: &Value) -> String {
    item["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["text"].as_str().or(p["transcript"].as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

impl Context {
    /// The messages for a request: the instructions, then the conversation.
    pub(super) fn messages(&self, system: &str) -> Vec<Value> {
        std::iter::once(json!({"role": "system", "content": system}))
            .chain(self.entries.iter().map(|e| e.message.clone()))
            .collect()
    }

    /// A Realtime item the actor created (a replayed conversation, a note, a tool's
    /// output).
    pub(super) fn add_item(&mut self, item: &Value) {
        let id = item["id"].as_str().map(str::to_owned);
        match item["type"].as_str() {
            Some("message") => {
                let role = item["role"]
                    .as_str()
                    .filter(|r| matches!(*r, "user" | "assistant" | "system"))
                    .unwrap_or("user");
                self.entries.push(Entry {
                    item: id,
                    message: json!({"role": role, "content": item_text(item)}),
                });
            }
            Some("function_call") => {
                let call = json!({"id": item["call_id"], "type": "function", "function": {
                    "name": item["name"], "arguments": item["arguments"]}});
                // Calls of one answer share its assistant message.
                if let Some(last) = self.entries.last_mut() {
                    if let Some(calls) = last
                        .message
                        .get_mut("tool_calls")
                        .and_then(Value::as_array_mut)
                    {
                        calls.push(call);
                        return;
                    }
                }
                self.entries.push(Entry {
                    item: id,
                    message: json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                });
            }
            Some("function_call_output") => self.entries.push(Entry {
                item: id,
                message: json!({"role": "tool", "tool_call_id": item["call_id"],
                    "content": item["output"].as_str().map_or_else(|| item["output"].to_string(), str::to_owned)}),
            }),
            other => tracing::debug!(kind = ?other, "conversation item not used by the cascaded pipeline"),
        }
    }

    /// The caller's words.
    pub(super) fn add_user(&mut self, item: &str, text: &str) {
        self.entries.push(Entry {
            item: Some(item.to_owned()),
            message: json!({"role": "user", "content": text}),
        });
    }

    /// How far an answer's audio has voiced its text.
    pub(super) fn voiced(&mut self, item: &str, audio_bytes: usize, chars: usize) {
        if !self.timelines.contains_key(item) {
            self.order.push(item.to_owned());
            if self.order.len() > TIMELINES {
                let old = self.order.remove(0);
                self.timelines.remove(&old);
            }
        }
        self.timelines
            .entry(item.to_owned())
            .or_default()
            .marks
            .push((audio_bytes, chars));
    }

    /// An answer cut short by the caller: what its audio voiced so far.
    pub(super) fn add_agent(&mut self, item: &str, voiced: &str, full: &str) {
        if let Some(t) = self.timelines.get_mut(item) {
            t.text = full.to_owned();
        }
        if !voiced.is_empty() {
            self.entries.push(Entry {
                item: Some(item.to_owned()),
                message: json!({"role": "assistant", "content": voiced}),
            });
        }
    }

    /// A finished answer: its words and its tool calls.
    pub(super) fn add_answer(&mut self, item: &str, text: &str, calls: &[(String, ToolCall)]) {
        if let Some(t) = self.timelines.get_mut(item) {
            t.text = text.to_owned();
        }
        if text.is_empty() && calls.is_empty() {
            return;
        }
        let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
        if !calls.is_empty() {
            message["tool_calls"] = calls.iter().map(|(_, c)| tool_call_json(c)).collect();
        }
        self.entries.push(Entry {
            item: Some(item.to_owned()),
            message,
        });
    }

    /// The caller heard `audio_end_ms` of an answer: only its words within that stay.
    pub(super) fn truncate(&mut self, item: &str, audio_end_ms: u64) {
        let Some(t) = self.timelines.get(item) else {
            return;
        };
        let chars = t.chars_at(audio_end_ms as usize * BYTES_PER_MS);
        let heard = heard_words(&t.text, chars);
        let Some(pos) = self
            .entries
            .iter()
            .position(|e| e.item.as_deref() == Some(item))
        else {
            return;
        };
        tracing::debug!(item, heard = %heard, "answer cut to what was heard");
        let entry = &mut self.entries[pos];
        let has_calls = entry.message.get("tool_calls").is_some();
        if heard.is_empty() && !has_calls {
            self.entries.remove(pos);
        } else {
            entry.message["content"] = if heard.is_empty() {
                Value::Null
            } else {
                json!(heard)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_answer_keeps_the_words_heard() {
        let mut c = Context::default();
        let text = "Our opening hours are nine to five. Shall I book you?";
        // 1 s of audio voiced the first sentence (35 characters), 1 s more the rest.
        c.voiced("a1", 8_000, 35);
        c.voiced("a1", 16_000, text.chars().count());
        c.add_answer("a1", text, &[]);
        c.truncate("a1", 500);
        let m = c.messages("sys");
        assert_eq!(m[1]["content"], "Our opening hours");
        // Nothing heard: the answer goes.
        c.truncate("a1", 0);
        assert_eq!(c.messages("sys").len(), 1);
    }

    #[test]
    fn replayed_items_become_chat_messages() {
        let mut c = Context::default();
        c.add_item(&json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}));
        c.add_item(
            &json!({"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"}),
        );
        c.add_item(
            &json!({"type": "function_call", "call_id": "c2", "name": "book", "arguments": "{}"}),
        );
        c.add_item(
            &json!({"type": "function_call_output", "call_id": "c1", "output": "{\"ok\":true}"}),
        );
        let m = c.messages("sys");
        assert_eq!(m[1], json!({"role": "user", "content": "Hi"}));
        assert_eq!(m[2]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "{\"ok\":true}"})
        );
    }
}
