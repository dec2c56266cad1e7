//! IncomingPhoneNumbers: the numbers a Twilio account holds, to prove that a number a tenant
//! registers is theirs (`GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`), to
//! list them for an import, and to point their webhooks at Switchboard
//! (`POST .../IncomingPhoneNumbers/{Sid}.json`); and the account itself, to check credentials.

use crate::rest::{RestClient, RestError};

/// Pages followed at most: the `PhoneNumber` filter narrows the list to a handful.
const MAX_PAGES: usize = 20;
/// Numbers listed for an import at most (20 pages of 50).
pub const MAX_LISTED: usize = 1000;

/// A number of the account, as IncomingPhoneNumbers describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingNumber {
    /// `PN...`.
    pub sid: String,
    /// E.164.
    pub phone_number: String,
    /// Can receive calls.
    pub voice: bool,
    /// Can receive text messages.
    pub sms: bool,
}

/// The account's numbers, with the webhooks Twilio calls for each, for the import page.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountNumber {
    /// The number and its capabilities.
    pub number: IncomingNumber,
    /// Where Twilio sends its calls (`voice_url`), if set.
    pub voice_url: Option<String>,
    /// Where Twilio reports its calls' progress (`status_callback`), if set.
    pub status_callback: Option<String>,
    /// Where Twilio sends its text messages (`sms_url`), if set.
    pub sms_url: Option<String>,
}

/// The account itself (`GET /2010-04-01/Accounts/{sid}.json`): proof that the credentials work.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInfo {
    /// The account's name in the console.
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// `Trial` or `Full`.
    pub kind: String,
}

/// The webhooks to set on a number.
#[derive(Debug, Clone)]
pub struct NumberWebhooks {
    /// `VoiceUrl` (POST).
    pub voice_url: String,
    /// `StatusCallback` (POST).
    pub status_callback: String,
    /// `SmsUrl` (POST); `None` leaves messaging as it is (a number without SMS).
    pub sms_url: Option<String>,
}

