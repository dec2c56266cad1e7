//! The engine: one task per call that plays an OpenAI Realtime session for the call actor.
//! The caller's audio feeds the detector and the speech-to-text provider; a finished turn
//! becomes a user message and an answer (respond.rs); the answer's audio goes back as
//! audio deltas. The actor's client events (session, items, `response.create`,
//! `response.cancel`, `truncate`) are handled as the Realtime API documents them.

mod context;
mod events;
mod respond;
mod turns;

use crate::audio::Vad;
use crate::stt::{Stt, SttEvent, SttOptions};
use crate::{Providers, Stats};
use base64::Engine as _;
use context::Context;
use futures_util::{SinkExt, StreamExt};
use respond::{Job, Out};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::agent::{
    LlmSettings, SttSettings, TtsSettings, DEFAULT_APOLOGY, DEFAULT_FIRST_TOKEN_MS,
};
use switchboard_llm::{Request, Tool};
use switchboard_realtime::{LocalPeer, ModelLink};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use turns::{open_stt, Pending, Turn};

/// A cascaded agent's pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Speech-to-text.
    pub stt: SttSettings,
    /// Chat model settings.
    pub llm: LlmSettings,
    /// Text-to-speech.
    pub tts: TtsSettings,
    /// The chat model to ask (empty: the client's default).
    pub chat_model: String,
    /// The agent's language.
    pub language: Option<String>,
    /// Detector threshold, 0 to 1.
    pub threshold: f64,
    /// Endpointing silence.
    pub silence_ms: u32,
}

/// Opens speech-to-text (the fallback if the first choice fails) and starts the engine;
/// the actor talks to it through the returned link.
pub async fn open(pipeline: Pipeline, providers: Arc<Providers>) -> Result<ModelLink, String> {
    let options = SttOptions {
        language: pipeline.language.clone(),
        silence_ms: pipeline.silence_ms,
    };
    let (stt, stt_events) = open_stt(&pipeline.stt, &providers, &options, false).await?;
    let (link, peer) = ModelLink::local();
    Stats::add(&providers.stats.sessions);
    let engine = Engine {
        vad: Vad::new(pipeline.threshold, pipeline.silence_ms),
        pipeline,
        providers,
        options,
        stt,
        stt_events,
        stt_fallen_back: false,
        context: Context::default(),
        instructions: String::new(),
        tools: Vec::new(),
        temperature: None,
        seq: 0,
        audio_ms: 0,
        leftover: Vec::new(),
        turn: None,
        pending: None,
        interim: false,
        active: None,
    };
    tokio::spawn(engine.run(peer));
    Ok(link)
}

/// When the parts of a turn's answer happened.
#[derive(Default, Clone, Copy)]
struct Marks {
    speech_end: Option<Instant>,
    transcript: Option<Instant>,
    created: Option<Instant>,
    first_token: Option<Instant>,
    first_audio: Option<Instant>,
}

impl Marks {
    /// The per-turn latency breakdown (milliseconds), as far as it is known.
    fn breakdown(&self) -> Value {
        let ms = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => json!(b.saturating_duration_since(a).as_millis() as u64),
            _ => Value::Null,
        };
        let asked = self.transcript.or(self.created);
        json!({
            "transcript_ms": ms(self.speech_end, self.transcript),
            "first_token_ms": ms(asked, self.first_token),
            "first_audio_ms": ms(self.first_token, self.first_audio),
            "to_first_audio_ms": ms(self.speech_end.or(asked), self.first_audio),
        })
    }
}

/// The answer being produced.
struct Active {
    seq: u64,
    id: String,
    item: String,
    task: JoinHandle<()>,
    text: String,
    voiced_chars: usize,
    audio_bytes: usize,
    marks: Marks,
}

struct Engine {
    pipeline: Pipeline,
    providers: Arc<Providers>,
    options: SttOptions,
    stt: Stt,
    stt_events: mpsc::Receiver<SttEvent>,
    stt_fallen_back: bool,
    vad: Vad,
    context: Context,
    instructions: String,
    tools: Vec<Tool>,
    temperature: Option<f64>,
    seq: u64,
    /// Caller audio received, in ms (the `audio_start_ms` of turn edges).
    audio_ms: u64,
    leftover: Vec<u8>,
    turn: Option<Turn>,
    pending: Option<Pending>,
    /// The provider has words of the current speech it has not finalised.
    interim: bool,
    active: Option<Active>,
}

/// Why the engine stops.
enum Stop {
    /// The actor closed the link.
    Closed,
    /// Speech-to-text failed with no fallback left: the actor sees the session end.
    Failed(String),
}

