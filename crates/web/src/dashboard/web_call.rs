//! "Call this agent": a voice call from the browser. `POST /agents/{id}/web-call` stores a
//! call on channel `web` and answers what the page needs to open the media stream at
//! `/twilio/media` and speak Twilio Media Streams to it (call-worklet.js and call.js): the
//! same one-time parameters `<Stream>` carries for a phone call, so the same call actor runs
//! it, with the agent's tools, transcript, analysis, events and e-mail.

use super::{Dash, DashError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde::Serialize;
use std::collections::HashMap;
use switchboard_domain::agent::Agent;
use switchboard_domain::entities::{NewCall, NewConversation};
use switchboard_domain::ids::{random_token, AgentId, ConversationId};
use switchboard_domain::values::{CallStatus, Channel, Direction};
use switchboard_store::StoreError;

/// What the page opens the call with.
#[derive(Debug, Serialize)]
pub struct WebCall {
    /// The call's id (its page is `/calls/{call_id}`).
    pub call_id: String,
    /// A browser call's SID: `WB` and 32 characters, never a Twilio one.
    pub call_sid: String,
    /// The media stream's id.
    pub stream_sid: String,
    /// Where the media WebSocket is, on this host.
    pub media_path: &'static str,
    /// The `customParameters` of the stream's `start`.
    pub parameters: HashMap<String, String>,
}

/// The panel on the agent's page.
pub fn panel(a: &Agent) -> Markup {
    html! {
        section.card #web-call data-start={ "/agents/" (a.id) "/web-call" } {
            h2 { "Call this agent" }
            p.muted { "Talk to the agent with your microphone and speaker, as a caller would, through the same call handling as a phone call: its tools act for real in this organization and the call is stored with its transcript (channel web)." }
            p #web-call-state data-state="idle" role="status" { "Not on a call." }
            button.primary type="button" #web-call-start { "Call this agent" }
            button type="button" #web-call-hangup hidden { "Hang up" }
            p { a #web-call-link href="#" hidden { "The call's page" } }
            script src="/assets/call.js" defer {}
        }
    }
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": message, "code": code})),
    )
        .into_response()
}

/// `POST /agents/{id}/web-call` (admins; JSON with the CSRF header).
pub async fn start(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let agent = st.store.get_agent(&dash.org, &id).await?;
    if st.lifecycle.is_draining() {
        return Ok(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this server is shutting down; try again in a moment",
        ));
    }
    let now = st.clock.now();
    let from = format!("web:{}", dash.session.user.email);
    let call_sid = switchboard_domain::call::browser_call_sid(&random_token(32));
    let conversation = NewConversation {
        channel: Channel::Web,
        direction: Direction::Inbound,
        contact_number: from.clone(),
        our_number: Some(agent.id.to_string()),
        agent_id: Some(agent.id.clone()),
        variables: serde_json::json!({"caller_number": from, "channel": "web", "call_sid": call_sid}),
        started_at: now,
    };
    let call = NewCall {
        conversation_id: ConversationId::generate(),
        call_sid: call_sid.clone(),
        direction: Direction::Inbound,
        from_number: from,
        to_number: agent.id.to_string(),
        agent_id: Some(agent.id.clone()),
        status: CallStatus::InProgress,
        started_at: now,
    };
    let cap = Some(st.admission.limits.max_calls_per_org);
    let call = match st
        .store
        .start_call_within(&dash.org, conversation, call, cap)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Ok(refused(
                StatusCode::TOO_MANY_REQUESTS,
                "call_cap",
                "the organization has as many calls as it may at once",
            ))
        }
        Err(StoreError::NotFound) => return Err(DashError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let parameters = switchboard_voice::browser_stream(&st.voice, &dash.org, &call.id, now)
        .into_iter()
        .collect();
    tracing::info!(org_id = %dash.org, call_id = %call.id, agent_id = %agent.id, "browser call started");
    Ok(Json(WebCall {
        call_id: call.id.to_string(),
        call_sid,
        stream_sid: format!("MZ{}", random_token(32)),
        media_path: "/twilio/media",
        parameters,
    })
    .into_response())
}
