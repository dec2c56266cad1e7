//! Call recordings through Twilio's REST API: start one on a live call, fetch its audio,
//! delete it. The audio is only ever fetched here, with the account's credentials; callers
//! stream it on to their own clients.

use crate::rest::{api_error, RestClient, RestError};
use std::time::Duration;

/// The recording status events we ask to be told about. Twilio's REST API takes them as a
/// repeated `RecordingStatusCallbackEvent` parameter, as its SDKs send list parameters (the
/// TwiML attribute of the same name is space-separated instead); unconfirmed against the
/// live API, so `completed`, the default, is what the code relies on.
pub const RECORDING_EVENTS: [&str; 3] = ["in-progress", "completed", "absent"];

/// How long streaming one recording's audio may take (a long call at a slow client).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A recording just started on a live call.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedRecording {
    /// `RE...`.
    pub sid: String,
    /// `in-progress` normally.
    pub status: String,
}

impl RestClient {
    /// `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings.json`: records the
    /// rest of a live call in two channels (the caller and the agent apart), reporting to
    /// `callback` (POST).
    pub async fn start_recording(
        &self,
        account_sid: &str,
        auth_token: &str,
        call_sid: &str,
        callback: &str,
    ) -> Result<StartedRecording, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}/Recordings.json",
            self.base, account_sid, call_sid
        );
        let mut form: Vec<(&str, &str)> = vec![
            ("RecordingChannels", "dual"),
            ("RecordingTrack", "both"),
            ("RecordingStatusCallback", callback),
            ("RecordingStatusCallbackMethod", "POST"),
        ];
        form.extend(RECORDING_EVENTS.map(|e| ("RecordingStatusCallbackEvent", e)));
        let body = self.post(account_sid, auth_token, &url, &form).await?;
        let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        match field("sid") {
            Some(sid) => Ok(StartedRecording {
                sid,
                status: field("status").unwrap_or_else(|| "in-progress".into()),
            }),
            None => Err(RestError::Malformed(
                "no `sid` in the created recording".into(),
            )),
        }
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav`, passing the
    /// client's `Range` on. Twilio may answer with a redirect to its media storage; it is
    /// followed, and the credentials are not sent on to another host. The answer (200 or 206)
    /// is handed back unread so the audio can be streamed; an error status is read into
    /// [`RestError::Api`] (404 for a recording that does not exist, or no longer does).
    pub async fn fetch_recording(
        &self,
        account_sid: &str,
        auth_token: &str,
        recording_sid: &str,
        range: Option<&str>,
    ) -> Result<reqwest::Response, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}.wav",
            self.base, account_sid, recording_sid
        );
        let mut req = self
            .http
            .get(&url)
            .basic_auth(account_sid, Some(auth_token))
            .timeout(FETCH_TIMEOUT);
        if let Some(r) = range {
            req = req.header(reqwest::header::RANGE, r);
        }
        let res = req.send().await?;
        if res.status().is_success() {
            return Ok(res);
        }
        Err(api_error(res).await)
    }

    /// `DELETE /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.json`. A recording
    /// Twilio no longer has (404) counts as deleted.
    pub async fn delete_recording(
        &self,
        account_sid: &str,
        auth_token: &str,
        recording_sid: &str,
    ) -> Result<(), RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}.json",
            self.base, account_sid, recording_sid
        );
        let res = self
            .http
            .delete(&url)
            .basic_auth(account_sid, Some(auth_token))
            .send()
            .await?;
        if res.status().is_success() || res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(api_error(res).await)
    }
}
