//! A fake OpenAI-compatible chat-completions server (`POST /v1/chat/completions`): scripted
//! answers (text, tool calls, HTTP errors), an optional delay, and every request recorded.
//! With an empty script it answers `Reply to: <last user message>` (handy for load tests).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum ChatStep {
    /// Answer this text.
    Text(String),
    /// Call these tools (name, JSON arguments).
    Tools(Vec<(String, Value)>),
    /// Answer this HTTP error status.
    Fail(u16),
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<ChatStep>>,
    requests: Mutex<Vec<Value>>,
    authorization: Mutex<Vec<Option<String>>>,
    delay_ms: AtomicU64,
    calls: AtomicU64,
    record: std::sync::atomic::AtomicBool,
    /// A fixed answer served without parsing the request (load tests).
    fixed: Mutex<Option<axum::body::Bytes>>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeChatModel {
    /// Base URL to configure (`http://127.0.0.1:port/v1`).
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeChatModel {
    /// Starts it on a free port.
    pub async fn start() -> FakeChatModel {
        let shared = Arc::new(Shared::default());
        shared.record.store(true, Ordering::Relaxed);
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeChatModel { url, shared }
    }

    /// Queues answers, used in order before the default answer.
    pub fn script(&self, steps: impl IntoIterator<Item = ChatStep>) {
        self.shared.script.lock().unwrap().extend(steps);
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(u64::try_from(d.as_millis()).unwrap(), Ordering::Relaxed);
    }

    /// Answer every request with `text` without reading the request (the cheapest possible
    /// model, so a load test measures the server rather than the fake).
    pub fn fixed_reply(&self, text: &str) {
        let body = json!({"id": "chatcmpl-fixed", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
        *self.shared.fixed.lock().unwrap() = Some(body.to_string().into());
    }

    /// Stop keeping request bodies (load tests).
    pub fn stop_recording(&self) {
        self.shared.record.store(false, Ordering::Relaxed);
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// `Authorization` headers received so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.shared.authorization.lock().unwrap().clone()
    }

    /// Completions answered (including errors).
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }
}

async fn complete(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> axum::response::Response {
    s.calls.fetch_add(1, Ordering::Relaxed);
    let delay = s.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fixed = s.fixed.lock().unwrap().clone();
    if let Some(body) = fixed {
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return (StatusCode::BAD_REQUEST, "invalid JSON").into_response();
    };
    let step = s.script.lock().unwrap().pop_front();
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    if s.record.load(Ordering::Relaxed) {
        s.requests.lock().unwrap().push(body.clone());
        s.authorization.lock().unwrap().push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
    }
    let model = body["model"].as_str().unwrap_or("fake").to_owned();
    let n = s.calls.load(Ordering::Relaxed);
    let message = match step.unwrap_or(ChatStep::Text(format!("Reply to: {last_user}"))) {
        ChatStep::Fail(status) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
            )
                .into_response()
        }
        ChatStep::Text(t) => json!({"role": "assistant", "content": t}),
        ChatStep::Tools(calls) => json!({"role": "assistant", "content": null,
            "tool_calls": calls.iter().enumerate().map(|(i, (name, args))| json!({
                "id": format!("call_{n}_{i}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}})).collect::<Vec<_>>()}),
    };
    let finish = if message.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    Json(json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .into_response()
}
