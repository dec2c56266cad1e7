//! The model side of a live call: server events (audio, turn edges, transcripts, responses,
//! errors), function calls and their results.

use crate::live::{Live, Step, ENDING_GRACE};
use crate::playback::b64_len;
use crate::rollover::History;
use crate::session::Exit;
use crate::transcript::{self, Entry};
use base64::Engine;
use futures_util::Sink;
use serde_json::{json, Value};
use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::time::Instant;
use switchboard_domain::call::EndReason;
use switchboard_domain::values::{MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_tools::{Effect, ToolOutcome};
use switchboard_twilio::media;
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// Model errors that are expected in normal operation (pitfall 8 of protocols.md).
const BENIGN_ERRORS: &[&str] = &[
    "conversation_already_has_active_response",
    "response_cancel_not_active",
];

/// Failures of one response that a second try may not meet. OpenAI's documented error
/// types for a failed response are not enumerated; these names are the ones its API uses
/// for rate limits and server faults elsewhere (unconfirmed for `response.done`).
const TRANSIENT_FAILURES: &[&str] = &[
    "rate_limit_exceeded",
    "rate_limit_error",
    "server_error",
    "internal_error",
    "overloaded",
    "server_overloaded",
];

impl Live {
    /// The caller's audio so far goes to the model, and the agent greets (unless the caller
    /// already spoke first: the model answers them instead).
    pub(crate) async fn start_talking(&mut self, greet: bool) -> Result<(), String> {
        let buffered = std::mem::take(&mut self.pre_buffer);
        let whole = buffered.len() / media::FRAME_BYTES * media::FRAME_BYTES;
        if whole > 0 {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&buffered[..whole]);
            self.send_model(rt::append_audio(&b64)).await?;
        }
        if let Some(crate::resume::Resume {
            history,
            speak_first,
        }) = self.ready.resume.take()
        {
            // The call is back (resume.rs): the new session gets the conversation; after a
            // failed transfer the agent speaks first (a system note in it says why).
            let items: Vec<String> = history
                .replay()
                .map(|item| json!({"type": "conversation.item.create", "item": item}).to_string())
                .collect();
            for item in items {
                self.send_model(item).await?;
            }
            self.history = history;
            if speak_first {
                self.send_model(rt::response_create(None)).await?;
                self.awaiting_response = true;
            }
            return Ok(());
        }
        if let Some(greeting) = self.ready.agent.greeting.clone().filter(|_| greet) {
            let instructions =
                format!("Greet the caller by saying exactly this, then listen: {greeting}");
            self.send_model(rt::response_create(Some(&instructions)))
                .await?;
            self.awaiting_response = true;
        }
        Ok(())
    }

    /// `response.done` with `status: "failed"`: the caller would hear nothing. A transient
    /// failure is retried once with a new `response.create`; otherwise, or when the retry fails
    /// too, the call ends with the apology and the model's error code.
    async fn on_response_failed(&mut self, response: &Value) -> Result<Step, String> {
        let error = &response["status_details"]["error"];
        let code = error["code"]
            .as_str()
            .or(error["type"].as_str())
            .unwrap_or("unknown")
            .to_owned();
        let kind = error["type"].as_str().unwrap_or_default();
        let transient =
            TRANSIENT_FAILURES.contains(&code.as_str()) || TRANSIENT_FAILURES.contains(&kind);
        tracing::warn!(code = %code, error_type = kind, transient, retried = self.retried_failure, "the model's response failed");
        if transient && !self.retried_failure {
            self.retried_failure = true;
            self.send_model(rt::response_create(None)).await?;
            self.awaiting_response = true;
            return Ok(Step::Go);
        }
        Ok(Step::Exit(Exit::Fail(
            EndReason::ModelError,
            format!("the model's response failed: {code}"),
        )))
    }

    pub(crate) async fn on_model<S>(
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

    pub(crate) fn model_gone(&self, detail: String) -> Exit {
        if self.ending.is_some() {
            // The agent was ending the call anyway.
            return self.ending_exit();
        }
        Exit::Fail(EndReason::ModelDisconnected, detail)
    }

    pub(crate) async fn on_event<S>(
        &mut self,
        event: ServerEvent<'_>,
        socket: &mut S,
    ) -> Result<Step, String>
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
                if self.amd_pending {
                    // An outbound call waits to know a person answered (answer.rs).
                    tracing::debug!("holding the agent until a person is on the line");
                } else {
                    self.start_talking(true).await?;
                }
            }
            ServerEvent::AudioDelta { item_id, delta } => {
                if self.muted || self.muted_response {
                    // Staff muted the agent: nothing it generates reaches the caller.
                    return Ok(Step::Go);
                }
                if self.playback.is_cut(&item_id) {
                    // Audio in flight when the caller barged in: the item was cleared at
                    // Twilio and truncated at the model; playing it would be a new item.
                    self.svc.stats.late_deltas.fetch_add(1, Ordering::Relaxed);
                    return Ok(Step::Go);
                }
                if !self.generated_bytes.contains_key(&item_id) {
                    self.agent_started.insert(item_id.clone(), Timestamp::now());
                    self.write(Entry::Reserve {
                        key: transcript::agent_key(&item_id),
                    });
                    self.history.reserve(transcript::agent_key(&item_id));
                }
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
            ServerEvent::TranscriptDelta { item_id, delta } => {
                if !self.playback.is_cut(&item_id) {
                    self.partial.entry(item_id).or_default().push_str(&delta);
                }
            }
            ServerEvent::AudioDone { item_id } => {
                if self.playback.is_cut(&item_id) {
                    return Ok(Step::Go);
                }
                if let Some(chunk) = self.playback.audio_done(&item_id) {
                    self.send_twilio(socket, chunk).await?;
                }
            }
            ServerEvent::SpeechStarted { item_id } => {
                self.write(Entry::Reserve {
                    key: transcript::user_key(&item_id),
                });
                self.history.reserve(transcript::user_key(&item_id));
                self.caller_speaking = true;
                self.user_started.insert(item_id, Timestamp::now());
                if self.playback.audible() {
                    tracing::info!("caller interrupted the agent");
                    self.svc.stats.interruptions.fetch_add(1, Ordering::Relaxed);
                    self.cut_playback(socket).await?;
                }
            }
            ServerEvent::SpeechStopped { .. } => {
                self.caller_speaking = false;
                self.turn_pending = true;
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
                self.history.fill(
                    Some(transcript::user_key(&item_id)),
                    History::user(&transcript),
                );
                self.write(Entry::Item {
                    key: Some(transcript::user_key(&item_id)),
                    role: MessageRole::User,
                    kind: MessageKind::Message,
                    content: json!({"item_id": item_id, "text": transcript}),
                    at,
                });
            }
            ServerEvent::InputTranscriptFailed { item_id } => {
                tracing::warn!(item_id = %item_id, "the caller's words could not be transcribed");
                self.user_started.remove(&item_id);
                self.history.release(&transcript::user_key(&item_id));
                self.write(Entry::Release {
                    key: transcript::user_key(&item_id),
                });
            }
            ServerEvent::ResponseCreated => {
                self.turn_pending = false;
                self.response_active = true;
                self.awaiting_response = false;
                if self.muted {
                    self.muted_response = true;
                    self.send_model(json!({"type": "response.cancel"}).to_string())
                        .await?;
                }
            }
            ServerEvent::ResponseDone { response } => {
                self.response_active = false;
                self.awaiting_response = false;
                if response["status"] == "failed" {
                    self.muted_response = false;
                    return self.on_response_failed(&response).await;
                }
                if response["status"] == "completed" {
                    self.retried_failure = false;
                }
                self.on_response_done(&response);
                // Set while this response ran muted; the next one starts afresh.
                self.muted_response = false;
                // The caller hears a line while a slow tool runs, instead of silence; the
                // answer follows when the tool's output is in (deferred over this response).
                if let Some(line) = self.waiting_line.take() {
                    if self.batch_pending > 0 && self.ending.is_none() {
                        self.send_model(rt::response_say(&line)).await?;
                        self.awaiting_response = true;
                    }
                }
                if self.deferred_response && self.batch_pending == 0 {
                    self.deferred_response = false;
                    self.send_model(rt::response_create(None)).await?;
                    self.awaiting_response = true;
                }
                self.next_staff_say().await?;
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

    /// Stops what the caller hears at once (Twilio `clear`), then cuts the model's memory of
    /// each playing item to what was heard (`truncate`), and records the cut for the
    /// transcript and a later replay. Used by barge-in and by staff muting the agent.
    pub(crate) async fn cut_playback<S>(&mut self, socket: &mut S) -> Result<(), String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: Display,
    {
        self.send_twilio_frames(socket, &[media::clear(&self.stream_sid)])
            .await?;
        for cut in self.playback.interrupt() {
            tracing::info!(item_id = %cut.item_id, audio_end_ms = cut.audio_end_ms, "agent cut off");
            self.send_model(rt::truncate(&cut.item_id, cut.audio_end_ms))
                .await?;
            self.cut_heard
                .insert(cut.item_id.clone(), (cut.audio_end_ms, cut.sent_ms));
            self.write(Entry::Cut {
                item_id: cut.item_id,
                heard_ms: cut.audio_end_ms,
                sent_ms: cut.sent_ms,
            });
        }
        Ok(())
    }

    /// Agent turns and function calls from the finished response's output items.
    pub(crate) fn on_response_done(&mut self, response: &Value) {
        let status = response["status"]
            .as_str()
            .unwrap_or("completed")
            .to_owned();
        let Some(items) = response["output"].as_array() else {
            return;
        };
        for item in items {
            match item["type"].as_str() {
                Some("message") if self.muted || self.muted_response => {
                    // Muted by staff: not heard, not stored as said.
                    let item_id = item["id"].as_str().unwrap_or_default();
                    self.partial.remove(item_id);
                    self.generated_bytes.remove(item_id);
                }
                Some("message") => {
                    let item_id = item["id"].as_str().unwrap_or_default().to_owned();
                    let text = rt::item_text(item);
                    let audio_ms =
                        self.generated_bytes.remove(&item_id).unwrap_or(0) / media::BYTES_PER_MS;
                    let mut content = json!({
                        "item_id": item_id,
                        "text": text,
                        "item": item,
                        "response_status": status,
                        "audio_ms": audio_ms,
                        "agent_id": self.ready.agent.id,
                        "agent_name": self.ready.agent.name,
                    });
                    let latency = self.item_latency.remove(&item_id);
                    if let Some(ms) = latency {
                        content["latency_ms"] = json!(ms);
                    }
                    // The cascaded pipeline says where a turn's time went; the last leg
                    // (to the caller) is measured here.
                    if let Some(b) = response.get("latency_breakdown").filter(|b| b.is_object()) {
                        content["latency_breakdown"] = crate::pipeline::with_last_leg(b, latency);
                    }
                    self.partial.remove(&item_id);
                    let spoken = match self.cut_heard.remove(&item_id) {
                        Some((heard, sent)) => {
                            History::heard(&text, heard, (audio_ms as u64).max(sent))
                        }
                        None => text.clone(),
                    };
                    if !spoken.is_empty() {
                        self.history.fill(
                            Some(transcript::agent_key(&item_id)),
                            History::agent(self.svc.config.shape, &spoken),
                        );
                    }
                    let at = self
                        .agent_started
                        .remove(&item_id)
                        .unwrap_or_else(Timestamp::now);
                    self.write(Entry::Agent {
                        item_id,
                        content,
                        at,
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
                        key: None,
                        role: MessageRole::Assistant,
                        kind: MessageKind::FunctionCall,
                        content: json!({"call_id": call_id, "name": name, "arguments": arguments, "executed": execute}),
                        at: Timestamp::now(),
                    });
                    if status == "completed" && !call_id.is_empty() {
                        self.history.fill(
                            None,
                            json!({"type": "function_call", "call_id": call_id, "name": name, "arguments": raw_args}),
                        );
                    }
                    if execute {
                        if let Some(line) = self.ready.tool_ctx.toolset.waiting_line(&name) {
                            self.waiting_line
                                .get_or_insert_with(|| waiting_instructions(line));
                        }
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

    pub(crate) async fn on_tool_done(
        &mut self,
        call_id: String,
        name: String,
        outcome: Option<ToolOutcome>,
    ) -> Step {
        self.batch_pending = self.batch_pending.saturating_sub(1);
        let outcome = outcome.map(|o| self.check_keys(o));
        if let Some(outcome) = outcome {
            if let Err(e) = self
                .send_model(rt::function_output(&call_id, &outcome.output))
                .await
            {
                return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
            }
            self.history.fill(
                None,
                json!({"type": "function_call_output", "call_id": call_id, "output": outcome.output.to_string()}),
            );
            self.write(Entry::Item {
                key: None,
                role: MessageRole::Tool,
                kind: MessageKind::FunctionOutput,
                content: json!({"call_id": call_id, "name": name, "output": outcome.output, "status": outcome.status}),
                at: Timestamp::now(),
            });
            match outcome.effect {
                // Pressed once the agent is quiet; then the line speaks, not the agent.
                Some(Effect::SendDigits(keys)) => self.keys_to_send = Some(keys),
                // The next agent answers, in the same session.
                Some(Effect::Handoff { agent, reason }) => {
                    if let Err(e) = self.hand_off(*agent, reason).await {
                        return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e));
                    }
                    self.batch_wants_answer = true;
                }
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
            // Exactly one response.create per batch, and never over an active (or requested)
            // response, such as the waiting line.
            if self.response_active || self.awaiting_response {
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

/// The instructions of the line spoken while a tool runs.
fn waiting_instructions(line: Option<&str>) -> String {
    match line {
        Some(l) => format!(
            "While the result is being fetched, say exactly this to the caller and nothing else: {l}"
        ),
        None => "While the result is being fetched, tell the caller in a few words that you are \
                 checking. Do not guess the result."
            .to_owned(),
    }
}
