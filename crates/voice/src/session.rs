//! The call session: one task per call, `select!`ing over the Twilio socket, the model
//! socket, running tools, timers and the shutdown signal. All call state lives here.

use crate::playback::{b64_len, Aligner, Playback};
use crate::transcript::{self, Entry};
use crate::{token, VoiceServices};
use base64::Engine;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::call::EndReason;
use switchboard_domain::entities::Call;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::values::{Channel, MessageKind, MessageRole, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_realtime::{ModelSocket, SessionConfig, ToolSpec};
use switchboard_store::{CallEnd, TwilioCredentials};
use switchboard_tools::{Effect, ToolContext, ToolOutcome};
use switchboard_twilio::media::{self, Inbound, Start};
use switchboard_twilio::rest::CallUpdate;
use switchboard_twilio::twiml;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// A WebSocket frame from Twilio, independent of the server library.
#[derive(Debug)]
pub enum WsFrame {
    /// A text frame.
    Text(String),
    /// The peer closed.
    Close,
    /// Binary, ping, pong: ignored.
    Other,
}

/// Caller audio kept while the model session is being configured (5 s of mu-law).
const PRE_BUFFER_BYTES: usize = 40_000;
/// How long the agent may take to finish speaking after `end_call` or `transfer_call`.
const ENDING_GRACE: Duration = Duration::from_secs(20);
/// How long to wait for Twilio to stop the stream after we redirected the call.
const REDIRECT_WAIT: Duration = Duration::from_secs(5);
/// Model errors that are expected in normal operation (pitfall 8 of protocols.md).
const BENIGN_ERRORS: &[&str] = &[
    "conversation_already_has_active_response",
    "response_cancel_not_active",
];

/// Serves one Media Streams WebSocket until the call ends.
pub async fn run_media_stream<S, E>(svc: VoiceServices, mut socket: S)
where
    S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
    E: Display,
    <S as Sink<String>>::Error: Display,
{
    let start = match timeout(svc.config.setup_timeout, wait_for_start(&mut socket)).await {
        Ok(Some(start)) => start,
        Ok(None) => {
            svc.stats.rejected_streams.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("media stream closed before `start`");
            return;
        }
        Err(_) => {
            svc.stats.rejected_streams.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("media stream sent no `start` in time; closing");
            let _ = socket.close().await;
            return;
        }
    };
    let Some((org, call)) = authenticate(&svc, &start).await else {
        svc.stats.rejected_streams.fetch_add(1, Ordering::Relaxed);
        let _ = socket.close().await;
        return;
    };
    let span =
        tracing::info_span!("call", org_id = %org, call_id = %call.id, call_sid = %call.call_sid);
    let _guard = span.enter();
    svc.stats.active.fetch_add(1, Ordering::Relaxed);
    svc.stats.started.fetch_add(1, Ordering::Relaxed);
    drop(_guard);
    let run = async {
        let session = Session::prepare(svc.clone(), org, call, start.stream_sid).await;
        session.run(socket).await;
    };
    tracing::Instrument::instrument(run, span).await;
    svc.stats.active.fetch_sub(1, Ordering::Relaxed);
}

async fn wait_for_start<S, E>(socket: &mut S) -> Option<Start>
where
    S: Stream<Item = Result<WsFrame, E>> + Unpin,
    E: Display,
{
    while let Some(frame) = socket.next().await {
        let text = match frame {
            Ok(WsFrame::Text(t)) => t,
            Ok(WsFrame::Other) => continue,
            Ok(WsFrame::Close) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "media stream read failed before start");
                return None;
            }
        };
        match media::parse(&text) {
            Ok(Inbound::Start(s)) => return Some(s),
            Ok(Inbound::Stop) => return None,
            // Nothing is forwarded before `start`: there is no session to forward to.
            Ok(other) => {
                tracing::debug!(frame = ?std::mem::discriminant(&other), "frame before start ignored")
            }
            Err(e) => tracing::warn!(error = %e, "unreadable frame before start"),
        }
    }
    None
}

