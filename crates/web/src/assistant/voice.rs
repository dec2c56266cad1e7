//! Talking to the assistant: the same assistant by voice in the browser. The page opens a
//! Media Streams socket (as "Call this agent" does, with call.js and its worklet) and
//! `switchboard_voice::converse` relays it to the Realtime model, configured with the
//! assistant's instructions and the same tools, run as the same person with the same
//! preview and confirm. A change proposed by voice is confirmed with the page's button, or
//! by the model's `confirm_action` only when the person's latest words, transcribed, are an
//! explicit "yes, do it" (`spoken_yes`), in a later utterance than the one that proposed it.
//! The words on both sides and every tool are stored in the assistant session, so the text
//! chat goes on from them.

use super::{system_prompt, tools, Ctx, Event, Principal, Spoken, ToolCallView, TurnResult};
use crate::AppState;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_domain::agent::{TurnDetection, DEFAULT_MODEL, DEFAULT_VOICE};
use switchboard_domain::Timestamp;
use switchboard_realtime::{SessionConfig, ToolSpec};
use switchboard_voice::converse::{self, Conversation, FunctionCall, Heard, Host};
use switchboard_voice::MediaSocket;
use tokio::sync::mpsc;

/// The longest spoken session (a Realtime session ends at 60 minutes).
pub(crate) const VOICE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The functions that need the person's words.
const NEEDS_WORDS: [&str; 1] = ["confirm_action"];

const VOICE_RULES: &str = "\nYou are speaking aloud with the person through their browser: \
    answer in one to three short spoken sentences, no lists or markup. When you propose a \
    change, say its summary in a few words (the page shows the details) and ask them to say \
    \"yes, do it\" or press Confirm. Call confirm_action only after they said \"yes, do it\" \
    (or \"confirm\", \"go ahead\") in a new utterance; a plain \"yes\" or \"okay\" is not a \
    confirmation: ask again. The tool checks their words and refuses otherwise.";

/// What the page shows: a frame beside the audio.
fn frame(e: &Event) -> String {
    json!({"event": "assistant", "data": e}).to_string()
}

/// The assistant, spoken: runs tools as the person and keeps the words.
struct Talk {
    st: AppState,
    who: Principal,
    key: String,
    session_id: String,
    /// Turns of the session before this conversation.
    base_turn: i64,
    today: String,
    timezone: String,
    page: mpsc::UnboundedSender<String>,
}

impl Talk {
    fn turn(&self, utterance: u64) -> i64 {
        self.base_turn + i64::try_from(utterance.max(1)).unwrap_or(i64::MAX)
    }

    async fn store(&self, turn: i64, messages: &[Value]) {
        if let Err(e) = self
            .st
            .store
            .append_assistant_turn(
                &self.who.org,
                &self.session_id,
                turn,
                messages,
                Timestamp::now(),
            )
            .await
        {
            tracing::error!(error = %e, "cannot store a spoken assistant turn");
        }
    }
}

impl Host for Talk {
    fn function(&mut self, call: FunctionCall) -> BoxFuture<'static, Value> {
        let (st, who, page) = (self.st.clone(), self.who.clone(), self.page.clone());
        let (session_id, today, timezone) = (
            self.session_id.clone(),
            self.today.clone(),
            self.timezone.clone(),
        );
        let turn = self.turn(call.turn);
        Box::pin(async move {
            let ctx = Ctx {
                st: &st,
                who: &who,
                session_id: session_id.clone(),
                turn,
                today,
                timezone,
                spoken: Some(Spoken {
                    words: call.words.clone(),
                }),
            };
            let arguments: Value =
                serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            let mut view = ToolCallView {
                name: call.name.clone(),
                arguments,
                status: "running".into(),
                output: Value::Null,
            };
            let _ = page.send(frame(&Event::ToolStarted(view.clone())));
            let ran = tools::run(&ctx, &call.name, &call.arguments).await;
            view.status = ran.status.into();
            view.output = ran.output.clone();
            let _ = page.send(frame(&Event::ToolFinished(view)));
            if let Some(a) = ran.action {
                let _ = page.send(frame(&Event::Action(a)));
            }
            let messages = [
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": call.call_id, "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments}}]}),
                json!({"role": "tool", "tool_call_id": call.call_id, "content": ran.output.to_string()}),
            ];
            if let Err(e) = st
                .store
                .append_assistant_turn(&who.org, &session_id, turn, &messages, Timestamp::now())
                .await
            {
                tracing::error!(error = %e, "cannot store a spoken assistant tool call");
            }
            ran.output
        })
    }

    fn heard(&mut self, what: Heard) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match what {
                Heard::Person { turn, text } => {
                    let _ = self.page.send(frame(&Event::Heard { text: text.clone() }));
                    self.store(self.turn(turn), &[json!({"role": "user", "content": text})])
                        .await;
                }
                Heard::Model {
                    turn,
                    text,
                    interrupted,
                } => {
                    let reply = if interrupted {
                        format!("{text} (interrupted)")
                    } else {
                        text
                    };
                    let _ = self.page.send(frame(&Event::Done(TurnResult {
                        session_id: self.key.clone(),
                        reply: reply.clone(),
                        tool_calls: Vec::new(),
                        pending_actions: Vec::new(),
                    })));
                    self.store(
                        self.turn(turn),
                        &[json!({"role": "assistant", "content": reply})],
                    )
                    .await;
                }
            }
        })
    }
}

