//! The operator assistant: an admin runs the organization in plain language. The chat model
//! (`SWITCHBOARD_LLM_*`) is given the MCP server's tools (each a REST API request made as
//! the person), a few read tools about activity and knowledge, and `confirm_action` /
//! `cancel_action`. A read runs at once; anything that changes something only becomes a
//! proposed action with a preview (`preview.rs`) that happens when the same person confirms
//! it (`decide.rs`). Sessions and their messages persist.

mod activity;
mod decide;
mod preview;
mod tools;
pub(crate) mod voice;

pub(crate) use decide::{cancel, confirm, Decision, Via};

use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_domain::assistant::{
    title_of, AssistantAction, MAX_MESSAGE_CHARS, MAX_ROUNDS, MAX_SESSION_KEY,
};
use switchboard_domain::ids::OrgId;
use switchboard_domain::team::Actor;
use switchboard_domain::Timestamp;
use switchboard_llm::Request;
use switchboard_store::{AssistantSession, StoreError};
use tokio::sync::mpsc;

/// Who is asking: the organization, the person (as actions are proposed to them), how the
/// audit trail names them, and whether they may change things.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// The organization every tool works in.
    pub org: OrgId,
    /// `user:<id>` or `api_key:<id>`.
    pub id: String,
    /// As the audit trail shows them.
    pub actor: Actor,
    /// Admins, operators and API keys; members only read.
    pub can_manage: bool,
}

/// One tool the assistant ran (or proposed) in a turn.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ToolCallView {
    /// Tool name.
    pub name: String,
    /// Its arguments.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// `running`, `ok`, `error`, or `pending` for a proposed change.
    pub status: String,
    /// What the model was given.
    #[schema(value_type = Object)]
    pub output: Value,
}

/// What one message to the assistant gave.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TurnResult {
    /// The session.
    pub session_id: String,
    /// The assistant's answer.
    pub reply: String,
    /// The tools it used, in order.
    pub tool_calls: Vec<ToolCallView>,
    /// Changes it proposed in this message, waiting for confirmation.
    pub pending_actions: Vec<AssistantAction>,
}

/// Progress of a turn, for a page that shows the tools as they run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A tool started.
    ToolStarted(ToolCallView),
    /// A tool finished.
    ToolFinished(ToolCallView),
    /// A change was proposed.
    Action(AssistantAction),
    /// The person's words, transcribed (spoken sessions).
    Heard {
        /// What they said.
        text: String,
    },
    /// The turn is over.
    Done(TurnResult),
    /// The turn failed.
    Error {
        /// Stable code.
        code: String,
        /// What went wrong.
        message: String,
    },
}

/// What a tool needs: the server, the person, the session and its turn.
pub(crate) struct Ctx<'a> {
    pub st: &'a AppState,
    pub who: &'a Principal,
    pub session_id: String,
    pub turn: i64,
    pub today: String,
    pub timezone: String,
    /// In a spoken conversation: the person's latest words.
    pub spoken: Option<Spoken>,
}

/// What a tool run in a spoken conversation knows of what the person said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spoken {
    /// Their latest utterance, when transcribed.
    pub words: Option<String>,
}

fn system_prompt(org_name: &str, ctx: &Ctx<'_>) -> String {
    let role = if ctx.who.can_manage {
        "an admin: you may propose changes"
    } else {
        "a member: they may ask questions, but you must not propose changes (the change tools refuse)"
    };
    format!(
        "You are the operator assistant of {org_name}, which runs AI phone and text agents on \
         Switchboard. You help the people who run the business: answer questions about calls, \
         texts, appointments, contacts and agents from the tools, and make changes they ask for. \
         Today is {} in the organization's time zone ({}). The person you talk to is {role}.\n\
         Rules: use the tools for facts, never guess ids or numbers. A tool that changes \
         something does not act: it returns a pending action with a summary. Show the person \
         that summary (and the details that matter: the diff, the recipients, the number and \
         time) and ask them to confirm; only when they then clearly say yes, call \
         confirm_action with its id (never in the same message that proposed it). If they say \
         no, call cancel_action. Answer briefly, in plain text.",
        ctx.today, ctx.timezone
    )
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "assistant_unavailable",
        message,
    )
}

async fn emit(events: Option<&mpsc::Sender<Event>>, e: Event) {
    if let Some(tx) = events {
        // A page that went away stops listening; the turn still completes and is kept.
        let _ = tx.send(e).await;
    }
}

/// The session's id, creating it (titled by `message`) the first time.
async fn ensure_session(
    st: &AppState,
    who: &Principal,
    key: &str,
    message: &str,
    session: &mut Option<AssistantSession>,
) -> Result<String, ApiError> {
    if let Some(s) = session {
        return Ok(s.id.clone());
    }
    let s = st
        .store
        .open_assistant_session(&who.org, &who.id, key, &title_of(message), Timestamp::now())
        .await?;
    let id = s.id.clone();
    *session = Some(s);
    Ok(id)
}