/// Checks the per-call token and claims the stream (once per call).
async fn authenticate(svc: &VoiceServices, start: &Start) -> Option<(OrgId, Call)> {
    let p = &start.custom_parameters;
    let (Some(org), Some(call_id), Some(tok)) = (
        p.get("org_id").and_then(|v| OrgId::parse(v)),
        p.get("call_id").and_then(|v| CallId::parse(v)),
        p.get("token"),
    ) else {
        tracing::warn!(stream_sid = %start.stream_sid, "media stream without call parameters; closing");
        return None;
    };
    if !token::verify(&svc.token_secret, &org, &call_id, tok, Timestamp::now()) {
        tracing::warn!(org_id = %org, call_id = %call_id, "media stream with a wrong or expired token; closing");
        return None;
    }
    match svc
        .store
        .claim_call_stream(&org, &call_id, &start.stream_sid, Timestamp::now())
        .await
    {
        Ok(Some(call)) => {
            if call.call_sid != start.call_sid && !start.call_sid.is_empty() {
                tracing::warn!(call_id = %call_id, "stream CallSid does not match the call record");
            }
            Some((org, call))
        }
        Ok(None) => {
            tracing::warn!(call_id = %call_id, "media stream for a call that already has one or has ended; closing");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot claim the media stream");
            None
        }
    }
}

/// How the main loop ended.
enum Exit {
    /// Normal end.
    End(EndReason),
    /// A failure: apologise, hang up, record `failed`.
    Fail(EndReason, String),
    /// The agent asked to transfer.
    Transfer(PhoneNumber),
}

type ToolFuture = BoxFuture<'static, (String, String, Option<ToolOutcome>)>;

struct Session {
    svc: VoiceServices,
    org: OrgId,
    call: Call,
    stream_sid: String,
    /// Set up or the reason it could not be.
    setup: Result<Ready, (EndReason, String)>,
    writer: Option<mpsc::Sender<Entry>>,
    writer_task: Option<tokio::task::JoinHandle<()>>,
    finished: bool,
}

struct Ready {
    agent: Agent,
    creds: Option<TwilioCredentials>,
    session_config: SessionConfig,
    tool_ctx: ToolContext,
}

impl Session {
    async fn prepare(svc: VoiceServices, org: OrgId, call: Call, stream_sid: String) -> Session {
        let setup = Self::load(&svc, &org, &call).await;
        let (tx, rx) = mpsc::channel(256);
        let writer_task = tokio::spawn(transcript::run(
            svc.store.clone(),
            org.clone(),
            call.conversation_id.clone(),
            rx,
        ));
        Session {
            svc,
            org,
            call,
            stream_sid,
            setup,
            writer: Some(tx),
            writer_task: Some(writer_task),
            finished: false,
        }
    }

    async fn load(
        svc: &VoiceServices,
        org: &OrgId,
        call: &Call,
    ) -> Result<Ready, (EndReason, String)> {
        let store_err = |e: switchboard_store::StoreError| {
            (
                EndReason::ModelError,
                format!("cannot load the call's configuration: {e}"),
            )
        };
        let agent_id = call
            .agent_id
            .clone()
            .ok_or((EndReason::ModelError, "the number has no agent".to_owned()))?;
        let agent = svc
            .store
            .get_agent(org, &agent_id)
            .await
            .map_err(store_err)?;
        let conversation = svc
            .store
            .get_conversation(org, &call.conversation_id)
            .await
            .map_err(store_err)?;
        let creds = svc.store.twilio_credentials(org).await.map_err(store_err)?;
        let tools = svc
            .tools
            .definitions(&agent, Channel::Voice)
            .into_iter()
            .map(|d| ToolSpec {
                name: d.name.to_owned(),
                description: d.description.to_owned(),
                parameters: d.parameters,
            })
            .collect();
        let session_config = SessionConfig {
            model: agent.model.clone(),
            instructions: substitute(&agent.instructions, &conversation.variables),
            voice: agent.voice.clone(),
            language: agent.language.clone(),
            turn_detection: agent.turn_detection.clone(),
            transcription_model: svc.config.transcription_model.clone(),
            tools,
            temperature: agent.temperature,
        };
        let tool_ctx = ToolContext {
            store: svc.store.clone(),
            org: org.clone(),
            agent: agent.clone(),
            conversation_id: call.conversation_id.clone(),
            call_id: Some(call.id.clone()),
            contact_number: PhoneNumber::parse(&call.from_number).ok(),
            channel: Channel::Voice,
        };
        Ok(Ready {
            agent,
            creds,
            session_config,
            tool_ctx,
        })
    }

