//! A webhook receiver that follows the Standard Webhooks spec on its own (it shares no code
//! with the platform's signer): it records every POST, verifies `webhook-signature` against
//! the endpoint secret with the 5-minute timestamp tolerance, and answers scripted statuses.

use crate::recorder::{serve, Recorder};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One received delivery.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
    /// The raw body.
    pub body: String,
    /// Parsed body.
    pub json: Value,
    /// Whether the signature verified with the secret set at the time.
    pub verified: bool,
    /// The status we answered.
    pub answered: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Shared {
    secret: Mutex<Option<String>>,
    script: Mutex<VecDeque<u16>>,
    received: Recorder<Received>,
    /// Requests as they arrive (before any delay): the ids of those not answered yet too.
    arrived: Recorder<String>,
    delay: Mutex<Duration>,
}

/// The running receiver.
#[derive(Clone)]
pub struct WebhookReceiver {
    /// `http://127.0.0.1:port/hooks`.
    pub url: String,
    /// The port.
    pub port: u16,
    shared: Arc<Shared>,
}

impl WebhookReceiver {
    /// Starts on a free loopback port.
    pub async fn start() -> WebhookReceiver {
        let shared = Arc::new(Shared::default());
        let port = serve(
            Router::new()
                .route("/hooks", post(receive))
                .with_state(shared.clone()),
        )
        .await;
        WebhookReceiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            port,
            shared,
        }
    }

    /// The secret deliveries are verified with (`whsec_...`).
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = Some(secret.to_owned());
    }

    /// Answer these statuses to the next requests, then 200.
    pub fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// Wait this long before answering.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.all()
    }

    /// How many requests have arrived, answered or not.
    pub fn arrivals(&self) -> usize {
        self.shared.arrived.all().len()
    }

    /// Waits until at least `n` requests have arrived, answered or not (up to `timeout`);
    /// returns their `webhook-id`s.
    pub async fn wait_arrived(&self, n: usize, timeout: Duration) -> Vec<String> {
        self.shared.arrived.wait_for(n, timeout).await
    }

    /// Waits until at least `n` requests arrived (up to `timeout`); returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared.received.wait_for(n, timeout).await
    }
}

/// Verifies a Standard Webhooks signature header with Switchboard's own receiver-side
/// verifier ([`switchboard_egress::signing::verify`]).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now_secs: i64,
) -> bool {
    switchboard_egress::signing::verify(secret, id, &timestamp.to_string(), body, header, now_secs)
        .is_ok()
}

async fn receive(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = h("webhook-id");
    let timestamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let signature = h("webhook-signature");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = s.secret.lock().unwrap().clone();
    let verified = secret
        .map(|sec| verify(&sec, &id, timestamp, body.as_bytes(), &signature, now))
        .unwrap_or(false);
    let at = std::time::Instant::now();
    s.arrived.push(id.clone());
    let delay = *s.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = s.script.lock().unwrap().pop_front().unwrap_or(200);
    s.received.push(Received {
        id,
        timestamp,
        signature,
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        body,
        verified,
        answered: status,
        at,
    });
    (StatusCode::from_u16(status).unwrap(), "ok")
}
