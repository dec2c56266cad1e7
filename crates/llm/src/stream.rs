//! Streamed completions (`"stream": true`): the answer arrives as server-sent events, one
//! `data: {chunk}` per piece and `data: [DONE]` at the end. Text comes as `delta.content`
//! pieces; a tool call comes as `delta.tool_calls[]` pieces keyed by `index`, the first with
//! the id and the name, the rest appending to the arguments' JSON text. Some local servers
//! (Ollama, older llama.cpp) send a whole tool call in one piece and no `index`: a piece
//! without one is a new call.

use crate::{ChatClient, Completion, LlmError, Request, ToolCall};
use serde_json::Value;

/// Something the stream produced.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of the assistant's text.
    Text(String),
    /// The answer is complete: all its text and its tool calls.
    Done(Completion),
}

/// Splits a byte stream into server-sent events' `data` fields. Lines may end in `\n` or
/// `\r\n`; several `data:` lines of one event are joined with `\n`; comments (`:`) and other
/// fields are skipped.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the data of every event they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if line.is_empty() {
                if let Some(d) = self.data.take() {
                    out.push(d);
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(rest);
                    }
                    None => self.data = Some(rest.to_owned()),
                }
            }
        }
        out
    }

    /// The last event when the stream ended without its blank line.
    pub fn finish(&mut self) -> Option<String> {
        let tail = self.feed(b"\n");
        tail.into_iter().next().or_else(|| self.data.take())
    }
}

/// Accumulates chunks into a [`Completion`].
#[derive(Debug, Default)]
struct Accumulator {
    text: String,
    calls: Vec<(Option<i64>, ToolCall)>,
    finish_reason: Option<String>,
    model: String,
}

impl Accumulator {
    /// Applies one chunk; answers its text piece, if any.
    fn apply(&mut self, chunk: &Value) -> Result<Option<String>, LlmError> {
        if let Some(err) = chunk.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error in the stream");
            return Err(LlmError::Malformed(format!("the stream failed: {message}")));
        }
        if let Some(m) = chunk.get("model").and_then(Value::as_str) {
            if self.model.is_empty() {
                m.clone_into(&mut self.model);
            }
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            // Usage-only chunks (`stream_options.include_usage`) have no choices.
            return Ok(None);
        };
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_owned());
        }
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        for (i, piece) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = piece.get("index").and_then(Value::as_i64);
            let slot = match index {
                Some(ix) => self.calls.iter().position(|(k, _)| *k == Some(ix)),
                None => None,
            };
            let slot = match slot {
                Some(s) => s,
                None => {
                    self.calls.push((
                        index,
                        ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        },
                    ));
                    self.calls.len() - 1
                }
            };
            let count = self.calls.len();
            let call = &mut self.calls[slot].1;
            if let Some(id) = piece.get("id").and_then(Value::as_str) {
                id.clone_into(&mut call.id);
            }
            if let Some(name) = piece.pointer("/function/name").and_then(Value::as_str) {
                call.name.push_str(name);
            }
            match piece.pointer("/function/arguments") {
                Some(Value::String(s)) => call.arguments.push_str(s),
                Some(v) if !v.is_null() => call.arguments.push_str(&v.to_string()),
                _ => {}
            }
            if call.id.is_empty() && index.is_none() {
                call.id = format!("call_{count}_{i}");
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                self.text.push_str(t);
                Ok(Some(t.to_owned()))
            }
            _ => Ok(None),
        }
    }

    fn finish(self) -> Result<Completion, LlmError> {
        let mut tool_calls = Vec::new();
        for (i, (_, mut c)) in self.calls.into_iter().enumerate() {
            if c.name.is_empty() {
                return Err(LlmError::Malformed(format!(
                    "streamed tool call {i} has no function name"
                )));
            }
            if c.id.is_empty() {
                c.id = format!("call_{i}");
            }
            if c.arguments.trim().is_empty() {
                c.arguments = "{}".into();
            }
            tool_calls.push(c);
        }
        let content = Some(self.text).filter(|t| !t.trim().is_empty());
        Completion::checked(content, tool_calls, self.finish_reason, self.model)
    }
}

/// A completion being streamed.
#[derive(Debug)]
pub struct CompletionStream {
    res: Option<reqwest::Response>,
    sse: SseDecoder,
    pending: std::collections::VecDeque<String>,
    acc: Accumulator,
}

