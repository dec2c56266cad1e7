//! The endpoints Twilio calls: the incoming-call webhook, call status callbacks, the Media
//! Streams WebSocket, the messaging webhook and message delivery reports. Every request is tied to an organization by routing (the dialled
//! number, or the CallSid of a call we created) and then verified with that organization's
//! auth token before anything is stored.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use switchboard_domain::entities::{NewCall, NewConversation, NumberRoute};
use switchboard_domain::ids::{MessageId, OrgId};
use switchboard_domain::messaging::{parse_address, text_channel};
use switchboard_domain::values::{CallStatus, Channel, Direction, NumberChannel, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_messaging::InboundText;
use switchboard_store::{StatusReport, StoreError, TwilioCredentials};
use switchboard_twilio::{signature, twiml};
use switchboard_voice::WsFrame;

/// Largest Media Streams frame accepted (a 20 ms media frame is about 300 bytes).
const MAX_MEDIA_FRAME: usize = 64 * 1024;

const NOT_IN_SERVICE: &str =
    "Sorry, the number you have called is not in service. Please check the number and try again. Goodbye.";
const NOT_CONFIGURED: &str =
    "Sorry, this service is not set up to take calls yet. Please try again later. Goodbye.";
const BUSY: &str =
    "Sorry, all of our lines are busy right now. Please call again in a few minutes. Goodbye.";
const UNAVAILABLE: &str =
    "Sorry, we cannot take your call right now. Please try again later. Goodbye.";
const DRAINING: &str =
    "Sorry, we are updating our system and cannot take your call right now. Please call again in a few minutes. Goodbye.";
/// How many times a call is sent back through the load balancer by draining instances before
/// it is refused (a balancer that has not noticed the drain yet may send it back here).
const MAX_DRAIN_HOPS: u32 = 3;

pub(crate) fn xml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn forbidden(why: &str) -> Response {
    tracing::warn!(reason = why, "Twilio request rejected (403)");
    (StatusCode::FORBIDDEN, "forbidden").into_response()
}

pub(crate) fn params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies `X-Twilio-Signature` with the organization's auth token over the URL Twilio
/// requested, rebuilt from the configured public base URL (never from `Host`).
pub(crate) async fn verify(
    st: &AppState,
    org: &OrgId,
    uri: &Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(), Response> {
    if st.twilio.skip_signature {
        return Ok(());
    }
    let creds = st.store.twilio_credentials(org).await;
    verify_with(st, org, creds, uri, headers, params)
}

/// [`verify`] with the organization's credentials already read.
// The error is the handler's own response, returned at once; boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn verify_with(
    st: &AppState,
    org: &OrgId,
    creds: Result<Option<TwilioCredentials>, StoreError>,
    uri: &Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(), Response> {
    if st.twilio.skip_signature {
        return Ok(());
    }
    let Some(base) = &st.twilio.public_url else {
        tracing::error!("SWITCHBOARD_PUBLIC_URL is not set: Twilio signatures cannot be checked");
        return Err(forbidden("public URL not configured"));
    };
    let creds = match creds {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::error!(org_id = %org, "organization has no Twilio credentials: cannot verify its webhooks (PUT /api/v1/settings)");
            return Err(forbidden("no auth token for the organization"));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read Twilio credentials");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    // SignalWire signs like Twilio with the project's signing key, in its own header; it
    // documents `X-Twilio-Signature` as an accepted alias, so either is read.
    let header = creds.signature_header();
    let Some(sig) = headers
        .get(header)
        .or_else(|| headers.get("x-twilio-signature"))
        .and_then(|v| v.to_str().ok())
    else {
        return Err(forbidden(&format!("missing {header}")));
    };
    // These routes are not nested, so the request URI is the one the carrier signed.
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{base}{path}");
    if signature::validate(creds.webhook_key().expose(), &url, params, sig) {
        Ok(())
    } else {
        // The URL is what Twilio must have signed: a proxy or a public URL that differs from
        // the one configured at Twilio shows here (the token is never logged).
        tracing::warn!(
            org_id = %org,
            url = %url,
            carrier = creds.carrier.as_str(),
            "bad webhook signature for this URL: the webhook URL configured at the carrier must be exactly this one (check SWITCHBOARD_PUBLIC_URL and the proxy's scheme, host and port)"
        );
        Err(forbidden(&format!("bad {header}")))
    }
}

/// `POST /twilio/voice`: the incoming-call webhook. Answers TwiML.
pub(crate) async fn voice_webhook(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&body);
    let (Some(to), Some(call_sid)) = (param(&params, "To"), param(&params, "CallSid")) else {
        return (StatusCode::BAD_REQUEST, "To and CallSid are required").into_response();
    };
    let from = param(&params, "From").unwrap_or("anonymous").to_owned();
    let Some(public) = st.twilio.public_url.clone() else {
        tracing::error!("incoming call but SWITCHBOARD_PUBLIC_URL is not set; refusing it");
        return xml(twiml::say_hangup(NOT_CONFIGURED));
    };
    let route = match PhoneNumber::parse(to) {
        Ok(n) => st.store.route_number(&n, NumberChannel::Voice).await,
        Err(_) => Ok(None),
    };
    let route = match route {
        Ok(Some(r)) if r.active && r.agent_id.is_some() && may_route(&st, &r, to) => r,
        Ok(other) => {
            st.voice
                .stats
                .unknown_number
                .fetch_add(1, Ordering::Relaxed);
            let why = match other {
                None => "number not owned by any organization",
                Some(r) if !r.active => "number or organization inactive",
                Some(r) if r.agent_id.is_none() => "number has no agent",
                Some(_) => "number not verified (production routes only verified numbers)",
            };
            tracing::warn!(to = %to, reason = why, "incoming call refused");
            return xml(twiml::say_hangup(NOT_IN_SERVICE));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot route an incoming call");
            return xml(twiml::say_hangup(UNAVAILABLE));
        }
    };
    if let Err(resp) = verify(&st, &route.org_id, &uri, &headers, &params).await {
        return resp;
    }
    if st.lifecycle.is_draining() {
        return refuse_while_draining(&st, &public, uri.query(), to).await;
    }
    let org = route.org_id;
    let status = param(&params, "CallStatus")
        .and_then(CallStatus::parse)
        .unwrap_or(CallStatus::Ringing);
    let now = Timestamp::now();
    let conversation = NewConversation {
        channel: Channel::Voice,
        direction: Direction::Inbound,
        contact_number: from.clone(),
        our_number: Some(to.to_owned()),
        agent_id: route.agent_id.clone(),
        variables: serde_json::json!({"caller_number": from, "our_number": to, "call_sid": call_sid}),
        started_at: now,
    };
    let new_call = NewCall {
        conversation_id: switchboard_domain::ids::ConversationId::generate(),
        call_sid: call_sid.to_owned(),
        direction: Direction::Inbound,
        from_number: from.clone(),
        to_number: to.to_owned(),
        agent_id: route.agent_id,
        status,
        started_at: now,
    };
    let cap = Some(st.admission.limits.max_calls_per_org);
    let call_id = match st
        .store
        .start_call_within(&org, conversation, new_call, cap)
        .await
    {
        Ok(Some(call)) => call.id,
        Ok(None) => {
            st.admission.refused_calls.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(org_id = %org, call_sid = %call_sid, "incoming call refused: the organization is at its call cap");
            return xml(twiml::say_hangup(BUSY));
        }
        // Twilio retries a webhook that timed out: answer again for the same call.
        Err(StoreError::Conflict(_)) => match st.store.find_call_by_sid(call_sid).await {
            Ok(Some((o, id))) if o == org => id,
            _ => return xml(twiml::say_hangup(UNAVAILABLE)),
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot store an incoming call");
            return xml(twiml::say_hangup(UNAVAILABLE));
        }
    };
    tracing::info!(org_id = %org, call_id = %call_id, call_sid = %call_sid, "incoming call answered");
    connect_call(&st, &public, &org, &call_id, now)
}

/// Whether a claim may take traffic: a verified one always; an unverified one only in
/// development, with a warning (production refuses it as if the number were unknown).
pub(crate) fn may_route(st: &AppState, route: &NumberRoute, to: &str) -> bool {
    if route.verified {
        return true;
    }
    if st.twilio.require_verified_numbers {
        return false;
    }
    tracing::warn!(
        to = %to,
        org_id = %route.org_id,
        number_id = %route.number_id,
        "routing a number that is not verified: allowed because SWITCHBOARD_ENV is development; \
         production would refuse it (POST /api/v1/phone-numbers/{{id}}/verify)"
    );
    true
}

/// `<Connect><Stream>` to our media endpoint for a call, with its one-time token (see
/// `switchboard_voice::stream_twiml`).
pub(crate) fn connect_call(
    st: &AppState,
    public: &str,
    org: &OrgId,
    call_id: &switchboard_domain::ids::CallId,
    now: Timestamp,
) -> Response {
    xml(switchboard_voice::stream_twiml(
        &st.voice,
        public,
        org,
        call_id,
        now,
        &[],
    ))
}

/// A new call reached a draining instance. When another instance serves calls, Twilio is told
/// to fetch the call's TwiML again from the public URL (`<Redirect>`), which the load balancer
/// sends to a ready instance; the `drain_hop` query parameter bounds the round trips. When
/// this is the only instance, the caller hears a polite refusal and nothing is stored.
async fn refuse_while_draining(
    st: &AppState,
    public: &str,
    query: Option<&str>,
    to: &str,
) -> Response {
    let hop = query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "drain_hop")
                .and_then(|(_, v)| v.parse::<u32>().ok())
        })
        .unwrap_or(0);
    if hop < MAX_DRAIN_HOPS && st.lifecycle.peers_serving(&st.store, &st.clock).await {
        tracing::info!(to = %to, hop, "draining: incoming call sent back through the public URL");
        return xml(twiml::redirect(&format!(
            "{public}/twilio/voice?drain_hop={}",
            hop + 1
        )));
    }
    st.voice
        .stats
        .refused_draining
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(to = %to, "draining and no other instance takes calls: incoming call refused");
    xml(twiml::say_hangup(DRAINING))
}

