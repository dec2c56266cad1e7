//! The fake's IncomingPhoneNumbers list: the numbers each account holds, behind HTTP Basic
//! auth checked like Twilio does (401 with error 20003 for an unknown account or a wrong
//! token), with Twilio's quirks: `PhoneNumber` matches partial numbers and `*` as any digit,
//! the list is paged (`PageSize`, default 50) with a relative `next_page_uri`, and the query
//! is form-decoded, so a `+` sent unencoded arrives as a space and matches nothing. A number's
//! webhooks are changed by `POST .../IncomingPhoneNumbers/{Sid}.json` (absent parameters keep
//! their value; a URL that is not absolute http(s) is refused with 400 like Twilio does), and
//! `GET /Accounts/{Sid}.json` answers the account for the right credentials only.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Held {
    account: String,
    sid: String,
    number: String,
    voice: bool,
    sms: bool,
    voice_url: Option<String>,
    status_callback: Option<String>,
    sms_url: Option<String>,
}

/// Accounts, their numbers, and a scripted failure.
#[derive(Default)]
pub(crate) struct Numbers {
    accounts: HashMap<String, String>,
    held: Vec<Held>,
    fail: Option<u16>,
    lookups: usize,
}

pub(crate) type SharedNumbers = Arc<Mutex<Numbers>>;

impl crate::twilio_rest::FakeTwilioRest {
    /// An account whose IncomingPhoneNumbers answer only with this auth token.
    pub fn add_account(&self, account_sid: &str, auth_token: &str) {
        self.numbers
            .lock()
            .unwrap()
            .accounts
            .insert(account_sid.to_owned(), auth_token.to_owned());
    }

    /// Puts a number in an account, with its voice and SMS capabilities.
    pub fn add_incoming_number(&self, account_sid: &str, number: &str, voice: bool, sms: bool) {
        let mut n = self.numbers.lock().unwrap();
        let sid = format!("PN{:032x}", n.held.len() + 1);
        n.held.push(Held {
            account: account_sid.to_owned(),
            sid,
            number: number.to_owned(),
            voice,
            sms,
            voice_url: None,
            status_callback: None,
            sms_url: None,
        });
    }

    /// A number's webhooks as Twilio holds them: (`voice_url`, `status_callback`, `sms_url`).
    #[allow(clippy::type_complexity)]
    pub fn number_webhooks(
        &self,
        number: &str,
    ) -> Option<(Option<String>, Option<String>, Option<String>)> {
        self.numbers
            .lock()
            .unwrap()
            .held
            .iter()
            .find(|h| h.number == number)
            .map(|h| {
                (
                    h.voice_url.clone(),
                    h.status_callback.clone(),
                    h.sms_url.clone(),
                )
            })
    }

    /// Sets a number's voice webhook as if changed in the Twilio console.
    pub fn set_number_voice_url(&self, number: &str, url: &str) {
        if let Some(h) = self
            .numbers
            .lock()
            .unwrap()
            .held
            .iter_mut()
            .find(|h| h.number == number)
        {
            h.voice_url = Some(url.to_owned());
        }
    }

    /// Takes a number out of an account (released or ported away).
    pub fn remove_incoming_number(&self, account_sid: &str, number: &str) {
        self.numbers
            .lock()
            .unwrap()
            .held
            .retain(|h| !(h.account == account_sid && h.number == number));
    }

    /// Makes the number list answer this status (e.g. 503) until set back to `None`.
    pub fn fail_number_lookups(&self, status: Option<u16>) {
        self.numbers.lock().unwrap().fail = status;
    }

    /// Requests made to the number list so far.
    pub fn number_lookups(&self) -> usize {
        self.numbers.lock().unwrap().lookups
    }
}

pub(crate) fn router(state: SharedNumbers) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json",
            get(list),
        )
        .route(
            "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}",
            axum::routing::post(update),
        )
        .route("/2010-04-01/Accounts/{account}", get(account_info))
        .with_state(state)
}

fn error(status: u16, code: i64, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({
            "code": code, "message": message, "status": status,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        })),
    )
        .into_response()
}

/// Twilio's partial match: the pattern occurs somewhere in the number, `*` standing for any
/// digit.
fn matches(pattern: &str, number: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), number.chars().collect());
    if p.is_empty() {
        return true;
    }
    n.windows(p.len()).any(|w| {
        w.iter()
            .zip(&p)
            .all(|(c, q)| c == q || (*q == '*' && c.is_ascii_digit()))
    })
}

/// Basic auth as Twilio checks it: the account's own SID and its current token.
fn authorized(s: &Numbers, account: &str, headers: &HeaderMap) -> bool {
    let creds = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    creds
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(user, token)| {
            user == account && s.accounts.get(account).is_some_and(|t| t == token)
        })
}

