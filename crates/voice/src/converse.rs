//! A spoken conversation with the model over a media stream that is not a phone call: the
//! operator assistant in the browser. The page speaks Media Streams (as "Call this agent"
//! does); this relays the audio both ways, handles barge-in (the page's queue is cleared and
//! the model's item truncated at what was heard, told by the marks), and hands the host the
//! words said on both sides and every function the model calls. There is no call record,
//! recording or phone leg: the host keeps what it needs and decides what the functions do.
//!
//! A function the host lists in `needs_words` (confirming a change) is run only once the
//! transcription of the person's latest utterance is in (or failed, or did not come within
//! [`WORDS_WAIT`]), and gets those words: Realtime may call a function before the input
//! transcription of the turn that prompted it arrives (protocols.md section 5).

use crate::session::{wait_for_start, MediaSocket, WsFrame};
use crate::VoiceConfig;
use base64::Engine;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_realtime::{ModelSocket, SessionConfig};
use switchboard_twilio::media::{self, Inbound};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// How long a function that needs the person's words waits for their transcription.
pub const WORDS_WAIT: Duration = Duration::from_secs(5);

/// A function the model called, with the person's turn and, when asked for, their words.
#[derive(Debug, Clone)]
pub struct FunctionCall {
    /// The model's call id.
    pub call_id: String,
    /// The function.
    pub name: String,
    /// Its arguments, as the model wrote them (JSON text).
    pub arguments: String,
    /// How many times the person has spoken so far (1 for their first utterance).
    pub turn: u64,
    /// The transcription of the person's latest utterance, for functions in `needs_words`
    /// (`None` when there is none or it could not be had).
    pub words: Option<String>,
}

/// Words said in the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The person, in their `turn`-th utterance.
    Person {
        /// Which utterance.
        turn: u64,
        /// The transcription.
        text: String,
    },
    /// The model's spoken answer.
    Model {
        /// The person's utterance it answers (0 before they spoke).
        turn: u64,
        /// Its transcript.
        text: String,
        /// The person talked over it (they may not have heard it all).
        interrupted: bool,
    },
}

/// What runs the conversation's functions and keeps its words.
pub trait Host: Send {
    /// Runs a function; its output goes back to the model. Functions of one response run
    /// concurrently, and the model answers once all are done.
    fn function(&mut self, call: FunctionCall) -> BoxFuture<'static, Value>;
    /// Words were said.
    fn heard(&mut self, what: Heard) -> BoxFuture<'_, ()>;
}

/// How the conversation is set up.
pub struct Conversation {
    /// The model session.
    pub session: SessionConfig,
    /// Functions that get the person's latest words (see the module's documentation).
    pub needs_words: Vec<String>,
    /// Instructions of a first response, spoken before the person says anything.
    pub greeting: Option<String>,
    /// The longest the conversation may last.
    pub limit: Duration,
    /// Frames the host sends the page (text, shown beside the conversation).
    pub page: mpsc::UnboundedReceiver<String>,
    /// Becomes `true` when the server must end live conversations (its drain timed out).
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// Why a conversation could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConverseError {
    /// The page did not start the stream.
    #[error("the page did not start the media stream")]
    NoStart,
    /// No model key.
    #[error("no speech model is configured (SWITCHBOARD_OPENAI_API_KEY)")]
    NoKey,
    /// The model could not be reached or refused the session.
    #[error("the speech model cannot be reached: {0}")]
    Model(String),
}

