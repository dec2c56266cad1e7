//! External MCP servers whose tools an organization's agents may use (an agent lists a
//! server in its `tools` as `mcp:<name>`).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use switchboard_domain::entities::Page;
use switchboard_domain::ids::McpServerId;
use switchboard_domain::mcp_server::{McpServer, McpServerPatch, NewMcpServer};
use switchboard_domain::Timestamp;

/// A server's tools as it lists them now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerTools {
    /// Each tool: `name`, `title`, `description`, `input_schema`, `allowed` (by the
    /// allow-list) and `model_name` (`mcp__<server>__<tool>`, what agents' models see).
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
}

/// Register a server. Header values are secrets: every answer shows `[redacted]`.
#[utoipa::path(post, path = "/api/v1/mcp-servers", tag = "tools", request_body = NewMcpServer,
    responses((status = 201, body = McpServer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_server(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewMcpServer>,
) -> Result<(StatusCode, Json<McpServer>), ApiError> {
    let s = McpServer::create(body, st.tools_allow_private, Timestamp::now())?;
    st.store.create_mcp_server(&auth.org, &s).await?;
    tracing::info!(org_id = %auth.org, server = %s.name, "MCP server registered");
    Ok((StatusCode::CREATED, Json(s)))
}

/// The organization's servers, by name (one page).
#[utoipa::path(get, path = "/api/v1/mcp-servers", tag = "tools",
    responses((status = 200, body = Page<McpServer>)), security(("api_key" = [])))]
pub async fn list_servers(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<Page<McpServer>>, ApiError> {
    Ok(Json(Page {
        data: st.store.list_mcp_servers(&auth.org).await?,
        next_cursor: None,
    }))
}

/// One server.
#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = McpServer), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_server(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<McpServer>, ApiError> {
    let id = path_id(&id, McpServerId::parse)?;
    Ok(Json(st.store.get_mcp_server(&auth.org, &id).await?))
}

/// Change a server (`auth` with a header value of `[redacted]` keeps the value); a new name
/// is followed by the agents that list it.
#[utoipa::path(patch, path = "/api/v1/mcp-servers/{id}", tag = "tools", params(("id" = String, Path)), request_body = McpServerPatch,
    responses((status = 200, body = McpServer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_server(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<McpServerPatch>,
) -> Result<Json<McpServer>, ApiError> {
    let id = path_id(&id, McpServerId::parse)?;
    let allow = st.tools_allow_private;
    Ok(Json(
        st.store
            .update_mcp_server(&auth.org, &id, |s| s.apply(body, allow, Timestamp::now()))
            .await?,
    ))
}

/// Remove a server; refused (409) while an agent lists it.
#[utoipa::path(delete, path = "/api/v1/mcp-servers/{id}", tag = "tools", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_server(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, McpServerId::parse)?;
    st.store.delete_mcp_server(&auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drop an `oauth` server's tokens (agents lose its tools until an admin connects it again
/// from the dashboard; connecting needs a browser, so it is not an API call). 409
/// `not_oauth` for a server without OAuth.
#[utoipa::path(delete, path = "/api/v1/mcp-servers/{id}/oauth", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = McpServer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn disconnect_server(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<McpServer>, ApiError> {
    let id = path_id(&id, McpServerId::parse)?;
    let s = st.store.get_mcp_server(&auth.org, &id).await?;
    if s.oauth.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_oauth",
            "this server does not use OAuth",
        ));
    }
    st.store
        .disconnect_mcp_oauth(&auth.org, &id, None, None, Timestamp::now())
        .await?;
    tracing::info!(org_id = %auth.org, server = %s.name, "MCP server disconnected");
    Ok(Json(st.store.get_mcp_server(&auth.org, &id).await?))
}

/// Connect to the server now and list its tools (to check the registration and choose the
/// allow-list). 502 `mcp_server_unavailable` says why it could not be used.
#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}/tools", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = ServerTools), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn server_tools(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ServerTools>, ApiError> {
    let id = path_id(&id, McpServerId::parse)?;
    let s = st.store.get_mcp_server(&auth.org, &id).await?;
    match st
        .messaging
        .registry()
        .mcp_server_tools(&st.store, &auth.org, &s)
        .await
    {
        Ok(tools) => Ok(Json(ServerTools { tools })),
        Err(why) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "mcp_server_unavailable",
            format!("the MCP server could not be used: {why}"),
        )),
    }
}
