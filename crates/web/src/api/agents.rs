//! Agents.

use super::{paging, PageQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use switchboard_domain::agent::{Agent, AgentPatch, NewAgent};
use switchboard_domain::entities::Page;
use switchboard_domain::ids::AgentId;

/// Create an agent.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = NewAgent,
    responses((status = 201, body = Agent), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_agent(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    crate::speech_check::check(&st, body.stt.as_ref(), body.tts.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_agent(&auth.org, body).await?),
    ))
}

/// List agents, newest first.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(PageQuery),
    responses((status = 200, body = Page<Agent>)), security(("api_key" = [])))]
pub async fn list_agents(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_agents(&auth.org, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get an agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_agent(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    Ok(Json(st.store.get_agent(&auth.org, &id).await?))
}

/// Change an agent; absent fields keep their value, `null` clears optional ones.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path)), request_body = AgentPatch,
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_agent(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentPatch>,
) -> Result<Json<Agent>, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    crate::speech_check::check(
        &st,
        body.stt.as_ref().and_then(Option::as_ref),
        body.tts.as_ref().and_then(Option::as_ref),
    )
    .await?;
    Ok(Json(st.store.update_agent(&auth.org, &id, body).await?))
}

/// Delete an agent; its numbers become unrouted.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_agent(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    st.store.delete_agent(&auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
