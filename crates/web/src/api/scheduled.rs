//! Scheduled text messages: a conversation started with a message at a later time.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::entities::ScheduledMessage;
use switchboard_domain::Timestamp;
use switchboard_messaging::NewOutbound;

/// The body of `POST /api/v1/scheduled-messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScheduled {
    /// When to send it (RFC 3339); a time already past sends it at once.
    pub send_at: Timestamp,
    /// The conversation to start, as `POST /api/v1/conversations` takes it, with
    /// `first_message` or `content_sid` (not `generate_first_message`).
    pub conversation: NewOutbound,
}

/// Query parameters of `GET /api/v1/scheduled-messages`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScheduledQuery {
    /// `scheduled`, `sending`, `sent`, `failed` or `canceled`.
    pub status: Option<String>,
    /// At most this many, 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// Scheduled messages, latest `send_at` first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduledList {
    /// The messages.
    pub data: Vec<ScheduledMessage>,
}

const STATUSES: &[&str] = &["scheduled", "sending", "sent", "failed", "canceled"];

/// Schedule a text message: the request is checked now (the same refusals as
/// `POST /api/v1/conversations`) and made at `send_at` by a durable job, once, also when the
/// time passes while the server is stopped (it is then sent at the next start).
#[utoipa::path(post, path = "/api/v1/scheduled-messages", tag = "conversations", request_body = NewScheduled,
    responses((status = 201, body = ScheduledMessage), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn schedule_message(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewScheduled>,
) -> Result<(StatusCode, Json<ScheduledMessage>), ApiError> {
    let scheduled = st
        .messaging
        .schedule(&auth.org, body.conversation, body.send_at)
        .await?;
    Ok((StatusCode::CREATED, Json(scheduled)))
}

/// List scheduled messages, latest `send_at` first.
#[utoipa::path(get, path = "/api/v1/scheduled-messages", tag = "conversations", params(ScheduledQuery),
    responses((status = 200, body = ScheduledList), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_scheduled(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ScheduledQuery>,
) -> Result<Json<ScheduledList>, ApiError> {
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid_query(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_query(
            "limit",
            "must be between 1 and 200",
        ));
    }
    let data = st
        .store
        .list_scheduled_messages(&auth.org, q.status.as_deref(), limit)
        .await?;
    Ok(Json(ScheduledList { data }))
}

/// One scheduled message.
#[utoipa::path(get, path = "/api/v1/scheduled-messages/{id}", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = ScheduledMessage), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_scheduled(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScheduledMessage>, ApiError> {
    Ok(Json(st.store.get_scheduled_message(&auth.org, &id).await?))
}

/// Cancel a scheduled message that has not been sent (409 `conflict` once it is sending or
/// done).
#[utoipa::path(post, path = "/api/v1/scheduled-messages/{id}/cancel", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = ScheduledMessage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn cancel_scheduled(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScheduledMessage>, ApiError> {
    Ok(Json(
        st.store
            .cancel_scheduled_message(&auth.org, &id, st.clock.now())
            .await?,
    ))
}
