//! Following an organization's durable event log (the outbox's `events`, in `sequence`
//! order) as a stream: what the dashboard's live page and `GET /api/v1/events/stream` serve.
//! Resumable from any sequence (SSE `Last-Event-ID`), complete across instances (events
//! committed elsewhere arrive within the 1 s poll; this instance's own commits wake it at once),
//! and ended when the server closes. Dropping the stream (the client went away) ends it: no
//! task is left behind.

use crate::lifecycle::Lifecycle;
use axum::http::HeaderMap;
use futures_util::{Stream, StreamExt};
use std::time::Duration;
use switchboard_domain::ids::OrgId;
use switchboard_domain::webhooks::OutboxEvent;
use switchboard_store::Store;

/// How often the log is read when nothing on this instance signals a commit.
const POLL: Duration = Duration::from_secs(1);
/// Events read per query.
const BATCH: u32 = 200;

/// The sequence a reconnecting SSE client last saw (`Last-Event-ID`), if any.
pub fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| *s >= 0)
}

/// The organization's events after sequence `after`, in order, until the server closes.
pub fn follow(
    store: Store,
    org: OrgId,
    after: i64,
    lifecycle: Lifecycle,
) -> impl Stream<Item = OutboxEvent> {
    let signal = store.outbox_signal();
    let events = futures_util::stream::unfold(
        (after, Vec::<OutboxEvent>::new()),
        move |(mut last, mut queue)| {
            let store = store.clone();
            let signal = signal.clone();
            let org = org.clone();
            async move {
                loop {
                    if let Some(e) = queue.pop() {
                        return Some((e, (last, queue)));
                    }
                    // Registered before the read, so a commit during the read is not missed.
                    let notified = signal.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    match store.list_events(&org, Some(last), BATCH).await {
                        Ok(mut events) if !events.is_empty() => {
                            last = events.last().map_or(last, |e| e.sequence);
                            // Popped from the end: reverse to hand them out in order.
                            events.reverse();
                            queue = events;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "event stream could not read events"),
                    }
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        },
    );
    // A closing server ends the stream instead of waiting for the client to leave.
    events.take_until(async move { lifecycle.closing().await })
}
