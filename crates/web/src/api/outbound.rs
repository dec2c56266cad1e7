//! Outbound calls: place one (a durable dial job does the dialling), and cancel one.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;
use switchboard_domain::agent::VoicemailMode;
use switchboard_domain::call::{is_terminal, EndReason};
use switchboard_domain::entities::{Call, NewConversation};
use switchboard_domain::ids::{AgentId, CallId, ContactId};
use switchboard_domain::values::{CallStatus, Channel, Direction, NumberChannel, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{CallEnd, NewOutboundCall, Placed};
use switchboard_twilio::rest::CallUpdate;

/// The body of `POST /api/v1/calls`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// Whom to call, E.164 (or give `contact_id`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub to: Option<PhoneNumber>,
    /// One of the organization's contacts to call (instead of `to`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub contact_id: Option<ContactId>,
    /// Our caller id: one of the organization's active voice numbers. Default: the first one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub from_number: Option<PhoneNumber>,
    /// The agent that talks. Default: the agent of `from_number`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<AgentId>,
    /// Variables for the agent's instructions and greeting (`{{customer_name}}`), a JSON object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    /// Dial at this time (RFC 3339) instead of now.
    #[serde(default)]
    pub send_at: Option<Timestamp>,
    /// Opaque JSON kept on the call and echoed in its events.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// When a machine answers: `hangup` or `leave_message` (the agent's `voicemail_message`).
    /// Default: the agent's `voicemail` setting.
    #[serde(default)]
    pub voicemail: Option<VoicemailMode>,
    /// Record the call (two channels). Default: the agent's `record` setting.
    #[serde(default)]
    pub record: Option<bool>,
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// Place an outbound call. It is queued (`status: "queued"`) and dialled by a durable job at
/// `send_at` (or now): a server that stops in between dials it after its restart, and never
/// twice. When the callee answers, the agent talks exactly as on an inbound call. Send an
/// `Idempotency-Key` header to make retries safe: the same key with the same body answers the
/// same call (`Idempotent-Replayed: true`), with another body 409 `idempotency_conflict`.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", request_body = PlaceCall,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry (1 to 255 characters)")),
    responses((status = 201, body = Call),
        (status = 409, description = "Contact opted out (`contact_opted_out`), no voice number (`no_voice_number`), Twilio or the public URL not configured (`not_configured`), key reused with another body (`idempotency_conflict`)", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn place_call(
    auth: OrgAuth,
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceCall>,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().unwrap_or_default().trim();
            if k.is_empty() || k.len() > 255 {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 255 visible characters",
                ));
            }
            Some(k.to_owned())
        }
    };
    let (call, replayed) = place(&st, &auth.org, body, key).await?;
    let mut res = (StatusCode::CREATED, Json(call)).into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// The agent that talks on outbound calls: the one named, else the from-number's. Asking
/// for `leave_message` needs the agent's voicemail message.
pub(crate) async fn calling_agent(
    st: &AppState,
    org: &switchboard_domain::ids::OrgId,
    named: Option<&AgentId>,
    number_agent: Option<&AgentId>,
    voicemail: Option<VoicemailMode>,
) -> Result<switchboard_domain::agent::Agent, ApiError> {
    let Some(agent_id) = named.or(number_agent) else {
        return Err(ApiError::invalid(
            "agent_id",
            "the from-number has no agent; name one",
        ));
    };
    let agent = st
        .store
        .get_agent(org, agent_id)
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::NotFound => {
                ApiError::invalid("agent_id", "no such agent")
            }
            other => other.into(),
        })?;
    if voicemail == Some(VoicemailMode::LeaveMessage) && agent.voicemail_message.is_none() {
        return Err(ApiError::invalid(
            "voicemail",
            "`leave_message` needs the agent's `voicemail_message`",
        ));
    }
    Ok(agent)
}

/// Twilio credentials and a public URL: nothing can be dialled without them (409
/// `not_configured`).
pub(crate) async fn dial_configured(
    st: &AppState,
    org: &switchboard_domain::ids::OrgId,
) -> Result<(), ApiError> {
    if st.twilio.public_url.is_none() {
        return Err(conflict(
            "not_configured",
            "SWITCHBOARD_PUBLIC_URL is not set: Twilio could not reach the calls",
        ));
    }
    if st.store.twilio_credentials(org).await?.is_none() {
        return Err(conflict(
            "not_configured",
            "the organization has no Twilio credentials (PUT /api/v1/settings)",
        ));
    }
    Ok(())
}

