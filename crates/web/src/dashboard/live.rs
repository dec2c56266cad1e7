//! `GET /live`: the organization's events as server-sent events, read from the outbox's event
//! log (see `event_log`). Each SSE `id` is the event's sequence number, so a reconnecting
//! browser (`Last-Event-ID`) misses nothing.

use super::Dash;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// The conversation an event is about, for pages that follow one thread.
fn subject(payload: &Value) -> Option<&str> {
    let d = payload.get("data")?;
    d.pointer("/conversation/id")
        .or_else(|| d.get("conversation_id"))
        .or_else(|| d.pointer("/call/conversation_id"))
        .or_else(|| d.pointer("/tool_invocation/conversation_id"))
        .and_then(Value::as_str)
}

/// `GET /live`. Every SSE message is unnamed (so `onmessage` sees all of them) and carries
/// `{"type", "sequence", "subject"}`; pages fetch what they show from the server.
pub async fn stream(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::DashError> {
    let org = dash.org.clone();
    let start = match crate::event_log::last_event_id(&headers) {
        Some(seq) => seq,
        None => st.store.last_event_seq(&org).await?,
    };
    let stream =
        crate::event_log::follow(st.store.clone(), org, start, st.lifecycle.clone()).map(|e| {
            let data = json!({
                "type": e.kind,
                "sequence": e.sequence,
                "subject": subject(&e.payload),
            });
            Ok(Event::default()
                .id(e.sequence.to_string())
                .data(data.to_string()))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
