//! The fake Deepgram live stream: it "hears" speech by its level, as the real one's
//! endpointing does, with the words from the script: interim results while the caller
//! speaks, a final with `speech_final` after the endpointing silence, `UtteranceEnd` after
//! `utterance_end_ms`, `from_finalize` on `Finalize` (and nothing at all when nothing is
//! pending), `Metadata` and a 1000 close on `CloseStream`, a 1008 close on an unknown
//! message, and a 1011 close after 10 s without audio (NET-0001).

use super::{close, lock, next_utterance, Shared};
use axum::extract::ws::{Message, WebSocket};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_cascade::audio::ulaw_to_pcm;

/// The level above which a 20 ms frame is speech (about -40 dBFS).
const SPEECH_RMS: f64 = 330.0;

fn rms(frame: &[u8]) -> f64 {
    let e: f64 = frame
        .iter()
        .map(|u| f64::from(ulaw_to_pcm(*u)).powi(2))
        .sum();
    (e / frame.len().max(1) as f64).sqrt()
}

/// A `Results` message.
fn results(
    text: &str,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    secs: f64,
) -> String {
    json!({"type": "Results", "channel_index": [0, 1], "duration": secs, "start": 0.0,
        "is_final": is_final, "speech_final": speech_final, "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
        "metadata": {"request_id": "fake", "model_info": {"name": "fake"}}})
    .to_string()
}

/// One stream's hearing.
struct Listener {
    shared: Arc<Mutex<Shared>>,
    endpointing: u64,
    utterance_end: Option<u64>,
    /// The last five frames' loudness, one bit each.
    recent: u8,
    speaking: bool,
    /// The words of the utterance in progress, not yet finalised.
    words: Option<String>,
    speech_ms: u64,
    quiet_ms: u64,
    /// Silence since the last final words (for `UtteranceEnd`).
    since_words_ms: Option<u64>,
    audio_ms: u64,
    leftover: Vec<u8>,
}

impl Listener {
    fn new(shared: Arc<Mutex<Shared>>, q: &HashMap<String, String>) -> Listener {
        Listener {
            shared,
            endpointing: q
                .get("endpointing")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
            utterance_end: q.get("utterance_end_ms").and_then(|v| v.parse().ok()),
            recent: 0,
            speaking: false,
            words: None,
            speech_ms: 0,
            quiet_ms: 0,
            since_words_ms: None,
            audio_ms: 0,
            leftover: Vec::new(),
        }
    }

    /// Audio bytes: what they make Deepgram say.
    fn audio(&mut self, bytes: &[u8]) -> Vec<String> {
        self.leftover.extend_from_slice(bytes);
        let whole = self.leftover.len() / 160 * 160;
        let frames: Vec<u8> = self.leftover.drain(..whole).collect();
        let mut out = Vec::new();
        for frame in frames.chunks_exact(160) {
            self.audio_ms += 20;
            let loud = rms(frame) >= SPEECH_RMS;
            self.recent = ((self.recent << 1) | u8::from(loud)) & 0x1f;
            if self.speaking {
                out.extend(self.while_speaking(loud));
            } else {
                out.extend(self.while_quiet());
            }
        }
        out
    }

    fn while_quiet(&mut self) -> Option<String> {
        if self.recent.count_ones() >= 3 {
            self.speaking = true;
            self.speech_ms = 0;
            self.quiet_ms = 0;
            self.since_words_ms = None;
            self.words = Some(next_utterance(&mut lock(&self.shared)));
            return None;
        }
        let since = self.since_words_ms.as_mut()?;
        *since += 20;
        if self.utterance_end != Some(*since) {
            return None;
        }
        self.since_words_ms = None;
        Some(json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.audio_ms as f64 / 1000.0}).to_string())
    }

    fn while_speaking(&mut self, loud: bool) -> Option<String> {
        let secs = self.speech_ms as f64 / 1000.0;
        if loud {
            self.quiet_ms = 0;
            self.speech_ms += 20;
            if !self.speech_ms.is_multiple_of(400) {
                return None;
            }
            // Interim: the words so far, never the last one.
            let all: Vec<&str> = self.words.as_deref()?.split_whitespace().collect();
            let n = ((self.speech_ms / 400) as usize).min(all.len().saturating_sub(1));
            return Some(results(&all[..n].join(" "), false, false, false, secs));
        }
        self.quiet_ms += 20;
        if self.quiet_ms < self.endpointing.max(20) {
            return None;
        }
        self.speaking = false;
        self.recent = 0;
        let words = self.words.take()?;
        self.since_words_ms = Some(self.quiet_ms);
        Some(results(&words, true, true, false, secs))
    }

    /// `Finalize`: the pending words, if any (Deepgram says nothing when none are).
    fn finalize(&mut self) -> Option<String> {
        lock(&self.shared).finalizes += 1;
        let words = self.words.take()?;
        Some(results(
            &words,
            true,
            false,
            true,
            self.speech_ms as f64 / 1000.0,
        ))
    }
}

/// One Deepgram stream.
pub(super) async fn session(
    mut socket: WebSocket,
    shared: Arc<Mutex<Shared>>,
    q: HashMap<String, String>,
) {
    let mulaw = q.get("encoding").map(String::as_str) == Some("mulaw")
        && q.get("sample_rate").map(String::as_str) == Some("8000");
    let mut l = Listener::new(shared, &q);
    loop {
        let msg = match tokio::time::timeout(Duration::from_secs(10), socket.recv()).await {
            Err(_) => {
                let _ = socket
                    .send(close(1011, "NET-0001: no audio received for 10 seconds"))
                    .await;
                return;
            }
            Ok(Some(Ok(m))) => m,
            Ok(_) => return,
        };
        let out: Vec<String> = match msg {
            // Audio in another encoding is not understood: no words.
            Message::Binary(bytes) if mulaw => l.audio(&bytes),
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("Finalize") => l.finalize().into_iter().collect(),
                    Some("KeepAlive") => Vec::new(),
                    Some("CloseStream") => {
                        let meta = json!({"type": "Metadata", "request_id": "fake", "duration": l.audio_ms as f64 / 1000.0, "channels": 1});
                        let _ = socket.send(Message::Text(meta.to_string().into())).await;
                        let _ = socket.send(close(1000, "")).await;
                        return;
                    }
                    _ => {
                        let _ = socket.send(close(1008, "DATA-0000: unknown message")).await;
                        return;
                    }
                }
            }
            Message::Close(_) => return,
            _ => Vec::new(),
        };
        for o in out {
            if socket.send(Message::Text(o.into())).await.is_err() {
                return;
            }
        }
    }
}
