//! What `doctor` asks outside the process: whether the model endpoints answer and take the
//! key, whether the SMTP server greets us, and whether organizations expect e-mails that no
//! SMTP server could send. Each question has a short timeout; a network failure is a warning
//! (the server may reach what this shell cannot), a refused key or a missing SMTP server a
//! failure.

use super::{Level, Report};
use crate::config::Config;
use std::time::Duration;
use switchboard_domain::Secret;
use switchboard_store::Store;

/// How long one probe waits.
const PROBE: Duration = Duration::from_secs(4);

/// `GET <base>/models`: every OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama)
/// lists its models there.
async fn probe_models(base: &str, key: Option<&Secret>) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(PROBE)
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.get(format!("{}/models", base.trim_end_matches('/')));
    if let Some(k) = key {
        req = req.bearer_auth(k.expose());
    }
    req.send().await.map(|r| r.status().as_u16()).map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {} s", PROBE.as_secs())
        } else if e.is_connect() {
            "connection refused or host unknown".into()
        } else {
            e.to_string()
        }
    })
}

/// The HTTP base of the Realtime endpoint (`wss://api.openai.com/v1/realtime` ->
/// `https://api.openai.com/v1`).
fn realtime_http_base(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("wss://")
        .map(|r| format!("https://{r}"))
        .or_else(|| url.strip_prefix("ws://").map(|r| format!("http://{r}")))?;
    let rest = rest.split('?').next().unwrap_or(&rest).to_owned();
    Some(
        rest.strip_suffix("/realtime")
            .map(str::to_owned)
            .unwrap_or(rest),
    )
}

/// The voice model (OpenAI Realtime, which needs a key) and the text model (any
/// OpenAI-compatible endpoint; a self-hosted one may need no key).
pub(super) async fn check_models(config: &Config, r: &mut Report) {
    let on_openai = config.llm_base_url == switchboard_llm::DEFAULT_BASE_URL;
    let text_key = config.llm_api_key.as_ref().or_else(|| {
        on_openai
            .then_some(config.openai_api_key.as_ref())
            .flatten()
    });
    let text_configured = text_key.is_some() || !on_openai;

    match (&config.openai_api_key, text_configured) {
        (None, false) => r.line(
            Level::Fail,
            "model key",
            "no model endpoint key is configured: agents cannot answer calls or messages",
            Some("set SWITCHBOARD_OPENAI_API_KEY (voice and, by default, text) or SWITCHBOARD_LLM_API_KEY with SWITCHBOARD_LLM_BASE_URL for another OpenAI-compatible endpoint (a local server without keys needs only SWITCHBOARD_LLM_BASE_URL)"),
        ),
        (None, true) => r.line(
            Level::Warn,
            "model key",
            "SWITCHBOARD_OPENAI_API_KEY is not set: calls hear an apology and hang up (text replies use the text model below)",
            Some("set SWITCHBOARD_OPENAI_API_KEY to answer calls with OpenAI Realtime"),
        ),
        (Some(key), _) => match realtime_http_base(&config.openai_realtime_url) {
            None => r.line(Level::Ok, "model key", "present (voice)", None),
            Some(base) => match probe_models(&base, Some(key)).await {
                Ok(401 | 403) => r.line(
                    Level::Fail,
                    "model key",
                    &format!("{base} refused SWITCHBOARD_OPENAI_API_KEY"),
                    Some("copy the key again from the provider's dashboard"),
                ),
                Ok(_) => r.line(
                    Level::Ok,
                    "model key",
                    &format!("present; {base} answers (voice)"),
                    None,
                ),
                Err(e) => r.line(
                    Level::Warn,
                    "model key",
                    &format!("present, but {base} could not be reached from here: {e}"),
                    Some("check that this machine reaches the model endpoint (DNS, firewall, proxy)"),
                ),
            },
        },
    }

    if !text_configured {
        // Said by the line above already.
        return;
    }
    let base = &config.llm_base_url;
    let keyless = text_key.is_none();
    match probe_models(base, text_key).await {
        Ok(200..=299) => r.line(
            Level::Ok,
            "text model",
            &format!(
                "{base} answers{}",
                if keyless { " (no key: a self-hosted server)" } else { "" }
            ),
            None,
        ),
        Ok(401 | 403) if keyless => r.line(
            Level::Fail,
            "text model",
            &format!("{base} wants a key and none is set"),
            Some("set SWITCHBOARD_LLM_API_KEY"),
        ),
        Ok(401 | 403) => r.line(
            Level::Fail,
            "text model",
            &format!("{base} refused the key"),
            Some("check SWITCHBOARD_LLM_API_KEY (or SWITCHBOARD_OPENAI_API_KEY on OpenAI's endpoint)"),
        ),
        Ok(status) => r.line(
            Level::Warn,
            "text model",
            &format!("{base}/models answered HTTP {status}: is it an OpenAI-compatible endpoint ending in /v1?"),
            Some("SWITCHBOARD_LLM_BASE_URL is the address before /chat/completions, e.g. http://127.0.0.1:8080/v1"),
        ),
        Err(e) => r.line(
            Level::Warn,
            "text model",
            &format!("{base} could not be reached from here: {e}"),
            Some("start the model server, or correct SWITCHBOARD_LLM_BASE_URL"),
        ),
    }
}

