//! The Twilio REST calls we make: redirect or hang up a live call, send a text message. HTTP
//! Basic auth with the account SID and auth token; form-encoded bodies through a real encoder
//! (so `+` travels as `%2B` and `whatsapp:` as `whatsapp%3A`).

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
        /// Twilio's numeric error `code` (e.g. 21610: the recipient unsubscribed).
        code: Option<i64>,
    },
    /// Twilio answered 2xx with a body we could not read.
    #[error("unexpected Twilio answer: {0}")]
    Malformed(String),
}

impl RestError {
    /// What may be told to an API client: the status and Twilio's numeric error code, never
    /// Twilio's text (which can name accounts and internals); the whole error goes to the log.
    pub fn summary(&self) -> String {
        match self {
            RestError::Transport(_) => "Twilio could not be reached; try again".into(),
            RestError::Api {
                status,
                code: Some(code),
                ..
            } => format!(
                "Twilio refused the request (HTTP {status}, Twilio error {code}: \
                 https://www.twilio.com/docs/errors/{code})"
            ),
            RestError::Api { status, .. } => format!("Twilio refused the request (HTTP {status})"),
            RestError::Malformed(_) => "Twilio's answer could not be read".into(),
        }
    }

    /// Whether the request may have taken effect (a timeout or a dropped connection after
    /// sending): retrying could act twice.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            RestError::Transport(e) => !e.is_connect() && !e.is_builder(),
            RestError::Malformed(_) => true,
            RestError::Api { status, .. } => *status >= 500,
        }
    }
}

/// A text message to send.
#[derive(Debug, Clone)]
pub struct OutboundMessage<'a> {
    /// `+E164` or `whatsapp:+E164`.
    pub to: &'a str,
    /// Our sender, same form as `to`.
    pub from: &'a str,
    /// Up to 1,600 characters (ignored by Twilio when `content_sid` is set).
    pub body: Option<&'a str>,
    /// An approved template (`HX...`), needed for WhatsApp outside the 24-hour window.
    pub content_sid: Option<&'a str>,
    /// Template variables as a JSON object string.
    pub content_variables: Option<&'a str>,
    /// Where delivery reports go.
    pub status_callback: Option<&'a str>,
}

/// A call to place (`POST /2010-04-01/Accounts/{AccountSid}/Calls.json`).
#[derive(Debug, Clone)]
pub struct OutboundCall<'a> {
    /// The callee, E.164.
    pub to: &'a str,
    /// Our number, E.164.
    pub from: &'a str,
    /// Where Twilio fetches the call's TwiML once it is answered (POST).
    pub url: &'a str,
    /// Where status callbacks go (POST, every event: initiated, ringing, answered, completed).
    pub status_callback: &'a str,
    /// Seconds to let it ring (Twilio accepts 5 to 600; default 60).
    pub timeout_seconds: u32,
    /// Asynchronous answering-machine detection that waits for the end of a greeting
    /// (`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`), reported to this URL (POST).
    pub amd_callback: Option<&'a str>,
    /// Record the call in two channels (`Record=true`, `RecordingChannels=dual`), with the
    /// recording's status reported to this URL (POST).
    pub recording_callback: Option<&'a str>,
}

/// What Twilio answered for a created call.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedCall {
    /// `CA...`.
    pub sid: String,
    /// Initial status (`queued`).
    pub status: String,
}

/// A call as Twilio's Calls API describes it (`GET .../Calls/{sid}.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallState {
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`,
    /// `canceled`.
    pub status: String,
    /// Seconds, once it ended (Twilio sends it as a string).
    pub duration_seconds: Option<i64>,
}

/// What Twilio answered for a created message.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// `SM...`.
    pub sid: String,
    /// Initial status (`queued`, `accepted`, ...).
    pub status: String,
}

/// A client for one API base URL (tests point it at a fake).
#[derive(Debug, Clone)]
pub struct RestClient {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// Where SignalWire spaces are reached instead of `https://{space}` (tests: a fake).
    signalwire_base: Option<String>,
}

