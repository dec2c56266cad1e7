//! The live part of a call: both sockets open. One task `select!`s over the Twilio socket,
//! the model socket, running tools, timers and the drain signal; the Twilio side (caller
//! audio, marks, `stop`) is handled here, the model side in `model.rs`.

use crate::playback::{Aligner, Playback};
use crate::rollover::History;
use crate::session::{Exit, Ready, Session, WsFrame};
use crate::transcript::{self, Entry};
use crate::wake::{Timers, Wake};
use crate::VoiceServices;
use base64::Engine;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use switchboard_domain::call::EndReason;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_realtime::events as rt;
use switchboard_realtime::ModelLink;
use switchboard_tools::{Effect, ToolOutcome};
use switchboard_twilio::media::{self, Inbound};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// Caller audio kept while the model session is being configured (5 s of mu-law).
const PRE_BUFFER_BYTES: usize = 40_000;
/// How long the agent may take to finish speaking after `end_call` or `transfer_call`.
pub(crate) const ENDING_GRACE: Duration = Duration::from_secs(20);

pub(crate) type ToolFuture = BoxFuture<'static, (String, String, Option<ToolOutcome>)>;
/// The live part of a call: both sockets open.
pub(crate) struct Live {
    pub(crate) svc: VoiceServices,
    pub(crate) ready: Ready,
    pub(crate) model: ModelLink,
    pub(crate) stream_sid: String,
    pub(crate) writer: mpsc::Sender<Entry>,
    pub(crate) confirmed: bool,
    pub(crate) pre_buffer: Vec<u8>,
    pub(crate) inbound: Aligner,
    pub(crate) playback: Playback,
    pub(crate) generated_bytes: HashMap<String, usize>,
    pub(crate) item_latency: HashMap<String, i64>,
    pub(crate) latencies: Vec<i64>,
    pub(crate) turn_started: Option<Instant>,
    pub(crate) user_started: HashMap<String, Timestamp>,
    pub(crate) response_active: bool,
    pub(crate) awaiting_response: bool,
    pub(crate) deferred_response: bool,
    pub(crate) tools: FuturesUnordered<ToolFuture>,
    pub(crate) batch_pending: usize,
    pub(crate) batch_wants_answer: bool,
    /// What the agent says while this batch's slow tools run (a custom tool's waiting line).
    pub(crate) waiting_line: Option<String>,
    pub(crate) seen_calls: HashSet<String>,
    pub(crate) ending: Option<(Effect, tokio::time::Instant)>,
    pub(crate) bad_frames: u64,
    /// When each agent item's audio started (its place in the spoken order).
    pub(crate) agent_started: HashMap<String, Timestamp>,
    /// Agent transcript received so far per item, until its `response.done`.
    pub(crate) partial: HashMap<String, String>,
    /// A failed response was retried and no response has completed since.
    pub(crate) retried_failure: bool,
    /// Which peer stopped reading, when a send timed out.
    pub(crate) stuck: Option<&'static str>,
    /// The conversation so far, for a new model session.
    pub(crate) history: History,
    /// Reconnects left after a model drop.
    pub(crate) reconnects_left: u32,
    /// When the current model session was opened.
    pub(crate) session_started: tokio::time::Instant,
    /// The session is due for replacement at the next quiet moment.
    pub(crate) rollover_due: bool,
    /// Between the caller's `speech_started` and `speech_stopped`.
    pub(crate) caller_speaking: bool,
    /// The caller finished a turn and the server's turn detection has not started the
    /// response to it yet.
    pub(crate) turn_pending: bool,
    /// What the caller heard of interrupted agent items: (heard ms, sent ms).
    pub(crate) cut_heard: HashMap<String, (u64, u64)>,
    /// An outbound call waiting to know whether a person answered (answer.rs).
    pub(crate) amd_pending: bool,
    /// When the agent stops waiting for the answering-machine result.
    pub(crate) amd_deadline: tokio::time::Instant,
    /// Consecutive loud caller frames while holding.
    pub(crate) loud_frames: u32,
    /// When the keys pressed outside a collection go to the model (call_control.rs).
    pub(crate) keys_due: Option<tokio::time::Instant>,
    /// Staff actions for this call (staff.rs).
    pub(crate) actions: Option<mpsc::Receiver<crate::actions::ActionCommand>>,
    /// Staff muted the agent: its responses are cancelled as they start.
    pub(crate) muted: bool,
    /// The response in progress started (or was cut) while muted: none of it is played,
    /// even if staff unmute before its cancellation completes.
    pub(crate) muted_response: bool,
    /// Keys to press on the line once the agent is quiet (digits.rs).
    pub(crate) keys_to_send: Option<String>,
    /// Sentences staff asked the agent to say, after its current answer.
    pub(crate) says: std::collections::VecDeque<String>,
    /// Writes fed by the hot paths and not flushed yet (wake.rs).
    pub(crate) owed: crate::wake::Owed,
    /// Which socket the next wait looks at first (wake.rs).
    pub(crate) model_first: bool,
    pub(crate) org: OrgId,
    pub(crate) call_id: CallId,
}

