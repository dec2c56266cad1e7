//! The Twilio REST calls we make: redirect or hang up a live call. HTTP Basic auth with the
//! account SID and auth token; form-encoded bodies (so `+` travels as `%2B`).

use std::time::Duration;

/// Twilio's production API.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The request did not complete.
    #[error("Twilio request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// Twilio answered with an error.
    #[error("Twilio answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio's `message` (or the body's start).
        message: String,
    },
}

/// A client for one API base URL (tests point it at a fake).
#[derive(Debug, Clone)]
pub struct RestClient {
    base: String,
    http: reqwest::Client,
}

/// What to do with a live call.
#[derive(Debug, Clone)]
pub enum CallUpdate {
    /// Replace the running TwiML (e.g. `<Say>` + `<Hangup>`, or `<Dial>`).
    Twiml(String),
    /// Hang up (`Status=completed`).
    Hangup,
}

impl RestClient {
    /// A client for `base` (`https://api.twilio.com` in production).
    pub fn new(base: &str) -> Result<RestClient, RestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(RestClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`.
    pub async fn update_call(
        &self,
        account_sid: &str,
        auth_token: &str,
        call_sid: &str,
        update: &CallUpdate,
    ) -> Result<(), RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.base, account_sid, call_sid
        );
        let form: Vec<(&str, &str)> = match update {
            CallUpdate::Twiml(t) => vec![("Twiml", t.as_str())],
            CallUpdate::Hangup => vec![("Status", "completed")],
        };
        let res = self
            .http
            .post(url)
            .basic_auth(account_sid, Some(auth_token))
            .form(&form)
            .send()
            .await?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let body = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(RestError::Api {
            status: status.as_u16(),
            message,
        })
    }
}
