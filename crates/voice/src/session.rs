//! The call session: one task per call. This file authenticates the stream, loads the call's
//! configuration, opens the model session, and ends the call exactly once (redirect, close,
//! transcript flush, finalization); `live.rs` and `model.rs` run the call in between.

use crate::live::Live;
use crate::transcript::{self, Entry};
use crate::{token, VoiceServices};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::call::EndReason;
use switchboard_domain::entities::Call;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::values::{Channel, Direction, PhoneNumber};
use switchboard_realtime::{ModelLink, SessionConfig, ToolSpec};
use switchboard_store::{CallEnd, TwilioCredentials};
use switchboard_tools::ToolContext;
use switchboard_twilio::media::{self, Inbound, Start};
use switchboard_twilio::rest::CallUpdate;
use switchboard_twilio::twiml;
use tokio::sync::mpsc;
use tokio::time::timeout;

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

/// How long to wait for Twilio to stop the stream after we redirected the call.
pub(crate) const REDIRECT_WAIT: Duration = Duration::from_secs(5);

/// A Media Streams socket, whatever the server library: one type, so a call's task can be
/// handed the next stream of its call (digits.rs).
pub trait MediaIo:
    Stream<Item = Result<WsFrame, String>> + Sink<String, Error = String> + Send
{
}
impl<T> MediaIo for T where
    T: Stream<Item = Result<WsFrame, String>> + Sink<String, Error = String> + Send
{
}

/// The socket a call's task reads and writes.
pub type MediaSocket = std::pin::Pin<Box<dyn MediaIo>>;

/// Serves one Media Streams WebSocket until the call ends.
pub async fn run_media_stream<S, E>(svc: VoiceServices, socket: S)
where
    S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send + 'static,
    E: Display,
    <S as Sink<String>>::Error: Display,
{
    let mut socket: MediaSocket = Box::pin(
        socket
            .map(|frame| frame.map_err(|e| e.to_string()))
            .sink_map_err(|e| e.to_string()),
    );
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
    // The person of a warm transfer, briefed by the agent: not the call's own stream.
    if start.custom_parameters.get("role").map(String::as_str) == Some("whisper") {
        crate::whisper::run(svc, socket, start).await;
        return;
    }
    let Some((org, call)) = authenticate(&svc, &start).await else {
        svc.stats.rejected_streams.fetch_add(1, Ordering::Relaxed);
        let _ = socket.close().await;
        return;
    };
    // The call's task is waiting here for this stream (keys were pressed): it takes it over.
    let socket = match crate::digits::hand_over(&svc, &call.id, socket, &start) {
        Some(socket) => socket,
        None => return,
    };
    let span =
        tracing::info_span!("call", org_id = %org, call_id = %call.id, call_sid = %call.call_sid);
    let _guard = span.enter();
    svc.stats.active.fetch_add(1, Ordering::Relaxed);
    svc.stats.started.fetch_add(1, Ordering::Relaxed);
    drop(_guard);
    let run = async {
        // A caller back from a transfer that did not go through (`resume=transfer`), or a
        // call whose keys were pressed and whose stream reached this task's instance
        // instead of the task's own (`resume=digits`, digits.rs).
        let resuming = start
            .custom_parameters
            .get("resume")
            .map(|r| r == "transfer");
        let session = Session::prepare(svc.clone(), org, call, start.stream_sid, resuming).await;
        session.run(socket).await;
    };
    tracing::Instrument::instrument(run, span).await;
    svc.stats.active.fetch_sub(1, Ordering::Relaxed);
}

pub(crate) async fn wait_for_start<S, E>(socket: &mut S) -> Option<Start>
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
    svc.pending.arrived(&call_id);
    if !token::verify(&svc.token_secret, &org, &call_id, tok, svc.clock.now()) {
        tracing::warn!(org_id = %org, call_id = %call_id, "media stream with a wrong or expired token; closing");
        return None;
    }
    // A token is for one call: the claim refuses a stream that names another CallSid.
    match svc
        .store
        .claim_call_stream(
            &org,
            &call_id,
            &start.call_sid,
            &start.stream_sid,
            &svc.instance_id,
            svc.clock.now(),
        )
        .await
    {
        Ok(Some(call)) => Some((org, call)),
        Ok(None) => {
            tracing::warn!(call_id = %call_id, "media stream for a call that already has one or has ended; closing");
            None
        }
        Err(switchboard_store::StoreError::Conflict(why)) => {
            tracing::warn!(call_id = %call_id, reason = %why,
                "media stream CallSid does not match the call its token was issued for; closing");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot claim the media stream");
            None
        }
    }
}

/// Closes the Twilio socket, giving up after `limit` (a peer that stopped reading).
async fn close_bounded<S>(socket: &mut S, limit: Duration)
where
    S: Sink<String> + Unpin,
{
    if timeout(limit, socket.close()).await.is_err() {
        tracing::warn!("the media stream did not take the close in time; dropping it");
    }
}

