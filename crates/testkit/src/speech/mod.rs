//! Fake speech providers on one local server, each speaking its real wire protocol:
//! Deepgram live transcription (`/v1/listen`, WebSocket), ElevenLabs input streaming
//! (`/v1/text-to-speech/{voice}/stream-input`, WebSocket) and voice lookup, OpenAI
//! transcription and speech (`/v1/audio/...`).
//!
//! The fake Deepgram "hears" speech by its level, as the real one's endpointing does: words
//! come from a script ([`FakeSpeech::hear`]), interim while the caller speaks, final with
//! `speech_final` after the endpointing silence, `from_finalize` on `Finalize` (and nothing
//! at all on a `Finalize` with nothing pending, as Deepgram documents), `UtteranceEnd`
//! after `utterance_end_ms`, and a 1011 close after 10 s without audio. The fake
//! ElevenLabs refuses a bad key or voice with a 1008 close, wants a single space as the
//! first text, speaks 60 ms of audio per character with its alignment, and ends with
//! `isFinal` after an empty text.

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use switchboard_cascade::audio::pcm_to_ulaw;

mod deepgram;

/// Audio per spoken character (about 16 characters a second).
pub const MS_PER_CHAR: usize = 60;
/// Characters per ElevenLabs audio message.
const CHARS_PER_MESSAGE: usize = 12;

#[derive(Default)]
struct Shared {
    deepgram_keys: HashSet<String>,
    elevenlabs_keys: HashSet<String>,
    voices: HashSet<String>,
    openai_keys: HashSet<String>,
    utterances: VecDeque<String>,
    /// Heard when the script is empty (load tests).
    default_utterance: String,
    listens: Vec<HashMap<String, String>>,
    finalizes: usize,
    /// Texts each ElevenLabs session received, per session, with their arrival.
    tts_texts: Vec<Vec<(Instant, String)>>,
    tts_queries: Vec<HashMap<String, String>>,
    speech_requests: Vec<Value>,
    transcriptions: usize,
    elevenlabs_down: bool,
    deepgram_down: bool,
}

