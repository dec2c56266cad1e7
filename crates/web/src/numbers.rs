//! Proving numbers: a number routes in production only once Switchboard has confirmed, with
//! the organization's own Twilio credentials (IncomingPhoneNumbers), that the number is in
//! that Twilio account. Checked when a number is registered, again for all of an
//! organization's numbers when its credentials are added or changed, on demand
//! (`POST /api/v1/phone-numbers/{id}/verify`, the dashboard's "Verify" button,
//! `switchboard numbers verify`), and once after an upgrade for numbers never checked.

use switchboard_domain::entities::{verification_reason as reason, OwnedNumber};
use switchboard_domain::ids::{OrgId, PhoneNumberId};
use switchboard_domain::values::{Carrier, NumberChannel};
use switchboard_domain::Timestamp;
use switchboard_store::{NumberCheck, Store, StoreError};
use switchboard_twilio::rest::{RestClient, RestError};

/// Asks Twilio whether `number` is in the organization's account and can serve its channel.
pub async fn check(
    store: &Store,
    rest: &RestClient,
    org: &OrgId,
    number: &OwnedNumber,
) -> NumberCheck {
    let creds = match store.twilio_credentials(org).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return NumberCheck::Pending(
                reason::NO_CREDENTIALS,
                "the organization has no Twilio credentials to prove it with: add them in \
                 Settings (PUT /api/v1/settings)"
                    .into(),
            )
        }
        Err(e) => {
            tracing::error!(org_id = %org, error = %e, "cannot read Twilio credentials to verify a number");
            return NumberCheck::Unreachable("the credentials could not be read; try again".into());
        }
    };
    let sid = &creds.account_sid;
    // What the messages call the carrier's account and its credentials.
    let (carrier, account, credentials) = match creds.carrier {
        Carrier::Twilio => ("Twilio", "Twilio account", "the account SID and auth token"),
        Carrier::SignalWire => (
            "SignalWire",
            "SignalWire project",
            "the SignalWire space, project id and API token",
        ),
    };
    match rest
        .at(creds.space.as_deref())
        .find_incoming_number(sid, creds.auth_token.expose(), number.number.as_str())
        .await
    {
        Ok(Some(found)) => {
            let (capable, what) = match number.channel {
                NumberChannel::Voice => (found.voice, "receive calls"),
                NumberChannel::Sms => (found.sms, "receive text messages"),
                // A WhatsApp sender is registered with Meta apart from the number's
                // capabilities; being in the account is what can be proven here.
                NumberChannel::Whatsapp => (true, ""),
            };
            if capable {
                NumberCheck::Verified(format!("in {account} {sid} ({})", found.sid))
            } else {
                NumberCheck::Pending(
                    reason::MISSING_CAPABILITY,
                    format!("the number is in {account} {sid} but cannot {what}"),
                )
            }
        }
        Ok(None) => {
            let hint = if number.channel == NumberChannel::Whatsapp {
                " (a WhatsApp sender outside the account, such as Twilio's sandbox, can only be \
                 verified by the operator: `switchboard numbers verify --manual`)"
            } else {
                ""
            };
            NumberCheck::Pending(
                reason::NOT_IN_ACCOUNT,
                format!(
                    "{account} {sid} has no number {}{hint}",
                    number.number.as_str()
                ),
            )
        }
        Err(RestError::Api { status, code, .. }) if matches!(status, 401 | 403 | 404) => {
            NumberCheck::Pending(
                reason::CREDENTIALS_REJECTED,
                format!(
                    "{carrier} refused the organization's credentials (HTTP {status}{}): check \
                     {credentials} in Settings",
                    code.map(|c| format!(", error {c}")).unwrap_or_default()
                ),
            )
        }
        Err(e) => {
            tracing::warn!(org_id = %org, number = %number.number.as_str(), carrier, error = %e, "cannot verify a number with its carrier");
            NumberCheck::Unreachable(format!("could not ask {carrier}: {}", e.summary()))
        }
    }
}

/// The organization's Twilio account and token as they stand (to notice a change made while
/// a check was under way).
async fn credentials_now(store: &Store, org: &OrgId) -> Option<(String, String)> {
    match store.twilio_credentials(org).await {
        Ok(Some(c)) => Some((c.account_sid, c.auth_token.expose().to_owned())),
        _ => None,
    }
}

/// Checks one number and records the outcome; returns the number as it now stands. When the
/// credentials change while Twilio is being asked, the answer is about the old ones: it is
/// not recorded, and the number is checked again with the new ones.
pub async fn verify(
    store: &Store,
    rest: &RestClient,
    org: &OrgId,
    id: &PhoneNumberId,
) -> Result<OwnedNumber, StoreError> {
    let number = store.get_number(org, id).await?;
    let mut outcome = NumberCheck::Unreachable("the credentials kept changing; try again".into());
    for _ in 0..3 {
        let before = credentials_now(store, org).await;
        let answer = check(store, rest, org, &number).await;
        if credentials_now(store, org).await == before {
            outcome = answer;
            break;
        }
    }
    let after = store
        .record_number_check(org, id, outcome, Timestamp::now())
        .await?;
    log_outcome(org, &after);
    Ok(after)
}

/// Checks every number of an organization.
pub async fn verify_org(
    store: &Store,
    rest: &RestClient,
    org: &OrgId,
) -> Result<Vec<OwnedNumber>, StoreError> {
    let mut out = Vec::new();
    for n in store.all_numbers(org).await? {
        out.push(verify(store, rest, org, &n.id).await?);
    }
    Ok(out)
}

/// Checks, in every organization, the numbers registered before `before` that were never
/// checked (rows from before verification existed; numbers registered later are checked as
/// they are registered). Run once in the background when a server starts.
pub async fn verify_unchecked_everywhere(
    store: &Store,
    rest: &RestClient,
    before: Timestamp,
) -> Result<usize, StoreError> {
    let mut checked = 0;
    for org in store.all_org_ids().await? {
        for n in store.all_numbers(&org).await? {
            if n.created_at < before
                && n.verification_reason.as_deref() == Some(reason::NOT_CHECKED)
            {
                verify(store, rest, &org, &n.id).await?;
                checked += 1;
            }
        }
    }
    Ok(checked)
}

/// Re-checks all of an organization's numbers in the background (its credentials changed).
pub(crate) fn spawn_verify_org(store: Store, rest: RestClient, org: OrgId) {
    tokio::spawn(async move {
        if let Err(e) = verify_org(&store, &rest, &org).await {
            tracing::error!(org_id = %org, error = %e, "could not re-verify the organization's numbers");
        }
    });
}

fn log_outcome(org: &OrgId, n: &OwnedNumber) {
    match n.verification_reason.as_deref() {
        None => {
            tracing::info!(org_id = %org, number = %n.number.as_str(), channel = %n.channel, "number verified")
        }
        Some(r) => {
            tracing::warn!(org_id = %org, number = %n.number.as_str(), channel = %n.channel, reason = r,
            message = n.verification_message.as_deref().unwrap_or_default(), "number pending verification")
        }
    }
}
