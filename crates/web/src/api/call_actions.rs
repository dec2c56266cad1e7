//! Staff actions on live calls: `POST /api/v1/calls/{id}/actions` asks the call's task (on
//! whichever instance holds it) to hang up, say a sentence, take a private instruction, or
//! mute and unmute the agent, and answers once the call has carried it out.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::time::Duration;
use switchboard_domain::call_action::{CallAction, NewCallAction};
use switchboard_domain::entities::Page;
use switchboard_domain::ids::{CallActionId, CallId, OrgId};
use switchboard_store::StoreError;

/// How long a request waits for the call to carry the action out before answering 202.
const WAIT: Duration = Duration::from_secs(5);

/// Records `request` on the live call `call` by `actor`, delivers it, and waits for the call's
/// answer (shared by the API and the dashboard).
pub(crate) async fn act(
    st: &AppState,
    org: &OrgId,
    call: &CallId,
    request: &NewCallAction,
    actor: &str,
) -> Result<CallAction, ApiError> {
    request.validate()?;
    let body = serde_json::to_value(request).map_err(|e| ApiError::internal(&e))?;
    let (action, instance) = st
        .store
        .create_call_action(org, call, &body, actor, st.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "call_not_live", m),
            other => other.into(),
        })?;
    tracing::info!(org_id = %org, call_id = %call, action = request.name(), actor, "staff action requested");
    if *instance == *st.voice.instance_id {
        switchboard_voice::deliver(&st.voice, org, &action.id, call).await?;
    }
    Ok(switchboard_voice::wait_acknowledged(&st.voice, org, &action.id, WAIT).await?)
}

/// Act on a live call: `{"action": "hangup"}`, `{"action": "say", "text"}` (the agent says it
/// next), `{"action": "instruct", "text"}` (a private instruction in the agent's context),
/// `{"action": "mute_agent"}`, `{"action": "unmute"}`. The call's own task carries it out on
/// the instance that holds the call and answers: 200 with `status: "done"` or `"failed"`
/// (`result.error` says why), or 202 with `status: "pending"` if it has not within 5 s (poll
/// `GET .../actions/{action_id}`). 404 for an unknown call, 409 `call_not_live` for one that
/// has ended or whose audio is not connected. Every action is on the call's timeline.
#[utoipa::path(post, path = "/api/v1/calls/{id}/actions", tag = "calls", params(("id" = String, Path)),
    request_body = NewCallAction,
    responses((status = 200, body = CallAction), (status = 202, body = CallAction), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_action(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewCallAction>,
) -> Result<(StatusCode, Json<CallAction>), ApiError> {
    let id = path_id(&id, CallId::parse)?;
    let action = act(&st, &auth.org, &id, &body, &auth.actor).await?;
    let status = if action.status == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(action)))
}

/// The staff actions on a call, oldest first (the audit trail: who asked what, and what the
/// call did).
#[utoipa::path(get, path = "/api/v1/calls/{id}/actions", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = Page<CallAction>), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_actions(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Page<CallAction>>, ApiError> {
    let id = path_id(&id, CallId::parse)?;
    st.store.get_call(&auth.org, &id).await?;
    let data = st.store.list_call_actions(&auth.org, &id).await?;
    Ok(Json(Page {
        data,
        next_cursor: None,
    }))
}

/// One staff action.
#[utoipa::path(get, path = "/api/v1/calls/{id}/actions/{action_id}", tag = "calls",
    params(("id" = String, Path), ("action_id" = String, Path)),
    responses((status = 200, body = CallAction), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_action(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path((id, action_id)): Path<(String, String)>,
) -> Result<Json<CallAction>, ApiError> {
    let id = path_id(&id, CallId::parse)?;
    let action_id = path_id(&action_id, CallActionId::parse)?;
    let action = st.store.get_call_action(&auth.org, &action_id).await?;
    if action.call_id != id {
        return Err(StoreError::NotFound.into());
    }
    Ok(Json(action))
}
