//! The fake's IncomingPhoneNumbers list: the numbers each account holds, behind HTTP Basic
//! auth checked like Twilio does (401 with error 20003 for an unknown account or a wrong
//! token), with Twilio's quirks: `PhoneNumber` matches partial numbers and `*` as any digit,
//! the list is paged (`PageSize`, default 50) with a relative `next_page_uri`, and the query
//! is form-decoded, so a `+` sent unencoded arrives as a space and matches nothing.

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
        });
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
    let creds = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let authorized = creds
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(user, token)| {
            user == account && s.accounts.get(&account).is_some_and(|t| t == token)
        });
    if !authorized {
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
        .map(|h| {
            json!({
                "account_sid": h.account, "sid": h.sid, "phone_number": h.number,
                "friendly_name": h.number, "status": "in-use", "origin": "twilio",
                "capabilities": {"voice": h.voice, "sms": h.sms, "mms": h.sms, "fax": false},
                "voice_url": null, "sms_url": null,
                "uri": format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{}.json", h.sid),
            })
        })
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
