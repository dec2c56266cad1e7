//! The operator assistant over the API: send a message to a session, decide the actions it
//! proposes, read sessions back. An API key acts as an admin of its organization.

use crate::assistant::{self, Decision, Principal, TurnResult};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_domain::assistant::{AssistantAction, Refusal};
use switchboard_domain::team::Actor;
use switchboard_domain::Timestamp;

/// The body of `POST /api/v1/assistant`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantMessage {
    /// Your name for the session (1 to 100 characters): the same name continues it.
    pub session_id: String,
    /// What you ask (at most 8,000 characters).
    pub message: String,
}

/// A decided action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionResult {
    /// The action, `done`, `failed` (see `result`) or `canceled`.
    pub action: AssistantAction,
}

/// A session with its conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Your name for it.
    pub session_id: String,
    /// Its first words.
    pub title: String,
    /// Last used.
    pub updated_at: Timestamp,
    /// The person's messages, the assistant's answers and its tool calls, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// The actions it proposed, oldest first.
    pub actions: Vec<AssistantAction>,
}

/// A session in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    /// Your name for it.
    pub session_id: String,
    /// Its first words.
    pub title: String,
    /// Messages sent.
    pub turns: i64,
    /// Last used.
    pub updated_at: Timestamp,
}

pub(crate) fn principal_of(auth: &OrgAuth) -> Principal {
    Principal {
        org: auth.org.clone(),
        id: auth.actor.clone(),
        actor: Actor {
            user_id: None,
            label: auth.actor.clone(),
        },
        can_manage: true,
    }
}

/// Ask the assistant. It answers from the organization's data with read tools; a change it
/// is asked for comes back in `pending_actions` with a preview and happens only when
/// confirmed (`POST /api/v1/assistant/actions/{id}/confirm`, or saying so in a later
/// message). 503 `assistant_unavailable` when no chat model is configured or it fails
/// (nothing of the message is stored then).
#[utoipa::path(post, path = "/api/v1/assistant", tag = "assistant", request_body = AssistantMessage,
    responses((status = 200, body = TurnResult), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn send(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<AssistantMessage>,
) -> Result<Json<TurnResult>, ApiError> {
    let who = principal_of(&auth);
    Ok(Json(
        assistant::turn(&st, &who, &body.session_id, &body.message, None).await?,
    ))
}

/// The HTTP answer to a decision: 200 with the action, or the refusal (404 unknown, 403 not
/// yours, 410 expired, 409 already decided or stale; a stale action's answer carries the new
/// preview as `action`).
pub(crate) fn decision_response(d: Decision) -> Response {
    match d {
        Decision::Decided(action) => {
            (StatusCode::OK, Json(json!({"action": action}))).into_response()
        }
        Decision::Refused {
            refusal,
            detail,
            replacement,
        } => {
            let status = match refusal {
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::NotYours | Refusal::ReadOnly => StatusCode::FORBIDDEN,
                Refusal::Expired => StatusCode::GONE,
                Refusal::AlreadyDone
                | Refusal::Canceled
                | Refusal::Stale
                | Refusal::NotShownYet
                | Refusal::NotSpoken => StatusCode::CONFLICT,
            };
            let message = match detail {
                Some(d) => format!("{} ({d})", refusal.message()),
                None => refusal.message().to_owned(),
            };
            let mut body = json!({"error": {"code": refusal.code(), "message": message}});
            if let Some(r) = replacement {
                body["action"] = json!(r);
            }
            (status, Json(body)).into_response()
        }
    }
}

/// Confirm a proposed action: it is carried out now, once. Only the person it was proposed
/// to may confirm it, within 10 minutes, and only while what it changes is as previewed.
#[utoipa::path(post, path = "/api/v1/assistant/actions/{id}/confirm", tag = "assistant", params(("id" = String, Path)),
    responses((status = 200, body = ActionResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn confirm_action(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = principal_of(&auth);
    Ok(decision_response(
        assistant::confirm(&st, &who, &id, assistant::Via::Button).await?,
    ))
}

/// Cancel a proposed action.
#[utoipa::path(post, path = "/api/v1/assistant/actions/{id}/cancel", tag = "assistant", params(("id" = String, Path)),
    responses((status = 200, body = ActionResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_action(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = principal_of(&auth);
    Ok(decision_response(assistant::cancel(&st, &who, &id).await?))
}

/// Your sessions with the assistant, most recent first (at most 100).
#[utoipa::path(get, path = "/api/v1/assistant/sessions", tag = "assistant",
    responses((status = 200, body = Vec<SessionSummary>)), security(("api_key" = [])))]
pub async fn list_sessions(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let sessions = st
        .store
        .list_assistant_sessions(&auth.org, &auth.actor, 100)
        .await?;
    let data: Vec<SessionSummary> = sessions
        .into_iter()
        .map(|s| SessionSummary {
            session_id: s.key,
            title: s.title,
            turns: s.turns,
            updated_at: s.updated_at,
        })
        .collect();
    Ok(Json(json!({"data": data})))
}

/// One of your sessions with its conversation and actions.
#[utoipa::path(get, path = "/api/v1/assistant/sessions/{id}", tag = "assistant", params(("id" = String, Path)),
    responses((status = 200, body = SessionView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_session(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(session_view(&st, &principal_of(&auth), &id).await?))
}

/// A session of `who` by its key (404 when they have none by that name).
pub(crate) async fn session_view(
    st: &AppState,
    who: &Principal,
    key: &str,
) -> Result<SessionView, ApiError> {
    let s = st
        .store
        .get_assistant_session(&who.org, &who.id, key)
        .await?;
    let messages = st
        .store
        .assistant_messages(&who.org, &s.id)
        .await?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let actions = st
        .store
        .session_actions(&who.org, &s.id, Timestamp::now())
        .await?;
    Ok(SessionView {
        session_id: s.key,
        title: s.title,
        updated_at: s.updated_at,
        messages,
        actions,
    })
}
