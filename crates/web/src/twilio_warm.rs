//! The person's side of a warm transfer (`voice::transfer` holds the caller and calls them):
//! - `POST /twilio/voice/warm?call_id=...`: they answered; the agent briefs them in its own
//!   voice on a media stream of their own (`voice::whisper`), and when that cannot run
//!   (no model key, the model unreachable) Twilio goes on to
//! - `POST /twilio/voice/warm/ask?call_id=...`: the summary read by `<Say>`, and the question:
//!   accept (1, "yes") or decline (2, "no");
//! - `POST /twilio/voice/warm/answer?call_id=...`: their answer (`Digits` or
//!   `SpeechResult`; none after the `<Gather>` timed out): accept joins them to the
//!   caller's conference and the call ends `transferred` for us; decline, silence or an
//!   unclear answer twice brings the caller back to the agent;
//! - `POST /twilio/voice/warm/status?call_id=...`: their call's status: busy, no answer,
//!   failed, or hanging up before answering brings the caller back too.

use crate::twilio::{param, xml};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_domain::entities::Call;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::transfer::TransferStatus;
use switchboard_twilio::twiml;

const ASK: &str = "Press 1 or say yes to take the call. Press 2 or say no to decline.";
const ASK_AGAIN: &str = "Sorry, I did not get that. Press 1 to take the call, or 2 to decline.";
const CALLER_GONE: &str = "The caller is no longer waiting. Goodbye.";

/// The answer's words that accept or decline.
fn answer_of(digits: Option<&str>, speech: Option<&str>) -> Option<bool> {
    match digits {
        Some("1") => return Some(true),
        Some("2") => return Some(false),
        _ => {}
    }
    let words: Vec<String> = speech?
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let no = has(&["no", "nope", "decline", "not", "can't", "cannot", "busy"]);
    let yes = has(&[
        "yes", "yeah", "yep", "sure", "ok", "okay", "accept", "connect", "one",
    ]);
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// The call and its warm transfer in flight, or the TwiML that ends the person's call.
async fn in_flight(st: &AppState, org: &OrgId, id: &CallId) -> Result<Call, Response> {
    match st.store.get_call(org, id).await {
        Ok(c)
            if c.ended_at.is_none()
                && c.transfer.as_ref().is_some_and(|t| {
                    t.mode == "warm"
                        && matches!(t.status, TransferStatus::Dialing | TransferStatus::Answered)
                }) =>
        {
            Ok(c)
        }
        Ok(_) => Err(xml(twiml::say_hangup(CALLER_GONE))),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a call for its warm transfer");
            Err(xml(twiml::say_hangup(CALLER_GONE)))
        }
    }
}

