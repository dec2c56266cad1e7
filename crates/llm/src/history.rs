//! A stored conversation as chat-completions messages: the channel's transcript items
//! (words, function calls and their outputs) in the shape every OpenAI-compatible endpoint
//! takes, with the API's pairing rule kept.

use serde_json::{json, Value};
use std::collections::HashSet;
use switchboard_domain::entities::Message;
use switchboard_domain::values::{MessageKind, MessageRole};

/// A string field of an item's content (empty when absent).
fn field<'a>(m: &'a Message, name: &str) -> &'a str {
    m.content
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The conversation's transcript as chat-completions messages. Every assistant tool call gets
/// a tool result (an interrupted run left none: the model is told so), as the API requires.
pub fn history_messages(system: String, items: &[Message]) -> Vec<Value> {
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
                let id = field(m, "call_id").to_owned();
                let name = field(m, "name");
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
                let id = field(m, "call_id").to_owned();
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
                let text = field(m, "text");
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::ids::{ConversationId, MessageId};
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