/// Runs one message of a session: the model's rounds of tools, then its answer. Everything
/// the turn wrote (the message, the model's and the tools' messages) is stored together at
/// its end; a model that fails at once answers 503 and stores nothing (one that fails after
/// tools ran is answered with what happened, and kept).
pub(crate) async fn turn(
    st: &AppState,
    who: &Principal,
    session_key: &str,
    message: &str,
    events: Option<&mpsc::Sender<Event>>,
) -> Result<TurnResult, ApiError> {
    let key = session_key.trim();
    if key.is_empty() || key.chars().count() > MAX_SESSION_KEY {
        return Err(ApiError::invalid(
            "session_id",
            format!("must be 1 to {MAX_SESSION_KEY} characters"),
        ));
    }
    let message = message.trim();
    if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::invalid(
            "message",
            format!("must be 1 to {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let Some(llm) = st.llm.clone() else {
        return Err(unavailable(
            "no chat model is configured (set SWITCHBOARD_LLM_API_KEY or SWITCHBOARD_LLM_BASE_URL)",
        ));
    };
    let now = Timestamp::now();
    // The session is created with the first answer of the model: a model that does not
    // answer leaves nothing behind.
    let mut session = match st.store.get_assistant_session(&who.org, &who.id, key).await {
        Ok(s) => Some(s),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let turn_no = session.as_ref().map(|s| s.turns).unwrap_or(0) + 1;
    let settings = st.store.get_settings(&who.org).await?;
    let org_name = st.store.get_org(&who.org).await?.name;
    let tz = jiff::tz::TimeZone::get(&settings.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let ctx_of = |session_id: String| Ctx {
        st,
        who,
        session_id,
        turn: turn_no,
        today: crate::appointments::today(&tz, now).to_string(),
        timezone: settings.timezone.clone(),
        spoken: None,
    };
    let prompt = system_prompt(&org_name, &ctx_of(String::new()));
    let mut history: Vec<Value> = vec![json!({"role": "system", "content": prompt})];
    if let Some(s) = &session {
        history.extend(
            st.store
                .assistant_messages(&who.org, &s.id)
                .await?
                .into_iter()
                .map(|(_, m)| m),
        );
    }
    let mut new: Vec<Value> = vec![json!({"role": "user", "content": message})];
    let offered = tools::definitions(who.can_manage);
    let mut calls: Vec<ToolCallView> = Vec::new();
    let mut pending: Vec<AssistantAction> = Vec::new();
    let mut reply = String::new();
    for round in 0..MAX_ROUNDS {
        let mut messages = history.clone();
        messages.extend(new.iter().cloned());
        let req = Request {
            model: String::new(),
            messages,
            tools: offered.clone(),
            forbid_tools: round + 1 == MAX_ROUNDS,
            temperature: None,
            response_format: None,
        };
        let completion = match llm.complete(&req).await {
            Ok(c) => c,
            Err(e) if round == 0 => {
                tracing::warn!(org_id = %who.org, error = %e, "assistant model failed");
                return Err(unavailable(format!(
                    "the assistant's model did not answer ({e}); nothing was stored, try again"
                )));
            }
            Err(e) => {
                // Tools already ran (and are audited): keep what happened, say so.
                tracing::warn!(org_id = %who.org, error = %e, "assistant model failed mid-turn");
                reply = format!("The assistant's model stopped answering ({e}). The tools above ran; ask again to go on.");
                new.push(json!({"role": "assistant", "content": reply}));
                break;
            }
        };
        new.push(completion.assistant_message());
        if completion.tool_calls.is_empty() {
            reply = completion.content.unwrap_or_default();
            break;
        }
        let session_id = ensure_session(st, who, key, message, &mut session).await?;
        let ctx = ctx_of(session_id);
        for call in &completion.tool_calls {
            let arguments: Value =
                serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            let started = ToolCallView {
                name: call.name.clone(),
                arguments: arguments.clone(),
                status: "running".into(),
                output: Value::Null,
            };
            emit(events, Event::ToolStarted(started)).await;
            let ran = tools::run(&ctx, &call.name, &call.arguments).await;
            let view = ToolCallView {
                name: call.name.clone(),
                arguments,
                status: ran.status.into(),
                output: ran.output.clone(),
            };
            emit(events, Event::ToolFinished(view.clone())).await;
            if let Some(a) = ran.action {
                emit(events, Event::Action(a.clone())).await;
                pending.push(a);
            }
            calls.push(view);
            new.push(
                json!({"role": "tool", "tool_call_id": call.id, "content": ran.output.to_string()}),
            );
        }
    }
    if reply.trim().is_empty() {
        reply = "I could not finish that; please ask again, perhaps in smaller steps.".into();
        new.push(json!({"role": "assistant", "content": reply}));
    }
    let session_id = ensure_session(st, who, key, message, &mut session).await?;
    st.store
        .append_assistant_turn(&who.org, &session_id, turn_no, &new, Timestamp::now())
        .await?;
    tracing::info!(org_id = %who.org, principal = %who.id, tools = calls.len(), proposed = pending.len(), "assistant turn");
    let result = TurnResult {
        session_id: key.to_owned(),
        reply,
        tool_calls: calls,
        pending_actions: pending,
    };
    emit(events, Event::Done(result.clone())).await;
    Ok(result)
}
