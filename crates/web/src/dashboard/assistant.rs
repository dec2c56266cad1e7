//! `/assistant`: the operator assistant as a chat. A message is posted by the page's script
//! and answered as a stream of newline-delimited JSON events, so the tools show as they run;
//! a proposed change is a card with its preview and "Confirm" / "Cancel" buttons (plain
//! forms, so they work without the script too). Sessions persist and are listed beside.

use super::layout;
use super::{Dash, DashError, Fields};
use crate::api::assistant::{session_view, SessionView};
use crate::assistant::{self, Event, Principal};
use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;
use switchboard_domain::assistant::{ActionStatus, AssistantAction};
use switchboard_domain::ids::random_token;
use switchboard_domain::team::Actor;

/// `?session=` and `?flash=`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AssistantQuery {
    session: Option<String>,
    flash: Option<String>,
}

/// The JSON body the assistant page's script posts.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, DashError> {
    serde_json::from_slice(body).map_err(|e| DashError::BadRequest(format!("expected JSON: {e}")))
}

pub(crate) fn principal(dash: &Dash) -> Principal {
    let user = &dash.session.user;
    Principal {
        org: dash.org.clone(),
        id: format!("user:{}", user.id),
        actor: Actor::user(&user.id, &user.email),
        can_manage: dash.can_manage(),
    }
}

/// A proposed action's card; pending ones have the buttons.
pub(crate) fn action_card(dash: &Dash, session: &str, a: &AssistantAction) -> Markup {
    let status = a.status.as_str();
    html! {
        div.card.action #{ "action-" (a.id) } data-action=(a.id) data-status=(status) {
            p { (layout::badge(status)) " " strong { (a.summary) } }
            @if let Some(diff) = a.preview.get("instructions_diff").and_then(Value::as_str) {
                pre.diff { (diff) }
            }
            @if let Some(list) = a.preview.get("first_recipients").and_then(Value::as_array) {
                p { (a.preview["count"]) " recipients; the first:" }
                ul.recipients { @for r in list { li { (r["name"].as_str().unwrap_or("")) " " code { (r["number"].as_str().unwrap_or("")) } } } }
                @if let Some(ex) = a.preview.get("excluded").and_then(Value::as_array).filter(|e| !e.is_empty()) {
                    p.muted { "Left out: " @for (i, r) in ex.iter().enumerate() { @if i > 0 { ", " } (r["number"].as_str().unwrap_or("")) " (" (r["reason"].as_str().unwrap_or("")) ")" } }
                }
            }
            details { summary { "Details" } (layout::json_block(&a.preview)) }
            @if a.status == ActionStatus::Pending {
                p.muted { "Nothing happens until you confirm (until " (layout::time(a.expires_at)) ")." }
                @if dash.can_manage() {
                    form.inline method="post" action={ "/assistant/actions/" (a.id) "/confirm" } {
                        (layout::csrf(dash))
                        input type="hidden" name="session" value=(session);
                        button.primary type="submit" .confirm { "Confirm" }
                    }
                    form.inline method="post" action={ "/assistant/actions/" (a.id) "/cancel" } {
                        (layout::csrf(dash))
                        input type="hidden" name="session" value=(session);
                        button type="submit" .cancel { "Cancel" }
                    }
                }
            }
            @if let Some(r) = &a.result {
                details { summary { "Result" } (layout::json_block(r)) }
            }
        }
    }
}

fn transcript(view: Option<&SessionView>) -> Markup {
    let Some(view) = view else {
        return html! { ol.chat #assistant-log {} };
    };
    // Tool answers by call id, to show each under its call.
    let mut outputs: HashMap<&str, &str> = HashMap::new();
    for m in &view.messages {
        if m["role"] == "tool" {
            if let (Some(id), Some(c)) = (m["tool_call_id"].as_str(), m["content"].as_str()) {
                outputs.insert(id, c);
            }
        }
    }
    html! {
        ol.chat #assistant-log {
            @for m in &view.messages {
                @match m["role"].as_str() {
                    Some("user") => li.turn.user { div.meta { "You" } div.bubble { (m["content"].as_str().unwrap_or("")) } },
                    Some("assistant") => {
                        @for c in m["tool_calls"].as_array().into_iter().flatten() {
                            li.turn.tool {
                                details {
                                    summary { "Tool " code { (c["function"]["name"].as_str().unwrap_or("")) } }
                                    p { "Arguments: " code { (c["function"]["arguments"].as_str().unwrap_or("")) } }
                                    @if let Some(o) = c["id"].as_str().and_then(|id| outputs.get(id)) { pre.json { (o) } }
                                }
                            }
                        }
                        @if let Some(t) = m["content"].as_str().filter(|t| !t.is_empty()) {
                            li.turn.agent { div.meta { "Assistant" } div.bubble { (t) } }
                        }
                    },
                    _ => {},
                }
            }
        }
    }
}