/// Checks and places an outbound call (the API and the `call_contact` tool); answers the call
/// and whether it is an idempotent replay.
pub(crate) async fn place(
    st: &AppState,
    org: &switchboard_domain::ids::OrgId,
    body: PlaceCall,
    key: Option<String>,
) -> Result<(Call, bool), ApiError> {
    let to = match (&body.to, &body.contact_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid("to", "give either `to` or `contact_id`"))
        }
        (Some(n), None) => n.clone(),
        (None, Some(id)) => match st.store.get_contact(org, id).await {
            Ok(c) => c.number,
            Err(switchboard_store::StoreError::NotFound) => {
                return Err(ApiError::invalid("contact_id", "no such contact"))
            }
            Err(e) => return Err(e.into()),
        },
    };
    if st.store.contact_opted_out(org, to.as_str()).await? {
        return Err(conflict(
            "contact_opted_out",
            "this contact opted out; they cannot be called",
        ));
    }
    if let Some(v) = &body.variables {
        if !v.is_object() {
            return Err(ApiError::invalid("variables", "must be a JSON object"));
        }
    }
    let numbers = st.store.active_numbers(org, NumberChannel::Voice).await?;
    let from = match &body.from_number {
        Some(n) => numbers.iter().find(|o| &o.number == n).ok_or_else(|| {
            ApiError::invalid(
                "from_number",
                "not an active voice number of this organization",
            )
        })?,
        None => numbers.first().ok_or_else(|| {
            conflict(
                "no_voice_number",
                "the organization has no active voice number to call from",
            )
        })?,
    };
    let agent = calling_agent(
        st,
        org,
        body.agent_id.as_ref(),
        from.agent_id.as_ref(),
        body.voicemail,
    )
    .await?;
    let agent_id = agent.id.clone();
    dial_configured(st, org).await?;
    let now = st.clock.now();
    let dial_at = body.send_at.filter(|t| *t > now).unwrap_or(now);
    let mut variables = json!({"contact_number": to, "our_number": from.number});
    if let Some(Value::Object(extra)) = &body.variables {
        for (k, v) in extra {
            variables[k] = v.clone();
        }
    }
    let hash = {
        // serde_json's maps are sorted, so equal bodies hash equally whatever their key order.
        let canonical = serde_json::to_string(&body).map_err(|e| ApiError::internal(&e))?;
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let placed = st
        .store
        .place_call(
            org,
            NewOutboundCall {
                conversation: NewConversation {
                    channel: Channel::Voice,
                    direction: Direction::Outbound,
                    contact_number: to.to_string(),
                    our_number: Some(from.number.to_string()),
                    agent_id: Some(agent_id),
                    variables,
                    started_at: now,
                },
                from_number: from.number.to_string(),
                to_number: to.to_string(),
                metadata: body.metadata.clone(),
                dial_at,
                idempotency: key.map(|k| (k, hash)),
                voicemail_mode: body.voicemail.map(|m| m.as_str().to_owned()),
                record: body.record.unwrap_or(agent.record),
                campaign: None,
                now,
            },
        )
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::Conflict(m) => conflict("idempotency_conflict", m),
            other => other.into(),
        })?;
    Ok(match placed {
        Placed::New(c) => (c, false),
        Placed::Existing(c) => (c, true),
    })
}

/// Cancel an outbound call: one not dialled yet never is; a ringing one is cancelled at Twilio
/// (`Status=canceled`); a live one is hung up (`Status=completed`). 409 `call_ended` when it is
/// over.
#[utoipa::path(post, path = "/api/v1/calls/{id}/cancel", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = Call), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_call(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Call>, ApiError> {
    let org = &auth.org;
    let id = path_id(&id, CallId::parse)?;
    let call = st.store.get_call(org, &id).await?;
    if call.ended_at.is_some() || is_terminal(call.status) {
        return Err(conflict("call_ended", "the call is already over"));
    }
    if switchboard_domain::call::is_retell_call(&call.call_sid) {
        return Err(conflict(
            "carried_by_retell",
            "Retell carries this call: end it from Retell",
        ));
    }
    let live = call.status == CallStatus::InProgress;
    if !call.call_sid.is_empty() {
        let creds = st
            .store
            .twilio_credentials(org)
            .await?
            .ok_or_else(|| conflict("not_configured", "no Twilio credentials"))?;
        let update = if live {
            st.store.request_hangup(org, &id, st.clock.now()).await?;
            CallUpdate::Hangup
        } else {
            CallUpdate::Cancel
        };
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
            .map_err(|e| {
                tracing::warn!(org_id = %auth.org, call_id = %call.id, error = %e, "Twilio did not cancel a call");
                ApiError::new(StatusCode::BAD_GATEWAY, "twilio_error", e.summary())
            })?;
    }
    if !live {
        // Not answered: nothing else will end it (a live call ends through its stream).
        let end = CallEnd {
            reason: EndReason::Canceled,
            error: None,
            at: st.clock.now(),
        };
        st.store.finalize_call(org, &id, &end).await?;
    }
    Ok(Json(st.store.get_call(org, &id).await?))
}