/// `POST /twilio/voice/status`: call status callbacks, merged forward-only into the call.
pub(crate) async fn voice_status(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&body);
    let Some(call_sid) = param(&params, "CallSid") else {
        return (StatusCode::BAD_REQUEST, "CallSid is required").into_response();
    };
    // Our outbound calls name their call id: their first callbacks may come before the
    // CallSid from the Calls API answer is stored.
    if let Some(id) = crate::twilio_outbound::call_id_param(&uri) {
        return crate::twilio_outbound::outbound_status(st, uri, headers, params, id).await;
    }
    let (org, call_id) = match st.store.find_call_by_sid(call_sid).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            // Not a call we created: nothing to merge, and nothing to verify against.
            tracing::warn!(call_sid = %call_sid, "status callback for an unknown call ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a call");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if let Err(resp) = verify(&st, &org, &uri, &headers, &params).await {
        return resp;
    }
    merge_status(&st, &org, &call_id, &params).await
}

/// Merges a verified status callback into the call.
pub(crate) async fn merge_status(
    st: &AppState,
    org: &OrgId,
    call_id: &switchboard_domain::ids::CallId,
    params: &[(String, String)],
) -> Response {
    let call_sid = param(params, "CallSid").unwrap_or_default();
    let Some(status) = param(params, "CallStatus").and_then(CallStatus::parse) else {
        tracing::warn!(call_sid = %call_sid, status = ?param(params, "CallStatus"), "status callback without a known CallStatus ignored");
        return StatusCode::NO_CONTENT.into_response();
    };
    let int = |name: &str| param(params, name).and_then(|v| v.trim().parse::<i64>().ok());
    let report = StatusReport {
        status,
        sequence: int("SequenceNumber"),
        duration_seconds: int("CallDuration"),
        recording_url: param(params, "RecordingUrl")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        // The server's clock (adjustable in tests), like every other time a call's life uses.
        at: st.clock.now(),
    };
    if int("SipResponseCode").is_some() || int("ErrorCode").is_some() {
        if let Err(e) = st
            .store
            .set_call_attempt_codes(org, call_id, int("SipResponseCode"), int("ErrorCode"))
            .await
        {
            tracing::error!(error = %e, "cannot store a call's SIP and error codes");
        }
    }
    match st.store.apply_call_status(org, call_id, &report).await {
        Ok(call) => {
            tracing::info!(org_id = %org, call_id = %call_id, reported = status.as_str(), status = call.status.as_str(), "call status merged");
            // A caller who hangs up on hold ends a warm transfer at once.
            if switchboard_domain::call::is_terminal(status) && call.transfer.is_some() {
                if let Err(e) = switchboard_voice::caller_left(&st.voice, org, call_id).await {
                    tracing::error!(error = %e, "cannot end a warm transfer whose caller left");
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot merge a call status");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /twilio/media`: the Media Streams WebSocket. The call is authenticated by the token
/// in the stream's `start` message (see `switchboard_voice::token`).
pub(crate) async fn media_stream(State(st): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let voice = st.voice.clone();
    // Held for the connection's life.
    let Some(slot) = st.admission.websocket() else {
        tracing::warn!("media stream refused: too many open");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open media streams",
        )
            .into_response();
    };
    // A small read buffer: see `switchboard_realtime::client::READ_BUFFER`.
    ws.read_buffer_size(switchboard_realtime::client::READ_BUFFER)
        .max_message_size(MAX_MEDIA_FRAME)
        .max_frame_size(MAX_MEDIA_FRAME)
        .on_upgrade(move |socket: WebSocket| async move {
            let _slot = slot;
            let adapted = socket
                .map(|frame| {
                    frame.map(|m| match m {
                        Message::Text(t) => WsFrame::Text(t.to_string()),
                        Message::Close(_) => WsFrame::Close,
                        _ => WsFrame::Other,
                    })
                })
                .with(
                    |text: String| async move { Ok::<_, axum::Error>(Message::Text(text.into())) },
                );
            switchboard_voice::run_media_stream(voice, Box::pin(adapted)).await;
        })
}

/// `POST /twilio/messaging`: one webhook for SMS and WhatsApp (the `whatsapp:` prefix of
/// `To` says which). Answers TwiML: the agent's reply, a compliance answer, or nothing.
pub(crate) async fn messaging_webhook(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&body);
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "SmsMessageSid"));
    let (Some(to), Some(from), Some(sid)) = (param(&params, "To"), param(&params, "From"), sid)
    else {
        return (
            StatusCode::BAD_REQUEST,
            "To, From and MessageSid are required",
        )
            .into_response();
    };
    let stats = st.messaging.stats();
    // One look-up for the route and the key that verifies it: this is the hot path.
    let route = match parse_address(to) {
        Some((nc, our)) => match st.store.route_number_with_credentials(&our, nc).await {
            Ok(r) => r.map(|(r, creds)| (r, creds, nc, our)),
            Err(e) => {
                tracing::error!(error = %e, "cannot route an inbound text");
                // 5xx: Twilio retries later, and nothing was stored.
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        },
        None => None,
    };
    let Some((route, creds, nc, our)) =
        route.filter(|(r, _, _, _)| r.active && may_route(&st, r, to))
    else {
        stats.unknown_number.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(to = %to, "text to an unknown or inactive number ignored");
        return xml(twiml::empty());
    };
    if let Err(resp) = verify_with(&st, &route.org_id, Ok(creds), &uri, &headers, &params) {
        return resp;
    }
    let Some(contact) = parse_address(from).map(|(_, n)| n) else {
        // Short codes and alphanumeric senders cannot be answered or tracked as contacts.
        tracing::warn!(org_id = %route.org_id, "text from a sender that is not an E.164 number ignored");
        return xml(twiml::empty());
    };
    let Some(channel) = text_channel(nc) else {
        return xml(twiml::empty());
    };
    let media_count = param(&params, "NumMedia")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(10);
    let media = (0..media_count)
        .filter_map(|i| {
            let url = param(&params, &format!("MediaUrl{i}"))?;
            let ct = param(&params, &format!("MediaContentType{i}")).unwrap_or_default();
            Some((url.to_owned(), ct.to_owned()))
        })
        .collect();
    let inbound = InboundText {
        org: route.org_id.clone(),
        agent_id: route.agent_id,
        channel,
        contact,
        our_number: our,
        message_sid: sid.to_owned(),
        body: param(&params, "Body").unwrap_or_default().to_owned(),
        media,
        profile_name: param(&params, "ProfileName")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    };
    match st.messaging.receive(inbound).await {
        Ok(body) => xml(body),
        Err(e) => {
            tracing::error!(org_id = %route.org_id, error = %e, "cannot store an inbound text");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `POST /twilio/messaging/status`: delivery reports for our outbound messages, merged
/// forward-only. Routed by our number (`From`), verified like every Twilio request.
pub(crate) async fn messaging_status(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&body);
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "SmsSid"));
    let status = param(&params, "MessageStatus").or_else(|| param(&params, "SmsStatus"));
    let (Some(sid), Some(status), Some(from)) = (sid, status, param(&params, "From")) else {
        return (
            StatusCode::BAD_REQUEST,
            "MessageSid, MessageStatus and From are required",
        )
            .into_response();
    };
    let route = match parse_address(from) {
        Some((nc, ours)) => st.store.route_number(&ours, nc).await,
        None => Ok(None),
    };
    let org = match route {
        Ok(Some(r)) => r.org_id,
        Ok(None) => {
            tracing::warn!("delivery report for a number we do not own ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot route a delivery report");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if let Err(resp) = verify(&st, &org, &uri, &headers, &params).await {
        return resp;
    }
    let id = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "message_id")
            .and_then(|(_, v)| MessageId::parse(&v))
    });
    match st
        .messaging
        .delivery()
        .apply_report(&org, id.as_ref(), sid, status, param(&params, "ErrorCode"))
        .await
    {
        Ok(Some(m)) => {
            tracing::debug!(org_id = %org, message_id = %m.id, status = ?m.delivery_status, "delivery report merged");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => {
            tracing::warn!(org_id = %org, "delivery report for an unknown message ignored");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot merge a delivery report");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