    async fn run<S, E>(mut self, mut socket: S)
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let exit =
            match std::mem::replace(&mut self.setup, Err((EndReason::ModelError, String::new()))) {
                Err((reason, detail)) => Exit::Fail(reason, detail),
                Ok(ready) => {
                    let exit = match self.open_model(&ready).await {
                        Ok(model) => {
                            let mut live = Live::new(&self, ready, model);
                            let exit = live.run(&mut socket).await;
                            live.close_model().await;
                            self.setup = Ok(live.ready);
                            exit
                        }
                        Err(detail) => {
                            self.setup = Ok(ready);
                            Exit::Fail(EndReason::ModelUnavailable, detail)
                        }
                    };
                    exit
                }
            };
        match exit {
            Exit::End(reason) => {
                self.finish(reason, None).await;
                let _ = socket.close().await;
            }
            Exit::Fail(reason, detail) => {
                tracing::warn!(reason = reason.as_str(), error = %detail, "call failed; apologising and hanging up");
                self.svc.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.finish(reason, Some(detail)).await;
                let twiml = twiml::say_hangup(&self.svc.config.apology);
                self.redirect_then_close(&mut socket, CallUpdate::Twiml(twiml))
                    .await;
            }
            Exit::Transfer(number) => {
                self.finish(EndReason::Transferred, None).await;
                let twiml = twiml::say_dial(None, number.as_str(), &self.call.to_number);
                self.redirect_then_close(&mut socket, CallUpdate::Twiml(twiml))
                    .await;
            }
        }
    }

    async fn open_model(&self, ready: &Ready) -> Result<ModelSocket, String> {
        let cfg = &self.svc.config;
        let key = cfg
            .api_key
            .as_ref()
            .ok_or("SWITCHBOARD_OPENAI_API_KEY is not set")?;
        match timeout(
            cfg.setup_timeout,
            switchboard_realtime::connect(
                &cfg.realtime_url,
                &ready.agent.model,
                key.expose(),
                cfg.shape,
            ),
        )
        .await
        {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the model did not answer in time".into()),
        }
    }

    /// Replaces the call's TwiML through the REST API, then lets Twilio end the stream.
    /// Without credentials (or if Twilio refuses) closing the socket ends `<Connect>` and,
    /// with nothing after it, the call.
    async fn redirect_then_close<S, E>(&self, socket: &mut S, update: CallUpdate)
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let creds = self.setup.as_ref().ok().and_then(|r| r.creds.as_ref());
        let redirected = match creds {
            None => {
                tracing::warn!(
                    "no Twilio credentials for this organization; hanging up without the message"
                );
                false
            }
            Some(c) => match self
                .svc
                .twilio
                .update_call(
                    &c.account_sid,
                    c.auth_token.expose(),
                    &self.call.call_sid,
                    &update,
                )
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot redirect the live call");
                    false
                }
            },
        };
        if redirected {
            let drain = async {
                while let Some(Ok(frame)) = socket.next().await {
                    if let WsFrame::Text(t) = frame {
                        if matches!(media::parse(&t), Ok(Inbound::Stop)) {
                            break;
                        }
                    }
                }
            };
            let _ = timeout(REDIRECT_WAIT, drain).await;
        }
        let _ = socket.close().await;
    }

    /// Writes the rest of the transcript, the latency figures, then finalizes (once).
    async fn finish(&mut self, reason: EndReason, error: Option<String>) {
        if self.finished {
            return;
        }
        self.finished = true;
        drop(self.writer.take());
        if let Some(task) = self.writer_task.take() {
            if timeout(Duration::from_secs(10), task).await.is_err() {
                tracing::error!("transcript writer did not finish in time");
            }
        }
        let end = CallEnd {
            reason,
            error,
            at: Timestamp::now(),
        };
        match self
            .svc
            .store
            .finalize_call(&self.org, &self.call.id, &end)
            .await
        {
            Ok(true) => tracing::info!(reason = reason.as_str(), "call finalized"),
            Ok(false) => tracing::info!("call was already finalized by a status callback"),
            Err(e) => tracing::error!(error = %e, "cannot finalize the call"),
        }
    }
}

