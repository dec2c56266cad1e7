//! `POST /twilio/voice/dial?call_id=...`: Twilio's `<Dial action>` callback, when a transfer's
//! dial has ended (`voice::transfer` started it and released the call). It settles the
//! transfer and decides what the caller hears next:
//! - `completed` / `answered`: the caller talked to the target and the bridged call is over:
//!   the call ends `transferred` (`<Hangup/>`);
//! - `busy`, `no-answer`, `failed`: the caller comes back to the agent: a system note with
//!   the reason goes into the transcript, and a new `<Connect><Stream>` (with `resume`)
//!   opens a new session that carries the conversation (`voice::resume`);
//! - `canceled`, or the caller's own leg already `completed`: the caller hung up while it
//!   rang; the call ends `caller_hung_up`.

use crate::twilio::{param, xml};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use switchboard_domain::call::EndReason;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::transfer::TransferStatus;
use switchboard_store::CallEnd;
use switchboard_twilio::twiml;

/// The `<Dial action>` callback.
pub(crate) async fn dial_action(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, params) =
        match crate::twilio_outbound::authenticate(&st, &uri, &headers, &body).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    let outcome = param(&params, "DialCallStatus")
        .unwrap_or("failed")
        .to_owned();
    // Twilio sends the parent call's status too: `completed` when the caller hung up.
    let caller_gone = matches!(
        param(&params, "CallStatus"),
        Some("completed" | "canceled" | "failed" | "busy" | "no-answer")
    );
    let now = st.clock.now();
    tracing::info!(org_id = %org, call_id = %id, outcome = %outcome, caller_gone, "transfer dial ended");
    match outcome.as_str() {
        // Only a transfer in flight is settled: a repeated callback changes nothing.
        "completed" | "answered" => {
            if settle(&st, &org, &id, TransferStatus::Completed, &outcome)
                .await
                .is_some()
            {
                finalize(&st, &org, &id, EndReason::Transferred, now).await;
            }
            xml(twiml::hangup())
        }
        _ if caller_gone || outcome == "canceled" => {
            if settle(&st, &org, &id, TransferStatus::Failed, &outcome)
                .await
                .is_some()
            {
                finalize(&st, &org, &id, EndReason::CallerHungUp, now).await;
            }
            xml(twiml::empty())
        }
        _ => {
            let settled =
                match switchboard_voice::transfer_failed(&st.store, &org, &id, &outcome, now).await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot settle a failed transfer");
                        None
                    }
                };
            // A repeated callback finds the transfer settled: the caller is (being)
            // reconnected already, unless the call has ended since.
            if settled.is_none() {
                match st.store.get_call(&org, &id).await {
                    Ok(c)
                        if c.ended_at.is_none()
                            && c.transfer
                                .as_ref()
                                .is_some_and(|t| t.status == TransferStatus::Failed) => {}
                    _ => return xml(twiml::hangup()),
                }
            }
            let Some(public) = st.twilio.public_url.clone() else {
                return xml(twiml::hangup());
            };
            xml(switchboard_voice::resume_twiml(
                &st.voice, &public, &org, &id,
            ))
        }
    }
}

async fn settle(
    st: &AppState,
    org: &OrgId,
    id: &CallId,
    status: TransferStatus,
    outcome: &str,
) -> Option<switchboard_domain::entities::Call> {
    match st
        .store
        .settle_transfer(org, id, status, Some(outcome), st.clock.now())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot settle a transfer");
            None
        }
    }
}

async fn finalize(
    st: &AppState,
    org: &OrgId,
    id: &CallId,
    reason: EndReason,
    at: switchboard_domain::Timestamp,
) {
    let end = CallEnd {
        reason,
        error: None,
        at,
    };
    if let Err(e) = st.store.finalize_call(org, id, &end).await {
        tracing::error!(error = %e, "cannot finalize a transferred call");
    }
}