fn text(n: &serde_json::Value, key: &str) -> Option<String> {
    n.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The numbers of one page of the list.
fn numbers_of(body: &serde_json::Value) -> Result<&Vec<serde_json::Value>, RestError> {
    body.get("incoming_phone_numbers")
        .and_then(|v| v.as_array())
        .ok_or_else(|| RestError::Malformed("no `incoming_phone_numbers` in the answer".into()))
}

fn parse_number(n: &serde_json::Value) -> Option<AccountNumber> {
    let cap = |name: &str| {
        n.pointer(&format!("/capabilities/{name}"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    Some(AccountNumber {
        number: IncomingNumber {
            sid: text(n, "sid")?,
            phone_number: text(n, "phone_number")?,
            voice: cap("voice"),
            sms: cap("sms"),
        },
        voice_url: text(n, "voice_url"),
        status_callback: text(n, "status_callback"),
        sms_url: text(n, "sms_url"),
    })
}

impl RestClient {
    /// The account's number that is exactly `number` (E.164), if it holds one.
    ///
    /// Twilio's `PhoneNumber` filter matches partial numbers (and `*` as any digit), so
    /// several numbers can come back: only an exact `phone_number` counts. The list is paged;
    /// `next_page_uri` is followed (relative to the API base, and only within this account's
    /// list) up to [`MAX_PAGES`] pages.
    pub async fn find_incoming_number(
        &self,
        account_sid: &str,
        auth_token: &str,
        number: &str,
    ) -> Result<Option<IncomingNumber>, RestError> {
        let list_path = format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json");
        let mut url = reqwest::Url::parse(&format!("{}{list_path}", self.base))
            .map_err(|e| RestError::Malformed(format!("bad Twilio API URL: {e}")))?;
        // A real encoder: `+` must travel as `%2B` or Twilio reads a space.
        url.query_pairs_mut()
            .append_pair("PhoneNumber", number)
            .append_pair("PageSize", "50");
        for _ in 0..MAX_PAGES {
            let body = self.get_json(account_sid, auth_token, url.as_str()).await?;
            let list = numbers_of(&body)?;
            for n in list {
                if n.get("phone_number").and_then(|v| v.as_str()) == Some(number) {
                    if let Some(found) = parse_number(n) {
                        return Ok(Some(found.number));
                    }
                }
            }
            match self.next_page(&body, &list_path)? {
                Some(next) => {
                    url = reqwest::Url::parse(&next)
                        .map_err(|e| RestError::Malformed(format!("bad next_page_uri: {e}")))?;
                }
                None => return Ok(None),
            }
        }
        Err(RestError::Malformed(format!(
            "more than {MAX_PAGES} pages of numbers matched {number}"
        )))
    }
}

impl RestClient {
    /// The account, which answers only for the right credentials (401, Twilio error 20003,
    /// otherwise).
    pub async fn fetch_account(
        &self,
        account_sid: &str,
        auth_token: &str,
    ) -> Result<AccountInfo, RestError> {
        let url = format!("{}/2010-04-01/Accounts/{account_sid}.json", self.base);
        let body = self.get_json(account_sid, auth_token, &url).await?;
        Ok(AccountInfo {
            friendly_name: text(&body, "friendly_name").unwrap_or_default(),
            status: text(&body, "status").unwrap_or_default(),
            kind: text(&body, "type").unwrap_or_default(),
        })
    }

    /// Every number of the account with its webhooks, oldest first as Twilio lists them, at
    /// most [`MAX_LISTED`] (the pages are followed within this account's list only).
    pub async fn list_incoming_numbers(
        &self,
        account_sid: &str,
        auth_token: &str,
    ) -> Result<Vec<AccountNumber>, RestError> {
        let list_path = format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json");
        let mut url = format!("{}{list_path}?PageSize=50", self.base);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self.get_json(account_sid, auth_token, &url).await?;
            let list = numbers_of(&body)?;
            out.extend(list.iter().filter_map(parse_number));
            match self.next_page(&body, &list_path)? {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Points a number's calls (and, when given, its text messages) at `hooks`, all by POST.
    /// Answers the number as Twilio now describes it.
    pub async fn configure_number(
        &self,
        account_sid: &str,
        auth_token: &str,
        number_sid: &str,
        hooks: &NumberWebhooks,
    ) -> Result<AccountNumber, RestError> {
        if !crate::valid_sid(number_sid) {
            return Err(RestError::Malformed(format!(
                "not a number sid: {number_sid}"
            )));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{number_sid}.json",
            self.base
        );
        let mut form = vec![
            ("VoiceUrl", hooks.voice_url.as_str()),
            ("VoiceMethod", "POST"),
            ("StatusCallback", hooks.status_callback.as_str()),
            ("StatusCallbackMethod", "POST"),
        ];
        if let Some(sms) = &hooks.sms_url {
            form.push(("SmsUrl", sms.as_str()));
            form.push(("SmsMethod", "POST"));
        }
        let body = self.post(account_sid, auth_token, &url, &form).await?;
        parse_number(&body).ok_or_else(|| {
            RestError::Malformed("the updated number has no `sid` or `phone_number`".into())
        })
    }
}

impl RestClient {
    /// The absolute URL of the list's next page (`next_page_uri` is relative to the API
    /// base), followed only within the account's own number list; `None` on the last page.
    fn next_page(
        &self,
        body: &serde_json::Value,
        list_path: &str,
    ) -> Result<Option<String>, RestError> {
        match body.get("next_page_uri").and_then(|v| v.as_str()) {
            Some(next) if next.starts_with(list_path) => Ok(Some(format!("{}{next}", self.base))),
            Some(other) if !other.is_empty() => Err(RestError::Malformed(format!(
                "next_page_uri outside the number list: {other}"
            ))),
            _ => Ok(None),
        }
    }
}