/// The fake providers.
#[derive(Clone)]
pub struct FakeSpeech {
    /// `http://127.0.0.1:port` (the base of all three providers; OpenAI's is `{url}/v1`).
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeSpeech {
    /// Starts the fake on a free port.
    pub async fn start() -> FakeSpeech {
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let app = Router::new()
            .route("/v1/listen", get(listen))
            .route("/v1/projects", get(projects))
            .route("/v1/text-to-speech/{voice}/stream-input", get(stream_input))
            .route("/v1/voices/{voice}", get(voice))
            .route("/v1/audio/transcriptions", post(transcribe))
            .route("/v1/audio/speech", post(speech))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSpeech { url, shared }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        f(&mut self.shared.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Accepts a Deepgram key.
    pub fn add_deepgram_key(&self, key: &str) {
        self.with(|s| s.deepgram_keys.insert(key.to_owned()));
    }

    /// Accepts an ElevenLabs key and these voice ids.
    pub fn add_elevenlabs_key(&self, key: &str, voices: &[&str]) {
        self.with(|s| {
            s.elevenlabs_keys.insert(key.to_owned());
            s.voices.extend(voices.iter().map(|v| (*v).to_owned()));
        });
    }

    /// Accepts an OpenAI key (transcription and speech).
    pub fn add_openai_key(&self, key: &str) {
        self.with(|s| s.openai_keys.insert(key.to_owned()));
    }

    /// The words of the next utterances the caller speaks, in order.
    pub fn hear(&self, utterances: &[&str]) {
        self.with(|s| {
            s.utterances
                .extend(utterances.iter().map(|u| (*u).to_owned()))
        });
    }

    /// Words heard for every utterance once the script is empty (load tests).
    pub fn hear_always(&self, words: &str) {
        self.with(|s| s.default_utterance = words.to_owned());
    }

    /// ElevenLabs refuses connections (503) while `down`.
    pub fn elevenlabs_down(&self, down: bool) {
        self.with(|s| s.elevenlabs_down = down);
    }

    /// Deepgram refuses connections (503) while `down`.
    pub fn deepgram_down(&self, down: bool) {
        self.with(|s| s.deepgram_down = down);
    }

    /// The query of each Deepgram stream opened.
    pub fn listens(&self) -> Vec<HashMap<String, String>> {
        self.with(|s| s.listens.clone())
    }

    /// `Finalize` messages received.
    pub fn finalizes(&self) -> usize {
        self.with(|s| s.finalizes)
    }

    /// The texts each ElevenLabs session received.
    pub fn tts_texts(&self) -> Vec<Vec<String>> {
        self.with(|s| {
            s.tts_texts
                .iter()
                .map(|t| t.iter().map(|(_, x)| x.clone()).collect())
                .collect()
        })
    }

    /// The query of each ElevenLabs session.
    pub fn tts_queries(&self) -> Vec<HashMap<String, String>> {
        self.with(|s| s.tts_queries.clone())
    }

    /// The bodies of OpenAI speech requests.
    pub fn speech_requests(&self) -> Vec<Value> {
        self.with(|s| s.speech_requests.clone())
    }

    /// OpenAI transcriptions answered.
    pub fn transcriptions(&self) -> usize {
        self.with(|s| s.transcriptions)
    }
}

type St = State<Arc<Mutex<Shared>>>;

/// A close frame.
fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

fn next_utterance(s: &mut Shared) -> String {
    s.utterances
        .pop_front()
        .unwrap_or_else(|| s.default_utterance.clone())
}

fn lock(s: &Arc<Mutex<Shared>>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn token(headers: &HeaderMap, scheme: &str) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix(scheme)
        .map(|t| t.trim().to_owned())
}

async fn projects(State(s): St, headers: HeaderMap) -> Response {
    let ok = token(&headers, "Token").is_some_and(|k| lock(&s).deepgram_keys.contains(&k));
    if ok {
        Json(json!({"projects": [{"project_id": "p1", "name": "Test"}]})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."})),
        )
            .into_response()
    }
}

async fn listen(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    {
        let mut sh = lock(&s);
        if sh.deepgram_down {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let ok = token(&headers, "Token").is_some_and(|k| sh.deepgram_keys.contains(&k));
        if !ok {
            // Deepgram refuses the handshake with 401 and a `dg-error` header.
            return (
                StatusCode::UNAUTHORIZED,
                [("dg-error", "Invalid credentials.")],
            )
                .into_response();
        }
        sh.listens.push(q.clone());
    }
    ws.on_upgrade(move |socket| deepgram::session(socket, s, q))
}

async fn voice(State(s): St, headers: HeaderMap, Path(voice): Path<String>) -> Response {
    let sh = lock(&s);
    let key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !sh.elevenlabs_keys.contains(key) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})),
        )
            .into_response();
    }
    if !sh.voices.contains(&voice) {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": {"status": "voice_not_found", "message": "A voice with the voice_id was not found."}}))).into_response();
    }
    Json(json!({"voice_id": voice, "name": "Test voice", "category": "premade"})).into_response()
}

