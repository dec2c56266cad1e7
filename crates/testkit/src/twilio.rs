//! Playing Twilio: signed webhooks, a Media Streams client that streams caller audio and
//! paces playback of agent audio like Twilio does (marks echo when their audio has played,
//! `clear` flushes the queue and echoes pending marks at once), and a fake REST API.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub use crate::twilio_calls::CallScript;
pub use crate::twilio_dial::{DialRecord, DialScript};
pub use crate::twilio_recordings::{recording_audio, FakeRecording};
pub(crate) use crate::twilio_rest::LiveStreams;
pub use crate::twilio_rest::{form_value, FakeTwilioRest, RestFailure, RestRequest};
pub use switchboard_twilio::media::b64_len;

/// Posts a form to `base + path`, signed for `public + path` with `auth_token`.
pub async fn post_signed(
    http: &reqwest::Client,
    base: &str,
    public: &str,
    path: &str,
    auth_token: &str,
    params: &[(&str, &str)],
) -> reqwest::Response {
    try_post_signed(http, base, public, path, auth_token, params)
        .await
        .unwrap()
}

/// [`post_signed`], with a failed request returned instead of a panic (for the fake's own
/// callbacks, which may outlive the server under test).
pub async fn try_post_signed(
    http: &reqwest::Client,
    base: &str,
    public: &str,
    path: &str,
    auth_token: &str,
    params: &[(&str, &str)],
) -> Result<reqwest::Response, reqwest::Error> {
    try_post_signed_as(
        http,
        base,
        public,
        path,
        ("X-Twilio-Signature", auth_token),
        params,
    )
    .await
}

/// Posts a form signed as Twilio signs (HMAC-SHA1 of the URL and the sorted parameters),
/// with `(header, key)`: Twilio's header and auth token, or SignalWire's
/// `X-SignalWire-Signature` and the project's signing key (its compatibility API signs the
/// same way).
pub async fn try_post_signed_as(
    http: &reqwest::Client,
    base: &str,
    public: &str,
    path: &str,
    (header, key): (&str, &str),
    params: &[(&str, &str)],
) -> Result<reqwest::Response, reqwest::Error> {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let sig = switchboard_twilio::signature::compute(key, &format!("{public}{path}"), &owned);
    http.post(format!("{base}{path}"))
        .header(header, sig)
        .form(&owned)
        .send()
        .await
}

/// A SID the fake hands out: Twilio's `prefix` and 32 hex digits, or, playing SignalWire,
/// a UUID (SignalWire's call, message and recording SIDs are UUIDs).
pub(crate) fn fake_sid(prefix: &str, n: u128, signalwire: bool) -> String {
    if !signalwire {
        return format!("{prefix}{n:032x}");
    }
    // Distinct per prefix and number, in the 8-4-4-4-12 form (version 4, variant bits set).
    let salt = prefix.bytes().fold(0u128, |a, b| a * 131 + u128::from(b));
    let v = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (salt << 64);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The `<Stream url>` and `<Parameter>`s of a `<Connect><Stream>` TwiML answer.
pub fn stream_of(twiml: &str) -> Option<(String, Vec<(String, String)>)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(
            tag[start..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    };
    let s = twiml.find("<Stream ")?;
    let tag_end = twiml[s..].find('>')? + s;
    let url = attr(&twiml[s..tag_end], "url")?;
    let mut params = Vec::new();
    let mut rest = &twiml[tag_end..];
    while let Some(p) = rest.find("<Parameter ") {
        let end = rest[p..].find("/>")? + p;
        let tag = &rest[p..end];
        params.push((attr(tag, "name")?, attr(tag, "value")?));
        rest = &rest[end..];
    }
    Some((url, params))
}

/// Everything the media client received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Agent audio bytes, in order, with arrival instants per message.
    pub audio: Vec<u8>,
    /// Media messages: (arrival, payload bytes).
    pub media: Vec<(Instant, Vec<u8>)>,
    /// Mark names received.
    pub marks: Vec<String>,
    /// How many `clear`s, and the audio byte count at each.
    pub clears: Vec<usize>,
    /// Raw frames that were not media (for shape checks).
    pub frames: Vec<Value>,
    /// Marks echoed back (their audio has "played").
    pub echoed: usize,
    /// The server closed the socket.
    pub closed: bool,
    /// Twilio's side ended the stream first (`stop` sent: a hang-up or a REST update).
    pub stopped: bool,
}

pub(crate) enum Cmd {
    Play(Vec<u8>, Duration),
    Keys(String),
    Stop,
    Close,
    Hang,
}