impl Engine {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_{:06}", self.seq)
    }

    async fn run(mut self, peer: LocalPeer) {
        let LocalPeer {
            mut events,
            mut replies,
        } = peer;
        let (out_tx, mut out_rx) = mpsc::channel::<(u64, Out)>(256);
        let stop = loop {
            let deadline = self.pending.as_ref().map(|p| p.deadline);
            let sends: Result<Vec<String>, Stop> = tokio::select! {
                ev = events.next() => match ev {
                    Some(text) => Ok(self.on_client(&text, &out_tx)),
                    None => Err(Stop::Closed),
                },
                ev = self.stt_events.recv() => self.on_stt(ev, &out_tx).await,
                Some((seq, out)) = out_rx.recv() => Ok(self.on_answer(seq, out)),
                _ = sleep_until(deadline), if deadline.is_some() => Ok(self.finish_turn(&out_tx)),
            };
            match sends {
                Ok(list) => {
                    for text in list {
                        if replies.send(text).await.is_err() {
                            break;
                        }
                    }
                    if replies.is_closed() {
                        break Stop::Closed;
                    }
                }
                Err(stop) => break stop,
            }
        };
        if let Some(a) = self.active.take() {
            a.task.abort();
        }
        match stop {
            Stop::Closed => tracing::debug!("cascaded session closed"),
            Stop::Failed(e) => {
                tracing::warn!(error = %e, "cascaded session ends: speech-to-text failed");
                let _ = replies.send(events::error("stt_failed", &e)).await;
            }
        }
    }

    /// One client event from the actor.
    fn on_client(&mut self, text: &str, out: &mpsc::Sender<(u64, Out)>) -> Vec<String> {
        let Ok(ev) = serde_json::from_str::<Value>(text) else {
            return vec![events::error("invalid_json", "the event is not JSON")];
        };
        match ev["type"].as_str().unwrap_or_default() {
            "input_audio_buffer.append" => {
                let audio = ev["audio"].as_str().unwrap_or_default();
                match base64::engine::general_purpose::STANDARD.decode(audio) {
                    Ok(bytes) => self.on_audio(&bytes, out),
                    Err(_) => {
                        tracing::warn!("caller audio is not base64; skipped");
                        Vec::new()
                    }
                }
            }
            "session.update" => {
                let s = &ev["session"];
                if let Some(i) = s["instructions"].as_str() {
                    self.instructions = i.to_owned();
                }
                if let Some(tools) = s["tools"].as_array() {
                    self.tools = tools
                        .iter()
                        .filter_map(|t| {
                            Some(Tool {
                                name: t["name"].as_str()?.to_owned(),
                                description: t["description"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned(),
                                parameters: t["parameters"].clone(),
                            })
                        })
                        .collect();
                }
                if let Some(t) = s["temperature"].as_f64() {
                    self.temperature = Some(t);
                }
                vec![events::session_updated(&self.instructions)]
            }
            "conversation.item.create" => {
                self.context.add_item(&ev["item"]);
                Vec::new()
            }
            "conversation.item.truncate" => {
                let item = ev["item_id"].as_str().unwrap_or_default();
                let ms = ev["audio_end_ms"].as_u64().unwrap_or(0);
                // The actor cuts what the caller stopped hearing (barge-in, staff mute).
                Stats::add(&self.providers.stats.interrupted);
                self.context.truncate(item, ms);
                Vec::new()
            }
            "response.create" => {
                let r = &ev["response"];
                let instructions = r["instructions"].as_str().map(str::to_owned);
                let no_tools = r["tool_choice"].as_str() == Some("none");
                self.respond(instructions, no_tools, Marks::default(), out)
            }
            "response.cancel" => match self.cancel() {
                Some(done) => vec![done],
                None => vec![events::error(
                    "response_cancel_not_active",
                    "there is no active response to cancel",
                )],
            },
            "input_audio_buffer.commit" | "input_audio_buffer.clear" => Vec::new(),
            other => {
                tracing::debug!(
                    event = other,
                    "client event not used by the cascaded pipeline"
                );
                Vec::new()
            }
        }
    }

    /// Starts an answer (`response.create`, or a finished turn).
    fn respond(
        &mut self,
        instructions: Option<String>,
        no_tools: bool,
        mut marks: Marks,
        out: &mpsc::Sender<(u64, Out)>,
    ) -> Vec<String> {
        if self.active.is_some() {
            return vec![events::error(
                "conversation_already_has_active_response",
                "a response is in progress",
            )];
        }
        let id = self.next_id("resp");
        let item = self.next_id("item_agent");
        tracing::debug!(response = %id, item = %item, "answering");
        marks.created = Some(Instant::now());
        let system = instructions.unwrap_or_else(|| self.instructions.clone());
        let request = Request {
            model: self.pipeline.chat_model.clone(),
            messages: self.context.messages(&system),
            tools: self.tools.clone(),
            forbid_tools: no_tools,
            temperature: self.temperature,
            response_format: None,
        };
        let llm = &self.pipeline.llm;
        let job = Job {
            seq: self.seq,
            request,
            voices: self.pipeline.tts.choices(),
            apology: llm
                .apology
                .clone()
                .unwrap_or_else(|| DEFAULT_APOLOGY.to_owned()),
            first_token: Duration::from_millis(
                llm.first_token_timeout_ms.unwrap_or(DEFAULT_FIRST_TOKEN_MS) as u64,
            ),
            providers: self.providers.clone(),
        };
        let task = tokio::spawn(respond::run(job, out.clone()));
        let sends = vec![events::response_created(&id)];
        self.active = Some(Active {
            seq: self.seq,
            id,
            item,
            task,
            text: String::new(),
            voiced_chars: 0,
            audio_bytes: 0,
            marks,
        });
        sends
    }

    /// Stops the answer in progress: `response.done` with `cancelled`, keeping in the
    /// context what had been voiced (a `truncate` then cuts it to what was heard).
    fn cancel(&mut self) -> Option<String> {
        let a = self.active.take()?;
        a.task.abort();
        let voiced = crate::text::heard_words(&a.text, a.voiced_chars);
        let mut output = Vec::new();
        if a.audio_bytes > 0 {
            self.context.add_agent(&a.item, &voiced, &a.text);
            output.push(events::message_item(&a.item, &voiced, "incomplete"));
        }
        Some(events::response_done(
            &a.id,
            "cancelled",
            output,
            json!({"status_details": {"type": "cancelled", "reason": "turn_detected"}}),
        ))
    }

    /// Something the answer in progress produced.
    fn on_answer(&mut self, seq: u64, out: Out) -> Vec<String> {
        let Some(a) = self.active.as_mut().filter(|a| a.seq == seq) else {
            // A cancelled answer's last words.
            return Vec::new();
        };
        match out {
            Out::FirstToken => {
                a.marks.first_token = Some(Instant::now());
                Vec::new()
            }
            Out::Text(t) => {
                a.text.push_str(&t);
                Vec::new()
            }
            Out::Audio { ulaw, chars } => {
                let mut sends = Vec::new();
                let start = a.voiced_chars;
                a.voiced_chars = (a.voiced_chars + chars).min(a.text.chars().count());
                let words: String = a
                    .text
                    .chars()
                    .skip(start)
                    .take(a.voiced_chars - start)
                    .collect();
                if !ulaw.is_empty() {
                    if a.marks.first_audio.is_none() {
                        a.marks.first_audio = Some(Instant::now());
                    }
                    a.audio_bytes += ulaw.len();
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&ulaw);
                    sends.push(events::audio_delta(&a.id, &a.item, &b64));
                    self.context.voiced(&a.item, a.audio_bytes, a.voiced_chars);
                }
                if !words.is_empty() {
                    sends.push(events::transcript_delta(&a.id, &a.item, &words));
                }
                sends
            }
            Out::Done {
                tool_calls,
                apologized,
            } => {
                let Some(a) = self.active.take() else {
                    return Vec::new();
                };
                let stats = &self.providers.stats;
                Stats::add(if apologized {
                    &stats.apologies
                } else {
                    &stats.answers
                });
                let mut sends = Vec::new();
                let mut output = Vec::new();
                let text = a.text.trim().to_owned();
                if a.audio_bytes > 0 || !text.is_empty() {
                    sends.push(events::audio_done(&a.id, &a.item));
                    output.push(events::message_item(&a.item, &text, "completed"));
                }
                let calls: Vec<(String, switchboard_llm::ToolCall)> = tool_calls
                    .into_iter()
                    .map(|c| (self.next_id("item_call"), c))
                    .collect();
                for (id, c) in &calls {
                    output.push(events::function_call_item(id, c));
                }
                self.context.add_answer(&a.item, &text, &calls);
                sends.push(events::response_done(
                    &a.id,
                    "completed",
                    output,
                    json!({"latency_breakdown": a.marks.breakdown(), "apologized": apologized}),
                ));
                sends
            }
            Out::Failed { code, message } => {
                let Some(a) = self.active.take() else {
                    return Vec::new();
                };
                tracing::warn!(code, error = %message, "the answer failed");
                Stats::add(&self.providers.stats.failed_answers);
                vec![events::response_done(
                    &a.id,
                    "failed",
                    Vec::new(),
                    json!({"status_details": {"type": "failed", "error": {"type": "server_error", "code": code, "message": message}}}),
                )]
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