/// The live part of a call: both sockets open.
struct Live {
    svc: VoiceServices,
    ready: Ready,
    model: ModelSocket,
    stream_sid: String,
    writer: mpsc::Sender<Entry>,
    confirmed: bool,
    pre_buffer: Vec<u8>,
    inbound: Aligner,
    playback: Playback,
    generated_bytes: HashMap<String, usize>,
    item_latency: HashMap<String, i64>,
    latencies: Vec<i64>,
    turn_started: Option<Instant>,
    user_started: HashMap<String, Timestamp>,
    response_active: bool,
    awaiting_response: bool,
    deferred_response: bool,
    tools: FuturesUnordered<ToolFuture>,
    batch_pending: usize,
    batch_wants_answer: bool,
    seen_calls: HashSet<String>,
    ending: Option<(Effect, tokio::time::Instant)>,
    bad_frames: u64,
    org: OrgId,
    call_id: CallId,
}

enum Step {
    Go,
    Exit(Exit),
}

impl Live {
    fn new(s: &Session, ready: Ready, model: ModelSocket) -> Live {
        Live {
            svc: s.svc.clone(),
            ready,
            model,
            stream_sid: s.stream_sid.clone(),
            writer: s.writer.clone().unwrap_or_else(|| mpsc::channel(1).0),
            confirmed: false,
            pre_buffer: Vec::new(),
            inbound: Aligner::default(),
            playback: Playback::default(),
            generated_bytes: HashMap::new(),
            item_latency: HashMap::new(),
            latencies: Vec::new(),
            turn_started: None,
            user_started: HashMap::new(),
            response_active: false,
            awaiting_response: false,
            deferred_response: false,
            tools: FuturesUnordered::new(),
            batch_pending: 0,
            batch_wants_answer: false,
            seen_calls: HashSet::new(),
            ending: None,
            bad_frames: 0,
            org: s.org.clone(),
            call_id: s.call.id.clone(),
        }
    }

