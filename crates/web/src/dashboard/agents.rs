//! `/agents`: list, create and edit with errors beside each field, delete, and "Try it".

use super::agent_form::{choices, form, Draft};
use super::layout::{self, time};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::agent::{
    Agent, AgentPatch, DEFAULT_MAX_CALL_SECONDS, DEFAULT_MODEL, DEFAULT_VOICE,
};
use switchboard_domain::entities::Cursor;
use switchboard_domain::ids::AgentId;
use switchboard_store::StoreError;

/// `?flash=` after a redirect, `?cursor=` for paging.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    flash: Option<String>,
}

/// `GET /agents`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_agents(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if dash.can_manage() { p { a.button.primary #new-agent href="/agents/new" { "New agent" } } }
        div.table-wrap {
            table.list #agents {
                thead { tr { th { "Name" } th { "Voice" } th { "Model" } th { "Tools" } th { "Updated" } } }
                tbody {
                    @for a in &page.data {
                        tr { td { a href={ "/agents/" (a.id) } { (a.name) } } td { (a.voice) } td { (a.model) } td { (a.tools.join(", ")) } td { (time(a.updated_at)) } }
                    }
                    @if page.data.is_empty() { tr { td colspan="5" .empty { "No agents yet." } } }
                }
            }
        }
        (layout::pager("/agents", &[], page.next_cursor.as_deref()))
    };
    Ok(layout::render(&st, &dash, "agents", "Agents", None, body)
        .await?
        .into_response())
}

/// `GET /agents/new` (admins).
pub async fn new_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    let custom = choices(&st, &dash).await?;
    let body = form(
        &dash,
        "/agents/new",
        &Draft::empty(),
        &FieldErrors::default(),
        false,
        &custom,
    );
    Ok(
        layout::render(&st, &dash, "agents", "New agent", None, body)
            .await?
            .into_response(),
    )
}

