//! A fake OpenAI Realtime server. It checks the handshake and the `session.update` shape (GA
//! or beta), runs a simple energy VAD over the appended mu-law audio, answers each caller turn
//! or `response.create` with the next scripted step (audio with a transcript, or a function
//! call), cancels a streaming response when the caller barges in, and records every client
//! event. Failure modes: refuse the handshake, drop after N appends, wrong formats, errors.
// tungstenite's handshake callback returns its (large) HTTP error response by value.
#![allow(clippy::result_large_err)]

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::realtime_script::{names, respond, Edge, Reply, Script, Vad, DROP};

/// Where echo-mode audio is reported: (base64 chunk, arrival).
pub type EchoTap = Arc<Mutex<Option<mpsc::UnboundedSender<(String, std::time::Instant)>>>>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which API generation the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeShape {
    /// GA names and session shape.
    Ga,
    /// Beta names and session shape (requires `OpenAI-Beta: realtime=v1`).
    Beta,
}

/// One scripted model output.
#[derive(Debug, Clone)]
pub enum Step {
    /// Speak this mu-law audio with this transcript.
    Say(Vec<u8>, String),
    /// Call a function with JSON arguments. A string argument `"$output<JSON pointer>"`
    /// (e.g. `"$output/pending_action/id"`) is the value at that pointer in the latest
    /// function output the client sent that has it, as a model reads ids from a tool's
    /// result.
    Call(String, Value),
}

/// Fills `"$output/..."` arguments of the next step from the function outputs so far.
fn fill_from_output(steps: &mut VecDeque<Step>, outputs: &[Value]) {
    fn fill(v: &mut Value, outputs: &[Value]) {
        match v {
            Value::String(s) if s.starts_with("$output") => {
                let pointer = s.trim_start_matches("$output").to_owned();
                *v = outputs
                    .iter()
                    .rev()
                    .find_map(|o| o.pointer(&pointer).cloned())
                    .unwrap_or(Value::Null);
            }
            Value::Array(items) => items.iter_mut().for_each(|i| fill(i, outputs)),
            Value::Object(map) => map.values_mut().for_each(|i| fill(i, outputs)),
            _ => {}
        }
    }
    if let Some(Step::Call(_, args)) = steps.front_mut() {
        fill(args, outputs);
    }
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Shape.
    pub shape: FakeShape,
    /// Outputs, consumed in order, one per caller turn or `response.create`.
    pub steps: Vec<Step>,
    /// What the caller said in each turn (the transcription results, in order).
    pub transcripts: Vec<String>,
    /// Answer the handshake with HTTP 503.
    pub refuse: bool,
    /// Drop the connection after this many appends.
    pub drop_after_appends: Option<usize>,
    /// Echo formats other than mu-law in `session.updated`.
    pub wrong_formats: bool,
    /// Echo every appended chunk straight back as agent audio (load generator).
    pub echo: bool,
    /// With `echo`: send the audio back in bursts of 100-200 ms deltas, as the real API
    /// sends agent audio, instead of one delta per appended chunk.
    pub burst: Option<crate::realtime_burst::Burst>,
    /// Audio bytes per delta.
    pub delta_bytes: usize,
    /// Pause between deltas (the model streams faster than real time).
    pub delta_interval: Duration,
    /// Send each caller turn's transcription only after the response to it is done (OpenAI
    /// documents that input transcription may arrive after the response started or ended).
    pub late_transcripts: bool,
    /// Audio deltas of a response still sent after the caller barged in (they were in flight
    /// when the server cancelled the response).
    pub deltas_after_interrupt: usize,
    /// Error codes for the next responses, one per response: a non-empty code makes that
    /// response end with `response.done` `status: "failed"` and this code; `""` succeeds.
    pub fail_responses: Vec<String>,
    /// `error` events sent right after `session.updated` (they do not end the session).
    pub errors_after_update: Vec<(String, String)>,
    /// The session ends after this long: an `error` event (`session_expired`), then a close.
    pub session_limit: Option<Duration>,
    /// Stop reading the socket after this many appends (a peer that hangs).
    pub stop_reading_after_appends: Option<usize>,
    /// How many connections `drop_after_appends` and `drop_after_responses` apply to (the
    /// first N; later ones do not drop), so a reconnect can succeed.
    pub drops: usize,
    /// Drop the connection abruptly (no close frame) right after this response's
    /// `response.done` (1-based, per connection).
    pub drop_after_responses: Option<u32>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            shape: FakeShape::Ga,
            steps: Vec::new(),
            transcripts: Vec::new(),
            refuse: false,
            drop_after_appends: None,
            wrong_formats: false,
            echo: false,
            burst: None,
            delta_bytes: 1000,
            delta_interval: Duration::from_millis(10),
            late_transcripts: false,
            deltas_after_interrupt: 0,
            fail_responses: Vec::new(),
            errors_after_update: Vec::new(),
            session_limit: None,
            stop_reading_after_appends: None,
            drops: usize::MAX,
            drop_after_responses: None,
        }
    }
}