/// `GET /assistant`.
pub async fn page(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<AssistantQuery>,
) -> Result<Response, DashError> {
    let who = principal(&dash);
    let key = q
        .session
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("dash-{}", random_token(12)));
    let view = match session_view(&st, &who, &key).await {
        Ok(v) => Some(v),
        Err(e) if e.status == StatusCode::NOT_FOUND => None,
        Err(e) => return Err(DashError::Internal(e.message)),
    };
    let sessions = st
        .store
        .list_assistant_sessions(&dash.org, &who.id, 30)
        .await?;
    let configured = st.llm.is_some();
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        div.columns.assistant {
            aside.card #sessions {
                h2 { "Sessions" }
                a.button href="/assistant" #new-session { "New session" }
                ul {
                    @for s in &sessions {
                        li class=[(s.key == key).then_some("active")] { a href={ "/assistant?session=" (crate::dashboard::url_encode(&s.key)) } { (s.title) } }
                    }
                    @if sessions.is_empty() { li.muted { "None yet." } }
                }
            }
            section #assistant data-session=(key) {
                @if !configured {
                    p.error-banner role="alert" { "No chat model is configured: set SWITCHBOARD_LLM_API_KEY (or SWITCHBOARD_LLM_BASE_URL for a local model)." }
                }
                p.muted {
                    "Ask about calls, texts, appointments and contacts, or ask for changes (agents' instructions, texts, calls, contacts, knowledge). "
                    @if dash.can_manage() { "Every change is shown first and happens only when you confirm it." }
                    @else { "As a member you can ask questions; changes need an admin." }
                }
                (transcript(view.as_ref()))
                div #actions {
                    @for a in view.iter().flat_map(|v| v.actions.iter()) { (action_card(&dash, &key, a)) }
                }
                form #assistant-form method="post" action="/assistant/message" {
                    textarea #assistant-input name="message" rows="2" placeholder="How many calls did we miss this week?" aria-label="Message" {}
                    button.primary type="submit" #assistant-send disabled[!configured] { "Send" }
                    p.field-error #assistant-error role="alert" hidden {}
                }
                (super::assistant_voice::panel(&key, crate::assistant::voice::unavailable(&st)))
            }
        }
        script src="/assets/assistant.js" defer {}
        script src="/assets/call.js" defer {}
    };
    Ok(
        layout::render(&st, &dash, "assistant", "Assistant", None, body)
            .await?
            .into_response(),
    )
}

/// `POST /assistant/message` (the page's script, `x-csrf-token`): `{"session_id",
/// "message"}`, answered as newline-delimited JSON events ending with `done` or `error`.
/// The turn runs to its end even if the page goes away.
pub async fn message(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let v = json_body(&body)?;
    let key = v["session_id"].as_str().unwrap_or_default().to_owned();
    let text = v["message"].as_str().unwrap_or_default().to_owned();
    let who = principal(&dash);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        if let Err(e) = assistant::turn(&st, &who, &key, &text, Some(&tx)).await {
            let ApiError { code, message, .. } = e;
            let _ = tx
                .send(Event::Error {
                    code: code.to_owned(),
                    message,
                })
                .await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /assistant/actions/{id}/{confirm|cancel}` (a form): decides, then back to the
/// session with what happened.
pub async fn decide(
    State(st): State<AppState>,
    dash: Dash,
    Path((id, what)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let session = f.get("session").unwrap_or_default().to_owned();
    let who = principal(&dash);
    let decision = match what.as_str() {
        "confirm" => assistant::confirm(&st, &who, &id, assistant::Via::Button).await,
        "cancel" => assistant::cancel(&st, &who, &id).await,
        _ => return Err(DashError::NotFound),
    }
    .map_err(|e| DashError::Internal(e.message))?;
    let flash = match decision {
        assistant::Decision::Decided(a) => match a.status {
            ActionStatus::Done => format!("Done: {}", a.summary),
            ActionStatus::Canceled => "Cancelled".to_owned(),
            _ => format!(
                "It failed: {}",
                a.result
                    .as_ref()
                    .and_then(|r| r["error"]["message"].as_str())
                    .unwrap_or("unknown error")
            ),
        },
        assistant::Decision::Refused {
            refusal,
            replacement,
            ..
        } => match replacement {
            Some(_) => format!(
                "{} Check the new preview below.",
                capitalised(refusal.message())
            ),
            None => capitalised(refusal.message()),
        },
    };
    Ok(axum::response::Redirect::to(&format!(
        "/assistant?session={}&flash={}",
        crate::dashboard::url_encode(&session),
        crate::dashboard::url_encode(&flash)
    ))
    .into_response())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            f.to_uppercase().chain(c).collect::<String>() + if s.ends_with('.') { "" } else { "." }
        }
        None => String::new(),
    }
}
