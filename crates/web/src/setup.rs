//! The first-day checklist: what an organization still needs before its agent can take real
//! calls: Twilio credentials that Twilio accepts, a public URL Twilio can reach, a proven
//! number, an agent, a model key, an e-mail server when call e-mails are on, and a first call.
//! Shown on the overview until every step is done, and by `GET /api/v1/setup`.
//!
//! Two steps ask the outside world (Twilio for the credentials, the public URL for
//! reachability); their answers are kept for a minute per organization so a page view does not
//! wait on them each time.

use crate::AppState;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_domain::entities::CallFilter;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::NumberVerification;
use switchboard_store::StoreError;

/// How long an outside answer is reused.
const TTL: Duration = Duration::from_secs(60);
/// How long the public-URL probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One step.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetupStep {
    /// Stable key: `twilio_credentials`, `public_url`, `phone_number`, `agent`, `model_key`,
    /// `email`, `test_call`.
    pub key: &'static str,
    /// What the step is.
    pub title: &'static str,
    /// Done.
    pub done: bool,
    /// Where it stands, or what to do.
    pub detail: String,
    /// The dashboard page that does it.
    pub href: &'static str,
}

/// The checklist.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Setup {
    /// Every step is done.
    pub complete: bool,
    /// The steps, in the order to do them.
    pub steps: Vec<SetupStep>,
    /// Where Twilio must send requests (absent without a public URL).
    pub webhook_urls: Option<crate::twilio_setup::WebhookUrls>,
}

/// Outside answers kept for [`TTL`]: per organization and credentials, and per public URL.
#[derive(Debug, Default)]
pub struct Probes {
    credentials: Mutex<HashMap<String, (Instant, bool, String)>>,
    public_url: Mutex<Option<(Instant, bool, String)>>,
}

impl Probes {
    fn fresh<T: Clone>(entry: Option<&(Instant, T, String)>) -> Option<(T, String)> {
        entry
            .filter(|(at, _, _)| at.elapsed() < TTL)
            .map(|(_, v, d)| (v.clone(), d.clone()))
    }
}

async fn credentials_step(st: &AppState, org: &OrgId) -> Result<(bool, String), StoreError> {
    let Some(creds) = st.store.twilio_credentials(org).await? else {
        return Ok((
            false,
            "Add the account SID and auth token from the Twilio console.".into(),
        ));
    };
    // A change of credentials asks again.
    let key = format!(
        "{org}:{}:{}",
        creds.account_sid,
        switchboard_domain::auth::hash_api_key(creds.auth_token.expose())
    );
    let cached = {
        let map = st
            .setup
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Probes::fresh(map.get(&key))
    };
    if let Some(v) = cached {
        return Ok(v);
    }
    let check = crate::twilio_setup::check_credentials(st, org).await?;
    let answer = (check.ok, check.message.clone());
    // Twilio being unreachable is not remembered: the next view asks again.
    if check.reason != Some("twilio_unreachable") {
        st.setup
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), answer.0, answer.1.clone()));
    }
    Ok(answer)
}

/// Whether this server answers at its public URL (`GET <public>/healthz`).
async fn probe_public_url(st: &AppState, base: &str) -> (bool, String) {
    let cached = {
        let slot = st
            .setup
            .public_url
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Probes::fresh(slot.as_ref())
    };
    if let Some(v) = cached {
        return v;
    }
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let answer = match reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
    {
        Ok(client) => match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => (true, format!("{base} answers")),
            Ok(r) => (
                false,
                format!(
                    "{url} answered HTTP {}: is it this server?",
                    r.status().as_u16()
                ),
            ),
            Err(e) => (
                false,
                format!("{url} could not be reached from this server ({e})"),
            ),
        },
        Err(e) => (false, e),
    };
    *st.setup
        .public_url
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), answer.0, answer.1.clone()));
    answer
}