fn describe(h: &Held) -> Value {
    json!({
        "account_sid": h.account, "sid": h.sid, "phone_number": h.number,
        "friendly_name": h.number, "status": "in-use", "origin": "twilio",
        "capabilities": {"voice": h.voice, "sms": h.sms, "mms": h.sms, "fax": false},
        "voice_url": h.voice_url.clone().unwrap_or_default(), "voice_method": "POST",
        "status_callback": h.status_callback.clone().unwrap_or_default(),
        "status_callback_method": "POST",
        "sms_url": h.sms_url.clone().unwrap_or_default(), "sms_method": "POST",
        "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", h.account, h.sid),
    })
}

/// `GET /2010-04-01/Accounts/{Sid}.json`.
async fn account_info(
    State(state): State<SharedNumbers>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let s = state.lock().unwrap();
    let Some(account) = file.strip_suffix(".json") else {
        return error(404, 20404, "The requested resource was not found");
    };
    if let Some(status) = s.fail {
        return error(status, 20500, "Internal Server Error");
    }
    if !authorized(&s, account, &headers) {
        return error(401, 20003, "Authenticate");
    }
    Json(json!({
        "sid": account, "friendly_name": "Test account", "status": "active", "type": "Full",
        "uri": format!("/2010-04-01/Accounts/{account}.json"),
    }))
    .into_response()
}

/// `POST .../IncomingPhoneNumbers/{Sid}.json`: changes the webhooks given.
async fn update(
    State(state): State<SharedNumbers>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(status) = s.fail {
        return error(status, 20500, "Internal Server Error");
    }
    if !authorized(&s, &account, &headers) {
        return error(401, 20003, "Authenticate");
    }
    let Some(sid) = file.strip_suffix(".json") else {
        return error(404, 20404, "The requested resource was not found");
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    for (key, value) in &form {
        let is_url = matches!(key.as_str(), "VoiceUrl" | "StatusCallback" | "SmsUrl");
        let absolute = value.starts_with("https://") || value.starts_with("http://");
        if is_url && !value.is_empty() && !absolute {
            // Twilio refuses a relative or malformed callback URL with 400 (error 21502 is
            // what its documentation lists for an invalid callback URL; the exact code per
            // parameter is not confirmed).
            return error(400, 21502, &format!("{key} is not a valid URL"));
        }
    }
    let Some(h) = s
        .held
        .iter_mut()
        .find(|h| h.account == account && h.sid == sid)
    else {
        return error(404, 20404, "The requested resource was not found");
    };
    if let Some(v) = form.get("VoiceUrl") {
        h.voice_url = Some(v.clone());
    }
    if let Some(v) = form.get("StatusCallback") {
        h.status_callback = Some(v.clone());
    }
    if let Some(v) = form.get("SmsUrl") {
        h.sms_url = Some(v.clone());
    }
    Json(describe(h)).into_response()
}

async fn list(
    State(state): State<SharedNumbers>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().unwrap();
    s.lookups += 1;
    if let Some(status) = s.fail {
        return error(status, 20500, "Internal Server Error");
    }
    if !authorized(&s, &account, &headers) {
        return error(401, 20003, "Authenticate");
    }
    let q: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let pattern = q.get("PhoneNumber").cloned().unwrap_or_default();
    let size: usize = q
        .get("PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let page: usize = q.get("Page").and_then(|v| v.parse().ok()).unwrap_or(0);
    let found: Vec<&Held> = s
        .held
        .iter()
        .filter(|h| h.account == account && matches(&pattern, &h.number))
        .collect();
    let base = format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json");
    let page_uri = |p: usize| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        if !pattern.is_empty() {
            ser.append_pair("PhoneNumber", &pattern);
        }
        ser.append_pair("PageSize", &size.to_string())
            .append_pair("Page", &p.to_string());
        if p > 0 {
            ser.append_pair("PageToken", &format!("PA{p:032x}"));
        }
        format!("{base}?{}", ser.finish())
    };
    let items: Vec<Value> = found
        .iter()
        .skip(page * size)
        .take(size)
        .map(|h| describe(h))
        .collect();
    let more = (page + 1) * size < found.len();
    Json(json!({
        "incoming_phone_numbers": items,
        "page": page, "page_size": size, "start": page * size,
        "end": (page * size + items.len()).saturating_sub(1),
        "uri": page_uri(page), "first_page_uri": page_uri(0),
        "previous_page_uri": if page > 0 { Value::String(page_uri(page - 1)) } else { Value::Null },
        "next_page_uri": if more { Value::String(page_uri(page + 1)) } else { Value::Null },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn partial_patterns_and_wildcards_match_like_twilio() {
        assert!(super::matches("+15555550123", "+15555550123"));
        assert!(super::matches("5550123", "+15555550123"));
        assert!(super::matches("+1555***0123", "+15555550123"));
        assert!(!super::matches(" 15555550123", "+15555550123"));
        assert!(!super::matches("+15555550124", "+15555550123"));
    }
}
