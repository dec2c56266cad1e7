//! A fake OpenAI-compatible chat-completions server (`POST /v1/chat/completions`): scripted
//! answers (text, tool calls, HTTP errors), an optional delay, and every request recorded.
//! With an empty script it answers `Reply to: <last user message>` (handy for load tests).
//! A request with `"stream": true` is answered as OpenAI streams: server-sent events, text a
//! word per chunk, each tool call's arguments split over several chunks, then `[DONE]`.

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
    /// Answer this text, but stop after its first word until [`FakeChatModel::unstall`]
    /// (a model still writing while the caller speaks again).
    Stalled(String),
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
    /// Answers to structured-output (`response_format`) requests, used before the default.
    structured: Mutex<VecDeque<ChatStep>>,
    /// Structured-output requests answered.
    structured_calls: AtomicU64,
    /// While set, requests wait (after being counted in flight) until released.
    held: std::sync::atomic::AtomicBool,
    released: tokio::sync::Notify,
    /// Wakes a [`ChatStep::Stalled`] answer.
    unstalled: tokio::sync::Notify,
    /// Stalled answers waiting now.
    stalled: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// When set, `GET /v1/models` answers only this bearer key (401 otherwise, as OpenAI
    /// does); a local server without keys leaves it unset.
    key: Mutex<Option<String>>,
}

/// Counts a request in flight for as long as it is answered.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(s: &'a Shared) -> InFlight<'a> {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
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
            .route("/v1/models", axum::routing::get(models))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeChatModel { url, shared }
    }

    /// Makes `GET /v1/models` require this bearer key.
    pub fn require_key(&self, key: &str) {
        *self.shared.key.lock().unwrap() = Some(key.to_owned());
    }

    /// Queues answers, used in order before the default answer.
    pub fn script(&self, steps: impl IntoIterator<Item = ChatStep>) {
        self.shared.script.lock().unwrap().extend(steps);
    }

    /// Queues answers to structured-output requests (analyses), used in order before the
    /// default: a valid object built from the request's JSON schema.
    pub fn script_structured(&self, steps: impl IntoIterator<Item = ChatStep>) {
        self.shared.structured.lock().unwrap().extend(steps);
    }

    /// Structured-output requests answered so far.
    pub fn structured_calls(&self) -> u64 {
        self.shared.structured_calls.load(Ordering::Relaxed)
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

    /// Holds every request (new and waiting) until [`FakeChatModel::release`].
    pub fn hold(&self) {
        self.shared.held.store(true, Ordering::SeqCst);
    }

    /// Lets held requests be answered.
    pub fn release(&self) {
        self.shared.held.store(false, Ordering::SeqCst);
        self.shared.released.notify_waiters();
    }

    /// Stalled answers ([`ChatStep::Stalled`]) waiting after their first word right now.
    pub fn stalled(&self) -> u64 {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// Lets every stalled answer go on (a client that hung up finds its stream gone).
    pub fn unstall(&self) {
        self.shared.unstalled.notify_waiters();
    }

    /// Requests being answered (or held) right now.
    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

/// `GET /v1/models`, as OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, Ollama) list
/// their models.
async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let want = s.key.lock().unwrap().clone();
    if let Some(key) = want {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"message": "Incorrect API key provided.",
                    "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
            )
                .into_response();
        }
    }
    axum::Json(json!({"object": "list", "data": [
        {"id": "fake-chat-1", "object": "model", "created": 0, "owned_by": "fake"}
    ]}))
    .into_response()
}

