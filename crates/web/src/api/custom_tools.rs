//! Custom HTTP tools: functions an organization hosts itself, which its agents call like
//! built-ins (list the tool's name in an agent's `tools`).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_domain::custom_tool::{CustomTool, CustomToolPatch, NewCustomTool};
use switchboard_domain::entities::Page;
use switchboard_domain::ids::{CustomToolId, OrgId};
use switchboard_domain::{Secret, Timestamp};
use switchboard_jobs::signing::generate_secret;
use switchboard_store::Store;

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// A tool with its signing secret: answered once, at creation and rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolWithSecret {
    /// The tool.
    #[serde(flatten)]
    pub tool: CustomTool,
    /// `whsec_...`: verify requests with it (Standard Webhooks). Not shown again.
    #[serde(serialize_with = "Secret::serialize_exposed")]
    #[schema(value_type = String)]
    pub secret: Secret,
}

/// The body of `POST /api/v1/tools/{id}/test`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolTest {
    /// The arguments, as the model would send them (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
}

/// What a test run gave.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolTestResult {
    /// `ok`, `error` or `timeout`.
    pub status: String,
    /// Exactly what the model would be given.
    #[schema(value_type = Object)]
    pub output: Value,
    /// The audit record (`GET /api/v1/tool-invocations?source=custom`).
    pub invocation_id: String,
    /// How long the endpoint took, in milliseconds.
    pub duration_ms: i64,
}

/// Define a custom tool. The answer carries its signing secret, shown only this once.
///
/// Each time an agent calls it, Switchboard sends the tool's `method` to `url` with a JSON
/// body `{"tool", "invocation_id", "arguments", "context": {"org_id", "agent_id",
/// "agent_name", "conversation_id", "call_id", "channel", "contact_number", "test"}}` and the
/// Standard Webhooks headers `webhook-id` (the invocation id), `webhook-timestamp` and
/// `webhook-signature`, plus the tool's own headers. A 2xx answer (JSON, text or empty, at
/// most 64 KiB) goes to the model as `{"ok": true, "result": ...}`; an error status, a
/// timeout, a larger answer or a refused address becomes `{"ok": false, "error": {"code",
/// "message"}}` the agent can speak. Redirects are not followed.
#[utoipa::path(post, path = "/api/v1/tools", tag = "tools", request_body = NewCustomTool,
    responses((status = 201, body = ToolWithSecret), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_tool(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewCustomTool>,
) -> Result<(StatusCode, Json<ToolWithSecret>), ApiError> {
    let (tool, secret) = create(&st, &auth.org, body).await?;
    let secret = Secret::new(secret);
    Ok((StatusCode::CREATED, Json(ToolWithSecret { tool, secret })))
}

/// Creates a tool (the API and the dashboard both create through here).
pub(crate) async fn create(
    st: &AppState,
    org: &OrgId,
    input: NewCustomTool,
) -> Result<(CustomTool, String), ApiError> {
    let secret = generate_secret();
    let tool = CustomTool::create(
        input,
        Secret::new(secret.clone()),
        st.tools_allow_private,
        Timestamp::now(),
    )?;
    st.store.create_custom_tool(org, &tool).await?;
    tracing::info!(org_id = %org, tool_id = %tool.id, tool = %tool.name, "custom tool created");
    Ok((tool, secret))
}

/// The organization's custom tools, by name (at most 200; one page).
#[utoipa::path(get, path = "/api/v1/tools", tag = "tools",
    responses((status = 200, body = Page<CustomTool>)), security(("api_key" = [])))]
pub async fn list_tools(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<Page<CustomTool>>, ApiError> {
    Ok(Json(Page {
        data: st.store.list_custom_tools(&auth.org).await?,
        next_cursor: None,
    }))
}

/// One custom tool (header values read `[redacted]`).
#[utoipa::path(get, path = "/api/v1/tools/{id}", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = CustomTool), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_tool(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomTool>, ApiError> {
    let id = path_id(&id, CustomToolId::parse)?;
    Ok(Json(st.store.get_custom_tool(&auth.org, &id).await?))
}