impl CompletionStream {
    /// The next event; `Ok(None)` after [`StreamEvent::Done`]. Dropping the stream closes
    /// the connection, which stops the server's generation.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, LlmError> {
        loop {
            while let Some(data) = self.pending.pop_front() {
                if data.trim() == "[DONE]" {
                    return self.done();
                }
                let chunk: Value = serde_json::from_str(&data).map_err(|e| {
                    LlmError::Malformed(format!("a streamed chunk is not JSON: {e}"))
                })?;
                if let Some(text) = self.acc.apply(&chunk)? {
                    return Ok(Some(StreamEvent::Text(text)));
                }
            }
            let Some(res) = self.res.as_mut() else {
                return Ok(None);
            };
            match res.chunk().await? {
                Some(bytes) => self.pending.extend(self.sse.feed(&bytes)),
                None => {
                    // The body ended without `[DONE]` (some servers): what came is the answer.
                    match self.sse.finish() {
                        Some(last) => self.pending.push_back(last),
                        None => return self.done(),
                    }
                    self.pending.push_back("[DONE]".into());
                }
            }
        }
    }

    fn done(&mut self) -> Result<Option<StreamEvent>, LlmError> {
        if self.res.take().is_none() {
            return Ok(None);
        }
        self.pending.clear();
        std::mem::take(&mut self.acc)
            .finish()
            .map(|c| Some(StreamEvent::Done(c)))
    }
}

impl ChatClient {
    /// Asks for a completion streamed as it is written.
    pub async fn stream(&self, req: &Request) -> Result<CompletionStream, LlmError> {
        let mut body = self.body(req);
        body["stream"] = Value::Bool(true);
        let res = self.send(&body).await?;
        Ok(CompletionStream {
            res: Some(res),
            sse: SseDecoder::default(),
            pending: Default::default(),
            acc: Accumulator::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sse_events_split_anywhere() {
        let wire = b"data: {\"a\":1}\r\n\r\n: comment\n\ndata: one\ndata: two\n\nevent: x\ndata: [DONE]\n\n";
        for cut in 0..wire.len() {
            let mut d = SseDecoder::default();
            let mut got = d.feed(&wire[..cut]);
            got.extend(d.feed(&wire[cut..]));
            assert_eq!(got, vec!["{\"a\":1}", "one\ntwo", "[DONE]"], "cut at {cut}");
        }
        let mut d = SseDecoder::default();
        assert!(d.feed(b"data: tail").is_empty());
        assert_eq!(d.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn chunks_accumulate_text_and_tool_calls() {
        let mut acc = Accumulator::default();
        let chunks = [
            json!({"model": "m1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me "}}]}),
            json!({"choices": [{"delta": {"content": "check."}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "book_appointment", "arguments": ""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"start\":"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "call_b",
                "function": {"name": "lookup_contact", "arguments": "{}"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"10:00\"}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"total_tokens": 3}}),
        ];
        let texts: Vec<String> = chunks
            .iter()
            .filter_map(|c| acc.apply(c).expect("chunk"))
            .collect();
        assert_eq!(texts, vec!["Let me ", "check."]);
        let c = acc.finish().expect("completion");
        assert_eq!(c.content.as_deref(), Some("Let me check."));
        assert_eq!(c.model, "m1");
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(c.tool_calls.len(), 2);
        assert_eq!(c.tool_calls[0].id, "call_a");
        assert_eq!(c.tool_calls[0].arguments, "{\"start\":\"10:00\"}");
        assert_eq!(c.tool_calls[1].name, "lookup_contact");
    }

    #[test]
    fn whole_tool_calls_without_index_and_failures() {
        let mut acc = Accumulator::default();
        acc.apply(&json!({"choices": [{"delta": {"tool_calls": [
            {"function": {"name": "end_call", "arguments": {"reason": "done"}}}]}}]}))
            .expect("chunk");
        let c = acc.finish().expect("completion");
        assert_eq!(c.tool_calls[0].name, "end_call");
        assert_eq!(c.tool_calls[0].arguments, "{\"reason\":\"done\"}");
        assert!(!c.tool_calls[0].id.is_empty());
        assert!(Accumulator::default().finish().is_err(), "nothing at all");
        let mut acc = Accumulator::default();
        assert!(acc
            .apply(&json!({"error": {"message": "overloaded"}}))
            .is_err());
    }
}
