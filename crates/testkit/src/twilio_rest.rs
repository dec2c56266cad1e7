//! The fake Twilio REST API: message sends (with scripted failures and delays), call updates
//! (which stop a live stream, as replacing its TwiML does), and outbound call creation (whose
//! life `twilio_calls.rs` plays).

use crate::twilio::{Cmd, MediaCall};
use crate::twilio_calls::{CallScript, Outbound, ServerLink};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Live media streams by CallSid: updating a live call through the REST API replaces its
/// TwiML, which ends `<Connect><Stream>` with a `stop` on the stream, as Twilio does.
pub(crate) type LiveStreams =
    Arc<Mutex<std::collections::HashMap<String, mpsc::UnboundedSender<Cmd>>>>;

/// One request the fake REST API received.
#[derive(Debug, Clone)]
pub struct RestRequest {
    /// Account SID from the path.
    pub account_sid: String,
    /// Call SID from the path (empty for messages).
    pub call_sid: String,
    /// `Calls` or `Messages`.
    pub resource: &'static str,
    /// Decoded form.
    pub form: Vec<(String, String)>,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// When it arrived.
    pub received_at: std::time::Instant,
}

/// A scripted Twilio REST error: HTTP status, Twilio error code, message.
pub type RestFailure = (u16, i64, String);

/// A fake Twilio REST API: `POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json` and
/// `POST /2010-04-01/Accounts/{sid}/Messages.json` (answers 201 with a Message resource).
#[derive(Clone)]
pub struct FakeTwilioRest {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Requests received.
    pub requests: Arc<Mutex<Vec<RestRequest>>>,
    fail_messages: Arc<Mutex<Option<RestFailure>>>,
    record: Arc<std::sync::atomic::AtomicBool>,
    count: Arc<std::sync::atomic::AtomicU64>,
    live: LiveStreams,
    delay: Arc<Mutex<Duration>>,
    outbound: Arc<Outbound>,
}

type RestState = (
    Arc<Mutex<Vec<RestRequest>>>,
    Arc<Mutex<Option<RestFailure>>>,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<std::sync::atomic::AtomicU64>,
    LiveStreams,
    Arc<Mutex<Duration>>,
    Arc<Outbound>,
);

impl FakeTwilioRest {
    /// Starts it on a free port.
    pub async fn start() -> FakeTwilioRest {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_messages = Arc::new(Mutex::new(None));
        let record = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let live: LiveStreams = Arc::default();
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let outbound = Arc::new(Outbound::new(live.clone()));
        let state: RestState = (
            requests.clone(),
            fail_messages.clone(),
            record.clone(),
            count.clone(),
            live.clone(),
            delay.clone(),
            outbound.clone(),
        );
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}",
                post(update_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTwilioRest {
            url,
            requests,
            fail_messages,
            record,
            count,
            live,
            delay,
            outbound,
        }
    }

    /// Lets the fake play Twilio's side of outbound calls towards the server: it signs with
    /// `auth_token` for the `public` URL and really connects to `base` / `ws`.
    pub fn connect_server(&self, public: &str, base: &str, ws: &str, auth_token: &str) {
        *self.outbound.link.lock().unwrap() = Some(ServerLink {
            public: public.to_owned(),
            base: base.to_owned(),
            ws: ws.to_owned(),
            auth_token: auth_token.to_owned(),
        });
    }

    /// What the next created calls do, in order (default: answered by a person).
    pub fn script_calls(&self, scripts: impl IntoIterator<Item = CallScript>) {
        self.outbound.script(scripts.into_iter().collect());
    }

    /// The calls created so far: (CallSid, the create request).
    pub fn created_calls(&self) -> Vec<(String, RestRequest)> {
        self.outbound.created()
    }

    /// Waits until created call `n` (0-based) was answered and its media stream connected.
    pub async fn answered(&self, n: usize, limit: Duration) -> (String, MediaCall) {
        self.outbound.answered(n, limit).await
    }

