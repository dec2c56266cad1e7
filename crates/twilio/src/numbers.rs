//! IncomingPhoneNumbers: the numbers a Twilio account holds, to prove that a number a tenant
//! registers is theirs (`GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`).

use crate::rest::{RestClient, RestError};

/// Pages followed at most: the `PhoneNumber` filter narrows the list to a handful.
const MAX_PAGES: usize = 20;

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
            let list = body
                .get("incoming_phone_numbers")
                .and_then(|v| v.as_array())
                .ok_or_else(|| {
                    RestError::Malformed("no `incoming_phone_numbers` in the answer".into())
                })?;
            for n in list {
                if n.get("phone_number").and_then(|v| v.as_str()) == Some(number) {
                    let cap = |name: &str| {
                        n.pointer(&format!("/capabilities/{name}"))
                            .and_then(|v| v.as_bool())
                            .unwrap_or(false)
                    };
                    return Ok(Some(IncomingNumber {
                        sid: n
                            .get("sid")
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        phone_number: number.to_owned(),
                        voice: cap("voice"),
                        sms: cap("sms"),
                    }));
                }
            }
            match body.get("next_page_uri").and_then(|v| v.as_str()) {
                Some(next) if next.starts_with(&list_path) => {
                    url = reqwest::Url::parse(&format!("{}{next}", self.base))
                        .map_err(|e| RestError::Malformed(format!("bad next_page_uri: {e}")))?;
                }
                Some(other) if !other.is_empty() => {
                    return Err(RestError::Malformed(format!(
                        "next_page_uri outside the number list: {other}"
                    )));
                }
                _ => return Ok(None),
            }
        }
        Err(RestError::Malformed(format!(
            "more than {MAX_PAGES} pages of numbers matched {number}"
        )))
    }
}
