//! Moving a live call to a new model session: before the provider's session limit (OpenAI
//! Realtime sessions end at 60 minutes, calls may last 4 hours), and once after the model
//! connection drops mid-call.
//!
//! The new session gets the same configuration, then the conversation so far replayed as
//! items (`conversation.item.create`): the caller's words as transcribed, the agent's words
//! as heard (cut to what was played when interrupted), tool calls and their results. What
//! is lost: the audio itself (the new session hears no earlier speech, only its text, so tone
//! and anything the transcription missed are gone), turns still being transcribed at the
//! switch, and any server-side state beyond the items (e.g. a response in progress).

use crate::live::{Live, Step};
use crate::session::WsFrame;
use crate::transcript::heard_text;
use futures_util::{Sink, Stream, StreamExt};
use serde_json::{json, Value};
use std::fmt::Display;
use std::time::Duration;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_realtime::Shape;
use switchboard_twilio::media;
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// What the agent is asked to say first after a dropped connection was restored.
const AFTER_DROP: &str = "The line to you dropped for a moment and has just been restored. \
    Briefly apologise (for example: \"Sorry about that, one moment... I'm back.\"), then \
    continue the conversation where it left off.";

/// The conversation so far, as items a new session can be given, in spoken order. Turns get
/// their place when their speech starts and their content when it is complete (like the
/// transcript writer).
#[derive(Debug, Default)]
pub(crate) struct History {
    items: Vec<(Option<String>, Option<Value>)>,
}

impl History {
    /// Reserves the next place for the turn `key`.
    pub(crate) fn reserve(&mut self, key: String) {
        self.items.push((Some(key), None));
    }

    /// Fills the place of `key` (or appends when there is none).
    pub(crate) fn fill(&mut self, key: Option<String>, item: Value) {
        if let Some(k) = &key {
            if let Some(slot) = self
                .items
                .iter_mut()
                .find(|(sk, v)| v.is_none() && sk.as_ref() == Some(k))
            {
                slot.1 = Some(item);
                return;
            }
        }
        self.items.push((key, Some(item)));
    }

    /// Forgets the place of a turn that will not come.
    pub(crate) fn release(&mut self, key: &str) {
        self.items
            .retain(|(k, v)| v.is_some() || k.as_deref() != Some(key));
    }

    /// The items to replay.
    pub(crate) fn replay(&self) -> impl Iterator<Item = &Value> {
        self.items.iter().filter_map(|(_, v)| v.as_ref())
    }

    /// The caller's latest words, if they said anything yet.
    pub(crate) fn last_user_text(&self) -> Option<&str> {
        self.replay()
            .filter(|i| i["role"] == "user")
            .filter_map(|i| i["content"][0]["text"].as_str())
            .last()
    }

    /// A caller turn.
    pub(crate) fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    /// An agent turn as text (GA calls assistant text `output_text`, beta `text`).
    pub(crate) fn agent(shape: Shape, text: &str) -> Value {
        let kind = match shape {
            Shape::Ga => "output_text",
            Shape::Beta => "text",
        };
        json!({"type": "message", "role": "assistant", "content": [{"type": kind, "text": text}]})
    }

    /// What the caller heard of an agent turn, for the replay.
    pub(crate) fn heard(text: &str, heard_ms: u64, total_ms: u64) -> String {
        heard_text(text, heard_ms, total_ms)
    }
}

impl Live {
    /// Whether nothing is in flight: a good moment to switch sessions unnoticed.
    pub(crate) fn quiet(&self) -> bool {
        !self.response_active
            && !self.awaiting_response
            && self.batch_pending == 0
            && !self.playback.audible()
            && self.ending.is_none()
            && !self.caller_speaking
            && !self.turn_pending
    }