/// A Media Streams client acting as Twilio for one call.
pub struct MediaCall {
    pub(crate) cmd: mpsc::UnboundedSender<Cmd>,
    pub(crate) call_sid: String,
    /// What arrived from the server.
    pub received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
    /// Becomes `true` when the stream has ended (the socket closed or was closed).
    ended: tokio::sync::watch::Receiver<bool>,
}

impl MediaCall {
    /// Connects to `ws_url`, sends `connected` and `start` with `params`, and starts
    /// streaming silence every `frame_interval`. `playback_speed` scales Twilio's playback
    /// clock (1.0 = real time).
    pub async fn connect(
        ws_url: &str,
        call_sid: &str,
        params: &[(String, String)],
        frame_interval: Duration,
        playback_speed: f64,
    ) -> Result<MediaCall, String> {
        Self::connect_with(
            ws_url,
            &[],
            call_sid,
            params,
            frame_interval,
            playback_speed,
        )
        .await
    }

    /// [`MediaCall::connect`] with extra handshake headers (a browser's cookie, its origin).
    pub async fn connect_with(
        ws_url: &str,
        headers: &[(&str, &str)],
        call_sid: &str,
        params: &[(String, String)],
        frame_interval: Duration,
        playback_speed: f64,
    ) -> Result<MediaCall, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| e.to_string())?;
            let value = tokio_tungstenite::tungstenite::http::HeaderValue::from_str(value)
                .map_err(|e| e.to_string())?;
            request.headers_mut().insert(name, value);
        }
        // A modest receive buffer, like a real peer's, so a client that stops reading makes
        // the server's sends block within a bounded amount of audio.
        let url = url::Url::parse(ws_url).map_err(|e| e.to_string())?;
        let addr = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(80)
        );
        let addr: std::net::SocketAddr = tokio::net::lookup_host(&addr)
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        socket
            .set_recv_buffer_size(64 * 1024)
            .map_err(|e| e.to_string())?;
        let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let (ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sink, mut source) = ws.split();
        let stream_sid = format!("MZ{}", &call_sid[2.min(call_sid.len())..]);
        let custom: serde_json::Map<String, Value> =
            params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let send = |v: Value| Message::Text(v.to_string().into());
        sink.send(send(
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        ))
        .await
        .map_err(|e| e.to_string())?;
        sink.send(send(json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
            "accountSid": "AC00000000000000000000000000000000", "streamSid": stream_sid, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": custom,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})))
            .await
            .map_err(|e| e.to_string())?;
        let received = Arc::new(Mutex::new(Received::default()));
        let (cmd, mut cmd_rx) = mpsc::unbounded_channel::<Cmd>();
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        let rec = received.clone();
        let task = tokio::spawn(async move {
            let mut seq = 1u64;
            let mut ts = 0u64;
            let mut queue: VecDeque<u8> = VecDeque::new();
            let mut frame_gap = frame_interval;
            let mut ticker = tokio::time::interval(frame_interval);
            // Twilio's playback: when the queued audio will have finished, and marks due then.
            let mut play_end = Instant::now();
            let mut pending_marks: VecDeque<(Instant, String)> = VecDeque::new();
            let mut stopped = false;
            let mut hung = false;
            loop {
                let next_mark = pending_marks.front().map(|(t, _)| *t);
                tokio::select! {
                    _ = ticker.tick(), if !stopped && !hung => {
                        let frame: Vec<u8> = (0..160).map(|_| queue.pop_front().unwrap_or(0xFF)).collect();
                        seq += 1;
                        ts += 20;
                        let msg = json!({"event": "media", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
                            "media": {"track": "inbound", "chunk": (seq - 1).to_string(), "timestamp": ts.to_string(), "payload": B64.encode(&frame)}});
                        // A failed send means the server dropped the connection; the Close
                        // frame may still be unread behind this frame, so it counts the same.
                        if sink.send(send(msg)).await.is_err() { rec.lock().unwrap().closed = true; break; }
                    }
                    _ = tokio::time::sleep_until(next_mark.map(tokio::time::Instant::from_std).unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))), if next_mark.is_some() && !hung => {
                        if let Some((_, name)) = pending_marks.pop_front() {
                            rec.lock().unwrap().echoed += 1;
                            seq += 1;
                            let msg = json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": stream_sid, "mark": {"name": name}});
                            if sink.send(send(msg)).await.is_err() { rec.lock().unwrap().closed = true; break; }
                        }
                    }
                    c = cmd_rx.recv() => match c {
                        Some(Cmd::Play(audio, gap)) => {
                            queue.extend(audio);
                            if gap != frame_gap {
                                frame_gap = gap;
                                ticker = tokio::time::interval(gap);
                            }
                        }
                        Some(Cmd::Keys(keys)) => {
                            // One `dtmf` frame per key, as Twilio sends them.
                            for key in keys.chars() {
                                seq += 1;
                                let msg = json!({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": seq.to_string(),
                                    "dtmf": {"track": "inbound_track", "digit": key.to_string()}});
                                if sink.send(send(msg)).await.is_err() { rec.lock().unwrap().closed = true; break; }
                            }
                        }
                        Some(Cmd::Stop) => {
                            seq += 1;
                            let msg = json!({"event": "stop", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
                                "stop": {"accountSid": "AC00000000000000000000000000000000", "callSid": call_sid_of(&stream_sid)}});
                            let _ = sink.send(send(msg)).await;
                            stopped = true;
                            rec.lock().unwrap().stopped = true;
                        }
                        Some(Cmd::Hang) => hung = true,
                        Some(Cmd::Close) | None => { let _ = sink.close().await; break; }
                    },
                    msg = source.next(), if !hung => {
                        let Some(Ok(msg)) = msg else {
                            rec.lock().unwrap().closed = true;
                            break;
                        };
                        let text = match msg {
                            Message::Text(t) => t.to_string(),
                            Message::Close(_) => { rec.lock().unwrap().closed = true; break; }
                            _ => continue,
                        };
                        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                        let now = Instant::now();
                        let mut r = rec.lock().unwrap();
                        match v["event"].as_str() {
                            Some("media") => {
                                let bytes = B64.decode(v["media"]["payload"].as_str().unwrap_or_default()).unwrap_or_default();
                                let ms = (bytes.len() as f64 / 8.0 / playback_speed) as u64;
                                play_end = play_end.max(now) + Duration::from_millis(ms);
                                r.audio.extend_from_slice(&bytes);
                                r.media.push((now, bytes));
                            }
                            Some("mark") => {
                                let name = v["mark"]["name"].as_str().unwrap_or_default().to_owned();
                                r.marks.push(name.clone());
                                pending_marks.push_back((play_end.max(now), name));
                            }
                            Some("clear") => {
                                let n = r.audio.len();
                                r.clears.push(n);
                                r.frames.push(v);
                                play_end = now;
                                // Twilio echoes every pending mark at once after a clear.
                                for (t, _) in pending_marks.iter_mut() { *t = now; }
                            }
                            _ => r.frames.push(v),
                        }
                    }
                }
            }
            let _ = ended_tx.send(true);
        });
        Ok(MediaCall {
            cmd,
            call_sid: call_sid.to_owned(),
            received,
            task,
            ended,
        })
    }

    /// Queues caller audio (played at the current frame rate, then silence again).
    pub fn play(&self, audio: &[u8]) {
        let _ = self
            .cmd
            .send(Cmd::Play(audio.to_vec(), Duration::from_millis(20)));
    }

    /// Queues caller audio and changes the frame interval.
    pub fn play_at(&self, audio: &[u8], interval: Duration) {
        let _ = self.cmd.send(Cmd::Play(audio.to_vec(), interval));
    }

    /// The caller presses `keys` on the keypad (`0`-`9`, `*`, `#`), one `dtmf` frame each.
    pub fn press(&self, keys: &str) {
        let _ = self.cmd.send(Cmd::Keys(keys.to_owned()));
    }

    /// Sends `stop` (the caller hung up).
    pub fn stop(&self) {
        let _ = self.cmd.send(Cmd::Stop);
    }

    /// Resolves when the stream has ended (for the fake REST API, which then plays Twilio's
    /// side of the hang-up).
    pub(crate) fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.ended.clone();
        async move {
            let _ = rx.wait_for(|e| *e).await;
        }
    }

    /// A handle that sends this call's commands (for the fake REST API).
    pub(crate) fn commands(&self) -> mpsc::UnboundedSender<Cmd> {
        self.cmd.clone()
    }

    /// Hangs: stops reading and sending, but keeps the socket open (a stuck peer).
    pub fn hang(&self) {
        let _ = self.cmd.send(Cmd::Hang);
    }

    /// Closes the socket.
    pub fn close(&self) {
        let _ = self.cmd.send(Cmd::Close);
    }

    /// A snapshot of what arrived.
    pub fn snapshot(&self) -> Received {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `cond` holds for what arrived, or panics after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&Received) -> bool) {
        assert!(
            self.until(limit, cond).await,
            "timed out waiting for {what}"
        );
    }

    /// Polls what arrived until `cond` holds (`true`) or `limit` passes (`false`).
    pub(crate) async fn until(&self, limit: Duration, cond: impl Fn(&Received) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if cond(&self.received.lock().unwrap()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the client task to end (the socket closed).
    pub async fn finished(self, limit: Duration) -> Received {
        let _ = tokio::time::timeout(limit, self.task).await;
        self.received.lock().unwrap().clone()
    }
}

fn call_sid_of(stream_sid: &str) -> String {
    format!("CA{}", stream_sid.get(2..).unwrap_or_default())
}
