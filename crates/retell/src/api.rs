//! The Retell REST look-up Switchboard needs: `GET {base}/v2/get-call/{call_id}` with the
//! organization's API key as a bearer token. The custom-LLM socket carries no credentials,
//! so this is how a socket proves its call exists and belongs to the agent it claims.

use crate::webhook::RetellCall;
use std::time::Duration;

/// Retell's API.
pub const DEFAULT_API_URL: &str = "https://api.retellai.com";

/// Why a look-up failed.
#[derive(Debug, thiserror::Error)]
pub enum RetellApiError {
    /// No answer.
    #[error("Retell is unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The key was refused (401/403).
    #[error("Retell refused the organization's API key ({0})")]
    Unauthorized(u16),
    /// Another error status.
    #[error("Retell answered {0}")]
    Status(u16),
    /// A 2xx answer that is not a call.
    #[error("Retell's answer is not a call object")]
    Malformed,
}

/// The client; cheap to clone.
#[derive(Debug, Clone)]
pub struct RetellApi {
    http: reqwest::Client,
    base: String,
}

impl RetellApi {
    /// A client for `base` (e.g. [`DEFAULT_API_URL`]).
    pub fn new(base: &str, timeout: Duration) -> Result<RetellApi, RetellApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(RetellApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Whether Retell accepts `api_key`: `Ok(false)` when it refuses it (401/403). Asks for a
    /// call that does not exist (the only endpoint Switchboard uses): an accepted key gets
    /// 404, a refused one 401 whatever the call. UNCONFIRMED against the live service that
    /// authentication is checked before the look-up (it is for every API of this kind seen).
    pub async fn accepts_key(&self, api_key: &str) -> Result<bool, RetellApiError> {
        match self.get_call(api_key, "switchboard_key_check").await {
            Ok(_) => Ok(true),
            Err(RetellApiError::Unauthorized(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The call `call_id` as Retell knows it under `api_key`; `None` when Retell says 404.
    pub async fn get_call(
        &self,
        api_key: &str,
        call_id: &str,
    ) -> Result<Option<RetellCall>, RetellApiError> {
        let res = self
            .http
            .get(format!("{}/v2/get-call/{call_id}", self.base))
            .bearer_auth(api_key)
            .send()
            .await?;
        match res.status().as_u16() {
            200..=299 => {
                let body: serde_json::Value =
                    res.json().await.map_err(|_| RetellApiError::Malformed)?;
                RetellCall::from_value(&body)
                    .filter(|c| !c.call_id.is_empty())
                    .map(Some)
                    .ok_or(RetellApiError::Malformed)
            }
            404 => Ok(None),
            s @ (401 | 403) => Err(RetellApiError::Unauthorized(s)),
            s => Err(RetellApiError::Status(s)),
        }
    }
}
