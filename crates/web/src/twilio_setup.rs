//! Guided Twilio setup: the exact webhook URLs to paste, a check of the organization's
//! credentials against Twilio, and importing the account's numbers (IncomingPhoneNumbers):
//! registered here for the chosen agent, proven, and, on request, their voice, status and
//! messaging webhooks pointed at this server through the Twilio API, so nothing is copied by
//! hand.

use crate::AppState;
use serde::Serialize;
use switchboard_domain::entities::NewPhoneNumber;
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_domain::values::{NumberChannel, NumberVerification, PhoneNumber};
use switchboard_store::StoreError;
use switchboard_twilio::numbers::{AccountNumber, NumberWebhooks};
use switchboard_twilio::rest::RestError;

/// Where Twilio must send requests for this server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookUrls {
    /// A number's "A call comes in" webhook (HTTP POST).
    pub voice: String,
    /// A number's call "Status callback URL" (HTTP POST).
    pub voice_status: String,
    /// A number's "A message comes in" webhook (HTTP POST).
    pub messaging: String,
}

/// The URLs under `public` (`None` without a public URL: Twilio could not reach the server).
pub fn webhook_urls(public: Option<&str>) -> Option<WebhookUrls> {
    let base = public?.trim_end_matches('/');
    Some(WebhookUrls {
        voice: format!("{base}/twilio/voice"),
        voice_status: format!("{base}/twilio/voice/status"),
        messaging: format!("{base}/twilio/messaging"),
    })
}

/// What Twilio said about the organization's credentials.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CredentialCheck {
    /// Twilio accepted them.
    pub ok: bool,
    /// When not: `not_configured`, `credentials_rejected` or `twilio_unreachable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// For people.
    pub message: String,
    /// The account's name in the Twilio console (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// `active`, `suspended` or `closed` (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    /// `Trial` or `Full` (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
}

impl CredentialCheck {
    fn failed(reason: &'static str, message: impl Into<String>) -> CredentialCheck {
        CredentialCheck {
            ok: false,
            reason: Some(reason),
            message: message.into(),
            account_name: None,
            account_status: None,
            account_type: None,
        }
    }
}

/// Why the account's numbers could not be listed or imported.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Twilio refused or failed; the check says how.
    #[error("{}", .0.message)]
    Twilio(CredentialCheck),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn twilio_failure(e: &RestError) -> CredentialCheck {
    match e {
        RestError::Api { status, code, .. } if matches!(status, 401 | 403) => {
            CredentialCheck::failed(
                "credentials_rejected",
                format!(
                    "Twilio refused the account SID and auth token (HTTP {status}{}): copy both \
                     again from the Twilio console",
                    code.map(|c| format!(", error {c}")).unwrap_or_default()
                ),
            )
        }
        other => CredentialCheck::failed(
            "twilio_unreachable",
            format!("could not ask Twilio: {}", other.summary()),
        ),
    }
}

/// Asks Twilio for the account with the organization's credentials.
pub async fn check_credentials(st: &AppState, org: &OrgId) -> Result<CredentialCheck, StoreError> {
    let Some(creds) = st.store.twilio_credentials(org).await? else {
        return Ok(CredentialCheck::failed(
            "not_configured",
            "no Twilio account SID and auth token are set: add them in Settings",
        ));
    };
    let sid = &creds.account_sid;
    Ok(
        match st
            .voice
            .twilio
            .at(creds.space.as_deref())
            .fetch_account(sid, creds.auth_token.expose())
            .await
        {
            Ok(a) if a.status == "active" || a.status.is_empty() => CredentialCheck {
                ok: true,
                reason: None,
                message: format!("Twilio accepted the credentials of account {sid}"),
                account_name: Some(a.friendly_name),
                account_status: Some(a.status),
                account_type: Some(a.kind),
            },
            Ok(a) => CredentialCheck {
                ok: false,
                reason: Some("credentials_rejected"),
                message: format!("Twilio account {sid} is {}: it cannot take calls", a.status),
                account_name: Some(a.friendly_name),
                account_status: Some(a.status),
                account_type: Some(a.kind),
            },
            Err(e) => {
                tracing::warn!(org_id = %org, error = %e, "Twilio credential check failed");
                twilio_failure(&e)
            }
        },
    )
}

/// One number of the Twilio account, as the import page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountNumberView {
    /// E.164.
    pub number: String,
    /// Twilio's id (`PN...`).
    pub sid: String,
    /// Can receive calls.
    pub voice: bool,
    /// Can receive text messages.
    pub sms: bool,
    /// Its "A call comes in" webhook now.
    pub voice_url: Option<String>,
    /// Its "A message comes in" webhook now.
    pub sms_url: Option<String>,
    /// Its calls already come to this server (the voice webhook is ours).
    pub points_here: bool,
    /// The channels it is registered for in this organization (`voice`, `sms`).
    pub registered: Vec<String>,
}

fn view(
    n: &AccountNumber,
    urls: Option<&WebhookUrls>,
    registered: Vec<String>,
) -> AccountNumberView {
    AccountNumberView {
        number: n.number.phone_number.clone(),
        sid: n.number.sid.clone(),
        voice: n.number.voice,
        sms: n.number.sms,
        voice_url: n.voice_url.clone(),
        sms_url: n.sms_url.clone(),
        points_here: urls.is_some_and(|u| n.voice_url.as_deref() == Some(u.voice.as_str())),
        registered,
    }
}

