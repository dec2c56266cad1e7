//! Conversations and their transcripts.

use super::{paging, parse_agent, parse_enum, parse_time, PageQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::entities::{Conversation, ConversationFilter, Message, Page};
use switchboard_domain::ids::ConversationId;
use switchboard_domain::values::{Channel, ConversationStatus};
use switchboard_messaging::{NewOutbound, Started};

/// Query parameters of `GET /api/v1/conversations`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// `voice`, `sms`, `whatsapp` or `web`.
    pub channel: Option<String>,
    /// `active`, `closed` or `failed`.
    pub status: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// The contact's number, E.164.
    pub contact: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<String>,
    /// Started before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// List conversations, newest first, with filters.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = Page<Conversation>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_conversations(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> Result<Json<Page<Conversation>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let agent_id = parse_agent(q.agent_id.as_deref())?;
    let filter = ConversationFilter {
        channel: parse_enum(
            "channel",
            q.channel.as_deref(),
            Channel::parse,
            Channel::expected(),
        )?,
        status: parse_enum(
            "status",
            q.status.as_deref(),
            ConversationStatus::parse,
            ConversationStatus::expected(),
        )?,
        agent_id,
        contact: q.contact,
        from: parse_time("from", q.from.as_deref())?,
        to: parse_time("to", q.to.as_deref())?,
    };
    Ok(Json(
        st.store
            .list_conversations(&auth.org, &filter, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get a conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_conversation(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let id = path_id(&id, ConversationId::parse)?;
    Ok(Json(st.store.get_conversation(&auth.org, &id).await?))
}

/// A conversation's transcript items / messages, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Message>), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_messages(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let id = path_id(&id, ConversationId::parse)?;
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_messages(&auth.org, &id, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Start a conversation with a contact (SMS or WhatsApp): the first message is sent through
/// Twilio and the contact's replies continue this conversation with its variables and history.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", request_body = NewOutbound,
    responses((status = 201, body = Started), (status = 409, description = "Contact opted out (`contact_opted_out`), WhatsApp 24-hour window closed (`whatsapp_window_closed`) or Twilio/model not configured (`not_configured`)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, description = "The chat model (`model_unavailable`) or Twilio (`twilio_error`) failed", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_conversation(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewOutbound>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let started = st.messaging.start_conversation(&auth.org, body).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// The body of `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanMessage {
    /// The text, 1 to 1,600 characters.
    pub text: String,
}

/// Send a message as a person of the business into a live SMS or WhatsApp conversation; the
/// agent sees it in later turns.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = String, Path)), request_body = HumanMessage,
    responses((status = 201, body = Message), (status = 404, body = ErrorBody),
        (status = 409, description = "Closed conversation, wrong channel, opted-out contact or WhatsApp window closed", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn send_message(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HumanMessage>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let id = path_id(&id, ConversationId::parse)?;
    let msg = st.messaging.send_human(&auth.org, &id, &body.text).await?;
    Ok((StatusCode::CREATED, Json(msg)))
}