async fn complete(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> axum::response::Response {
    s.calls.fetch_add(1, Ordering::Relaxed);
    let _counted = InFlight::enter(&s);
    loop {
        let released = s.released.notified();
        tokio::pin!(released);
        // Registered before the check, so a release in between is not missed.
        released.as_mut().enable();
        if !s.held.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
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
    let structured = body.pointer("/response_format/json_schema/schema").cloned();
    let step = if structured.is_some() {
        s.structured_calls.fetch_add(1, Ordering::Relaxed);
        s.structured.lock().unwrap().pop_front()
    } else {
        s.script.lock().unwrap().pop_front()
    };
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
    let default = match &structured {
        Some(schema) => ChatStep::Text(fill_schema(schema, &last_user).to_string()),
        None => ChatStep::Text(format!("Reply to: {last_user}")),
    };
    let step = step.unwrap_or(default);
    if body["stream"] == json!(true) {
        return stream_answer(s.clone(), step, &model, n).into_response();
    }
    if let ChatStep::Stalled(_) = &step {
        let unstalled = s.unstalled.notified();
        s.stalled.fetch_add(1, Ordering::SeqCst);
        unstalled.await;
        s.stalled.fetch_sub(1, Ordering::SeqCst);
    }
    let message = match step {
        ChatStep::Fail(status) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
            )
                .into_response()
        }
        ChatStep::Text(t) | ChatStep::Stalled(t) => json!({"role": "assistant", "content": t}),
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

/// One `chat.completion.chunk`.
fn chunk(n: u64, model: &str, delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion.chunk",
        "created": 0, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// A scripted answer streamed as OpenAI streams it.
fn stream_answer(s: Arc<Shared>, step: ChatStep, model: &str, n: u64) -> axum::response::Response {
    if let ChatStep::Fail(status) = step {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
        )
            .into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let model = model.to_owned();
    tokio::spawn(async move {
        let _ = tx
            .send(chunk(
                n,
                &model,
                json!({"role": "assistant", "content": ""}),
                None,
            ))
            .await;
        let (text, stall, finish) = match &step {
            ChatStep::Text(t) => (t.clone(), false, "stop"),
            ChatStep::Stalled(t) => (t.clone(), true, "stop"),
            _ => (String::new(), false, "tool_calls"),
        };
        // A word and its following space per chunk.
        let mut words = text.split_inclusive(' ');
        if let Some(first) = words.next() {
            let _ = tx
                .send(chunk(n, &model, json!({"content": first}), None))
                .await;
        }
        if stall {
            let unstalled = s.unstalled.notified();
            s.stalled.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                _ = unstalled => {}
                _ = tx.closed() => {}
            }
            s.stalled.fetch_sub(1, Ordering::SeqCst);
        }
        for w in words {
            if tx
                .send(chunk(n, &model, json!({"content": w}), None))
                .await
                .is_err()
            {
                return;
            }
        }
        if let ChatStep::Tools(calls) = &step {
            for (i, (name, args)) in calls.iter().enumerate() {
                let args = args.to_string();
                let cut = args.len() / 2;
                let cut = (cut..=args.len())
                    .find(|c| args.is_char_boundary(*c))
                    .unwrap();
                let first = json!({"tool_calls": [{"index": i, "id": format!("call_{n}_{i}"),
                    "type": "function", "function": {"name": name, "arguments": ""}}]});
                let _ = tx.send(chunk(n, &model, first, None)).await;
                for part in [&args[..cut], &args[cut..]] {
                    let piece =
                        json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]});
                    let _ = tx.send(chunk(n, &model, piece, None)).await;
                }
            }
        }
        let _ = tx.send(chunk(n, &model, json!({}), Some(finish))).await;
        let _ = tx.send("data: [DONE]\n\n".to_owned()).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| {
            (
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(c)),
                rx,
            )
        })
    });
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// A value matching `schema` (objects, strings, numbers, booleans, enums, nullable types),
/// with strings mentioning the start of `context`: what a model following the schema returns.
pub fn fill_schema(schema: &Value, context: &str) -> Value {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        Some(Value::String(t)) => t.clone(),
        _ => "object".to_owned(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), fill_schema(v, context));
                }
            }
            Value::Object(out)
        }
        "string" => {
            let snippet: String = context.chars().take(60).collect();
            json!(format!("About: {snippet}"))
        }
        "number" | "integer" => json!(1),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}
