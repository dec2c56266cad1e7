//! The first-day checklist and guided Twilio setup: check the credentials, list the Twilio
//! account's numbers, import them with their webhooks pointed here.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OrgAuth};
use crate::setup::Setup;
use crate::twilio_setup::{self, AccountNumberView, CredentialCheck, ImportResult, SetupError};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::PhoneNumber;

impl From<SetupError> for ApiError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Store(s) => s.into(),
            SetupError::Twilio(c) => match c.reason {
                Some("not_configured") => {
                    ApiError::new(StatusCode::CONFLICT, "not_configured", c.message)
                }
                Some("credentials_rejected") => {
                    ApiError::new(StatusCode::CONFLICT, "credentials_rejected", c.message)
                }
                _ => ApiError::new(StatusCode::BAD_GATEWAY, "twilio_error", c.message),
            },
        }
    }
}

/// What is left to do before the organization's agent takes real calls (the overview's
/// checklist), and the webhook URLs to give Twilio.
#[utoipa::path(get, path = "/api/v1/setup", tag = "setup",
    responses((status = 200, body = Setup)), security(("api_key" = [])))]
pub async fn get_setup(auth: OrgAuth, State(st): State<AppState>) -> Result<Json<Setup>, ApiError> {
    Ok(Json(crate::setup::checklist(&st, &auth.org).await?))
}

/// Ask Twilio whether the organization's account SID and auth token work (200 either way;
/// `ok` and `reason` say).
#[utoipa::path(post, path = "/api/v1/twilio/check", tag = "setup",
    responses((status = 200, body = CredentialCheck)), security(("api_key" = [])))]
pub async fn check_twilio(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<CredentialCheck>, ApiError> {
    Ok(Json(twilio_setup::check_credentials(&st, &auth.org).await?))
}

/// The Twilio account's numbers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountNumbers {
    /// Each number, where its webhooks point and what is registered here.
    pub data: Vec<AccountNumberView>,
}

/// List the numbers of the organization's Twilio account (IncomingPhoneNumbers), with where
/// their webhooks point now (409 `not_configured` or `credentials_rejected`, 502
/// `twilio_error`).
#[utoipa::path(get, path = "/api/v1/twilio/incoming-numbers", tag = "setup",
    responses((status = 200, body = AccountNumbers), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_incoming(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<AccountNumbers>, ApiError> {
    Ok(Json(AccountNumbers {
        data: twilio_setup::account_numbers(&st, &auth.org).await?,
    }))
}

/// The body of `POST /api/v1/twilio/incoming-numbers/import`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// E.164 numbers of the Twilio account (1 to 100).
    pub numbers: Vec<String>,
    /// The agent that answers them (none: registered but not routed).
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    /// Point each number's voice, status and messaging webhooks at this server through the
    /// Twilio API (default true).
    #[serde(default)]
    pub configure_webhooks: Option<bool>,
}

/// What the import did, number by number.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportAnswer {
    /// One result per number asked for, in order.
    pub results: Vec<ImportResult>,
}

/// Import numbers of the Twilio account: each is registered for what it can do (voice, SMS)
/// with the agent, proven with Twilio, and (by default) has its webhooks set to this server's
/// URLs, so nothing is pasted by hand. A number that fails says why in its result; the others
/// go on.
#[utoipa::path(post, path = "/api/v1/twilio/incoming-numbers/import", tag = "setup", request_body = ImportRequest,
    responses((status = 200, body = ImportAnswer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn import_incoming(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<ImportAnswer>, ApiError> {
    if body.numbers.is_empty() || body.numbers.len() > 100 {
        return Err(ApiError::invalid("numbers", "give 1 to 100 numbers"));
    }
    let mut numbers = Vec::with_capacity(body.numbers.len());
    for (i, n) in body.numbers.iter().enumerate() {
        numbers.push(
            PhoneNumber::parse(n).map_err(|m| ApiError::invalid(format!("numbers[{i}]"), m))?,
        );
    }
    if let Some(agent) = &body.agent_id {
        match st.store.get_agent(&auth.org, agent).await {
            Ok(_) => {}
            Err(switchboard_store::StoreError::NotFound) => {
                return Err(ApiError::invalid(
                    "agent_id",
                    "no such agent in this organization",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let results = twilio_setup::import(
        &st,
        &auth.org,
        &numbers,
        body.agent_id.as_ref(),
        body.configure_webhooks.unwrap_or(true),
    )
    .await?;
    Ok(Json(ImportAnswer { results }))
}
