//! The tool audit: every tool execution of the organization, with where it came from, who
//! ran it, its arguments, result, status and duration.

use super::{paging, parse_time};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::entities::{Page, ToolInvocation, ToolInvocationFilter, TOOL_SOURCES};
use switchboard_domain::ids::{CallId, ConversationId};

/// Query parameters of `GET /api/v1/tool-invocations`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ToolInvocationQuery {
    /// One conversation's executions.
    pub conversation_id: Option<String>,
    /// One call's executions.
    pub call_id: Option<String>,
    /// One tool's executions, e.g. `book_appointment`.
    pub tool: Option<String>,
    /// `running`, `ok`, `error` or `timeout`.
    pub status: Option<String>,
    /// `call`, `text`, `custom`, `mcp_server`, `mcp_client` or `assistant`.
    pub source: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<String>,
    /// Started before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

fn one_of(param: &str, v: Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => Err(ApiError::invalid_query(
            param,
            format!("must be one of {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

/// Tool executions, newest first: the audit of what agents did with tools, with filters.
#[utoipa::path(get, path = "/api/v1/tool-invocations", tag = "tools", params(ToolInvocationQuery),
    responses((status = 200, body = Page<ToolInvocation>), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_tool_invocations(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ToolInvocationQuery>,
) -> Result<Json<Page<ToolInvocation>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let conversation_id = q
        .conversation_id
        .as_deref()
        .map(|raw| {
            ConversationId::parse(raw).ok_or_else(|| {
                ApiError::invalid_query("conversation_id", "is not a conversation id")
            })
        })
        .transpose()?;
    let call_id = q
        .call_id
        .as_deref()
        .map(|raw| {
            CallId::parse(raw).ok_or_else(|| ApiError::invalid_query("call_id", "is not a call id"))
        })
        .transpose()?;
    let filter = ToolInvocationFilter {
        conversation_id,
        call_id,
        tool: q.tool,
        status: one_of("status", q.status, &["running", "ok", "error", "timeout"])?,
        source: one_of("source", q.source, TOOL_SOURCES)?,
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
    };
    Ok(Json(
        st.store
            .search_tool_invocations(&auth.org, &filter, p.limit, p.cursor.as_ref())
            .await?,
    ))
}
