//! A chat-completions client for any OpenAI-compatible endpoint (OpenAI, llama.cpp, vLLM,
//! Ollama...): `POST {base}/chat/completions` with messages and function tools, answering the
//! assistant's text or its tool calls. The tool loop itself belongs to the channel (it runs
//! tools inside the conversation's organization); this crate only speaks the wire format.

use serde_json::{json, Value};
use std::time::Duration;
use switchboard_domain::Secret;

mod history;
mod stream;

pub use history::history_messages;
pub use stream::{CompletionStream, SseDecoder, StreamEvent};

/// OpenAI's API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Model used when neither the agent nor the configuration names one.
pub const DEFAULT_MODEL: &str = "gpt-4.1-mini";

/// Why a completion failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No answer (connection refused, timeout, reset).
    #[error("chat model unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The endpoint answered with an error status.
    #[error("chat model answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The error's `message` (or the body's start).
        message: String,
    },
    /// A 2xx answer we could not use.
    #[error("chat model answer unusable: {0}")]
    Malformed(String),
}

/// A function tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The model's id for this call (echoed in the tool message).
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments as the JSON text the model wrote.
    pub arguments: String,
}

/// One completion request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Model name; empty uses the client's default.
    pub model: String,
    /// Messages in the chat-completions shape (`{"role": ..., "content": ...}`, assistant
    /// `tool_calls`, `tool` results).
    pub messages: Vec<Value>,
    /// Tools offered.
    pub tools: Vec<Tool>,
    /// Offer the tools but forbid calling them (the last round of a bounded loop).
    pub forbid_tools: bool,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// `response_format` as sent (e.g. a JSON schema for structured output).
    pub response_format: Option<Value>,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Assistant text, if any.
    pub content: Option<String>,
    /// Tool calls, if any.
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool_calls`, `length`...
    pub finish_reason: Option<String>,
    /// The model that answered.
    pub model: String,
}

impl Completion {
    /// A completion from its parts; an answer with neither text nor tool calls is unusable.
    pub(crate) fn checked(
        content: Option<String>,
        tool_calls: Vec<ToolCall>,
        finish_reason: Option<String>,
        model: String,
    ) -> Result<Completion, LlmError> {
        if content.is_none() && tool_calls.is_empty() {
            return Err(LlmError::Malformed(
                "the answer has neither text nor tool calls".into(),
            ));
        }
        Ok(Completion {
            content,
            tool_calls,
            finish_reason,
            model,
        })
    }

    /// The assistant message to put back in the history before the tool results.
    pub fn assistant_message(&self) -> Value {
        let mut m = json!({"role": "assistant", "content": self.content});
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = Value::Array(self.tool_calls.iter().map(tool_call_json).collect());
        }
        m
    }
}

/// A tool call in the chat-completions shape.
pub fn tool_call_json(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

/// The client; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    default_model: String,
}

impl ChatClient {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`), with a whole-request timeout.
    pub fn new(
        base_url: &str,
        api_key: Option<Secret>,
        default_model: &str,
        timeout: Duration,
    ) -> Result<ChatClient, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(ChatClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            default_model: default_model.to_owned(),
        })
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The request body for `req` (public for tests and logs).
    pub fn body(&self, req: &Request) -> Value {
        let model = if req.model.is_empty() {
            self.default_model.as_str()
        } else {
            req.model.as_str()
        };
        let mut body = json!({"model": model, "messages": req.messages});
        if !req.tools.is_empty() {
            body["tools"] = Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.parameters}})
                    })
                    .collect(),
            );
            body["tool_choice"] = json!(if req.forbid_tools { "none" } else { "auto" });
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(f) = &req.response_format {
            body["response_format"] = f.clone();
        }
        body
    }

    /// Asks for one completion.
    pub async fn complete(&self, req: &Request) -> Result<Completion, LlmError> {
        let res = self.send(&self.body(req)).await?;
        let text = res.text().await?;
        let body: Value =
            serde_json::from_str(&text).map_err(|_| LlmError::Malformed("not JSON".into()))?;
        parse_completion(&body)
    }

    /// Posts `body`; an error status becomes [`LlmError::Status`] with the error's message.
    async fn send(&self, body: &Value) -> Result<reqwest::Response, LlmError> {
        let mut http = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key.expose());
        }
        let res = http.send().await?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await?;
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|b| {
                b.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(LlmError::Status {
            status: status.as_u16(),
            message,
        })
    }
}

/// Reads the first choice of a chat-completions answer.
pub fn parse_completion(body: &Value) -> Result<Completion, LlmError> {
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| LlmError::Malformed("no choices".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| LlmError::Malformed("no message in the choice".into()))?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|c| !c.trim().is_empty());
    let mut tool_calls = Vec::new();
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Malformed(format!("tool_calls[{i}] has no function name")))?;
        // Some servers send arguments as an object rather than a JSON string.
        let arguments = match call.pointer("/function/arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "{}".to_owned(),
        };
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("call_{i}"));
        tool_calls.push(ToolCall {
            id,
            name: name.to_owned(),
            arguments,
        });
    }
    Completion::checked(
        content,
        tool_calls,
        choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        body.get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_tool_calls() {
        let text = json!({"model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello"}}]});
        let c = parse_completion(&text).expect("text");
        assert_eq!(c.content.as_deref(), Some("Hello"));
        assert!(c.tool_calls.is_empty());
        let tools = json!({"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "book_appointment", "arguments": "{\"start\":\"2026-11-23T10:00\"}"}}]}}]});
        let c = parse_completion(&tools).expect("tools");
        assert_eq!(c.tool_calls[0].name, "book_appointment");
        assert_eq!(
            c.tool_calls[0].arguments,
            "{\"start\":\"2026-11-23T10:00\"}"
        );
        let back = c.assistant_message();
        assert_eq!(
            back["tool_calls"][0]["function"]["name"],
            "book_appointment"
        );
        // Object arguments (some local servers) are re-serialised.
        let obj = json!({"choices": [{"message": {"tool_calls": [{"id": "x",
            "function": {"name": "f", "arguments": {"a": 1}}}]}}]});
        assert_eq!(
            parse_completion(&obj).expect("obj").tool_calls[0].arguments,
            "{\"a\":1}"
        );
        assert!(parse_completion(&json!({"choices": []})).is_err());
        assert!(parse_completion(&json!({"choices": [{"message": {"content": "  "}}]})).is_err());
    }

    #[test]
    fn body_has_tools_and_choice() {
        let c = ChatClient::new("http://x/v1/", None, "base-model", Duration::from_secs(1))
            .expect("client");
        let req = Request {
            messages: vec![json!({"role": "user", "content": "hi"})],
            tools: vec![Tool {
                name: "lookup_contact".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            forbid_tools: true,
            ..Request::default()
        };
        let b = c.body(&req);
        assert_eq!(b["model"], "base-model");
        assert_eq!(b["tool_choice"], "none");
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["tools"][0]["function"]["name"], "lookup_contact");
        assert!(b.get("temperature").is_none());
    }

    #[tokio::test]
    async fn errors_carry_the_status_and_message() {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(|| async {
                (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(
                        json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
                    ),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let c = ChatClient::new(
            &format!("http://{addr}/v1"),
            Some(Secret::new("k")),
            "m",
            Duration::from_secs(5),
        )
        .expect("client");
        match c.complete(&Request::default()).await {
            Err(LlmError::Status { status, message }) => {
                assert_eq!(status, 429);
                assert_eq!(message, "Rate limit reached");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
