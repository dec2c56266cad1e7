//! The web test chat and the live event stream.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use switchboard_domain::ids::AgentId;
use switchboard_messaging::ChatTurn;

/// The body of `POST /api/v1/agents/{id}/chat`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Your chat session (1 to 100 of letters, digits, `-`, `_`, `.`, `:`); the same id
    /// continues the conversation while it is open.
    pub session_id: String,
    /// What you say to the agent.
    pub message: String,
}

/// Talk to an agent without a phone (the `web` channel): answers the agent's reply and the
/// tools it ran. Tools act for real, inside this organization.
#[utoipa::path(post, path = "/api/v1/agents/{id}/chat", tag = "agents", params(("id" = String, Path)), request_body = ChatMessage,
    responses((status = 200, body = ChatTurn), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 409, description = "No chat model configured (`not_configured`)", body = ErrorBody),
        (status = 502, description = "The chat model failed (`model_unavailable`); your message is kept", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn chat(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChatMessage>,
) -> Result<Json<ChatTurn>, ApiError> {
    let id = path_id(&id, AgentId::parse)?;
    Ok(Json(
        st.messaging
            .web_chat(&auth.org, &id, &body.session_id, &body.message)
            .await?,
    ))
}

/// Follow this organization's event log live as Server-Sent Events: every event type that
/// webhooks deliver (`call.*`, `message.*`, `conversation.*`), in `sequence` order. Each SSE
/// event's `event` is the type, its `id` the sequence, and its `data` the event exactly as a
/// webhook receives it (`id`, `type`, `version`, `org_id`, `sequence`, `timestamp`, `data`),
/// plus `at`, `conversation_id` and `message_id` when the event has them. A new reader starts
/// with what happens next; a reader that reconnects with `Last-Event-ID` (browsers do this by
/// themselves) gets every event after that sequence, without gaps or duplicates, whichever
/// instance it reaches.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this sequence")),
    responses((status = 200, description = "text/event-stream"), (status = 401, body = ErrorBody)), security(("api_key" = [])))]
pub async fn event_stream(
    auth: OrgAuth,
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let org = auth.org;
    let start = match crate::event_log::last_event_id(&headers) {
        Some(seq) => seq,
        None => st.store.last_event_seq(&org).await?,
    };
    let stream =
        crate::event_log::follow(st.store.clone(), org, start, st.lifecycle.clone()).map(|e| {
            let mut data = e.payload;
            let inner = data["data"].clone();
            // The fields of the earlier in-process stream, kept for its readers.
            data["at"] = data["timestamp"].clone();
            let conversation = inner
                .pointer("/conversation/id")
                .or_else(|| inner.get("conversation_id"))
                .or_else(|| inner.pointer("/message/conversation_id"))
                .or_else(|| inner.pointer("/call/conversation_id"))
                .cloned();
            if let Some(c) = conversation {
                data["conversation_id"] = c;
            }
            if let Some(m) = inner.pointer("/message/id").cloned() {
                data["message_id"] = m;
            }
            Ok(SseEvent::default()
                .event(e.kind)
                .id(e.sequence.to_string())
                .data(data.to_string()))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