pub(crate) enum Step {
    Go,
    Exit(Exit),
}

impl Live {
    pub(crate) fn new(s: &Session, ready: Ready, model: ModelLink) -> Live {
        let resuming = ready.resume.is_some();
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
            waiting_line: None,
            seen_calls: HashSet::new(),
            ending: None,
            bad_frames: 0,
            agent_started: HashMap::new(),
            partial: HashMap::new(),
            retried_failure: false,
            stuck: None,
            history: History::default(),
            reconnects_left: s.svc.config.reconnects,
            session_started: tokio::time::Instant::now(),
            rollover_due: false,
            caller_speaking: false,
            turn_pending: false,
            cut_heard: HashMap::new(),
            // A resumed outbound call was answered by a person long ago.
            amd_pending: s.call.direction == switchboard_domain::values::Direction::Outbound
                && !resuming,
            amd_deadline: tokio::time::Instant::now() + crate::answer::AMD_WAIT,
            loud_frames: 0,
            keys_due: None,
            actions: None,
            muted: false,
            muted_response: false,
            says: std::collections::VecDeque::new(),
            keys_to_send: None,
            owed: crate::wake::Owed::default(),
            model_first: false,
            org: s.org.clone(),
            call_id: s.call.id.clone(),
        }
    }

    pub(crate) async fn run(&mut self, socket: &mut crate::session::MediaSocket) -> Exit {
        let update = rt::session_update(self.svc.config.shape, &self.ready.session_config);
        if let Err(e) = self.send_model(update).await {
            return Exit::Fail(
                EndReason::ModelUnavailable,
                format!("cannot configure the model session: {e}"),
            );
        }
        // The duration limit follows the service clock (adjustable in tests), checked every
        // second: a limit is in whole seconds anyway.
        let started = self.svc.clock.now();
        let max_ms = self.ready.agent.max_call_duration_seconds.max(1) * 1000;
        let mut timers = Timers::new(
            tokio::time::Instant::now(),
            self.svc.config.setup_timeout,
            self.svc.stop.clone(),
        );
        let limit = self.svc.config.session_limit;
        loop {
            let rollover_at = self.session_started + limit;
            let wake = self.wait(socket, &mut timers).await;
            // What the hot paths fed goes out before anything that may wait.
            let step = match &wake {
                Wake::Twilio(_) | Wake::Model(_) | Wake::Blocked(_) | Wake::WriteFailed(_) => {
                    Step::Go
                }
                _ => self.flush_owed(socket).await,
            };
            let step = match step {
                Step::Exit(exit) => Step::Exit(exit),
                Step::Go => match wake {
                    Wake::Twilio(frame) => self.on_twilio(frame, socket).await,
                    Wake::Model(msg) => self.on_model(msg, socket).await,
                    Wake::Tool((call_id, name, outcome)) => {
                        self.on_tool_done(call_id, name, outcome).await
                    }
                    Wake::Action(cmd) => self.on_action(cmd, socket).await,
                    Wake::Stop => Step::Exit(Exit::Goodbye(EndReason::Shutdown)),
                    Wake::Blocked(peer) => self.finish_flush(socket, peer).await,
                    Wake::WriteFailed(e) => Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e)),
                    Wake::Timer(due) => self.on_due(due, &mut timers, started, max_ms).await,
                },
            };
            // A dropped model connection is restored once, with the conversation replayed.
            let step = match step {
                Step::Exit(Exit::Fail(EndReason::ModelDisconnected, detail))
                    if self.stuck.is_none() && self.ending.is_none() && self.confirmed =>
                {
                    self.after_drop(socket, detail).await
                }
                other => other,
            };
            let step = match step {
                Step::Go if self.rollover_due => {
                    let forced = tokio::time::Instant::now()
                        >= rollover_at + (limit / 6).max(Duration::from_secs(30));
                    if self.quiet() || forced {
                        self.roll_over(socket, forced).await
                    } else {
                        Step::Go
                    }
                }
                other => other,
            };
            match step {
                Step::Go => {}
                Step::Exit(exit) => {
                    // A send that timed out surfaces as an ordinary send error; name it.
                    let exit = match self.stuck {
                        Some(peer) => Exit::Fail(
                            EndReason::PeerStuck,
                            format!(
                                "{peer} stopped reading: a send did not complete within {} s",
                                self.svc.config.send_timeout.as_secs()
                            ),
                        ),
                        None => exit,
                    };
                    // What was fed still goes out (a goodbye's last words), unless a peer
                    // already stopped reading.
                    if self.stuck.is_none() {
                        let _ = self.flush_owed(socket).await;
                    }
                    return self.finish_live(exit).await;
                }
            }
            if self.ending_ready() {
                let exit = self.ending_exit();
                let _ = self.flush_owed(socket).await;
                return self.finish_live(exit).await;
            }
            if self.keys_ready() {
                if let Step::Exit(exit) = self.flush_owed(socket).await {
                    return self.finish_live(exit).await;
                }
                if let Step::Exit(exit) = self.press_keys(socket).await {
                    return self.finish_live(exit).await;
                }
            }
        }
    }

    /// Before the session finalizes: tools still running finish (within their own timeout)
    /// and their outcome is recorded, though nobody hears it; the played part of an agent
    /// answer the call ended in is stored; latency figures are stored.
    pub(crate) async fn finish_live(&mut self, exit: Exit) -> Exit {
        if !self.tools.is_empty() {
            tracing::info!(
                running = self.tools.len(),
                "waiting for running tools to finish"
            );
        }
        while let Some((call_id, name, outcome)) = self.tools.next().await {
            if let Some(outcome) = outcome {
                self.write(Entry::Item {
                    key: None,
                    role: MessageRole::Tool,
                    kind: MessageKind::FunctionOutput,
                    content: json!({"call_id": call_id, "name": name, "output": outcome.output,
                        "status": outcome.status, "after_call": true}),
                    at: Timestamp::now(),
                });
            }
        }
        self.store_cut_off_answers();
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

    /// Replaces the model session before the provider's limit; `forced` when no quiet moment
    /// came (the answer in flight is cut, as after a drop).
    async fn roll_over<S, E>(&mut self, socket: &mut S, forced: bool) -> Step
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        tracing::info!(forced, "moving the call to a new model session");
        if forced {
            self.store_cut_off_answers();
        }
        match self.switch_session(socket, forced).await {
            Ok(()) => {
                self.svc.stats.rollovers.fetch_add(1, Ordering::Relaxed);
                Step::Go
            }
            Err(e) => Step::Exit(Exit::Fail(
                EndReason::ModelDisconnected,
                format!("could not move the call to a new model session: {e}"),
            )),
        }
    }

    /// Agent answers still streaming when the call ended (no `response.done` came): store
    /// what the caller heard of them (from Twilio's marks), flagged as cut off.
    pub(crate) fn store_cut_off_answers(&mut self) {
        for (item_id, text) in std::mem::take(&mut self.partial) {
            let generated = self.generated_bytes.remove(&item_id).unwrap_or(0);
            if generated == 0 || self.playback.is_cut(&item_id) {
                continue;
            }
            // An item no longer tracked has played in full.
            let (played, sent) = self
                .playback
                .progress(&item_id)
                .unwrap_or((generated, generated));
            let at = self
                .agent_started
                .remove(&item_id)
                .unwrap_or_else(Timestamp::now);
            let heard_ms = (played / media::BYTES_PER_MS) as u64;
            let sent_ms = (sent / media::BYTES_PER_MS) as u64;
            let heard = History::heard(&text, heard_ms, sent_ms);
            if !heard.is_empty() {
                self.history.fill(
                    Some(transcript::agent_key(&item_id)),
                    History::agent(self.svc.config.shape, &heard),
                );
            }
            let content = json!({
                "item_id": item_id,
                "text": text,
                "response_status": "in_progress",
                "audio_ms": generated / media::BYTES_PER_MS,
                "cut_off": true,
                "agent_id": self.ready.agent.id,
                "agent_name": self.ready.agent.name,
            });
            self.write(Entry::Agent {
                item_id: item_id.clone(),
                content,
                at,
            });
            self.write(Entry::Cut {
                item_id,
                heard_ms,
                sent_ms,
            });
        }
    }

    pub(crate) async fn close_model(&mut self) {
        let limit = self.svc.config.send_timeout;
        if tokio::time::timeout(limit, self.model.close())
            .await
            .is_err()
        {
            tracing::warn!("the model did not take the close in time");
        }
    }

    pub(crate) fn ending_exit(&self) -> Exit {
        match &self.ending {
            Some((Effect::Transfer { target, summary }, _)) => {
                Exit::Transfer(crate::transfer::TransferRequest {
                    target: target.clone(),
                    by: "agent",
                    mode: self.ready.agent.transfer_mode,
                    summary: summary.clone(),
                })
            }
            _ => Exit::End(EndReason::AgentEnded),
        }
    }

    pub(crate) fn ending_ready(&self) -> bool {
        self.ending.is_some()
            && !self.response_active
            && !self.awaiting_response
            && self.batch_pending == 0
            && !self.playback.audible()
    }

    pub(crate) fn write(&self, entry: Entry) {
        if let Err(e) = self.writer.try_send(entry) {
            tracing::error!(error = %e, "transcript queue full; item dropped");
        }
    }

    /// Sends to the model, bounded: a model that stops reading cannot hold the call.
    pub(crate) async fn send_model(&mut self, text: String) -> Result<(), String> {
        let limit = self.svc.config.send_timeout;
        let sent =
            tokio::time::timeout(limit, self.model.send(ModelMessage::Text(text.into()))).await;
        crate::wake::bounded(sent, &mut self.stuck, "the model")
    }

    /// Sends frames to Twilio, bounded like [`Live::send_model`].
    pub(crate) async fn send_twilio_frames<S>(
        &mut self,
        socket: &mut S,
        frames: &[String],
    ) -> Result<(), String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        let limit = self.svc.config.send_timeout;
        let send = async {
            for f in &frames[..frames.len().saturating_sub(1)] {
                socket.feed(f.clone()).await.map_err(|e| e.to_string())?;
            }
            if let Some(last) = frames.last() {
                socket.send(last.clone()).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let sent = tokio::time::timeout(limit, send).await;
        crate::wake::bounded(sent, &mut self.stuck, "Twilio")
    }

    pub(crate) async fn on_twilio<S, E>(
        &mut self,
        frame: Option<Result<WsFrame, E>>,
        socket: &mut S,
    ) -> Step
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
                if !self.confirmed || self.amd_pending {
                    // Audio is not forwarded before the session confirms mu-law input.
                    match base64::engine::general_purpose::STANDARD.decode(payload.as_bytes()) {
                        Ok(bytes) => {
                            self.pre_buffer.extend_from_slice(&bytes);
                            if self.pre_buffer.len() > PRE_BUFFER_BYTES {
                                let excess = self.pre_buffer.len() - PRE_BUFFER_BYTES;
                                self.pre_buffer.drain(..excess);
                            }
                            if self.amd_pending {
                                return self.hear_while_holding(&bytes).await;
                            }
                        }
                        Err(_) => self.bad_frame("media payload is not base64"),
                    }
                    return Step::Go;
                }
                match self.inbound.push(&payload) {
                    Ok(Some((chunk, _))) => {
                        if let Err(e) = self.feed_model(rt::append_audio(&chunk)).await {
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
            Ok(Inbound::Dtmf { digit }) => self.on_digit(&digit),
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
    pub(crate) fn hangup_exit(&self, reason: EndReason) -> Exit {
        match &self.ending {
            Some(_) => self.ending_exit(),
            None => Exit::End(reason),
        }
    }

    pub(crate) fn bad_frame(&mut self, why: &str) {
        self.svc.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
        self.bad_frames += 1;
        // Log the first few in full; after that, every hundredth, so a broken peer cannot
        // flood the logs.
        if self.bad_frames <= 5 || self.bad_frames.is_multiple_of(100) {
            tracing::warn!(error = %why, count = self.bad_frames, "ignoring a malformed media stream frame");
        }
    }

    pub(crate) async fn send_twilio<S>(
        &mut self,
        socket: &mut S,
        chunk: crate::playback::Chunk,
    ) -> Result<(), String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        self.svc.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        let frames = [
            media::media(&self.stream_sid, &chunk.payload),
            media::mark(&self.stream_sid, &chunk.mark),
        ];
        self.feed_twilio(socket, frames).await
    }
}