/// Change a custom tool. `headers` replaces them all; a value of `[redacted]` keeps that
/// header's current value. A new `name` is followed by the agents that list the tool.
#[utoipa::path(patch, path = "/api/v1/tools/{id}", tag = "tools", params(("id" = String, Path)), request_body = CustomToolPatch,
    responses((status = 200, body = CustomTool), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_tool(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomToolPatch>,
) -> Result<Json<CustomTool>, ApiError> {
    let id = path_id(&id, CustomToolId::parse)?;
    Ok(Json(update(&st, &auth.org, &id, body).await?))
}

/// Changes a tool (the API and the dashboard both change through here).
pub(crate) async fn update(
    st: &AppState,
    org: &OrgId,
    id: &CustomToolId,
    patch: CustomToolPatch,
) -> Result<CustomTool, ApiError> {
    let allow = st.tools_allow_private;
    let tool = st
        .store
        .update_custom_tool(org, id, |t| t.apply(patch, allow, Timestamp::now()))
        .await?;
    tracing::info!(org_id = %org, tool_id = %id, "custom tool changed");
    Ok(tool)
}

/// Delete a custom tool; refused (409) while an agent lists it.
#[utoipa::path(delete, path = "/api/v1/tools/{id}", tag = "tools", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_tool(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, CustomToolId::parse)?;
    st.store.delete_custom_tool(&auth.org, &id).await?;
    tracing::info!(org_id = %auth.org, tool_id = %id, "custom tool deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret. For 24 hours requests carry a signature with the old secret
/// too, so the endpoint can switch without refusing anything.
#[utoipa::path(post, path = "/api/v1/tools/{id}/rotate-secret", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = ToolWithSecret), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate_tool_secret(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ToolWithSecret>, ApiError> {
    let id = path_id(&id, CustomToolId::parse)?;
    let (tool, secret) = rotate(&st.store, &auth.org, &id).await?;
    let secret = Secret::new(secret);
    Ok(Json(ToolWithSecret { tool, secret }))
}

/// Gives a tool a new secret while the old one keeps signing for the overlap.
pub(crate) async fn rotate(
    store: &Store,
    org: &OrgId,
    id: &CustomToolId,
) -> Result<(CustomTool, String), ApiError> {
    let secret = generate_secret();
    let now = Timestamp::now();
    let tool = store
        .rotate_custom_tool_secret(
            org,
            id,
            &Secret::new(secret.clone()),
            Timestamp::from_millis(now.millis() + ROTATION_OVERLAP_MS),
            now,
        )
        .await?;
    tracing::info!(org_id = %org, tool_id = %id, "custom tool secret rotated");
    Ok((tool, secret))
}

/// Call the tool's endpoint now with these arguments, as an agent would (the body's
/// `context.test` is `true` and it has no conversation). Audited like any execution.
#[utoipa::path(post, path = "/api/v1/tools/{id}/test", tag = "tools", params(("id" = String, Path)), request_body = ToolTest,
    responses((status = 200, body = ToolTestResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn test_tool(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ToolTest>,
) -> Result<Json<ToolTestResult>, ApiError> {
    let id = path_id(&id, CustomToolId::parse)?;
    let actor = auth.actor.clone();
    Ok(Json(
        run_test(&st, &auth.org, &id, body.arguments, &actor).await?,
    ))
}

/// Runs a test (the API and the dashboard's "Test this tool").
pub(crate) async fn run_test(
    st: &AppState,
    org: &OrgId,
    id: &CustomToolId,
    arguments: Option<Value>,
    actor: &str,
) -> Result<ToolTestResult, ApiError> {
    let arguments = arguments.unwrap_or_else(|| serde_json::json!({}));
    if !arguments.is_object() {
        return Err(ApiError::invalid("arguments", "must be a JSON object"));
    }
    let tool = st.store.get_custom_tool(org, id).await?;
    let started = std::time::Instant::now();
    let (outcome, invocation_id) = st
        .messaging
        .registry()
        .test_custom_tool(&st.store, org, &tool, arguments, actor)
        .await?;
    Ok(ToolTestResult {
        status: outcome.status.to_owned(),
        output: outcome.output,
        invocation_id,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    })
}