/// What to do with a live call.
#[derive(Debug, Clone)]
pub enum CallUpdate {
    /// Replace the running TwiML (e.g. `<Say>` + `<Hangup>`, or `<Dial>`).
    Twiml(String),
    /// Hang up (`Status=completed`).
    Hangup,
    /// Cancel a call that is queued or ringing (`Status=canceled`).
    Cancel,
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
            signalwire_base: None,
        })
    }

    /// Reaches every SignalWire space at `base` instead of `https://{space}` (a fake, in
    /// tests and load tests).
    pub fn with_signalwire_base(mut self, base: Option<&str>) -> RestClient {
        self.signalwire_base = base.map(|b| b.trim_end_matches('/').to_owned());
        self
    }

    /// The same client for a carrier account: Twilio's API when `space` is `None`, else the
    /// SignalWire space's compatibility API (`https://{space}/api/laml`, where Twilio's
    /// `/2010-04-01/Accounts/...` paths answer in Twilio's shapes).
    pub fn at(&self, space: Option<&str>) -> RestClient {
        let mut c = self.clone();
        if let Some(space) = space {
            let host = self
                .signalwire_base
                .clone()
                .unwrap_or_else(|| format!("https://{space}"));
            c.base = format!("{host}/api/laml");
        }
        c
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
            CallUpdate::Cancel => vec![("Status", "canceled")],
        };
        self.post(account_sid, auth_token, &url, &form).await?;
        Ok(())
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`: where a call stands.
    pub async fn fetch_call(
        &self,
        account_sid: &str,
        auth_token: &str,
        call_sid: &str,
    ) -> Result<CallState, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.base, account_sid, call_sid
        );
        let body = self.get_json(account_sid, auth_token, &url).await?;
        let status = body
            .get("status")
            .and_then(|v| v.as_str())
            .ok_or_else(|| RestError::Malformed("no `status` in the call".into()))?
            .to_owned();
        // `duration` is a string of seconds in Twilio's JSON; accept a number too.
        let duration_seconds = match body.get("duration") {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(v) => v.as_i64(),
            None => None,
        };
        Ok(CallState {
            status,
            duration_seconds,
        })
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (answers 201 with the Call).
    pub async fn create_call(
        &self,
        account_sid: &str,
        auth_token: &str,
        call: &OutboundCall<'_>,
    ) -> Result<CreatedCall, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base, account_sid
        );
        let timeout = call.timeout_seconds.clamp(5, 600).to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("To", call.to),
            ("From", call.from),
            ("Url", call.url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            // Repeated parameter: Twilio reads every value.
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", &timeout),
        ];
        if let Some(amd) = call.amd_callback {
            form.extend([
                ("MachineDetection", "DetectMessageEnd"),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", amd),
                ("AsyncAmdStatusCallbackMethod", "POST"),
            ]);
        }
        if let Some(cb) = call.recording_callback {
            form.extend([
                ("Record", "true"),
                ("RecordingChannels", "dual"),
                ("RecordingStatusCallback", cb),
                ("RecordingStatusCallbackMethod", "POST"),
            ]);
            form.extend(
                crate::recordings::RECORDING_EVENTS.map(|e| ("RecordingStatusCallbackEvent", e)),
            );
        }
        let body = self.post(account_sid, auth_token, &url, &form).await?;
        let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        match field("sid") {
            Some(sid) => Ok(CreatedCall {
                sid,
                status: field("status").unwrap_or_else(|| "queued".into()),
            }),
            None => Err(RestError::Malformed("no `sid` in the created call".into())),
        }
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (answers 201 with the Message).
    pub async fn send_message(
        &self,
        account_sid: &str,
        auth_token: &str,
        msg: &OutboundMessage<'_>,
    ) -> Result<SentMessage, RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base, account_sid
        );
        let mut form: Vec<(&str, &str)> = vec![("To", msg.to), ("From", msg.from)];
        if let Some(b) = msg.body {
            form.push(("Body", b));
        }
        if let Some(c) = msg.content_sid {
            form.push(("ContentSid", c));
        }
        if let Some(v) = msg.content_variables {
            form.push(("ContentVariables", v));
        }
        if let Some(cb) = msg.status_callback {
            form.push(("StatusCallback", cb));
        }
        let body = self.post(account_sid, auth_token, &url, &form).await?;
        let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        match field("sid") {
            Some(sid) => Ok(SentMessage {
                sid,
                status: field("status").unwrap_or_else(|| "queued".into()),
            }),
            None => Err(RestError::Malformed(
                "no `sid` in the created message".into(),
            )),
        }
    }

    /// `GET url` with the account's Basic auth; Twilio's JSON answer, or its error.
    pub(crate) async fn get_json(
        &self,
        account_sid: &str,
        auth_token: &str,
        url: &str,
    ) -> Result<serde_json::Value, RestError> {
        let res = self
            .http
            .get(url)
            .basic_auth(account_sid, Some(auth_token))
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(api_error(res).await);
        }
        res.json()
            .await
            .map_err(|e| RestError::Malformed(e.to_string()))
    }

    pub(crate) async fn post(
        &self,
        account_sid: &str,
        auth_token: &str,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, RestError> {
        let res = self
            .http
            .post(url)
            .basic_auth(account_sid, Some(auth_token))
            .form(form)
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(api_error(res).await);
        }
        let body = res.text().await.unwrap_or_default();
        Ok(serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null))
    }
}

/// Twilio's JSON error (`code`, `message`) of a failed answer.
pub(crate) async fn api_error(res: reqwest::Response) -> RestError {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    let json = serde_json::from_str::<serde_json::Value>(&body).ok();
    RestError::Api {
        status,
        message: json
            .as_ref()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect()),
        code: json
            .as_ref()
            .and_then(|v| v.get("code"))
            .and_then(|c| c.as_i64()),
    }
}