/// A verified request about a call whose warm transfer waits for the person.
// The error is the handler's own response, returned at once; boxing it buys nothing.
#[allow(clippy::result_large_err)]
async fn waiting(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(OrgId, CallId, Vec<(String, String)>, Call), Response> {
    let (org, id, params) = crate::twilio_outbound::authenticate(st, uri, headers, body).await?;
    let call = in_flight(st, &org, &id).await?;
    Ok((org, id, params, call))
}

fn urls(st: &AppState, id: &CallId) -> Option<(String, String)> {
    let public = st.twilio.public_url.as_ref()?;
    let answer = format!("{public}/twilio/voice/warm/answer?call_id={id}");
    Some((answer.clone(), format!("{answer}&no_input=1")))
}

/// The person answered: the summary, then the question.
pub(crate) async fn answered(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, _, call) = match waiting(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let now = st.clock.now();
    let settled = st
        .store
        .settle_transfer(&org, &id, TransferStatus::Answered, None, now)
        .await;
    if let Ok(Some(c)) = &settled {
        let target = c.transfer.as_ref().map(|t| t.target.to_string());
        let text = format!(
            "{} answered and is hearing what the call is about",
            target.unwrap_or_default()
        );
        switchboard_voice::transfer_note(&st.store, &org, &call, serde_json::json!({"text": text}))
            .await;
    }
    let Some(public) = st.twilio.public_url.clone() else {
        return xml(twiml::say_hangup(CALLER_GONE));
    };
    let ask = format!("{public}/twilio/voice/warm/ask?call_id={id}");
    if st.voice.config.api_key.is_none() {
        return xml(twiml::redirect(&ask));
    }
    tracing::info!(org_id = %org, call_id = %id, "warm transfer answered; the agent briefs the person");
    let token = switchboard_voice::token::mint(&st.voice.token_secret, &org, &id, now);
    let stream = twiml::connect_stream(
        &format!("{}/twilio/media", switchboard_voice::ws_base(&public)),
        &[
            ("org_id", org.as_str()),
            ("call_id", id.as_str()),
            ("token", token.as_str()),
            ("role", "whisper"),
        ],
    );
    xml(twiml::then_redirect(&stream, &ask))
}

/// The summary read by `<Say>`, and the question (when the agent cannot brief the person).
pub(crate) async fn ask(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, _, call) = match waiting(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Some((action, no_input)) = urls(&st, &id) else {
        return xml(twiml::say_hangup(CALLER_GONE));
    };
    let summary = call
        .transfer
        .as_ref()
        .and_then(|t| t.summary.clone())
        .unwrap_or_default();
    tracing::info!(org_id = %org, call_id = %id, "reading the warm transfer's summary");
    xml(twiml::gather_answer(&[&summary, ASK], &action, &no_input))
}

/// The person's answer.
pub(crate) async fn answer(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (org, id, params, _) = match waiting(&st, &uri, &headers, &body).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let query = uri.query().unwrap_or_default();
    let (no_input, retried) = (query.contains("no_input=1"), query.contains("retry=1"));
    let said = answer_of(param(&params, "Digits"), param(&params, "SpeechResult"));
    let Some((action, no_answer)) = urls(&st, &id) else {
        return xml(twiml::say_hangup(CALLER_GONE));
    };
    let decision = match (said, no_input, retried) {
        (Some(d), _, _) => d,
        // Silence or an unclear answer: asked once more, then it counts as a no.
        (None, _, false) => {
            return xml(twiml::gather_answer(
                &[ASK_AGAIN],
                &format!("{action}&retry=1"),
                &format!("{no_answer}&retry=1"),
            ))
        }
        (None, _, true) => false,
    };
    if !decision {
        tracing::info!(org_id = %org, call_id = %id, "warm transfer declined");
        if let Err(e) = switchboard_voice::bring_back(&st.voice, &org, &id, "declined").await {
            tracing::error!(error = %e, "the caller could not be brought back");
        }
        return xml(twiml::say_hangup(switchboard_voice::DECLINED));
    }
    match switchboard_voice::accept_warm(&st.store, &org, &id, st.clock.now()).await {
        Ok(true) => xml(switchboard_voice::join_twiml(&id)),
        Ok(false) => xml(twiml::say_hangup(CALLER_GONE)),
        Err(e) => {
            tracing::error!(error = %e, "cannot settle an accepted transfer");
            xml(twiml::say_hangup(CALLER_GONE))
        }
    }
}

/// The person's call status: one that ends it before an answer brings the caller back.
pub(crate) async fn status(
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
    let outcome = match param(&params, "CallStatus") {
        Some(s @ ("busy" | "no-answer" | "failed" | "canceled")) => s,
        // Answered, then hung up without accepting.
        Some("completed") => "hung-up",
        _ => return StatusCode::NO_CONTENT.into_response(),
    };
    // Only while the person has not accepted: `bring_back` changes nothing otherwise.
    match switchboard_voice::bring_back(&st.voice, &org, &id, outcome).await {
        Ok(true) => tracing::info!(org_id = %org, call_id = %id, outcome, "warm transfer failed"),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "the caller could not be brought back"),
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::answer_of;

    #[test]
    fn answers() {
        assert_eq!(answer_of(Some("1"), None), Some(true));
        assert_eq!(answer_of(Some("2"), Some("yes")), Some(false));
        assert_eq!(answer_of(None, Some("Yes, put them through.")), Some(true));
        assert_eq!(answer_of(None, Some("Sure.")), Some(true));
        assert_eq!(answer_of(None, Some("No, I'm busy.")), Some(false));
        assert_eq!(answer_of(None, Some("Yes... no.")), None);
        assert_eq!(answer_of(Some("5"), Some("banana")), None);
        assert_eq!(answer_of(None, None), None);
    }
}