/// The organization's checklist.
pub async fn checklist(st: &AppState, org: &OrgId) -> Result<Setup, StoreError> {
    let mut steps = Vec::new();
    let (ok, detail) = credentials_step(st, org).await?;
    steps.push(SetupStep {
        key: "twilio_credentials",
        title: "Twilio credentials",
        done: ok,
        detail,
        href: "/settings",
    });

    let calls = st
        .store
        .list_calls(org, &CallFilter::default(), Some(1), None)
        .await?
        .data;
    let public = st.twilio.public_url.clone();
    let (ok, detail) = match &public {
        None => (
            false,
            "Set SWITCHBOARD_PUBLIC_URL to the https:// address Twilio reaches this server at (a tunnel works for trying it).".to_owned(),
        ),
        // A call Twilio sent is proof enough; otherwise the server asks its own address.
        Some(base)
            if calls
                .iter()
                .any(|c| switchboard_domain::call::valid_carrier_sid(&c.call_sid)) =>
        {
            (true, format!("Twilio has reached {base}"))
        }
        Some(base) => probe_public_url(st, base).await,
    };
    steps.push(SetupStep {
        key: "public_url",
        title: "Public URL Twilio can reach",
        done: ok,
        detail,
        href: "/settings",
    });

    let numbers = st.store.all_numbers(org).await?;
    let verified = numbers
        .iter()
        .filter(|n| n.verification == NumberVerification::Verified)
        .count();
    steps.push(SetupStep {
        key: "phone_number",
        title: "A phone number",
        done: verified > 0,
        detail: match (numbers.len(), verified) {
            (0, _) => "Import a number of your Twilio account (or register one).".into(),
            (n, 0) => {
                format!("{n} registered, none proven with Twilio yet: see why on Phone numbers.")
            }
            (n, v) => format!("{v} of {n} proven with Twilio."),
        },
        href: "/phone-numbers",
    });

    let agents = st.store.list_agents(org, Some(1), None).await?.data;
    steps.push(SetupStep {
        key: "agent",
        title: "An agent",
        done: !agents.is_empty(),
        detail: match agents.first() {
            Some(a) => format!("{} and maybe others.", a.name),
            None => "Create the agent that answers: its instructions, greeting and voice.".into(),
        },
        href: if agents.is_empty() {
            "/agents/new"
        } else {
            "/agents"
        },
    });

    let voice = st.voice.config.api_key.is_some();
    steps.push(SetupStep {
        key: "model_key",
        title: "A model key",
        done: voice,
        detail: match (voice, st.text_model) {
            (true, true) => "Voice and text models are configured.".into(),
            (true, false) => "The voice model is configured; text replies use no model until SWITCHBOARD_LLM_* or SWITCHBOARD_OPENAI_API_KEY is set.".into(),
            (false, _) => "Set SWITCHBOARD_OPENAI_API_KEY so the agent can speak (the operator sets it where the server runs).".into(),
        },
        href: "/settings",
    });

    let settings = st.store.get_settings(org).await?;
    let wants_email = !settings.notification_emails.is_empty();
    steps.push(SetupStep {
        key: "email",
        title: "E-mail server (for call e-mails)",
        done: !wants_email || st.smtp_configured,
        detail: match (wants_email, st.smtp_configured) {
            (false, _) => "Call e-mails are off (no recipients), so no e-mail server is needed.".into(),
            (true, true) => "Call e-mails go through the configured SMTP server.".into(),
            (true, false) => format!(
                "{} recipient(s) are set but no SMTP server is: set SWITCHBOARD_SMTP_URL and SWITCHBOARD_SMTP_FROM, or remove the recipients.",
                settings.notification_emails.len()
            ),
        },
        href: "/settings",
    });

    let called = calls.first();
    steps.push(SetupStep {
        key: "test_call",
        title: "A first call",
        done: called.is_some(),
        detail: match called {
            Some(c) => format!("The last call came from {}.", c.from_number),
            None => {
                "Call your number (or use \"Try it\" on the agent's page) to hear the agent.".into()
            }
        },
        href: "/calls",
    });

    Ok(Setup {
        complete: steps.iter().all(|s| s.done),
        steps,
        webhook_urls: crate::twilio_setup::webhook_urls(public.as_deref()),
    })
}
