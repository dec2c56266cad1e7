//! The tools' way to place calls and schedule texts (`call_contact`, `schedule_sms`): the same
//! checks and durable jobs as `POST /api/v1/calls` and `POST /api/v1/scheduled-messages`,
//! with what went wrong told to the agent in words it can say.

use crate::api::outbound::{place, PlaceCall};
use crate::AppState;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use switchboard_domain::values::{Channel, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_messaging::NewOutbound;
use switchboard_tools::{Outreach, ToolContext, ToolError};

/// [`Outreach`] over the application's services.
pub(crate) struct WebOutreach {
    pub(crate) st: AppState,
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send + 'a>>;

impl Outreach for WebOutreach {
    fn call_contact<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        at: Option<Timestamp>,
        reason: Option<&'a str>,
    ) -> Answer<'a> {
        Box::pin(async move {
            let body = PlaceCall {
                to: Some(to.clone()),
                contact_id: None,
                from_number: None,
                agent_id: Some(ctx.agent.id.clone()),
                variables: Some(json!({"reason": reason.unwrap_or_default()})),
                send_at: at,
                metadata: Some(json!({"requested_by": "call_contact",
                    "conversation_id": ctx.conversation_id})),
                voicemail: None,
                record: None,
            };
            match place(&self.st, &ctx.org, body, None).await {
                Ok((call, _)) => Ok(json!({"ok": true, "call_id": call.id,
                "scheduled_at": call.scheduled_at,
                "message": match at {
                    Some(_) => "The call is scheduled.",
                    None => "The call is being placed now.",
                }})),
                Err(e) => Err(ToolError::new(
                    e.code,
                    format!("The call could not be placed: {}", e.message),
                )),
            }
        })
    }

    fn schedule_sms<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        text: &'a str,
        at: Timestamp,
    ) -> Answer<'a> {
        Box::pin(async move {
            let req = NewOutbound {
                channel: Channel::Sms,
                contact_number: to.clone(),
                from_number: None,
                agent_id: Some(ctx.agent.id.clone()),
                variables: None,
                first_message: Some(text.to_owned()),
                generate_first_message: false,
                content_sid: None,
                content_variables: None,
            };
            match self.st.messaging.schedule(&ctx.org, req, at).await {
                Ok(s) => Ok(
                    json!({"ok": true, "scheduled_id": s.id, "send_at": s.send_at,
                    "message": "The text is scheduled."}),
                ),
                Err(e) => Err(ToolError::new(
                    e.code(),
                    format!("The text could not be scheduled: {e}"),
                )),
            }
        })
    }
}