async fn invalid(
    st: &AppState,
    dash: &Dash,
    action: &str,
    title: &str,
    d: &Draft,
    errors: &FieldErrors,
) -> Result<Response, DashError> {
    let custom = choices(st, dash).await?;
    let page = layout::render(
        st,
        dash,
        "agents",
        title,
        None,
        form(dash, action, d, errors, false, &custom),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /agents/new`.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    let input = match draft.parse(None, &mut errors) {
        Some(input) => {
            match crate::speech_check::check(&st, input.stt.as_ref(), input.tts.as_ref()).await {
                Ok(()) => Some(input),
                Err(v) => {
                    errors.validation(&v);
                    None
                }
            }
        }
        None => None,
    };
    if let Some(input) = input {
        match st.store.create_agent(&dash.org, input).await {
            Ok(a) => {
                tracing::info!(org_id = %dash.org, agent_id = %a.id, "agent created in the dashboard");
                return Ok(
                    Redirect::to(&format!("/agents/{}?flash=Agent+created", a.id)).into_response(),
                );
            }
            Err(StoreError::Invalid(v)) => errors.validation(&v),
            Err(e) => return Err(e.into()),
        }
    }
    invalid(&st, &dash, "/agents/new", "New agent", &draft, &errors).await
}

fn try_panel(a: &Agent) -> Markup {
    html! {
        section.card.try #try-it data-agent=(a.id) {
            h2 { "Try it" }
            p.muted { "Chat with this agent over the test (web) channel. Tools run for real inside this organization." }
            ol.timeline #try-log {}
            form #try-form {
                input #try-input name="message" placeholder="Say something…" autocomplete="off" required maxlength="2000";
                button.primary type="submit" { "Send" }
            }
            p.field-error #try-error hidden {}
        }
    }
}

async fn edit_page(
    st: &AppState,
    dash: &Dash,
    a: &Agent,
    d: &Draft,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<maud::Markup, DashError> {
    let action = format!("/agents/{}", a.id);
    let custom = choices(st, dash).await?;
    let calls = super::agent_calls::card(st, dash, a, None, &FieldErrors::default()).await?;
    let body = html! {
        (layout::flash(flash))
        div.columns {
            section {
                (form(dash, &action, d, errors, !dash.can_manage(), &custom))
                (calls)
                @if dash.can_manage() {
                    (layout::action_button(dash, &format!("/agents/{}/delete", a.id), "Delete agent", Some("Delete this agent? Numbers routed to it will stop answering.")))
                }
            }
            @if dash.can_manage() {
                section {
                    (super::web_call::panel(a))
                    (try_panel(a))
                }
            }
        }
    };
    layout::render(st, dash, "agents", &a.name, None, body).await
}

/// `GET /agents/{id}`: the edit form (read-only for members) and "Try it".
pub async fn edit_form(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let a = st.store.get_agent(&dash.org, &id).await?;
    Ok(edit_page(
        &st,
        &dash,
        &a,
        &Draft::of(&a),
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /agents/{id}`: saves every field at once (all or nothing).
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let current = st.store.get_agent(&dash.org, &id).await?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    // The pipeline is kept as it is when the form did not carry it (an older page).
    let keeps_pipeline = draft.parse_keeps_pipeline();
    let parsed = match draft.parse(Some(&current), &mut errors) {
        // Providers are asked only about what this save changes.
        Some(n) if !keeps_pipeline && (n.stt != current.stt || n.tts != current.tts) => {
            match crate::speech_check::check(&st, n.stt.as_ref(), n.tts.as_ref()).await {
                Ok(()) => Some(n),
                Err(v) => {
                    errors.validation(&v);
                    None
                }
            }
        }
        other => other,
    };
    if let Some(n) = parsed {
        let patch = AgentPatch {
            name: Some(n.name),
            instructions: Some(n.instructions),
            greeting: Some(n.greeting),
            voice: Some(n.voice.unwrap_or_else(|| DEFAULT_VOICE.into())),
            model: Some(n.model.unwrap_or_else(|| DEFAULT_MODEL.into())),
            language: Some(n.language),
            temperature: Some(n.temperature),
            turn_detection: n.turn_detection,
            tools: n.tools,
            transfer_number: Some(n.transfer_number),
            max_call_duration_seconds: Some(
                n.max_call_duration_seconds
                    .unwrap_or(DEFAULT_MAX_CALL_SECONDS),
            ),
            analysis_fields: n.analysis_fields,
            business_hours: n.business_hours,
            chat_model: Some(n.chat_model),
            voicemail: n.voicemail,
            voicemail_message: Some(n.voicemail_message),
            record: n.record,
            contact_scope: n.contact_scope,
            handoffs: None,
            digits: None,
            knowledge: n.knowledge,
            retell_agent_id: Some(n.retell_agent_id),
            transfer_caller_id: None,
            transfer_message: None,
            transfer_mode: None,
            voice_pipeline: n.voice_pipeline,
            stt: (!keeps_pipeline).then_some(n.stt),
            llm: (!keeps_pipeline).then_some(n.llm),
            tts: (!keeps_pipeline).then_some(n.tts),
        };
        match st.store.update_agent(&dash.org, &id, patch).await {
            Ok(_) => return Ok(Redirect::to(&format!("/agents/{id}?flash=Saved")).into_response()),
            Err(StoreError::Invalid(v)) => errors.validation(&v),
            Err(e) => return Err(e.into()),
        }
    }
    let page = edit_page(&st, &dash, &current, &draft, &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /agents/{id}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.delete_agent(&dash.org, &id).await?;
    Ok(Redirect::to("/agents?flash=Agent+deleted").into_response())
}

/// The "Try it" request (JSON, CSRF header).
#[derive(Debug, Deserialize)]
pub struct TryMessage {
    session_id: String,
    message: String,
}

/// `POST /agents/{id}/try` (admins): one turn of the web test chat. Its tools act for real
/// inside this organization, so members, who only read, cannot use it.
pub async fn try_it(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Json(body): Json<TryMessage>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    match st
        .messaging
        .web_chat(&dash.org, &id, &body.session_id, &body.message)
        .await
    {
        Ok(turn) => Ok(Json(turn).into_response()),
        // The panel's script reads the API's error body.
        Err(e) => Ok(crate::error::ApiError::from(e).into_response()),
    }
}
