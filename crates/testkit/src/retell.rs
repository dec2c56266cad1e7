//! Retell's side, for tests: a scripted Retell that dials the custom-LLM socket and speaks
//! its protocol (`call_details`, `ping_pong`, `update_only`, `response_required`,
//! `reminder_required`), a webhook sender that signs like Retell (`x-retell-signature`), and
//! a fake of Retell's REST look-up (`GET /v2/get-call/{call_id}`, bearer key, 401 on a wrong
//! key and 404 on an unknown call, as Retell answers).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// How long the scripted client waits for one frame.
const FRAME_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct ApiState {
    /// call id -> (the API key it belongs to, the call object).
    calls: Mutex<HashMap<String, (String, Value)>>,
    /// API keys Retell accepts.
    keys: Mutex<std::collections::HashSet<String>>,
    lookups: AtomicU64,
}

/// The fake REST API.
#[derive(Clone)]
pub struct FakeRetellApi {
    /// Base URL (`SWITCHBOARD_RETELL_API_URL`).
    pub url: String,
    state: Arc<ApiState>,
}

impl FakeRetellApi {
    /// Starts it on a free port.
    pub async fn start() -> FakeRetellApi {
        let state = Arc::new(ApiState::default());
        let app = Router::new()
            .route("/v2/get-call/{call_id}", get(get_call))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRetellApi { url, state }
    }

    /// An API key Retell accepts (an account with no calls yet).
    pub fn add_key(&self, key: &str) {
        self.state.keys.lock().unwrap().insert(key.to_owned());
    }

    /// Makes the call `call` (a call object with `call_id`) exist for the account of `key`.
    pub fn add_call(&self, key: &str, call: &Value) {
        self.add_key(key);
        let id = call["call_id"].as_str().unwrap().to_owned();
        self.state
            .calls
            .lock()
            .unwrap()
            .insert(id, (key.to_owned(), call.clone()));
    }

    /// Look-ups answered so far.
    pub fn lookups(&self) -> u64 {
        self.state.lookups.load(Ordering::SeqCst)
    }
}

async fn get_call(
    State(s): State<Arc<ApiState>>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    s.lookups.fetch_add(1, Ordering::SeqCst);
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let calls = s.calls.lock().unwrap();
    let known_key = s.keys.lock().unwrap().contains(&key);
    match calls.get(&call_id) {
        Some((k, call)) if *k == key => Json(call.clone()).into_response(),
        // A key Retell does not know is refused whatever the call; a known key does not
        // see another account's calls.
        _ if !known_key => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": 401, "message": "Invalid API key"})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"status": 404, "message": "Call not found"})),
        )
            .into_response(),
    }
}

/// A Retell call object as the webhooks and `get-call` carry it.
pub fn call_object(call_id: &str, agent_id: &str, from: &str, to: &str) -> Value {
    json!({"call_type": "phone_call", "call_id": call_id, "agent_id": agent_id,
        "direction": "inbound", "from_number": from, "to_number": to, "call_status": "ongoing",
        "metadata": {}, "start_timestamp": 1_764_579_600_000_i64})
}

/// Posts a webhook signed with `key` (now) to `{base}/retell/webhook`; answers the status.
pub async fn post_webhook(base: &str, key: &str, event: &str, call: &Value) -> u16 {
    let body = json!({"event": event, "call": call}).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let sig = switchboard_retell::sign(key, body.as_bytes(), now);
    post_signed(base, &body, &sig).await
}

/// Posts `body` with the signature header `sig` as is.
pub async fn post_signed(base: &str, body: &str, sig: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/retell/webhook"))
        .header("content-type", "application/json")
        .header("x-retell-signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Retell's end of one custom-LLM socket.
pub struct RetellSocket {
    ws: Ws,
    /// Frames read but not yet asked for.
    pub seen: Vec<Value>,
}

/// What the agent answered to one `response_id`.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The pieces of text, in order.
    pub pieces: Vec<String>,
    /// The final `response` frame (`content_complete: true`).
    pub last: Value,
    /// `tool_call_invocation` and `tool_call_result` frames on the way.
    pub tools: Vec<Value>,
}

impl Answer {
    /// All the text.
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

impl RetellSocket {
    /// Dials `{ws_base}/retell/llm/{call_id}` as Retell does.
    pub async fn connect(ws_base: &str, call_id: &str) -> RetellSocket {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{ws_base}/retell/llm/{call_id}"))
            .await
            .unwrap();
        RetellSocket {
            ws,
            seen: Vec::new(),
        }
    }

    /// Sends one JSON frame.
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame; `None` once the server closed (its close code in `closed`).
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let m = tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .expect("a frame from Switchboard within 10 s");
            match m {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(c))) => return Err(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next frame, which must be one.
    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(code) => panic!("the socket closed ({code:?})"),
        }
    }

    /// Reads until the server closes; answers the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Ok(v) => self.seen.push(v),
                Err(code) => return code,
            }
        }
    }

    /// Sends `call_details` (after the server's `config` asked for them).
    pub async fn call_details(&mut self, call: &Value) {
        self.send(json!({"interaction_type": "call_details", "call": call}))
            .await;
    }

    /// Sends `response_required` (or `reminder_required`) with the transcript so far.
    pub async fn request(&mut self, response_id: i64, reminder: bool, transcript: &[(&str, &str)]) {
        let kind = if reminder {
            "reminder_required"
        } else {
            "response_required"
        };
        self.send(json!({"interaction_type": kind, "response_id": response_id,
            "transcript": utterances(transcript)}))
            .await;
    }

    /// Reads the answer to `response_id` up to its `content_complete`, keeping other
    /// frames (pongs, answers to other ids) in `seen`.
    pub async fn answer(&mut self, response_id: i64) -> Answer {
        let mut a = Answer::default();
        loop {
            let f = self.frame().await;
            match f["response_type"].as_str() {
                Some("response") if f["response_id"] == response_id => {
                    let piece = f["content"].as_str().unwrap_or_default();
                    if !piece.is_empty() {
                        a.pieces.push(piece.to_owned());
                    }
                    if f["content_complete"] == true {
                        a.last = f;
                        return a;
                    }
                }
                Some("tool_call_invocation" | "tool_call_result") => a.tools.push(f),
                _ => self.seen.push(f),
            }
        }
    }
}

/// A transcript as Retell sends it, from (role, words) pairs.
pub fn utterances(t: &[(&str, &str)]) -> Value {
    Value::Array(
        t.iter()
            .map(|(role, content)| json!({"role": role, "content": content, "words": []}))
            .collect(),
    )
}
