//! The fake Twilio REST API: message sends (with scripted failures and delays), call updates
//! (which stop a live stream, as replacing its TwiML does), and outbound call creation (whose
//! life `twilio_calls.rs` plays).

use crate::twilio::{Cmd, MediaCall};
use crate::twilio_calls::{CallScript, Outbound, ServerLink};

use crate::twilio_recordings::{FakeRecording, Recordings};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
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
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) numbers: crate::twilio_numbers::SharedNumbers,
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
        FakeTwilioRest::start_as(false).await
    }

    /// Starts a fake SignalWire space's compatibility API: the same resources under
    /// `/api/laml` (point `SWITCHBOARD_SIGNALWIRE_API_URL` at [`FakeTwilioRest::url`]),
    /// UUID SIDs, and callbacks signed with the signing key in `X-SignalWire-Signature`
    /// (give the key to [`FakeTwilioRest::connect_server`]).
    pub async fn start_signalwire() -> FakeTwilioRest {
        FakeTwilioRest::start_as(true).await
    }

    async fn start_as(signalwire: bool) -> FakeTwilioRest {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_messages = Arc::new(Mutex::new(None));
        let record = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let live: LiveStreams = Arc::default();
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let api_url = if signalwire {
            format!("{url}/api/laml")
        } else {
            url.clone()
        };
        let recordings = Arc::new(Recordings::new(&api_url, signalwire));
        recordings.start_media().await;
        let outbound = Arc::new(Outbound::new(live.clone(), recordings));
        outbound
            .signalwire
            .store(signalwire, std::sync::atomic::Ordering::Relaxed);
        let numbers = crate::twilio_numbers::SharedNumbers::default();
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
                post(update_call).get(fetch_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}/Recordings.json",
                post(start_recording),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Recordings/{file}",
                get(fetch_recording).delete(delete_recording),
            )
            .with_state(state)
            .merge(crate::twilio_numbers::router(numbers.clone()));
        let app = if signalwire {
            Router::new().nest("/api/laml", app)
        } else {
            app
        };
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
            numbers,
        }
    }

    /// Lets the fake play Twilio's side of outbound calls towards the server: it signs with
    /// `auth_token` for the `public` URL and really connects to `base` / `ws`.
    pub fn connect_server(&self, public: &str, base: &str, ws: &str, auth_token: &str) {
        self.connect_as(public, base, ws, auth_token, auth_token);
    }

    /// [`FakeTwilioRest::connect_server`] for a SignalWire space: callbacks are signed with
    /// the project's `signing_key`, and the REST API takes the `api_token`.
    pub fn connect_signalwire(
        &self,
        public: &str,
        base: &str,
        ws: &str,
        signing_key: &str,
        api_token: &str,
    ) {
        self.connect_as(public, base, ws, signing_key, api_token);
    }

    fn connect_as(&self, public: &str, base: &str, ws: &str, auth_token: &str, rest_token: &str) {
        *self.outbound.link.lock().unwrap() = Some(ServerLink {
            public: public.to_owned(),
            base: base.to_owned(),
            ws: ws.to_owned(),
            auth_token: auth_token.to_owned(),
            rest_token: rest_token.to_owned(),
            header: if self
                .outbound
                .signalwire
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                "X-SignalWire-Signature"
            } else {
                "X-Twilio-Signature"
            },
        });
    }

    /// The server behind the public URL moved (a restart on another port): Twilio's requests
    /// go there from now on. No-op before [`FakeTwilioRest::connect_server`].
    pub fn move_server(&self, base: &str, ws: &str) {
        if let Some(link) = self.outbound.link.lock().unwrap().as_mut() {
            link.base = base.to_owned();
            link.ws = ws.to_owned();
        }
    }

    /// What the next created calls do, in order (default: answered by a person).
    pub fn script_calls(&self, scripts: impl IntoIterator<Item = CallScript>) {
        self.outbound.script(scripts.into_iter().collect());
    }

    /// What the next created calls to `number` do, in order (before the general queue).
    pub fn script_number(&self, number: &str, scripts: impl IntoIterator<Item = CallScript>) {
        self.outbound
            .script_number(number, scripts.into_iter().collect());
    }

    /// The most outbound calls that were ever created and not yet reported over at once.
    pub fn max_active_calls(&self) -> usize {
        self.outbound.max_active()
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

    /// The recordings made so far (either way: `Record=true` or started on a live call).
    pub fn recordings(&self) -> Vec<FakeRecording> {
        self.recs().list()
    }

    /// Media fetches that reached the storage host behind the recording redirect, with the
    /// `Range` each carried.
    pub fn media_fetches(&self) -> Vec<Option<String>> {
        self.recs().media_fetches.lock().unwrap().clone()
    }

    /// An inbound call ended (the test hung up): its recordings are finished and their
    /// callbacks posted, as Twilio does after a call.
    pub async fn end_recordings(&self, call_sid: &str) {
        let link = self.outbound.link.lock().unwrap().clone();
        self.recs().finish_call(call_sid, link).await;
    }

    fn recs(&self) -> &Arc<Recordings> {
        self.outbound
            .recordings
            .as_ref()
            .expect("the REST fake always has recordings")
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
    State((reqs, fail, record, count, _, delay, outbound)): State<RestState>,
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
    let sid = crate::twilio::fake_sid(
        "SM",
        u128::from(n) + 0xabc0_0000,
        outbound
            .signalwire
            .load(std::sync::atomic::Ordering::Relaxed),
    );
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
    let twiml = form
        .iter()
        .find(|(k, _)| k == "Twiml")
        .map(|(_, v)| v.clone());
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
    let was_live = live.lock().unwrap().remove(&call_sid);
    if let Some(stream) = was_live {
        let _ = stream.send(Cmd::Stop);
        // An inbound call's recording (started through the API) ends with the call.
        if !outbound.knows(&call_sid) {
            let link = outbound.link.lock().unwrap().clone();
            if let Some(recs) = outbound.recordings.clone() {
                let sid = call_sid.clone();
                tokio::spawn(async move { recs.finish_call(&sid, link).await });
            }
        }
    }
    // New TwiML plays on (a dial, keys, a new stream); an outbound call hung up through
    // the API completes.
    if let Some(twiml) = twiml {
        tokio::spawn(
            outbound
                .clone()
                .play_update(call_sid.clone(), account.clone(), twiml),
        );
    } else if outbound.knows(&call_sid) {
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

/// `GET .../Calls/{sid}.json`: the call as Twilio's Calls API shows it (404 for a call it
/// never made).
async fn fetch_call(
    State((_, _, _, _, _, _, outbound)): State<RestState>,
    Path((account, call)): Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let sid = call.trim_end_matches(".json");
    match outbound.state(sid) {
        Some(status) => axum::Json(json!({"sid": sid, "account_sid": account,
            "status": status, "duration": "1", "direction": "outbound-api"}))
        .into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(
                json!({"code": 20404, "message": "The requested resource was not found",
                "status": 404}),
            ),
        )
            .into_response(),
    }
}

/// `POST .../Calls/{sid}/Recordings.json`: starts recording a live call (201, `in-progress`).
async fn start_recording(
    State((reqs, _, _, count, _, _, outbound)): State<RestState>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let form = form_decode(&body);
    let callback = crate::twilio_calls::form_value(&form, "RecordingStatusCallback");
    reqs.lock().unwrap().push(RestRequest {
        account_sid: account.clone(),
        call_sid: call.clone(),
        resource: "Recordings",
        form,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        received_at: std::time::Instant::now(),
    });
    let Some(recs) = &outbound.recordings else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let sid = recs.create(&account, &call, "StartCallRecordingAPI", &callback);
    (
        axum::http::StatusCode::CREATED,
        axum::Json(json!({"sid": sid, "account_sid": account, "call_sid": call,
            "status": "in-progress", "channels": 2, "source": "StartCallRecordingAPI",
            "track": "both"})),
    )
        .into_response()
}

async fn fetch_recording(
    State((_, _, _, _, _, _, outbound)): State<RestState>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    let link = outbound.link.lock().unwrap().clone();
    match &outbound.recordings {
        Some(recs) => recs.fetch(&account, &file, &headers, link.as_ref()),
        None => axum::response::IntoResponse::into_response(axum::http::StatusCode::NOT_FOUND),
    }
}

async fn delete_recording(
    State((reqs, _, _, _, _, _, outbound)): State<RestState>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    reqs.lock().unwrap().push(RestRequest {
        account_sid: account.clone(),
        call_sid: String::new(),
        resource: "Recordings.delete",
        form: vec![("Sid".into(), file.trim_end_matches(".json").to_owned())],
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        received_at: std::time::Instant::now(),
    });
    let link = outbound.link.lock().unwrap().clone();
    match &outbound.recordings {
        Some(recs) => recs.delete(&account, &file, &headers, link.as_ref()),
        None => axum::response::IntoResponse::into_response(axum::http::StatusCode::NOT_FOUND),
    }
}

fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
