//! Twilio's requests about our outbound calls. Their URLs carry our call id (`?call_id=`), so
//! they reach the call even before the CallSid from the Calls API answer is stored; the
//! organization then comes from the call, and the request is verified with its auth token.

use crate::twilio::{connect_call, merge_status, param, params, verify, xml};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::values::CallStatus;
use switchboard_twilio::twiml;

/// The `call_id` query parameter of a request to one of our outbound-call URLs.
pub(crate) fn call_id_param(uri: &Uri) -> Option<CallId> {
    uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "call_id")
            .and_then(|(_, v)| CallId::parse(&v))
    })
}

/// The organization of an outbound call named by a Twilio request; `Err` is the response.
async fn org_of(st: &AppState, id: &CallId) -> Result<OrgId, Response> {
    match st.store.find_call_org(id).await {
        Ok(Some(org)) => Ok(org),
        Ok(None) => {
            tracing::warn!(call_id = %id, "Twilio request for an unknown call ignored");
            Err(StatusCode::NOT_FOUND.into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a call");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// A Twilio request about one of our outbound calls: its organization, call and form, once
/// the signature checked out with that organization's auth token.
pub(crate) async fn authenticate(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(OrgId, CallId, Vec<(String, String)>), Response> {
    let params = params(body);
    let Some(id) = call_id_param(uri) else {
        return Err((StatusCode::BAD_REQUEST, "call_id is required").into_response());
    };
    let org = org_of(st, &id).await?;
    verify(st, &org, uri, headers, &params).await?;
    Ok((org, id, params))
}

/// Stores the CallSid a request names when the Calls API answer has not been stored yet.
async fn note_sid(st: &AppState, org: &OrgId, id: &CallId, params: &[(String, String)]) {
    let Some(sid) =
        param(params, "CallSid").filter(|s| switchboard_domain::call::valid_carrier_sid(s))
    else {
        return;
    };
    let status = param(params, "CallStatus")
        .and_then(CallStatus::parse)
        .unwrap_or(CallStatus::Initiated);
    if let Err(e) = st
        .store
        .set_call_dialed(org, id, sid, status)
        .await
        .map(|_| ())
    {
        tracing::error!(error = %e, "cannot store an outbound call's CallSid");
    }
}

/// A status callback of an outbound call.
pub(crate) async fn outbound_status(
    st: AppState,
    uri: Uri,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    id: CallId,
) -> Response {
    let org = match org_of(&st, &id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(resp) = verify(&st, &org, &uri, &headers, &params).await {
        return resp;
    }
    note_sid(&st, &org, &id, &params).await;
    merge_status(&st, &org, &id, &params).await
}

/// `POST /twilio/voice/outbound?call_id=`: the callee answered; Twilio fetches the call's
/// TwiML. Answers the same `<Connect><Stream>` as an inbound call (one-time token included).
pub(crate) async fn outbound_answered(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, params) = match authenticate(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    note_sid(&st, &org, &id, &params).await;
    let Some(public) = st.twilio.public_url.clone() else {
        return xml(twiml::hangup());
    };
    match st.store.get_call(&org, &id).await {
        Ok(call) if call.ended_at.is_none() => {
            tracing::info!(org_id = %org, call_id = %id, "outbound call answered");
            connect_call(&st, &public, &org, &id, st.clock.now())
        }
        Ok(_) => {
            tracing::info!(call_id = %id, "answered after it was cancelled or ended; hanging up");
            xml(twiml::hangup())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot load an outbound call");
            xml(twiml::hangup())
        }
    }
}

/// `POST /twilio/voice/amd?call_id=`: Twilio's asynchronous answering-machine detection. A
/// person (or `unknown`) is only recorded: the call task, which holds the agent until then,
/// sees it and starts. A machine, once its greeting ended, gets the agent's voicemail message
/// (`<Say>`, then `<Hangup>`) or is hung up, as the call or the agent says; a fax is hung up.
pub(crate) async fn amd_result(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, params) = match authenticate(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let answered_by = param(&params, "AnsweredBy").unwrap_or("unknown").to_owned();
    let machine = answered_by.starts_with("machine_end") || answered_by == "fax";
    if !machine {
        if let Err(e) = st
            .store
            .set_answered_by(&org, &id, &answered_by, None)
            .await
        {
            tracing::error!(error = %e, "cannot store who answered");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        tracing::info!(call_id = %id, answered_by = %answered_by, "answering-machine detection");
        return StatusCode::NO_CONTENT.into_response();
    }
    match leave_or_hang_up(&st, &org, &id, &answered_by).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(call_id = %id, error = %e, "cannot handle an answering machine");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A machine answered: the message or a hang-up, through the REST API (the stream then ends).
async fn leave_or_hang_up(
    st: &AppState,
    org: &OrgId,
    id: &CallId,
    answered_by: &str,
) -> Result<(), String> {
    let store = &st.store;
    let call = store.get_call(org, id).await.map_err(|e| e.to_string())?;
    let agent = match &call.agent_id {
        Some(a) => Some(store.get_agent(org, a).await.map_err(|e| e.to_string())?),
        None => None,
    };
    let mode = store
        .call_voicemail_mode(org, id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|m| switchboard_domain::agent::VoicemailMode::parse(&m))
        .or(agent.as_ref().map(|a| a.voicemail))
        .unwrap_or_default();
    let message = agent.and_then(|a| a.voicemail_message).filter(|_| {
        answered_by != "fax" && mode == switchboard_domain::agent::VoicemailMode::LeaveMessage
    });
    let (update, outcome) = match message {
        Some(m) => {
            let conversation = store
                .get_conversation(org, &call.conversation_id)
                .await
                .map_err(|e| e.to_string())?;
            let text = switchboard_domain::agent::substitute(&m, &conversation.variables);
            (
                switchboard_twilio::rest::CallUpdate::Twiml(twiml::say_hangup(&text)),
                "left",
            )
        }
        None => (switchboard_twilio::rest::CallUpdate::Hangup, "hung_up"),
    };
    // Recorded first, so the call's end is told as voicemail however it is reached.
    store
        .set_answered_by(org, id, answered_by, Some(outcome))
        .await
        .map_err(|e| e.to_string())?;
    let creds = store
        .twilio_credentials(org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no Twilio credentials")?;
    tracing::info!(call_id = %id, answered_by, outcome, "a machine answered");
    st.voice
        .twilio
        .at(creds.space.as_deref())
        .update_call(
            &creds.account_sid,
            creds.auth_token.expose(),
            &call.call_sid,
            &update,
        )
        .await
        .map_err(|e| e.to_string())
}

/// `POST /twilio/voice/recording?call_id=`: a recording's status callback (`RecordingSid`,
/// `RecordingStatus`, `RecordingDuration`, `RecordingChannels`), for calls of either
/// direction. Callbacks may come out of order; the store keeps the furthest status.
pub(crate) async fn recording_status(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, params) = match authenticate(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let (Some(sid), Some(status)) = (
        param(&params, "RecordingSid").filter(|s| switchboard_twilio::valid_sid(s)),
        param(&params, "RecordingStatus"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "RecordingSid and RecordingStatus are required",
        )
            .into_response();
    };
    let number = |name: &str| param(&params, name).and_then(|v| v.trim().parse::<i64>().ok());
    let report = switchboard_store::RecordingReport {
        sid: sid.to_owned(),
        status: status.to_owned(),
        duration_seconds: number("RecordingDuration"),
        channels: number("RecordingChannels"),
    };
    if let Some(code) = param(&params, "ErrorCode").filter(|c| *c != "0") {
        tracing::warn!(call_id = %id, recording_sid = sid, error_code = code, status, "Twilio reported a recording error");
    }
    match st.store.apply_recording(&org, &id, &report).await {
        Ok(_) => {
            tracing::info!(call_id = %id, recording_sid = sid, status, "recording status");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store a recording's status");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