/// How the main loop ended.
pub(crate) enum Exit {
    /// Normal end.
    End(EndReason),
    /// A failure: apologise, hang up, record `failed`.
    Fail(EndReason, String),
    /// The agent or staff asked to transfer (transfer.rs).
    Transfer(crate::transfer::TransferRequest),
    /// The server is going away: say goodbye, hang up, record `completed` with this reason.
    Goodbye(EndReason),
    /// The call's next stream went to another task (digits.rs): nothing to end here.
    Moved,
}

pub(crate) struct Session {
    pub(crate) svc: VoiceServices,
    pub(crate) org: OrgId,
    pub(crate) call: Call,
    pub(crate) stream_sid: String,
    /// Set up or the reason it could not be.
    pub(crate) setup: Result<Ready, (EndReason, String)>,
    pub(crate) writer: Option<mpsc::Sender<Entry>>,
    writer_task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) finished: bool,
}

/// The model session an agent asks for: its model, voice, instructions (variables filled),
/// language, turn detection, temperature and tools.
pub(crate) fn agent_session(
    agent: &Agent,
    variables: &serde_json::Value,
    toolset: &switchboard_tools::Toolset,
    transcription_model: &str,
) -> SessionConfig {
    SessionConfig {
        model: agent.model.clone(),
        instructions: substitute(&agent.instructions, variables),
        voice: agent.voice.clone(),
        language: agent.language.clone(),
        turn_detection: agent.turn_detection.clone(),
        transcription_model: transcription_model.to_owned(),
        tools: toolset
            .definitions()
            .iter()
            .map(|d| ToolSpec {
                name: d.name.clone(),
                description: d.description.clone(),
                parameters: d.parameters.clone(),
            })
            .collect(),
        temperature: agent.temperature,
    }
}

pub(crate) struct Ready {
    pub(crate) agent: Agent,
    pub(crate) creds: Option<TwilioCredentials>,
    /// A call from a browser ("Call this agent"): nothing is asked of Twilio for it.
    pub(crate) browser: bool,
    pub(crate) session_config: SessionConfig,
    pub(crate) tool_ctx: ToolContext,
    /// The conversation's variables (`{{name}}` in instructions), for a handoff.
    pub(crate) variables: serde_json::Value,
    /// A call back on a new stream: the conversation so far, given to the new session
    /// (resume.rs).
    pub(crate) resume: Option<crate::resume::Resume>,
}

impl Session {
    async fn prepare(
        svc: VoiceServices,
        org: OrgId,
        call: Call,
        stream_sid: String,
        resuming: Option<bool>,
    ) -> Session {
        let setup = Self::load(&svc, &org, &call, resuming).await;
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
        resuming: Option<bool>,
    ) -> Result<Ready, (EndReason, String)> {
        let store_err = |e: switchboard_store::StoreError| {
            (
                EndReason::ModelError,
                format!("cannot load the call's configuration: {e}"),
            )
        };
        // A resumed call goes on with the agent that had it: the last one it was handed to.
        let current = resuming.and_then(|_| call.agents.last().cloned());
        let agent_id = current
            .or_else(|| call.agent_id.clone())
            .ok_or((EndReason::ModelError, "the number has no agent".to_owned()))?;
        let mut agent = svc
            .store
            .get_agent(org, &agent_id)
            .await
            .map_err(store_err)?;
        let conversation = svc
            .store
            .get_conversation(org, &call.conversation_id)
            .await
            .map_err(store_err)?;
        // A browser call ("Call this agent") has no Twilio side: no recording, no keys, no
        // transfer, and it ends when its socket closes.
        let creds = if switchboard_domain::call::is_browser_call(&call.call_sid) {
            None
        } else {
            svc.store.twilio_credentials(org).await.map_err(store_err)?
        };
        // Outbound calls asked Twilio to record them when they were dialled.
        // A resumed call's recording started with its first stream.
        if let (true, true, Direction::Inbound, Some(c), Some(public)) = (
            agent.record,
            resuming.is_none(),
            call.direction,
            &creds,
            &svc.public_url,
        ) {
            crate::recordings::start_inbound(
                svc.store.clone(),
                svc.twilio.clone(),
                public,
                org.clone(),
                call.id.clone(),
                call.call_sid.clone(),
                c.clone(),
            );
        }
        // The greeting takes the conversation's variables like the instructions (an outbound
        // call's `{{name}}`).
        agent.greeting = agent
            .greeting
            .map(|g| substitute(&g, &conversation.variables));
        let toolset = svc
            .tools
            .toolset(&svc.store, org, &agent, Channel::Voice)
            .await;
        let session_config = agent_session(
            &agent,
            &conversation.variables,
            &toolset,
            &svc.config.transcription_model,
        );
        let tool_ctx = ToolContext {
            store: svc.store.clone(),
            org: org.clone(),
            agent: agent.clone(),
            conversation_id: call.conversation_id.clone(),
            call_id: Some(call.id.clone()),
            contact_number: PhoneNumber::parse(&call.from_number).ok(),
            channel: Channel::Voice,
            toolset: std::sync::Arc::new(toolset),
            passed_agents: if call.agents.is_empty() {
                vec![agent.id.clone()]
            } else {
                call.agents.clone()
            },
            keypad: Some(std::sync::Arc::new(switchboard_tools::Keypad::default())),
        };
        let resume = match resuming {
            Some(speak_first) => {
                let messages = crate::resume::transcript(&svc.store, org, &call.conversation_id)
                    .await
                    .map_err(store_err)?;
                Some(crate::resume::Resume {
                    history: crate::resume::history(&messages, svc.config.shape),
                    speak_first,
                })
            }
            None => None,
        };
        Ok(Ready {
            agent,
            browser: switchboard_domain::call::is_browser_call(&call.call_sid),
            creds,
            session_config,
            tool_ctx,
            variables: conversation.variables.clone(),
            resume,
        })
    }