/// Why a spoken session cannot start, before the socket opens.
pub(crate) fn unavailable(st: &AppState) -> Option<&'static str> {
    if st.voice.config.api_key.is_none() {
        Some("no speech model is configured: set SWITCHBOARD_OPENAI_API_KEY")
    } else if st.lifecycle.is_draining() {
        Some("this server is shutting down; try again in a moment")
    } else {
        None
    }
}

/// Runs a spoken session of `who`'s session `key` on `socket` until it ends, then closes it.
pub(crate) async fn run(st: AppState, who: Principal, key: String, mut socket: MediaSocket) {
    use futures_util::SinkExt;
    let (page_tx, page_rx) = mpsc::unbounded_channel();
    let started = prepare(&st, &who, &key, page_tx).await;
    let (mut host, session) = match started {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(org_id = %who.org, error = %why, "spoken assistant session refused");
            let e = Event::Error {
                code: "assistant_unavailable".into(),
                message: why,
            };
            let _ = socket.send(frame(&e)).await;
            let _ = socket.close().await;
            return;
        }
    };
    tracing::info!(org_id = %who.org, principal = %who.id, "spoken assistant session started");
    let conversation = Conversation {
        session,
        needs_words: NEEDS_WORDS.iter().map(|s| (*s).to_owned()).collect(),
        greeting: Some(
            "Greet the person in one short sentence and ask what you can do for them.".into(),
        ),
        limit: VOICE_LIMIT,
        page: page_rx,
        stop: st.voice.stop.clone(),
    };
    if let Err(e) = converse::converse(&st.voice.config, &mut socket, conversation, &mut host).await
    {
        tracing::warn!(org_id = %who.org, error = %e, "spoken assistant session could not start");
        let e = Event::Error {
            code: "assistant_unavailable".into(),
            message: e.to_string(),
        };
        let _ = socket.send(frame(&e)).await;
    }
    let _ = tokio::time::timeout(st.voice.config.send_timeout, socket.close()).await;
    tracing::info!(org_id = %who.org, principal = %who.id, "spoken assistant session ended");
}

/// The session (opened now), the host and the model's configuration.
async fn prepare(
    st: &AppState,
    who: &Principal,
    key: &str,
    page: mpsc::UnboundedSender<String>,
) -> Result<(Talk, SessionConfig), String> {
    let key = key.trim();
    if key.is_empty() || key.chars().count() > switchboard_domain::assistant::MAX_SESSION_KEY {
        return Err("the session id is missing or too long".into());
    }
    if let Some(why) = unavailable(st) {
        return Err(why.into());
    }
    let fail = |e: switchboard_store::StoreError| {
        tracing::error!(error = %e, "cannot open a spoken assistant session");
        "the assistant's session cannot be opened right now".to_owned()
    };
    let session = st
        .store
        .open_assistant_session(
            &who.org,
            &who.id,
            key,
            "Spoken conversation",
            Timestamp::now(),
        )
        .await
        .map_err(fail)?;
    let settings = st.store.get_settings(&who.org).await.map_err(fail)?;
    let org_name = st.store.get_org(&who.org).await.map_err(fail)?.name;
    let tz = jiff::tz::TimeZone::get(&settings.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let host = Talk {
        st: st.clone(),
        who: who.clone(),
        key: key.to_owned(),
        session_id: session.id.clone(),
        base_turn: session.turns,
        today: crate::appointments::today(&tz, Timestamp::now()).to_string(),
        timezone: settings.timezone.clone(),
        page,
    };
    let ctx = Ctx {
        st,
        who,
        session_id: session.id.clone(),
        turn: session.turns,
        today: host.today.clone(),
        timezone: host.timezone.clone(),
        spoken: None,
    };
    let mut instructions = system_prompt(&org_name, &ctx);
    instructions.push_str(VOICE_RULES);
    let recap = recap(st, who, &session.id).await;
    if !recap.is_empty() {
        instructions.push_str("\nEarlier in this session (text and speech):\n");
        instructions.push_str(&recap);
    }
    let config = SessionConfig {
        model: DEFAULT_MODEL.to_owned(),
        instructions,
        voice: DEFAULT_VOICE.to_owned(),
        language: None,
        turn_detection: TurnDetection::default(),
        transcription_model: st.voice.config.transcription_model.clone(),
        tools: tools::definitions(who.can_manage)
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect(),
        temperature: None,
    };
    Ok((host, config))
}

/// The session's last words, so speech goes on from the chat.
async fn recap(st: &AppState, who: &Principal, session_id: &str) -> String {
    const LAST: usize = 12;
    let Ok(messages) = st.store.assistant_messages(&who.org, session_id).await else {
        return String::new();
    };
    let lines: Vec<String> = messages
        .into_iter()
        .filter_map(|(_, m)| {
            let text = m["content"].as_str()?.trim().to_owned();
            let who = match m["role"].as_str()? {
                "user" => "Person",
                "assistant" => "Assistant",
                _ => return None,
            };
            (!text.is_empty()).then(|| format!("{who}: {text}"))
        })
        .collect();
    lines[lines.len().saturating_sub(LAST)..].join("\n")
}