/// Runs the conversation on `socket` until the page stops, the model goes, or the limit
/// passes. `Err` means it never started (the page can be told why on the socket); the caller
/// closes the socket.
pub async fn converse(
    cfg: &VoiceConfig,
    socket: &mut MediaSocket,
    conversation: Conversation,
    host: &mut dyn Host,
) -> Result<(), ConverseError> {
    let start = tokio::time::timeout(cfg.setup_timeout, wait_for_start(socket))
        .await
        .ok()
        .flatten()
        .ok_or(ConverseError::NoStart)?;
    let key = cfg.api_key.as_ref().ok_or(ConverseError::NoKey)?;
    let session = &conversation.session;
    let mut model = tokio::time::timeout(
        cfg.setup_timeout,
        switchboard_realtime::connect(&cfg.realtime_url, &session.model, key.expose(), cfg.shape),
    )
    .await
    .map_err(|_| ConverseError::Model("no answer in time".into()))?
    .map_err(|e| ConverseError::Model(e.to_string()))?;
    model
        .send(ModelMessage::Text(
            rt::session_update(cfg.shape, session).into(),
        ))
        .await
        .map_err(|e| ConverseError::Model(e.to_string()))?;
    let mut relay = Relay {
        cfg,
        stream_sid: start.stream_sid,
        model,
        ready: false,
        turn: 0,
        turn_of: HashMap::new(),
        latest: None,
        words: None,
        waiting_words: false,
        sent: HashMap::new(),
        heard: HashMap::new(),
        speaking: None,
        running: FuturesUnordered::new(),
        held: Vec::new(),
        held_until: None,
        needs_words: conversation.needs_words,
        response_active: false,
        answer_owed: false,
    };
    let outcome = relay
        .run(
            socket,
            host,
            conversation.page,
            conversation.greeting,
            conversation.limit,
            conversation.stop,
        )
        .await;
    let _ = tokio::time::timeout(cfg.send_timeout, relay.model.close(None)).await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "spoken conversation ended by a fault");
    }
    Ok(())
}

type Running = FuturesUnordered<BoxFuture<'static, (String, Value)>>;

struct Relay<'a> {
    cfg: &'a VoiceConfig,
    stream_sid: String,
    model: ModelSocket,
    /// `session.updated` came with mu-law both ways.
    ready: bool,
    /// Utterances so far.
    turn: u64,
    turn_of: HashMap<String, u64>,
    /// The latest utterance's item, its words, and whether they are still to come.
    latest: Option<String>,
    words: Option<String>,
    waiting_words: bool,
    /// Model audio sent to the page and heard there (bytes), per item.
    sent: HashMap<String, usize>,
    heard: HashMap<String, usize>,
    speaking: Option<String>,
    running: Running,
    /// Function calls waiting for the person's words.
    held: Vec<FunctionCall>,
    held_until: Option<Instant>,
    needs_words: Vec<String>,
    response_active: bool,
    /// Function outputs went in while a response was active: answer when it is done.
    answer_owed: bool,
}

enum Flow {
    Go,
    End,
}

