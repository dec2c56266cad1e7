//! The web test chat and the live event stream.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use switchboard_domain::ids::AgentId;
use switchboard_messaging::ChatTurn;
use tokio::sync::broadcast::error::RecvError;

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

/// Follow this organization's events live as Server-Sent Events: `message.received`,
/// `message.sent`, `message.failed`, `conversation.started`, `conversation.closed`. Each SSE
/// event's `event` is the type and its `data` the JSON event. Events are not replayed: a
/// reader sees what happens while it is connected.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    responses((status = 200, description = "text/event-stream"), (status = 401, body = ErrorBody)), security(("api_key" = [])))]
pub async fn event_stream(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut rx = st.messaging.events().subscribe();
    let org = auth.org;
    let stream = async_stream(move |tx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.org_id == org => {
                    let data = serde_json::to_string(&*e).unwrap_or_default();
                    let ev = SseEvent::default()
                        .event(e.kind)
                        .id(e.id.clone())
                        .data(data);
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event stream reader too slow; events skipped");
                    let ev = SseEvent::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    // A closing server ends the stream instead of waiting for the client to leave.
    let lifecycle = st.lifecycle.clone();
    let stream = stream.take_until(async move { lifecycle.closing().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A stream fed by a task through a small channel (ends when the reader goes away).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
