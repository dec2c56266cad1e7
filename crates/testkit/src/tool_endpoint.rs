//! A business's custom tool endpoint: it verifies each request's Standard Webhooks signature
//! with its own code (see [`crate::webhooks::verify`]), records the request and its headers,
//! and answers as scripted — JSON, an error status, never, or with a body far larger than
//! any tool answer should be.

use crate::recorder::{serve, Recorder};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the endpoint answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON.
    Json(Value),
    /// This status and body.
    Status(u16, String),
    /// Never answer (a peer that hangs): the platform's timeout must cut it off.
    Hang,
    /// 200 with this many bytes of a JSON string (streamed without a length).
    Huge(usize),
}

/// One request received.
#[derive(Debug, Clone)]
pub struct ToolRequest {
    /// The method.
    pub method: String,
    /// Request headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The parsed body.
    pub json: Value,
    /// Whether the signature verified with the secret set at the time.
    pub verified: bool,
}

impl ToolRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    secret: Mutex<Option<String>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    received: Recorder<ToolRequest>,
}

/// The running endpoint.
#[derive(Clone)]
pub struct ToolEndpoint {
    /// `http://127.0.0.1:port/tool`.
    pub url: String,
    shared: Arc<Shared>,
}

impl ToolEndpoint {
    /// Starts on a free loopback port; answers `{"ok": "yes"}` until scripted.
    pub async fn start() -> ToolEndpoint {
        let shared = Arc::new(Shared::default());
        let port = serve(
            Router::new()
                .route("/tool", any(receive))
                .with_state(shared.clone()),
        )
        .await;
        ToolEndpoint {
            url: format!("http://127.0.0.1:{port}/tool"),
            shared,
        }
    }

    /// The secret requests are verified with (`whsec_...`).
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = Some(secret.to_owned());
    }

    /// Answer the next requests like this, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Answer every request not scripted like this.
    pub fn always(&self, reply: Reply) {
        *self.shared.fallback.lock().unwrap() = Some(reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<ToolRequest> {
        self.shared.received.all()
    }

    /// Waits until at least `n` requests arrived (up to `timeout`); returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ToolRequest> {
        self.shared.received.wait_for(n, timeout).await
    }
}

async fn receive(
    State(s): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let timestamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let verified = s.secret.lock().unwrap().clone().is_some_and(|sec| {
        crate::webhooks::verify(
            &sec,
            &h("webhook-id"),
            timestamp,
            body.as_bytes(),
            &h("webhook-signature"),
            now,
        )
    });
    s.received.push(ToolRequest {
        method: method.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        verified,
    });
    let reply = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| s.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::Json(serde_json::json!({"ok": "yes"})));
    match reply {
        Reply::Json(v) => axum::Json(v).into_response(),
        Reply::Status(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Reply::Hang => std::future::pending().await,
        Reply::Huge(n) => {
            let chunk = vec![b'x'; 16 * 1024];
            let chunks = n / chunk.len() + 1;
            let first =
                futures_util::stream::once(async { Ok::<_, std::io::Error>(b"\"".to_vec()) });
            let rest = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            use futures_util::StreamExt;
            axum::body::Body::from_stream(first.chain(rest)).into_response()
        }
    }
}