/// The SMTP server greets us (and takes the credentials), and no organization expects call
/// e-mails that nothing could send.
pub(super) async fn check_email(config: &Config, store: &Store, r: &mut Report) {
    let mut expecting = 0usize;
    match store.all_org_ids().await {
        Ok(orgs) => {
            for org in orgs {
                if let Ok(s) = store.get_settings(&org).await {
                    if !s.notification_emails.is_empty() {
                        expecting += 1;
                    }
                }
            }
        }
        Err(e) => {
            r.line(
                Level::Fail,
                "e-mail",
                &format!("cannot read settings: {e}"),
                None,
            );
            return;
        }
    }
    let (Some(url), Some(from)) = (&config.smtp_url, &config.smtp_from) else {
        if expecting > 0 {
            r.line(
                Level::Fail,
                "e-mail",
                &format!("{expecting} organization(s) have call e-mail recipients but no SMTP server is configured: their e-mails are recorded as failed"),
                Some("set SWITCHBOARD_SMTP_URL and SWITCHBOARD_SMTP_FROM, or remove the recipients in Settings"),
            );
        } else {
            r.line(
                Level::Ok,
                "e-mail",
                "off (no SMTP server, and no organization has e-mail recipients)",
                None,
            );
        }
        return;
    };
    let mailer = match switchboard_jobs::email::Mailer::new(url.expose(), from) {
        Ok(m) => m,
        Err(e) => {
            r.line(
                Level::Fail,
                "e-mail",
                &e,
                Some("correct SWITCHBOARD_SMTP_URL (smtp://user:pass@host:587) or SWITCHBOARD_SMTP_FROM"),
            );
            return;
        }
    };
    match tokio::time::timeout(PROBE * 2, mailer.check()).await {
        Ok(Ok(())) => r.line(
            Level::Ok,
            "e-mail",
            &format!(
                "SMTP server {} greets us; {expecting} organization(s) send call e-mails",
                mailer.server
            ),
            None,
        ),
        Ok(Err(e)) => r.line(
            Level::Fail,
            "e-mail",
            &format!("the SMTP server does not take us: {e}"),
            Some("check SWITCHBOARD_SMTP_URL (host, port, ?tls=, user and password)"),
        ),
        Err(_) => r.line(
            Level::Fail,
            "e-mail",
            &format!(
                "SMTP server {} did not answer within {} s",
                mailer.server,
                (PROBE * 2).as_secs()
            ),
            Some("check SWITCHBOARD_SMTP_URL and that this machine reaches the server"),
        ),
    }
}

/// Every organization's Retell key, asked of Retell (`retell api key`): a refused key is a
/// failure (its webhooks are refused and its calls' sockets closed), Retell out of reach a
/// warning. Silent when no organization uses Retell.
pub(super) async fn check_retell(config: &Config, store: &Store, r: &mut Report) {
    let Ok(orgs) = store.all_org_ids().await else {
        return;
    };
    let api = match switchboard_retell::RetellApi::new(&config.retell_api_url, PROBE) {
        Ok(a) => a,
        Err(e) => {
            r.line(
                Level::Warn,
                "retell api key",
                &format!("cannot build a client: {e}"),
                None,
            );
            return;
        }
    };
    let (mut checked, mut refused) = (0, 0);
    for org in &orgs {
        let key = match store.retell_api_key(org).await {
            Ok(Some(k)) => k,
            Ok(None) => continue,
            Err(e) => {
                r.line(
                    Level::Fail,
                    "retell api key",
                    &format!("organization {org}: cannot read its key: {e}"),
                    None,
                );
                continue;
            }
        };
        checked += 1;
        match api.accepts_key(key.expose()).await {
            Ok(true) => {}
            Ok(false) => {
                refused += 1;
                r.line(
                    Level::Fail,
                    "retell api key",
                    &format!("organization {org}: Retell refused its API key"),
                    Some("PUT /api/v1/settings with the retell_api_key that has the webhook badge in the Retell dashboard"),
                );
            }
            Err(e) => {
                refused += 1;
                r.line(
                    Level::Warn,
                    "retell api key",
                    &format!("organization {org}: cannot ask Retell ({e})"),
                    Some("check that this machine reaches SWITCHBOARD_RETELL_API_URL"),
                );
            }
        }
    }
    if checked > 0 && refused == 0 {
        r.line(
            Level::Ok,
            "retell api key",
            &format!("Retell accepts the keys of {checked} organization(s)"),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_realtime_url_gives_the_http_base() {
        assert_eq!(
            super::realtime_http_base("wss://api.openai.com/v1/realtime").as_deref(),
            Some("https://api.openai.com/v1")
        );
        assert_eq!(
            super::realtime_http_base("ws://127.0.0.1:9/v1/realtime?x=1").as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(super::realtime_http_base("https://x"), None);
    }
}
