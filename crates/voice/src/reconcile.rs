//! Outbound calls whose callbacks were lost. Twilio does not retry a status callback that
//! failed (a restart with no other instance behind the public URL, a network split), so an
//! outbound call that no call task ever claimed could stay open forever, holding a slot of
//! the organization's (and its campaign's) cap. The recovery sweep asks Twilio where such a
//! call stands once it has been dialled for longer than any call can ring, and applies the
//! answer like a status callback.

use std::time::Duration;
use switchboard_domain::call::{is_terminal, EndReason};
use switchboard_domain::values::CallStatus;
use switchboard_domain::{Clock, Timestamp};
use switchboard_store::{CallEnd, StatusReport, Store, StoreError};
use switchboard_twilio::rest::{RestClient, RestError};

/// How long after its dial an unclaimed call is asked about: longer than Twilio lets a call
/// ring (30 s) plus the answering-machine detection and the stream's connection.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(180);

/// Asks Twilio about the unsettled outbound calls; returns how many it settled.
pub(crate) async fn reconcile(
    store: &Store,
    twilio: &RestClient,
    clock: &Clock,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let before = Timestamp::from_millis(now.millis() - RECONCILE_AFTER.as_millis() as i64);
    let mut settled = 0;
    for (org, call, sid) in store.unsettled_outbound_calls(before, 100).await? {
        let Some(creds) = store.twilio_credentials(&org).await? else {
            continue;
        };
        match twilio
            .at(creds.space.as_deref())
            .fetch_call(&creds.account_sid, creds.auth_token.expose(), &sid)
            .await
        {
            Ok(state) => {
                let Some(status) = CallStatus::parse(&state.status).filter(|s| is_terminal(*s))
                else {
                    continue;
                };
                let report = StatusReport {
                    status,
                    sequence: None,
                    duration_seconds: state.duration_seconds,
                    recording_url: None,
                    at: now,
                };
                store.apply_call_status(&org, &call, &report).await?;
                tracing::warn!(org_id = %org, call_id = %call, call_sid = %sid, status = %state.status,
                    "an outbound call's end was learned from Twilio: its callback was lost");
                settled += 1;
            }
            Err(RestError::Api { status: 404, .. }) => {
                let end = CallEnd {
                    reason: EndReason::TwilioFailed,
                    error: Some("Twilio has no record of this call".into()),
                    at: now,
                };
                if store.finalize_call(&org, &call, &end).await? {
                    settled += 1;
                }
            }
            Err(e) => {
                tracing::warn!(call_id = %call, error = %e, "cannot ask Twilio about an unsettled call")
            }
        }
    }
    Ok(settled)
}