/// What one connection did.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Request path and query.
    pub uri: String,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `OpenAI-Beta` header.
    pub beta_header: Option<String>,
    /// Every client event, in order.
    pub events: Vec<Value>,
    /// Appended audio bytes.
    pub appended: usize,
}

/// A running fake.
#[derive(Clone)]
pub struct FakeRealtime {
    /// `ws://127.0.0.1:port/v1/realtime`.
    pub url: String,
    behavior: Arc<Mutex<Behavior>>,
    /// Behaviors for the next connections, one each, before `behavior`.
    queued: Arc<Mutex<std::collections::VecDeque<Behavior>>>,
    sessions: Arc<Mutex<Vec<Arc<Mutex<Session>>>>>,
    /// Appended audio chunks received in echo mode, with the instant they arrived.
    pub echo_rx: EchoTap,
    /// In bursty echo mode: each 20 ms frame sent back, with the instant its delta was sent.
    pub sent_rx: EchoTap,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeRealtime {
    /// Starts the fake on a free port.
    pub async fn start(behavior: Behavior) -> FakeRealtime {
        // A small receive buffer, so that a fake that stops reading blocks the sender within
        // a second of audio instead of after megabytes of kernel buffering.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(1024).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let fake = FakeRealtime {
            url: format!("ws://{addr}/v1/realtime"),
            behavior: Arc::new(Mutex::new(behavior)),
            queued: Arc::default(),
            sessions: Arc::new(Mutex::new(Vec::new())),
            echo_rx: Arc::new(Mutex::new(None)),
            sent_rx: Arc::new(Mutex::new(None)),
            dropped: Arc::default(),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let f = f.clone();
                tokio::spawn(async move { f.serve(stream).await });
            }
        });
        fake
    }

    /// Starts the connection's next scripted response (a failure when one is scripted, else
    /// the next step), or nothing when the script is exhausted.
    fn next_response(
        &self,
        tx: &mpsc::UnboundedSender<Option<String>>,
        behavior: &Behavior,
        script: &mut Script<'_>,
        after: Option<Value>,
    ) -> Option<Arc<AtomicU8>> {
        let fail = script.fails.pop_front().filter(|c| !c.is_empty());
        let step = if fail.is_some() {
            None
        } else {
            script.steps.pop_front()
        };
        if step.is_none() && fail.is_none() {
            return None;
        }
        *script.no += 1;
        let no = *script.no;
        Some(respond(
            tx.clone(),
            behavior.clone(),
            Reply {
                step,
                fail,
                no,
                after,
                drop: self.drops_now(behavior, no),
            },
        ))
    }

    /// Whether response `no` of a connection ends it (`drop_after_responses`), counting the
    /// connections dropped so far against `drops`.
    fn drops_now(&self, behavior: &Behavior, no: u32) -> bool {
        behavior.drop_after_responses == Some(no)
            && self.dropped.fetch_add(1, Ordering::SeqCst) < behavior.drops
    }

    /// The next connections behave like these, one each, in order (then `set_behavior`'s).
    pub fn queue_behaviors(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.queued.lock().unwrap().extend(behaviors);
    }

    /// Changes the behavior for new connections.
    pub fn set_behavior(&self, b: Behavior) {
        *self.behavior.lock().unwrap() = b;
    }

    /// Every connection so far.
    pub fn sessions(&self) -> Vec<Session> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .collect()
    }

    /// Events of a type across all sessions.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.sessions()
            .iter()
            .flat_map(|s| s.events.clone())
            .filter(|e| e["type"] == kind)
            .collect()
    }

    async fn serve(self, stream: tokio::net::TcpStream) {
        let queued = self.queued.lock().unwrap().pop_front();
        let behavior = queued.unwrap_or_else(|| self.behavior.lock().unwrap().clone());
        let record = Arc::new(Mutex::new(Session::default()));
        let rec = record.clone();
        let refuse = behavior.refuse;
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let mut r = rec.lock().unwrap();
            r.uri = req.uri().to_string();
            r.authorization = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            r.beta_header = req
                .headers()
                .get("openai-beta")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if refuse {
                let mut e = ErrorResponse::new(Some("model overloaded".into()));
                *e.status_mut() =
                    tokio_tungstenite::tungstenite::http::StatusCode::SERVICE_UNAVAILABLE;
                return Err(e);
            }
            Ok(resp)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
            self.sessions.lock().unwrap().push(record);
            return;
        };
        self.sessions.lock().unwrap().push(record.clone());
        let mut ws = ws;
        let beta_header = record.lock().unwrap().beta_header.is_some();
        if behavior.shape == FakeShape::Ga && beta_header {
            // What OpenAI does with the beta shape today.
            let _ = ws
                .send(Message::Text(
                    json!({"type": "error", "error": {"type": "invalid_request_error", "code": "beta_api_shape_disabled",
                        "message": "The beta Realtime API shape is disabled; use the GA shape."}})
                    .to_string()
                    .into(),
                ))
                .await;
            let _ = ws
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 4000.into(),
                    reason: "beta_api_shape_disabled".into(),
                }))
                .await;
            return;
        }
        let (mut sink, mut source) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
        let (dropped_tx, mut dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Some(text) if text == DROP => {
                        // The serve loop drops the whole connection.
                        let _ = dropped_tx.send(());
                        return;
                    }
                    Some(text) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = sink.close().await;
                        break;
                    }
                }
            }
        });
        let send = |v: Value| {
            let _ = tx.send(Some(v.to_string()));
        };
        send(json!({"type": "session.created", "session": {}}));
        let mut steps: VecDeque<Step> = behavior.steps.clone().into();
        let mut transcripts: VecDeque<String> = behavior.transcripts.clone().into();
        let mut vad = Vad::default();
        let mut appends = 0usize;
        let mut user_turn = 0u32;
        let mut response: Option<Arc<AtomicU8>> = None;
        let mut resp_no = 0u32;
        let mut outputs: Vec<Value> = Vec::new();
        let echo_tx = self.echo_rx.lock().unwrap().clone();
        let sent_tx = self.sent_rx.lock().unwrap().clone();
        let mut burster = behavior.burst.map(crate::realtime_burst::Burster::new);
        let mut fails: VecDeque<String> = behavior.fail_responses.clone().into();
        let limit_at = behavior
            .session_limit
            .map(|d| tokio::time::Instant::now() + d);
        loop {
            let msg = tokio::select! {
                m = source.next() => m,
                _ = &mut dropped_rx => return,
                _ = tokio::time::sleep_until(limit_at.unwrap_or_else(tokio::time::Instant::now)), if limit_at.is_some() => {
                    // OpenAI's wording for the 60-minute cap, as reported by users; the exact
                    // code is unconfirmed (protocols.md section 10), so the client must treat
                    // any close as the end of the session.
                    send(json!({"type": "error", "error": {"type": "invalid_request_error", "code": "session_expired",
                        "message": "Your session hit the maximum duration of 60 minutes."}}));
                    break;
                }
            };
            let Some(Ok(msg)) = msg else { break };
            let Message::Text(text) = msg else { continue };
            let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            let kind = event["type"].as_str().unwrap_or_default().to_owned();
            if kind != "input_audio_buffer.append" || !behavior.echo {
                record.lock().unwrap().events.push(event.clone());
            }
            match kind.as_str() {
                "session.update" => {
                    let s = &event["session"];
                    let bad = match behavior.shape {
                        FakeShape::Ga if s["type"] != "realtime" => Some((
                            "missing_required_parameter",
                            "Missing required parameter: 'session.type'.",
                        )),
                        FakeShape::Ga if s.get("input_audio_format").is_some() => Some((
                            "unknown_parameter",
                            "Unknown parameter: 'session.input_audio_format'.",
                        )),
                        FakeShape::Beta if s.get("type").is_some() => {
                            Some(("unknown_parameter", "Unknown parameter: 'session.type'."))
                        }
                        _ => None,
                    };
                    if let Some((code, message)) = bad {
                        send(
                            json!({"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message}}),
                        );
                        continue;
                    }
                    let mut echoed = s.clone();
                    if behavior.wrong_formats {
                        echoed["input_audio_format"] = json!("pcm16");
                        echoed["output_audio_format"] = json!("pcm16");
                        if let Some(a) = echoed.get_mut("audio") {
                            a["input"]["format"] = json!({"type": "audio/pcm", "rate": 24000});
                        }
                    }
                    send(json!({"type": "session.updated", "session": echoed}));
                    for (code, message) in &behavior.errors_after_update {
                        send(
                            json!({"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message}}),
                        );
                    }
                }
                "input_audio_buffer.append" => {
                    appends += 1;
                    let audio = event["audio"].as_str().unwrap_or_default();
                    if let Some(tx) = &echo_tx {
                        let _ = tx.send((audio.to_owned(), std::time::Instant::now()));
                    }
                    if let (true, Some(b)) = (behavior.echo, burster.as_mut()) {
                        let bytes = B64.decode(audio).unwrap_or_default();
                        for delta in b.push(&bytes) {
                            let at = std::time::Instant::now();
                            if let Some(tx) = &sent_tx {
                                for frame in delta.chunks(switchboard_twilio::media::FRAME_BYTES) {
                                    let _ = tx.send((B64.encode(frame), at));
                                }
                            }
                            send(
                                json!({"type": names(behavior.shape).0, "item_id": "item_echo", "response_id": "resp_echo", "output_index": 0, "content_index": 0, "delta": B64.encode(&delta)}),
                            );
                        }
                        continue;
                    }
                    if behavior.echo {
                        send(
                            json!({"type": names(behavior.shape).0, "item_id": "item_echo", "response_id": "resp_echo", "output_index": 0, "content_index": 0, "delta": audio}),
                        );
                        continue;
                    }
                    if let Some(n) = behavior.stop_reading_after_appends {
                        if appends >= n {
                            // Hang: keep the connection open and never read it again.
                            std::future::pending::<()>().await;
                        }
                    }
                    if let Some(n) = behavior.drop_after_appends {
                        if appends >= n
                            && self.dropped.fetch_add(1, Ordering::SeqCst) < behavior.drops
                        {
                            // An abrupt drop: no close frame.
                            writer.abort();
                            return;
                        }
                    }
                    record.lock().unwrap().appended += crate::twilio::b64_len(audio);
                    let Ok(bytes) = B64.decode(audio) else {
                        continue;
                    };
                    for edge in vad.push(&bytes) {
                        user_turn += 1;
                        let item = format!("item_user{user_turn}");
                        match edge {
                            Edge::Started => {
                                send(
                                    json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item}),
                                );
                                if let Some(flag) = response.take() {
                                    flag.store(
                                        crate::realtime_script::TURN_DETECTED,
                                        Ordering::SeqCst,
                                    );
                                }
                                user_turn -= 1;
                            }
                            Edge::Stopped => {
                                send(
                                    json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 0, "item_id": item}),
                                );
                                send(
                                    json!({"type": "input_audio_buffer.committed", "item_id": item}),
                                );
                                let text = transcripts.pop_front().unwrap_or_default();
                                let transcription = json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "content_index": 0, "transcript": text});
                                let late = behavior.late_transcripts && !steps.is_empty();
                                if !late {
                                    send(transcription.clone());
                                }
                                fill_from_output(&mut steps, &outputs);
                                if let Some(r) = self.next_response(
                                    &tx,
                                    &behavior,
                                    &mut Script {
                                        steps: &mut steps,
                                        fails: &mut fails,
                                        no: &mut resp_no,
                                    },
                                    late.then_some(transcription),
                                ) {
                                    response = Some(r);
                                }
                            }
                        }
                    }
                }
                "response.create" => {
                    fill_from_output(&mut steps, &outputs);
                    if let Some(r) = self.next_response(
                        &tx,
                        &behavior,
                        &mut Script {
                            steps: &mut steps,
                            fails: &mut fails,
                            no: &mut resp_no,
                        },
                        None,
                    ) {
                        response = Some(r);
                    }
                }
                "response.cancel" => match response.take() {
                    // The response in flight stops (`status_details.reason: client_cancelled`).
                    Some(flag) => {
                        flag.store(crate::realtime_script::CLIENT_CANCELLED, Ordering::SeqCst)
                    }
                    // As OpenAI answers a cancel with nothing to cancel.
                    None => send(
                        json!({"type": "error", "error": {"type": "invalid_request_error",
                        "code": "response_cancel_not_active", "message": "Cancellation failed: no active response found."}}),
                    ),
                },
                "conversation.item.create" if event["item"]["type"] == "function_call_output" => {
                    let output = event["item"]["output"].as_str().unwrap_or_default();
                    outputs.push(serde_json::from_str(output).unwrap_or(Value::Null));
                }
                "conversation.item.truncate" => {
                    let item = event["item_id"].as_str().unwrap_or_default();
                    send(
                        json!({"type": "conversation.item.truncated", "item_id": item, "content_index": 0, "audio_end_ms": event["audio_end_ms"]}),
                    );
                }
                _ => {}
            }
        }
        let _ = tx.send(None);
        let _ = writer.await;
    }
}
