//! REST API v1 handlers. Each handler parses into domain types, calls one store function and
//! maps the result; the organization always comes from the authenticated key.

pub mod agents;
pub mod analytics;
pub mod api_keys;
pub mod appointments;
pub mod assistant;
pub mod call_actions;
pub mod calls;
pub mod campaigns;
pub mod chat;
pub mod contacts;
pub mod conversations;
pub mod custom_tools;
pub mod instance;
pub mod knowledge;
pub mod mcp_servers;
pub mod numbers;
pub mod orgs;
pub mod outbound;
pub mod recordings;
pub mod scheduled;
pub mod settings;
pub mod setup;
pub mod tool_invocations;
pub mod webhooks;

use crate::error::ApiError;
use serde::Deserialize;
use switchboard_domain::entities::{Cursor, MAX_PAGE_SIZE};
use switchboard_domain::Timestamp;

/// `limit` and `cursor`, shared by every list endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Validated paging parameters.
pub(crate) struct Paging {
    pub limit: Option<u32>,
    pub cursor: Option<Cursor>,
}

pub(crate) fn paging(limit: Option<u32>, cursor: Option<&str>) -> Result<Paging, ApiError> {
    if let Some(l) = limit {
        if l == 0 || l > MAX_PAGE_SIZE {
            return Err(ApiError::invalid_query(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
    }
    let cursor = match cursor {
        None => None,
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            ApiError::invalid_query("cursor", "is not a cursor returned by this API")
        })?),
    };
    Ok(Paging { limit, cursor })
}

pub(crate) fn parse_time(param: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    v.map(|s| {
        Timestamp::parse_rfc3339(s).ok_or_else(|| {
            ApiError::invalid_query(
                param,
                "must be an RFC 3339 time such as 2026-11-21T09:00:00Z",
            )
        })
    })
    .transpose()
}

pub(crate) fn parse_enum<T>(
    param: &str,
    v: Option<&str>,
    parse: fn(&str) -> Option<T>,
    expected: String,
) -> Result<Option<T>, ApiError> {
    v.map(|s| {
        parse(s).ok_or_else(|| ApiError::invalid_query(param, format!("must be one of {expected}")))
    })
    .transpose()
}

pub(crate) fn parse_agent(
    v: Option<&str>,
) -> Result<Option<switchboard_domain::ids::AgentId>, ApiError> {
    v.map(|s| {
        switchboard_domain::ids::AgentId::parse(s)
            .ok_or_else(|| ApiError::invalid_query("agent_id", "is not an agent id (agt_...)"))
    })
    .transpose()
}