    /// Twilio's `completed` callback for an outbound call (the callee hung up).
    pub async fn complete(&self, call_sid: &str, duration_seconds: u32) {
        self.outbound
            .callback(
                call_sid,
                "completed",
                &[("CallDuration", &duration_seconds.to_string())],
            )
            .await;
    }

    /// Makes every message-create answer only after `delay` (a slow carrier API).
    pub fn delay_messages(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Ties a media stream to its call: a REST update of that call (new TwiML or a hang-up)
    /// then stops the stream, as on Twilio. Unattached calls only record the request.
    pub fn attach(&self, media: &MediaCall) {
        self.live
            .lock()
            .unwrap()
            .insert(media.call_sid.clone(), media.cmd.clone());
    }

    /// Requests so far.
    pub fn requests(&self) -> Vec<RestRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Message-create requests so far.
    pub fn messages(&self) -> Vec<RestRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.resource == "Messages")
            .collect()
    }

    /// Makes every message-create answer this error (`None`: succeed again).
    pub fn fail_messages(&self, failure: Option<RestFailure>) {
        *self.fail_messages.lock().unwrap() = failure;
    }

    /// Stop keeping request bodies (load tests); [`FakeTwilioRest::count`] still counts.
    pub fn stop_recording(&self) {
        self.record
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests answered.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The decoded form value of `name` in a request.
pub fn form_value<'a>(r: &'a RestRequest, name: &str) -> Option<&'a str> {
    r.form
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn create_message(
    State((reqs, fail, record, count, _, delay, _)): State<RestState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let pause = *delay.lock().unwrap();
    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let form = form_decode(&body);
    if record.load(std::sync::atomic::Ordering::Relaxed) {
        reqs.lock().unwrap().push(RestRequest {
            account_sid: account.clone(),
            call_sid: String::new(),
            resource: "Messages",
            form: form.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            received_at: std::time::Instant::now(),
        });
    }
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    if let Some((status, code, message)) = fail.lock().unwrap().clone() {
        return (
            axum::http::StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"code": code, "message": message, "status": status,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}")})),
        )
            .into_response();
    }
    let get = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let sid = format!("SM{:032x}", u128::from(n) + 0xabc0_0000);
    (
        axum::http::StatusCode::CREATED,
        axum::Json(
            json!({"sid": sid, "account_sid": account, "status": "queued",
            "to": get("To"), "from": get("From"), "body": get("Body"),
            "direction": "outbound-api", "num_segments": "1"}),
        ),
    )
        .into_response()
}

async fn update_call(
    State((reqs, _, _, count, live, _, outbound)): State<RestState>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::Json<Value> {
    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let call_sid = call.trim_end_matches(".json").to_owned();
    let form = form_decode(&body);
    if form.iter().any(|(k, v)| k == "Status" && v == "canceled") {
        outbound.cancel(&call_sid);
    }
    reqs.lock().unwrap().push(RestRequest {
        account_sid: account.clone(),
        call_sid: call_sid.clone(),
        resource: "Calls",
        form,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        received_at: std::time::Instant::now(),
    });
    // The running TwiML is replaced: `<Connect><Stream>` ends and the stream gets `stop`.
    if let Some(stream) = live.lock().unwrap().remove(&call_sid) {
        let _ = stream.send(Cmd::Stop);
    }
    // An outbound call then plays the new TwiML (or hangs up) and completes.
    if outbound.knows(&call_sid) {
        let sid = call_sid.clone();
        let outbound = outbound.clone();
        tokio::spawn(async move {
            outbound
                .callback(&sid, "completed", &[("CallDuration", "5")])
                .await;
        });
    }
    axum::Json(json!({"sid": call_sid, "account_sid": account, "status": "in-progress"}))
}

async fn create_call(
    State((reqs, _, _, count, _, _, outbound)): State<RestState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request = RestRequest {
        account_sid: account,
        call_sid: String::new(),
        resource: "Calls.json",
        form: form_decode(&body),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        received_at: std::time::Instant::now(),
    };
    reqs.lock().unwrap().push(request.clone());
    let (status, body) = outbound.create(request, n);
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
