//! A conversation's stored items as readable lines, for the analysis prompt and the e-mail.

use serde_json::Value;
use switchboard_domain::entities::Message;
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `Caller` (or `Contact`), `Agent`, `Staff`, `System`, `Tool`.
    pub speaker: &'static str,
    /// What was said or done.
    pub text: String,
    /// When.
    pub at: Timestamp,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The lines of `items`, oldest first; empty items are left out.
pub fn lines(items: &[Message], contact_label: &'static str) -> Vec<Line> {
    let mut out = Vec::new();
    for m in items {
        let (speaker, body) = match m.kind {
            MessageKind::Message => {
                let speaker = match m.role {
                    MessageRole::User => contact_label,
                    MessageRole::Assistant => "Agent",
                    MessageRole::Human => "Staff",
                    MessageRole::System | MessageRole::Tool => "System",
                };
                let mut body = text(m.content.get("text").unwrap_or(&Value::Null));
                if m.content.get("interrupted").and_then(Value::as_bool) == Some(true) {
                    body.push_str(" [interrupted]");
                }
                (speaker, body)
            }
            MessageKind::FunctionCall => {
                let name = text(m.content.get("name").unwrap_or(&Value::Null));
                let args = text(m.content.get("arguments").unwrap_or(&Value::Null));
                ("Tool", format!("{name}({args})"))
            }
            MessageKind::FunctionOutput => {
                let out = m
                    .content
                    .get("output")
                    .map(text)
                    .unwrap_or_else(|| m.content.to_string());
                ("Tool", format!("-> {out}"))
            }
        };
        if !body.trim().is_empty() {
            out.push(Line {
                speaker,
                text: body,
                at: m.created_at,
            });
        }
    }
    out
}

/// Plain text, one `Speaker: text` per line.
pub fn plain(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| format!("{}: {}", l.speaker, l.text))
        .collect::<Vec<_>>()
        .join("\n")
}