    async fn run<S, E>(&mut self, socket: &mut S) -> Exit
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let update = rt::session_update(self.svc.config.shape, &self.ready.session_config);
        if let Err(e) = self.model.send(ModelMessage::Text(update.into())).await {
            return Exit::Fail(
                EndReason::ModelUnavailable,
                format!("cannot configure the model session: {e}"),
            );
        }
        let now = tokio::time::Instant::now();
        let max =
            now + Duration::from_secs(self.ready.agent.max_call_duration_seconds.max(1) as u64);
        let setup_deadline = now + self.svc.config.setup_timeout;
        let mut stop = self.svc.stop.clone();
        loop {
            let ending_at = self.ending.as_ref().map(|(_, at)| *at);
            let step = tokio::select! {
                frame = socket.next() => self.on_twilio(frame, socket).await,
                msg = self.model.next() => self.on_model(msg, socket).await,
                Some((call_id, name, outcome)) = self.tools.next(), if !self.tools.is_empty() => {
                    self.on_tool_done(call_id, name, outcome).await
                }
                _ = sleep_until(max) => Step::Exit(Exit::Fail(
                    EndReason::MaxDuration,
                    format!("the agent's maximum call duration ({} s) was reached", self.ready.agent.max_call_duration_seconds),
                )),
                _ = sleep_until(setup_deadline), if !self.confirmed => Step::Exit(Exit::Fail(
                    EndReason::ModelError,
                    "the model session did not confirm its configuration in time".into(),
                )),
                _ = sleep_until(ending_at.unwrap_or(max)), if ending_at.is_some() => {
                    tracing::warn!(
                        response_active = self.response_active,
                        awaiting_response = self.awaiting_response,
                        tools_running = self.batch_pending,
                        audible = self.playback.audible(),
                        "agent did not finish speaking in time; ending now"
                    );
                    Step::Exit(self.ending_exit())
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        Step::Exit(Exit::Fail(EndReason::Shutdown, "the server is shutting down".into()))
                    } else {
                        Step::Go
                    }
                }
            };
            match step {
                Step::Go => {}
                Step::Exit(exit) => return self.finish_live(exit).await,
            }
            if self.ending_ready() {
                let exit = self.ending_exit();
                return self.finish_live(exit).await;
            }
        }
    }

    /// Stores latency figures before the session finalizes.
    async fn finish_live(&mut self, exit: Exit) -> Exit {
        if !self.latencies.is_empty() {
            if let Err(e) = self
                .svc
                .store
                .set_call_latencies(&self.org, &self.call_id, &self.latencies)
                .await
            {
                tracing::error!(error = %e, "cannot store turn latencies");
            }
        }
        exit
    }

    async fn close_model(&mut self) {
        let _ = self.model.close(None).await;
    }

    fn ending_exit(&self) -> Exit {
        match &self.ending {
            Some((Effect::Transfer(n), _)) => Exit::Transfer(n.clone()),
            _ => Exit::End(EndReason::AgentEnded),
        }
    }

    fn ending_ready(&self) -> bool {
        self.ending.is_some()
            && !self.response_active
            && !self.awaiting_response
            && self.batch_pending == 0
            && !self.playback.audible()
    }

    fn write(&self, entry: Entry) {
        if let Err(e) = self.writer.try_send(entry) {
            tracing::error!(error = %e, "transcript queue full; item dropped");
        }
    }

    async fn send_model(&mut self, text: String) -> Result<(), String> {
        self.model
            .send(ModelMessage::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn on_twilio<S, E>(&mut self, frame: Option<Result<WsFrame, E>>, socket: &mut S) -> Step
    where
        S: Sink<String> + Unpin,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let _ = socket;
        let text = match frame {
            Some(Ok(WsFrame::Text(t))) => t,
            Some(Ok(WsFrame::Other)) => return Step::Go,
            Some(Ok(WsFrame::Close)) | None => {
                return Step::Exit(self.hangup_exit(EndReason::StreamClosed))
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "media stream read failed");
                return Step::Exit(self.hangup_exit(EndReason::StreamClosed));
            }
        };
        match media::parse(&text) {
            Ok(Inbound::Media { payload, .. }) => {
                self.svc.stats.frames_in.fetch_add(1, Ordering::Relaxed);
                if !self.confirmed {
                    // Audio is not forwarded before the session confirms mu-law input.
                    match base64::engine::general_purpose::STANDARD.decode(payload.as_bytes()) {
                        Ok(bytes) => {
                            self.pre_buffer.extend_from_slice(&bytes);
                            if self.pre_buffer.len() > PRE_BUFFER_BYTES {
                                let excess = self.pre_buffer.len() - PRE_BUFFER_BYTES;
                                self.pre_buffer.drain(..excess);
                            }
                        }
                        Err(_) => self.bad_frame("media payload is not base64"),
                    }
                    return Step::Go;
                }
                match self.inbound.push(&payload) {
                    Ok(Some((chunk, _))) => {
                        if let Err(e) = self.send_model(rt::append_audio(&chunk)).await {
                            return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
                        }
                    }
                    Ok(None) => {}
                    Err(_) => self.bad_frame("media payload is not base64"),
                }
                Step::Go
            }
            Ok(Inbound::Mark { name }) => {
                self.playback.mark(&name);
                Step::Go
            }
            Ok(Inbound::Stop) => Step::Exit(self.hangup_exit(EndReason::CallerHungUp)),
            Ok(Inbound::Dtmf { digit }) => {
                tracing::info!(digit = %digit, "caller pressed a key");
                Step::Go
            }
            Ok(Inbound::Start(_)) => {
                self.bad_frame("second `start` on one stream");
                Step::Go
            }
            Ok(Inbound::Connected) => Step::Go,
            Ok(Inbound::Unknown(event)) => {
                tracing::debug!(event = %event, "unknown media stream event ignored");
                Step::Go
            }
            Err(e) => {
                self.bad_frame(&e.to_string());
                Step::Go
            }
        }
    }

    /// The stream ended: the agent's decision if it had made one, else `reason`.
    fn hangup_exit(&self, reason: EndReason) -> Exit {
        match &self.ending {
            Some(_) => self.ending_exit(),
            None => Exit::End(reason),
        }
    }

    fn bad_frame(&mut self, why: &str) {
        self.svc.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
        self.bad_frames += 1;
        // Log the first few in full; after that, every hundredth, so a broken peer cannot
        // flood the logs.
        if self.bad_frames <= 5 || self.bad_frames.is_multiple_of(100) {
            tracing::warn!(error = %why, count = self.bad_frames, "ignoring a malformed media stream frame");
        }
    }

    async fn send_twilio<S>(
        &mut self,
        socket: &mut S,
        chunk: crate::playback::Chunk,
    ) -> Result<(), String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        self.svc.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        socket
            .feed(media::media(&self.stream_sid, &chunk.payload))
            .await
            .map_err(|e| e.to_string())?;
        socket
            .send(media::mark(&self.stream_sid, &chunk.mark))
            .await
            .map_err(|e| e.to_string())
    }

    async fn on_model<S>(
        &mut self,
        msg: Option<Result<ModelMessage, tokio_tungstenite::tungstenite::Error>>,
        socket: &mut S,
    ) -> Step
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        let text = match msg {
            Some(Ok(ModelMessage::Text(t))) => t,
            Some(Ok(ModelMessage::Close(frame))) => {
                let why = frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default();
                return Step::Exit(self.model_gone(format!("the model closed the session {why}")));
            }
            Some(Ok(_)) => return Step::Go,
            Some(Err(e)) => {
                return Step::Exit(self.model_gone(format!("model connection failed: {e}")))
            }
            None => return Step::Exit(self.model_gone("the model connection ended".into())),
        };
        let event = match rt::parse(text.as_str()) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable model event ignored");
                return Step::Go;
            }
        };
        match self.on_event(event, socket).await {
            Ok(step) => step,
            Err(detail) => Step::Exit(Exit::Fail(EndReason::ModelDisconnected, detail)),
        }
    }

    fn model_gone(&self, detail: String) -> Exit {
        if self.ending.is_some() {
            // The agent was ending the call anyway.
            return self.ending_exit();
        }
        Exit::Fail(EndReason::ModelDisconnected, detail)
    }

    async fn on_event<S>(&mut self, event: ServerEvent<'_>, socket: &mut S) -> Result<Step, String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        match event {
            ServerEvent::SessionUpdated {
                formats_ok,
                formats,
            } => {
                if self.confirmed {
                    return Ok(Step::Go);
                }
                if !formats_ok {
                    return Ok(Step::Exit(Exit::Fail(
                        EndReason::ModelError,
                        format!("the model session did not confirm mu-law audio ({formats})"),
                    )));
                }
                self.confirmed = true;
                tracing::info!(formats = %formats, "model session configured");
                let buffered = std::mem::take(&mut self.pre_buffer);
                let whole = buffered.len() / media::FRAME_BYTES * media::FRAME_BYTES;
                if whole > 0 {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&buffered[..whole]);
                    self.send_model(rt::append_audio(&b64)).await?;
                }
                if let Some(greeting) = self.ready.agent.greeting.clone() {
                    let instructions =
                        format!("Greet the caller by saying exactly this, then listen: {greeting}");
                    self.send_model(rt::response_create(Some(&instructions)))
                        .await?;
                    self.awaiting_response = true;
                }
            }
            ServerEvent::AudioDelta { item_id, delta } => {
                *self.generated_bytes.entry(item_id.clone()).or_default() += b64_len(&delta);
                let (chunk, first) = match self.playback.audio(&item_id, &delta) {
                    Ok(c) => c,
                    Err(_) => {
                        tracing::warn!("model audio is not base64; skipped");
                        return Ok(Step::Go);
                    }
                };
                if let Some(chunk) = chunk {
                    self.send_twilio(socket, chunk).await?;
                    if first {
                        if let Some(t) = self.turn_started.take() {
                            let ms = t.elapsed().as_millis() as i64;
                            self.latencies.push(ms);
                            self.item_latency.insert(item_id, ms);
                        }
                    }
                }
            }
            ServerEvent::AudioDone { item_id } => {
                if let Some(chunk) = self.playback.audio_done(&item_id) {
                    self.send_twilio(socket, chunk).await?;
                }
            }
            ServerEvent::SpeechStarted { item_id } => {
                self.user_started.insert(item_id, Timestamp::now());
                if self.playback.audible() {
                    // Stop playback at once, then cut the model's memory to what was heard.
                    socket
                        .send(media::clear(&self.stream_sid))
                        .await
                        .map_err(|e| e.to_string())?;
                    self.svc.stats.interruptions.fetch_add(1, Ordering::Relaxed);
                    for cut in self.playback.interrupt() {
                        tracing::info!(item_id = %cut.item_id, audio_end_ms = cut.audio_end_ms, "caller interrupted the agent");
                        self.send_model(rt::truncate(&cut.item_id, cut.audio_end_ms))
                            .await?;
                        self.write(Entry::Cut {
                            item_id: cut.item_id,
                            heard_ms: cut.audio_end_ms,
                            sent_ms: cut.sent_ms,
                        });
                    }
                }
            }
            ServerEvent::SpeechStopped { .. } => {
                self.turn_started = Some(Instant::now());
            }
            ServerEvent::InputTranscript {
                item_id,
                transcript,
            } => {
                let at = self
                    .user_started
                    .remove(&item_id)
                    .unwrap_or_else(Timestamp::now);
                self.write(Entry::Item {
                    role: MessageRole::User,
                    kind: MessageKind::Message,
                    content: json!({"item_id": item_id, "text": transcript}),
                    at,
                });
            }
            ServerEvent::ResponseCreated => {
                self.response_active = true;
                self.awaiting_response = false;
            }
            ServerEvent::ResponseDone { response } => {
                self.response_active = false;
                self.awaiting_response = false;
                self.on_response_done(&response);
                if self.deferred_response && self.batch_pending == 0 {
                    self.deferred_response = false;
                    self.send_model(rt::response_create(None)).await?;
                    self.awaiting_response = true;
                }
            }
            ServerEvent::Error { code, message } => {
                if BENIGN_ERRORS.contains(&code.as_str()) {
                    tracing::debug!(code = %code, "benign model error");
                } else if !self.confirmed {
                    return Ok(Step::Exit(Exit::Fail(
                        EndReason::ModelError,
                        format!("the model rejected the session: {code}: {message}"),
                    )));
                } else {
                    tracing::warn!(code = %code, message = %message, "model error event");
                }
            }
            ServerEvent::SessionCreated => tracing::debug!("model session created"),
            ServerEvent::Other(kind) => tracing::trace!(event = %kind, "model event"),
        }
        Ok(Step::Go)
    }

    /// Agent turns and function calls from the finished response's output items.
    fn on_response_done(&mut self, response: &Value) {
        let status = response["status"]
            .as_str()
            .unwrap_or("completed")
            .to_owned();
        let Some(items) = response["output"].as_array() else {
            return;
        };
        for item in items {
            match item["type"].as_str() {
                Some("message") => {
                    let item_id = item["id"].as_str().unwrap_or_default().to_owned();
                    let text: Vec<&str> = item["content"]
                        .as_array()
                        .map(|parts| {
                            parts
                                .iter()
                                .filter_map(|p| p["transcript"].as_str().or(p["text"].as_str()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let audio_ms =
                        self.generated_bytes.remove(&item_id).unwrap_or(0) / media::BYTES_PER_MS;
                    let mut content = json!({
                        "item_id": item_id,
                        "text": text.join(" "),
                        "item": item,
                        "response_status": status,
                        "audio_ms": audio_ms,
                    });
                    if let Some(ms) = self.item_latency.remove(&item_id) {
                        content["latency_ms"] = json!(ms);
                    }
                    self.write(Entry::Agent {
                        item_id,
                        content,
                        at: Timestamp::now(),
                    });
                }
                Some("function_call") => {
                    let call_id = item["call_id"].as_str().unwrap_or_default().to_owned();
                    let name = item["name"].as_str().unwrap_or_default().to_owned();
                    let raw_args = item["arguments"].as_str().unwrap_or_default().to_owned();
                    let arguments =
                        serde_json::from_str::<Value>(&raw_args).unwrap_or(json!(raw_args));
                    // A cancelled or failed response's function calls were never finished:
                    // side effects only run for completed responses.
                    let execute = status == "completed"
                        && !call_id.is_empty()
                        && self.seen_calls.insert(call_id.clone());
                    self.write(Entry::Item {
                        role: MessageRole::Assistant,
                        kind: MessageKind::FunctionCall,
                        content: json!({"call_id": call_id, "name": name, "arguments": arguments, "executed": execute}),
                        at: Timestamp::now(),
                    });
                    if execute {
                        self.batch_pending += 1;
                        let registry = self.svc.tools.clone();
                        let ctx = self.ready.tool_ctx.clone();
                        self.tools.push(Box::pin(async move {
                            let outcome = registry
                                .execute(&ctx, Some(&call_id), &name, &raw_args)
                                .await;
                            (call_id, name, outcome)
                        }));
                    }
                }
                _ => {}
            }
        }
    }

    async fn on_tool_done(
        &mut self,
        call_id: String,
        name: String,
        outcome: Option<ToolOutcome>,
    ) -> Step {
        self.batch_pending = self.batch_pending.saturating_sub(1);
        if let Some(outcome) = outcome {
            if let Err(e) = self
                .send_model(rt::function_output(&call_id, &outcome.output))
                .await
            {
                return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
            }
            self.write(Entry::Item {
                role: MessageRole::Tool,
                kind: MessageKind::FunctionOutput,
                content: json!({"call_id": call_id, "name": name, "output": outcome.output, "status": outcome.status}),
                at: Timestamp::now(),
            });
            match outcome.effect {
                // The agent has said goodbye (or is saying it): no new response.
                Some(effect) => {
                    self.ending = Some((effect, tokio::time::Instant::now() + ENDING_GRACE));
                }
                None => self.batch_wants_answer = true,
            }
        }
        if self.batch_pending == 0 && self.batch_wants_answer {
            self.batch_wants_answer = false;
            if self.ending.is_some() {
                return Step::Go;
            }
            // Exactly one response.create per batch, and never over an active response.
            if self.response_active {
                self.deferred_response = true;
            } else {
                if let Err(e) = self.send_model(rt::response_create(None)).await {
                    return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
                }
                self.awaiting_response = true;
            }
        }
        Step::Go
    }
}