async fn stream_input(
    State(s): St,
    headers: HeaderMap,
    Path(voice): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let refusal = {
        let mut sh = lock(&s);
        if sh.elevenlabs_down {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let key = headers
            .get("xi-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        sh.tts_queries.push(q.clone());
        sh.tts_texts.push(Vec::new());
        if !sh.elevenlabs_keys.contains(key) {
            Some("invalid_api_key")
        } else if !sh.voices.contains(&voice) {
            Some("voice_not_found")
        } else {
            None
        }
    };
    let session = {
        let sh = lock(&s);
        sh.tts_texts.len() - 1
    };
    ws.on_upgrade(move |socket| elevenlabs_session(socket, s, session, refusal, q))
}

/// Mu-law audio of `chars` characters: a 400 Hz tone, loud enough to be heard.
pub fn tone_ulaw(ms: usize) -> Vec<u8> {
    (0..ms * 8)
        .map(|i| {
            let v =
                (8_000.0 * (2.0 * std::f64::consts::PI * 400.0 * i as f64 / 8_000.0).sin()) as i16;
            pcm_to_ulaw(v)
        })
        .collect()
}

/// One ElevenLabs input stream.
async fn elevenlabs_session(
    mut socket: WebSocket,
    s: Arc<Mutex<Shared>>,
    session: usize,
    refusal: Option<&'static str>,
    q: HashMap<String, String>,
) {
    if let Some(why) = refusal {
        let _ = socket.send(close(1008, why)).await;
        return;
    }
    if q.get("output_format").map(String::as_str) != Some("ulaw_8000") {
        let _ = socket
            .send(close(1008, "this fake speaks ulaw_8000 only"))
            .await;
        return;
    }
    let mut first = true;
    let mut buffer = String::new();
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
        let Some(text) = v["text"].as_str() else {
            let _ = socket.send(close(1008, "missing text")).await;
            return;
        };
        if first {
            first = false;
            if text != " " {
                let _ = socket
                    .send(close(
                        1008,
                        "the first message must have a single space as text",
                    ))
                    .await;
                return;
            }
            continue;
        }
        lock(&s).tts_texts[session].push((Instant::now(), text.to_owned()));
        let end = text.is_empty();
        buffer.push_str(text);
        if v["flush"].as_bool() == Some(true) || end || buffer.len() >= 120 {
            let chars: Vec<char> = std::mem::take(&mut buffer).chars().collect();
            for piece in chars.chunks(CHARS_PER_MESSAGE) {
                let audio = tone_ulaw(piece.len() * MS_PER_CHAR);
                let starts: Vec<usize> = (0..piece.len()).map(|i| i * MS_PER_CHAR).collect();
                let msg = json!({"audio": B64.encode(&audio), "isFinal": null,
                    "alignment": {"chars": piece.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                        "charStartTimesMs": starts, "charDurationsMs": vec![MS_PER_CHAR; piece.len()]},
                    "normalizedAlignment": null});
                if socket
                    .send(Message::Text(msg.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if end {
            let _ = socket
                .send(Message::Text(json!({"isFinal": true}).to_string().into()))
                .await;
            let _ = socket.send(close(1000, "")).await;
            return;
        }
    }
}

fn bearer_ok(s: &Arc<Mutex<Shared>>, headers: &HeaderMap) -> bool {
    token(headers, "Bearer").is_some_and(|k| lock(s).openai_keys.contains(&k))
}

fn openai_refusal() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}}))).into_response()
}

async fn transcribe(State(s): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !bearer_ok(&s, &headers) {
        return openai_refusal();
    }
    let text = String::from_utf8_lossy(&body);
    let multipart = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data; boundary="));
    if !multipart
        || !text.contains("name=\"model\"")
        || !text.contains("name=\"file\"")
        || !text.contains("RIFF")
    {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "file and model are required", "type": "invalid_request_error"}}))).into_response();
    }
    let mut sh = lock(&s);
    sh.transcriptions += 1;
    let words = next_utterance(&mut sh);
    Json(json!({"text": words})).into_response()
}

async fn speech(State(s): St, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !bearer_ok(&s, &headers) {
        return openai_refusal();
    }
    lock(&s).speech_requests.push(body.clone());
    let input = body["input"].as_str().unwrap_or_default();
    if body["response_format"] != "pcm" || input.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "this fake answers pcm only", "type": "invalid_request_error"}}))).into_response();
    }
    // 24 kHz 16-bit mono PCM, a 400 Hz tone, streamed in 100 ms pieces.
    let samples = input.chars().count() * MS_PER_CHAR * 24;
    let pcm: Vec<u8> = (0..samples)
        .flat_map(|i| {
            let v =
                (8_000.0 * (2.0 * std::f64::consts::PI * 400.0 * i as f64 / 24_000.0).sin()) as i16;
            v.to_le_bytes()
        })
        .collect();
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        pcm.chunks(4_800).map(|c| Ok(c.to_vec())).collect();
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures_util::stream::iter(pieces)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