impl Relay<'_> {
    async fn run(
        &mut self,
        socket: &mut MediaSocket,
        host: &mut dyn Host,
        mut page: mpsc::UnboundedReceiver<String>,
        greeting: Option<String>,
        limit: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        let ends_at = Instant::now() + limit;
        let mut greeting = greeting;
        let mut stop_open = true;
        if *stop.borrow_and_update() {
            return Ok(());
        }
        loop {
            let flow = tokio::select! {
                frame = socket.next() => {
                    match frame {
                        Some(Ok(WsFrame::Text(t))) => self.on_page(&t).await?,
                        Some(Ok(WsFrame::Other)) => Flow::Go,
                        _ => Flow::End,
                    }
                }
                msg = self.model.next() => {
                    let text = match msg {
                        Some(Ok(ModelMessage::Text(t))) => t,
                        Some(Ok(ModelMessage::Close(_))) | Some(Err(_)) | None => {
                            return Err("the model connection closed".into());
                        }
                        Some(Ok(_)) => continue,
                    };
                    self.on_model(text.as_str(), socket, host, &mut greeting).await?
                }
                Some((call_id, output)) = self.running.next(), if !self.running.is_empty() => {
                    self.send_model(rt::function_output(&call_id, &output)).await?;
                    self.answer_if_done().await?;
                    Flow::Go
                }
                Some(text) = page.recv() => {
                    socket.send(text).await?;
                    Flow::Go
                }
                _ = tokio::time::sleep_until(self.held_until.unwrap_or(ends_at)), if self.held_until.is_some() => {
                    tracing::info!("the person's words did not come in time; functions run without them");
                    self.waiting_words = false;
                    self.release(host);
                    Flow::Go
                }
                _ = tokio::time::sleep_until(ends_at) => {
                    tracing::info!("spoken conversation reached its time limit");
                    Flow::End
                }
                changed = stop.changed(), if stop_open => {
                    // A dropped sender means no stop will come.
                    stop_open = changed.is_ok();
                    let stopping = stop_open && *stop.borrow_and_update();
                    if stopping {
                        tracing::info!("spoken conversation ended: the server is stopping");
                        Flow::End
                    } else {
                        Flow::Go
                    }
                }
            };
            if let Flow::End = flow {
                return Ok(());
            }
        }
    }

    async fn send_model(&mut self, text: String) -> Result<(), String> {
        tokio::time::timeout(
            self.cfg.send_timeout,
            self.model.send(ModelMessage::Text(text.into())),
        )
        .await
        .map_err(|_| "the model stopped reading".to_owned())?
        .map_err(|e| e.to_string())
    }

    async fn on_page(&mut self, text: &str) -> Result<Flow, String> {
        match media::parse(text) {
            Ok(Inbound::Media { payload, .. }) if self.ready => {
                self.send_model(rt::append_audio(&payload)).await?;
            }
            Ok(Inbound::Mark { name }) => {
                // `<item>:<bytes sent when the mark was>`: that much has been heard.
                if let Some((item, bytes)) = name.rsplit_once(':') {
                    if let Ok(bytes) = bytes.parse::<usize>() {
                        let heard = self.heard.entry(item.to_owned()).or_default();
                        *heard = (*heard).max(bytes);
                    }
                }
            }
            Ok(Inbound::Stop) => return Ok(Flow::End),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "unreadable frame from the page ignored"),
        }
        Ok(Flow::Go)
    }

    async fn on_model(
        &mut self,
        text: &str,
        socket: &mut MediaSocket,
        host: &mut dyn Host,
        greeting: &mut Option<String>,
    ) -> Result<Flow, String> {
        let event = match rt::parse(text) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable model event ignored");
                return Ok(Flow::Go);
            }
        };
        match event {
            ServerEvent::SessionUpdated {
                formats_ok,
                formats,
            } if !self.ready => {
                if !formats_ok {
                    return Err(format!(
                        "the model did not confirm mu-law audio ({formats})"
                    ));
                }
                self.ready = true;
                if let Some(g) = greeting.take() {
                    self.send_model(rt::response_create(Some(&g))).await?;
                }
            }
            ServerEvent::AudioDelta { item_id, delta } => {
                self.play(socket, &item_id, &delta).await?;
            }
            ServerEvent::SpeechStarted { item_id } => {
                self.turn += 1;
                self.turn_of.insert(item_id.clone(), self.turn);
                self.latest = Some(item_id);
                self.words = None;
                self.waiting_words = true;
                self.barge_in(socket).await?;
            }
            ServerEvent::InputTranscript {
                item_id,
                transcript,
            } => {
                let turn = self.turn_of.get(&item_id).copied().unwrap_or(self.turn);
                if self.latest.as_deref() == Some(item_id.as_str()) {
                    self.words = Some(transcript.clone());
                    self.waiting_words = false;
                    self.release(host);
                }
                if !transcript.trim().is_empty() {
                    host.heard(Heard::Person {
                        turn,
                        text: transcript,
                    })
                    .await;
                }
            }
            ServerEvent::InputTranscriptFailed { item_id }
                if self.latest.as_deref() == Some(item_id.as_str()) =>
            {
                self.waiting_words = false;
                self.release(host);
            }
            ServerEvent::ResponseCreated => self.response_active = true,
            ServerEvent::ResponseDone { response } => {
                self.response_active = false;
                self.done(&response, host).await;
                self.answer_if_done().await?;
            }
            ServerEvent::Error { code, message } => {
                tracing::warn!(code = %code, message = %message, "model error in a spoken conversation");
            }
            _ => {}
        }
        Ok(Flow::Go)
    }

    /// Model audio to the page in 20 ms frames, then a mark saying how much of the item
    /// will have been heard when it comes back.
    async fn play(
        &mut self,
        socket: &mut MediaSocket,
        item: &str,
        delta: &str,
    ) -> Result<(), String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let Ok(bytes) = b64.decode(delta.as_bytes()) else {
            tracing::debug!("undecodable model audio skipped");
            return Ok(());
        };
        for chunk in bytes.chunks(media::FRAME_BYTES) {
            socket
                .feed(media::media(&self.stream_sid, &b64.encode(chunk)))
                .await?;
        }
        let sent = self.sent.entry(item.to_owned()).or_default();
        *sent += bytes.len();
        let name = format!("{item}:{sent}");
        self.speaking = Some(item.to_owned());
        socket.feed(media::mark(&self.stream_sid, &name)).await?;
        socket.flush().await
    }

    /// The person talks over the model: the page drops what is queued, and the model's item
    /// is cut where the person stopped hearing it (the server already cancelled the
    /// response: `interrupt_response`).
    async fn barge_in(&mut self, socket: &mut MediaSocket) -> Result<(), String> {
        let Some(item) = self.speaking.take() else {
            return Ok(());
        };
        let sent = self.sent.get(&item).copied().unwrap_or(0);
        let heard = self.heard.get(&item).copied().unwrap_or(0);
        if heard >= sent {
            return Ok(());
        }
        socket.send(media::clear(&self.stream_sid)).await?;
        let ms = (heard / media::BYTES_PER_MS) as u64;
        self.send_model(rt::truncate(&item, ms)).await
    }

    /// A response ended: its words to the host, its function calls to run.
    async fn done(&mut self, response: &Value, host: &mut dyn Host) {
        let status = response["status"].as_str().unwrap_or_default();
        let items = response["output"].as_array().cloned().unwrap_or_default();
        let mut calls = Vec::new();
        for item in &items {
            match item["type"].as_str() {
                Some("message") => {
                    let text = rt::item_text(item);
                    if !text.trim().is_empty() {
                        host.heard(Heard::Model {
                            turn: self.turn,
                            text,
                            interrupted: status != "completed",
                        })
                        .await;
                    }
                }
                // A cancelled or failed response's calls were never finished: not run.
                Some("function_call") if status == "completed" => {
                    let call_id = item["call_id"].as_str().unwrap_or_default();
                    if call_id.is_empty() {
                        continue;
                    }
                    calls.push(FunctionCall {
                        call_id: call_id.to_owned(),
                        name: item["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: item["arguments"].as_str().unwrap_or_default().to_owned(),
                        turn: self.turn,
                        words: None,
                    });
                }
                _ => {}
            }
        }
        if calls.is_empty() {
            return;
        }
        let wants_words = calls.iter().any(|c| self.needs_words.contains(&c.name));
        self.held.extend(calls);
        if wants_words && self.waiting_words {
            self.held_until = Some(Instant::now() + WORDS_WAIT);
        } else {
            self.release(host);
        }
    }

    /// Starts the held function calls (with the person's words where they are needed).
    fn release(&mut self, host: &mut dyn Host) {
        self.held_until = None;
        for mut call in std::mem::take(&mut self.held) {
            if self.needs_words.contains(&call.name) {
                call.words = self.words.clone();
            }
            let id = call.call_id.clone();
            let work = host.function(call);
            self.running.push(Box::pin(async move { (id, work.await) }));
        }
    }

    /// Once every function of a response has answered, the model answers: exactly one
    /// `response.create`, never over an active response.
    async fn answer_if_done(&mut self) -> Result<(), String> {
        if !self.running.is_empty() || !self.held.is_empty() {
            self.answer_owed = true;
            return Ok(());
        }
        if !self.answer_owed {
            return Ok(());
        }
        if self.response_active {
            return Ok(());
        }
        self.answer_owed = false;
        self.send_model(rt::response_create(None)).await
    }
}
