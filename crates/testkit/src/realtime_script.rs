//! How the fake Realtime server answers: scripted responses streamed in their own task (audio
//! and transcript deltas, function calls, failures, late transcription, drops) and the
//! energy VAD that turns caller audio into turns.

use super::realtime::{Behavior, FakeShape, Step};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};

/// A response cancelled by the caller's speech.
pub(crate) const TURN_DETECTED: u8 = 1;
/// A response cancelled by `response.cancel`.
pub(crate) const CLIENT_CANCELLED: u8 = 2;
use std::sync::Arc;
use tokio::sync::mpsc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn names(shape: FakeShape) -> (&'static str, &'static str, &'static str) {
    match shape {
        FakeShape::Ga => (
            "response.output_audio.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
        ),
        FakeShape::Beta => (
            "response.audio.delta",
            "response.audio.done",
            "response.audio_transcript.done",
        ),
    }
}

/// What is left of one connection's script.
pub(crate) struct Script<'a> {
    pub(crate) steps: &'a mut VecDeque<Step>,
    pub(crate) fails: &'a mut VecDeque<String>,
    pub(crate) no: &'a mut u32,
}

/// One response to stream.
pub(crate) struct Reply {
    /// What to say or call (`None` with `fail`).
    pub(crate) step: Option<Step>,
    /// Fail the response with this error code instead.
    pub(crate) fail: Option<String>,
    /// Response number.
    pub(crate) no: u32,
    /// An event to send after `response.done` (a late input transcription).
    pub(crate) after: Option<Value>,
    /// Drop the connection after this response.
    pub(crate) drop: bool,
}

/// Tells the writer to stop and the connection to be dropped without a close frame.
pub(crate) const DROP: &str = "\u{0}drop";

/// Streams one response in its own task; setting the flag cancels it (barge-in).
pub(crate) fn respond(
    tx: mpsc::UnboundedSender<Option<String>>,
    behavior: Behavior,
    reply: Reply,
) -> Arc<AtomicU8> {
    let cancel = Arc::new(AtomicU8::new(0));
    let flag = cancel.clone();
    tokio::spawn(async move {
        let send = |v: Value| {
            let _ = tx.send(Some(v.to_string()));
        };
        let no = reply.no;
        let resp = format!("resp_{no}");
        send(
            json!({"type": "response.created", "response": {"id": resp, "status": "in_progress"}}),
        );
        if let Some(code) = reply.fail {
            // The error type follows OpenAI's API errors: rate limits and server faults have
            // their own types; others (e.g. `insufficient_quota`) use the code as the type.
            let kind = if code.contains("rate_limit") {
                "rate_limit_error".to_owned()
            } else if code.starts_with("server") {
                "server_error".to_owned()
            } else {
                code.clone()
            };
            send(
                json!({"type": "response.done", "response": {"id": resp, "status": "failed", "output": [],
                    "status_details": {"type": "failed", "error": {"type": kind, "code": code}}}}),
            );
        }
        match reply.step {
            None => {}
            Some(Step::Call(name, args)) => {
                let item = json!({"type": "function_call", "id": format!("item_fc{no}"), "call_id": format!("call_{no}"), "name": name, "arguments": args.to_string(), "status": "completed"});
                send(
                    json!({"type": "response.function_call_arguments.done", "response_id": resp, "item_id": item["id"], "call_id": item["call_id"], "name": name, "arguments": args.to_string()}),
                );
                send(
                    json!({"type": "response.done", "response": {"id": resp, "status": "completed", "output": [item]}}),
                );
            }
            Some(Step::Say(audio, transcript)) => {
                let item_id = format!("item_agent{no}");
                let (delta, done, tdone) = names(behavior.shape);
                let tdelta = transcript_delta_name(behavior.shape);
                let chunks: Vec<&[u8]> = audio.chunks(behavior.delta_bytes.max(1)).collect();
                let words: Vec<&str> = transcript.split_inclusive(' ').collect();
                let mut cancelled = false;
                let mut late = 0usize;
                for (i, chunk) in chunks.iter().enumerate() {
                    if flag.load(Ordering::SeqCst) != 0 {
                        cancelled = true;
                        // Deltas already in flight when the server cancelled still arrive.
                        if late >= behavior.deltas_after_interrupt {
                            break;
                        }
                        late += 1;
                    }
                    send(
                        json!({"type": delta, "response_id": resp, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": B64.encode(chunk)}),
                    );
                    // The transcript streams alongside the audio, in proportion.
                    let from = words.len() * i / chunks.len();
                    let to = words.len() * (i + 1) / chunks.len();
                    if to > from {
                        send(
                            json!({"type": tdelta, "response_id": resp, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": words[from..to].concat()}),
                        );
                    }
                    tokio::time::sleep(behavior.delta_interval).await;
                }
                let item = json!({"type": "message", "id": item_id, "role": "assistant", "status": if cancelled {"incomplete"} else {"completed"}, "content": [{"type": "output_audio", "transcript": transcript}]});
                if !cancelled {
                    send(json!({"type": done, "response_id": resp, "item_id": item_id}));
                    send(
                        json!({"type": tdone, "response_id": resp, "item_id": item_id, "transcript": transcript}),
                    );
                }
                let (status, details) = if cancelled {
                    (
                        "cancelled",
                        json!({"type": "cancelled", "reason": if flag.load(Ordering::SeqCst) == CLIENT_CANCELLED { "client_cancelled" } else { "turn_detected" }}),
                    )
                } else {
                    ("completed", Value::Null)
                };
                send(
                    json!({"type": "response.done", "response": {"id": resp, "status": status, "status_details": details, "output": [item]}}),
                );
            }
        }
        if let Some(event) = reply.after {
            send(event);
        }
        if reply.drop {
            let _ = tx.send(Some(DROP.to_owned()));
        }
    });
    cancel
}

fn transcript_delta_name(shape: FakeShape) -> &'static str {
    match shape {
        FakeShape::Ga => "response.output_audio_transcript.delta",
        FakeShape::Beta => "response.audio_transcript.delta",
    }
}

pub(crate) enum Edge {
    Started,
    Stopped,
}

/// Speech starts on the first loud 20 ms frame and stops after 500 ms of quiet.
#[derive(Default)]
pub(crate) struct Vad {
    buf: Vec<u8>,
    speaking: bool,
    quiet_frames: u32,
}

impl Vad {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Edge> {
        self.buf.extend_from_slice(bytes);
        let mut edges = Vec::new();
        while self.buf.len() >= 160 {
            let frame: Vec<u8> = self.buf.drain(..160).collect();
            let loud = crate::is_speech(&frame);
            if loud {
                self.quiet_frames = 0;
                if !self.speaking {
                    self.speaking = true;
                    edges.push(Edge::Started);
                }
            } else if self.speaking {
                self.quiet_frames += 1;
                if self.quiet_frames >= 25 {
                    self.speaking = false;
                    edges.push(Edge::Stopped);
                }
            }
        }
        edges
    }
}
