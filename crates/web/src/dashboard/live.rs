//! `GET /live`: the organization's events as server-sent events, read from the outbox's event
//! log (see `event_log`). Each SSE `id` is the event's sequence number, so a reconnecting
//! browser (`Last-Event-ID`) misses nothing.

use super::Dash;
use crate::AppState;
use axum::extract::{Query, State};
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

/// How far behind the present a page's `?since=` may start.
const MAX_CATCH_UP: i64 = 1000;

/// `GET /live` query: `since`, the last event the page had seen when it was rendered.
#[derive(Debug, serde::Deserialize)]
pub struct Since {
    since: Option<i64>,
}

/// `GET /live`. Every SSE message is unnamed (so `onmessage` sees all of them) and carries
/// `{"type", "sequence", "subject"}`; pages fetch what they show from the server. It starts
/// after `Last-Event-ID` (a reconnect), else after `?since=` (the page's render), else now.
pub async fn stream(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::DashError> {
    let org = dash.org.clone();
    let start = match crate::event_log::last_event_id(&headers) {
        Some(seq) => seq,
        None => {
            let now = st.store.last_event_seq(&org).await?;
            // A page is at most a little behind; anything else starts now rather than
            // replaying the organization's history.
            q.since
                .filter(|s| (now - MAX_CATCH_UP..=now).contains(s))
                .unwrap_or(now)
        }
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