    /// Opens a new model session, configures it, replays the conversation, and makes it the
    /// call's session. After a drop, the agent is asked to apologise and go on.
    pub(crate) async fn switch_session<S, E>(
        &mut self,
        socket: &mut S,
        after_drop: bool,
    ) -> Result<(), String>
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        let cfg = self.svc.config.clone();
        let mut new = crate::pipeline::open_model(&self.svc, &self.ready.agent).await?;
        let send = |text: String| ModelMessage::Text(text.into());
        let update = rt::session_update(cfg.shape, &self.ready.session_config);
        bounded(
            cfg.send_timeout,
            futures_util::SinkExt::send(&mut new, send(update)),
        )
        .await?;
        // Caller audio waits in the Twilio socket meanwhile: a pause of a few hundred ms.
        let configured = async {
            while let Some(msg) = new.next().await {
                let text = match msg {
                    Ok(ModelMessage::Text(t)) => t,
                    Ok(ModelMessage::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                match rt::parse(text.as_str()) {
                    Ok(ServerEvent::SessionUpdated {
                        formats_ok,
                        formats,
                    }) => {
                        return if formats_ok {
                            Ok(())
                        } else {
                            Err(format!(
                                "the new session did not confirm mu-law audio ({formats})"
                            ))
                        };
                    }
                    Ok(ServerEvent::Error { code, message }) => {
                        return Err(format!("the new session was refused: {code}: {message}"))
                    }
                    _ => {}
                }
            }
            Err("the new session closed before it was configured".to_owned())
        };
        tokio::time::timeout(cfg.setup_timeout, configured)
            .await
            .map_err(|_| {
                "the new session did not confirm its configuration in time".to_owned()
            })??;
        let items: Vec<String> = self
            .history
            .replay()
            .map(|item| json!({"type": "conversation.item.create", "item": item}).to_string())
            .collect();
        for item in items {
            bounded(
                cfg.send_timeout,
                futures_util::SinkExt::send(&mut new, send(item)),
            )
            .await?;
        }
        let mut old = std::mem::replace(&mut self.model, new);
        // Whatever was fed to the old session goes with its close.
        self.owed.model = false;
        let _ = tokio::time::timeout(cfg.send_timeout, old.close()).await;
        self.session_started = tokio::time::Instant::now();
        self.rollover_due = false;
        self.response_active = false;
        self.awaiting_response = false;
        self.deferred_response = false;
        self.caller_speaking = false;
        self.turn_pending = false;
        if after_drop {
            // The answer the drop cut short: the caller keeps what was played, no more.
            if self.playback.audible() {
                self.send_twilio_frames(socket, &[media::clear(&self.stream_sid)])
                    .await?;
            }
            self.playback.interrupt();
            self.send_model(rt::response_create(Some(AFTER_DROP)))
                .await?;
            self.awaiting_response = true;
        }
        Ok(())
    }

    /// Handles the model connection dropping: one reconnect per call.
    pub(crate) async fn after_drop<S, E>(&mut self, socket: &mut S, detail: String) -> Step
    where
        S: Stream<Item = Result<WsFrame, E>> + Sink<String> + Unpin + Send,
        E: Display,
        <S as Sink<String>>::Error: Display,
    {
        use crate::session::Exit;
        use switchboard_domain::call::EndReason;
        if self.reconnects_left == 0 {
            let detail = if self.svc.config.reconnects > 0 {
                format!("{detail} (after the connection had been restored once)")
            } else {
                detail
            };
            return Step::Exit(Exit::Fail(EndReason::ModelDisconnected, detail));
        }
        self.reconnects_left -= 1;
        tracing::warn!(error = %detail, "the model connection dropped; reconnecting and replaying the conversation");
        self.store_cut_off_answers();
        match self.switch_session(socket, true).await {
            Ok(()) => {
                self.svc
                    .stats
                    .reconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("model session restored");
                Step::Go
            }
            Err(e) => Step::Exit(Exit::Fail(
                EndReason::ModelDisconnected,
                format!("{detail}; reconnecting failed: {e}"),
            )),
        }
    }
}

async fn bounded<F, T, Er>(limit: Duration, f: F) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, Er>>,
    Er: Display,
{
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the new model session stopped reading".into()),
    }
}
