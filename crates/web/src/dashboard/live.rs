//! `GET /live`: the organization's events as server-sent events, read from the outbox's event
//! log. Durable and ordered: each SSE `id` is the event's sequence number, so a reconnecting
//! browser (`Last-Event-ID`) misses nothing, and events committed by other instances arrive
//! too (within the 1 s poll; this instance's own commits wake the stream at once).

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
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let start = match resume {
        Some(seq) => seq,
        None => st.store.last_event_seq(&org).await?,
    };
    let signal = st.store.outbox_signal();
    let store = st.store.clone();
    let stream = futures_util::stream::unfold(
        (start, Vec::<Event>::new()),
        move |(mut last, mut queue)| {
            let store = store.clone();
            let signal = signal.clone();
            let org = org.clone();
            async move {
                loop {
                    if let Some(e) = queue.pop() {
                        return Some((Ok(e), (last, queue)));
                    }
                    // Registered before the read, so a commit during the read is not missed.
                    let notified = signal.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    match store.list_events(&org, Some(last), 200).await {
                        Ok(events) if !events.is_empty() => {
                            let mut out = Vec::with_capacity(events.len());
                            for e in events {
                                last = e.sequence;
                                let data = json!({
                                    "type": e.kind,
                                    "sequence": e.sequence,
                                    "subject": subject(&e.payload),
                                });
                                out.push(
                                    Event::default()
                                        .id(e.sequence.to_string())
                                        .data(data.to_string()),
                                );
                            }
                            // Popped from the end: reverse to send in sequence order.
                            out.reverse();
                            queue = out;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "live stream could not read events"),
                    }
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        },
    );
    // A closing server ends the stream (the browser reconnects elsewhere) instead of waiting.
    let lifecycle = st.lifecycle.clone();
    let stream = stream.take_until(async move { lifecycle.closing().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
