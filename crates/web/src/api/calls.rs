//! Calls.

use super::{paging, parse_agent, parse_enum, parse_time};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use switchboard_domain::entities::{Call, CallFilter, Page};
use switchboard_domain::ids::CallId;
use switchboard_domain::values::{CallStatus, Direction};

/// Query parameters of `GET /api/v1/calls`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    /// Twilio call status, e.g. `in-progress` or `completed`.
    pub status: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// Calls from or to this E.164 number; in a URL the `+` is written `%2B`
    /// (`?number=%2B15551234567`), since a bare `+` means a space in a query string.
    pub number: Option<String>,
    /// A time, not a number: calls that started at or after it (RFC 3339, e.g.
    /// `2026-12-01T00:00:00Z`).
    pub from: Option<String>,
    /// A time, not a number: calls that started before it (RFC 3339).
    pub to: Option<String>,
    /// `true`: only calls not over yet, whatever their status (what the dashboard's
    /// "active now" counts).
    pub open: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// List calls, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", params(CallQuery),
    responses((status = 200, body = Page<Call>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_calls(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<CallQuery>,
) -> Result<Json<Page<Call>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let agent_id = parse_agent(q.agent_id.as_deref())?;
    let filter = CallFilter {
        status: parse_enum(
            "status",
            q.status.as_deref(),
            CallStatus::parse,
            CallStatus::expected(),
        )?,
        direction: parse_enum(
            "direction",
            q.direction.as_deref(),
            Direction::parse,
            Direction::expected(),
        )?,
        agent_id,
        number: parse_number_filter(q.number.as_deref())?,
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
        open: q.open.unwrap_or(false),
    };
    Ok(Json(
        st.store
            .list_calls(&auth.org, &filter, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// A number filter must be E.164, so a typo is a 422 rather than an empty list.
pub(crate) fn parse_number_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    // `?number=+1555...` arrives as " 1555...": a bare `+` is a space in a query string.
    if raw.is_some_and(|r| {
        r.starts_with(' ') && r.trim_start().starts_with(|c: char| c.is_ascii_digit())
    }) {
        return Err(ApiError::invalid_query(
            "number",
            "the `+` of the number arrived as a space: write it %2B in a URL (?number=%2B15551234567)",
        ));
    }
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(n) => switchboard_domain::values::PhoneNumber::parse(n)
            .map(|p| Some(p.to_string()))
            .map_err(|m| ApiError::invalid_query("number", m)),
    }
}

/// Get a call with its analysis.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = Call), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_call(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Call>, ApiError> {
    let id = path_id(&id, CallId::parse)?;
    Ok(Json(st.store.get_call(&auth.org, &id).await?))
}