async fn account_list(st: &AppState, org: &OrgId) -> Result<Vec<AccountNumber>, SetupError> {
    let creds = st.store.twilio_credentials(org).await?.ok_or_else(|| {
        SetupError::Twilio(CredentialCheck::failed(
            "not_configured",
            "no Twilio account SID and auth token are set: add them in Settings",
        ))
    })?;
    st.voice
        .twilio
        .at(creds.space.as_deref())
        .list_incoming_numbers(&creds.account_sid, creds.auth_token.expose())
        .await
        .map_err(|e| {
            tracing::warn!(org_id = %org, error = %e, "cannot list the Twilio account's numbers");
            SetupError::Twilio(twilio_failure(&e))
        })
}

/// The account's numbers, with where their webhooks point and what is registered here.
pub async fn account_numbers(
    st: &AppState,
    org: &OrgId,
) -> Result<Vec<AccountNumberView>, SetupError> {
    let list = account_list(st, org).await?;
    let ours = st.store.all_numbers(org).await?;
    let urls = webhook_urls(st.twilio.public_url.as_deref());
    Ok(list
        .iter()
        .map(|n| {
            let registered = ours
                .iter()
                .filter(|o| o.number.as_str() == n.number.phone_number)
                .map(|o| o.channel.as_str().to_owned())
                .collect();
            view(n, urls.as_ref(), registered)
        })
        .collect())
}

/// What happened to one number of an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// E.164.
    pub number: String,
    /// Channels registered by this import (`voice`, `sms`).
    pub registered: Vec<String>,
    /// Channels that were registered already (kept as they were).
    pub already_registered: Vec<String>,
    /// The registrations are proven (`verified`).
    pub verified: bool,
    /// Its webhooks now point at this server.
    pub webhooks_configured: bool,
    /// What went wrong, if anything (the rest of the number's import stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Imports `numbers` (E.164) of the Twilio account: registers each for its capabilities
/// (voice, SMS) with `agent`, proves the registrations, and with `configure` points the
/// number's webhooks here. Numbers are handled one by one; each result says what happened.
pub async fn import(
    st: &AppState,
    org: &OrgId,
    numbers: &[PhoneNumber],
    agent: Option<&AgentId>,
    configure: bool,
) -> Result<Vec<ImportResult>, SetupError> {
    let urls = webhook_urls(st.twilio.public_url.as_deref());
    let list = account_list(st, org).await?;
    let creds = st.store.twilio_credentials(org).await?.ok_or_else(|| {
        SetupError::Twilio(CredentialCheck::failed(
            "not_configured",
            "no Twilio credentials",
        ))
    })?;
    let mut out = Vec::new();
    for wanted in numbers {
        let mut r = ImportResult {
            number: wanted.as_str().to_owned(),
            registered: Vec::new(),
            already_registered: Vec::new(),
            verified: false,
            webhooks_configured: false,
            error: None,
        };
        let Some(found) = list
            .iter()
            .find(|n| n.number.phone_number == wanted.as_str())
        else {
            r.error = Some(format!(
                "{} is not a number of Twilio account {}",
                wanted.as_str(),
                creds.account_sid
            ));
            out.push(r);
            continue;
        };
        let channels: Vec<NumberChannel> = [
            (found.number.voice, NumberChannel::Voice),
            (found.number.sms, NumberChannel::Sms),
        ]
        .into_iter()
        .filter_map(|(capable, c)| capable.then_some(c))
        .collect();
        let ours = st.store.all_numbers(org).await?;
        let mut all_verified = !channels.is_empty();
        for channel in &channels {
            let existing = ours
                .iter()
                .find(|o| o.number == *wanted && o.channel == *channel)
                .cloned();
            let number = match existing {
                Some(n) => {
                    r.already_registered.push(channel.as_str().to_owned());
                    n
                }
                None => {
                    let created = st
                        .store
                        .create_number(
                            org,
                            NewPhoneNumber {
                                number: wanted.clone(),
                                channel: *channel,
                                agent_id: agent.cloned(),
                                active: None,
                            },
                        )
                        .await;
                    match created {
                        Ok(n) => {
                            r.registered.push(channel.as_str().to_owned());
                            n
                        }
                        Err(StoreError::Conflict(m)) => {
                            r.error = Some(format!("{}: {m}", channel.as_str()));
                            all_verified = false;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let n = if number.verification == NumberVerification::Verified {
                number
            } else {
                crate::numbers::verify(&st.store, &st.voice.twilio, org, &number.id).await?
            };
            all_verified &= n.verification == NumberVerification::Verified;
        }
        r.verified = all_verified;
        if configure {
            match &urls {
                None => {
                    r.error.get_or_insert_with(|| {
                        "SWITCHBOARD_PUBLIC_URL is not set, so there is no address to give Twilio"
                            .into()
                    });
                }
                Some(u) => {
                    let hooks = NumberWebhooks {
                        voice_url: u.voice.clone(),
                        status_callback: u.voice_status.clone(),
                        sms_url: found.number.sms.then(|| u.messaging.clone()),
                    };
                    match st
                        .voice
                        .twilio
                        .at(creds.space.as_deref())
                        .configure_number(
                            &creds.account_sid,
                            creds.auth_token.expose(),
                            &found.number.sid,
                            &hooks,
                        )
                        .await
                    {
                        Ok(_) => r.webhooks_configured = true,
                        Err(e) => {
                            tracing::warn!(org_id = %org, number = %wanted.as_str(), error = %e, "cannot set a number's webhooks");
                            r.error = Some(format!(
                                "the webhooks could not be set: {}",
                                twilio_failure(&e).message
                            ));
                        }
                    }
                }
            }
        }
        tracing::info!(org_id = %org, number = %wanted.as_str(), registered = ?r.registered, configured = r.webhooks_configured, "Twilio number imported");
        out.push(r);
    }
    Ok(out)
}