    async fn run(mut self, mut socket: MediaSocket) {
        let exit =
            match std::mem::replace(&mut self.setup, Err((EndReason::ModelError, String::new()))) {
                Err((reason, detail)) => Exit::Fail(reason, detail),
                Ok(ready) => {
                    let exit = match self.open_model(&ready).await {
                        Ok(model) => {
                            let mut live = Live::new(&self, ready, model);
                            live.actions = Some(self.svc.live.register(&self.call.id));
                            let exit = live.run(&mut socket).await;
                            self.svc.live.unregister(&self.call.id);
                            if let Some(rx) = live.actions.take() {
                                self.refuse_actions(rx).await;
                            }
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
                close_bounded(&mut socket, self.svc.config.send_timeout).await;
            }
            Exit::Fail(reason, detail) => {
                tracing::warn!(reason = reason.as_str(), error = %detail, "call failed; apologising and hanging up");
                self.svc.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.finish(reason, Some(detail)).await;
                let twiml = twiml::say_hangup(&self.svc.config.apology);
                self.redirect_then_close(&mut socket, CallUpdate::Twiml(twiml))
                    .await;
            }
            Exit::Goodbye(reason) => {
                tracing::info!(reason = reason.as_str(), "ending the call with a goodbye");
                self.finish(reason, None).await;
                let twiml = twiml::say_hangup(&self.svc.config.goodbye);
                self.redirect_then_close(&mut socket, CallUpdate::Twiml(twiml))
                    .await;
            }
            Exit::Transfer(req) => self.transfer_out(&mut socket, req).await,
            Exit::Moved => {
                // Another task has the call now (its stream reached another instance).
                self.finished = true;
                self.flush_transcript().await;
            }
        }
    }

    /// Actions that reached the call as it ended are answered, not left pending.
    async fn refuse_actions(&self, mut rx: mpsc::Receiver<crate::actions::ActionCommand>) {
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            let result = serde_json::json!({"ok": false, "error": {"code": "call_not_live",
                "message": "the call ended before the action could be carried out"}});
            if let Err(e) = self
                .svc
                .store
                .finish_call_action(&self.org, &cmd.id, false, &result, self.svc.clock.now())
                .await
            {
                tracing::error!(error = %e, "cannot record a refused staff action");
            }
            self.svc.live.acknowledged(&cmd.id);
        }
    }

    async fn open_model(&self, ready: &Ready) -> Result<ModelLink, String> {
        crate::pipeline::open_model(&self.svc, &ready.agent).await
    }

    /// Replaces the call's TwiML through the REST API, then lets Twilio end the stream.
    /// Without credentials (or if Twilio refuses) closing the socket ends `<Connect>` and,
    /// with nothing after it, the call.
    pub(crate) async fn redirect_then_close<S, E>(&self, socket: &mut S, update: CallUpdate) -> bool
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let creds = self.setup.as_ref().ok().and_then(|r| r.creds.as_ref());
        let redirected = match creds {
            None if switchboard_domain::call::is_browser_call(&self.call.call_sid) => false,
            None => {
                tracing::warn!(
                    "no Twilio credentials for this organization; hanging up without the message"
                );
                false
            }
            Some(c) => match self
                .svc
                .twilio
                .at(c.space.as_deref())
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
        close_bounded(socket, self.svc.config.send_timeout).await;
        redirected
    }

    /// Writes the rest of the transcript (the writer ends).
    pub(crate) async fn flush_transcript(&mut self) {
        drop(self.writer.take());
        if let Some(task) = self.writer_task.take() {
            if timeout(Duration::from_secs(10), task).await.is_err() {
                tracing::error!("transcript writer did not finish in time");
            }
        }
    }

    /// Writes the rest of the transcript, the latency figures, then finalizes (once).
    pub(crate) async fn finish(&mut self, reason: EndReason, error: Option<String>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.flush_transcript().await;
        let end = CallEnd {
            reason,
            error,
            at: self.svc.clock.now(),
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
