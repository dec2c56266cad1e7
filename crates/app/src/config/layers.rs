//! The layers settings come from (file, environment, flags) and the raw values they hold.

use super::{err, ConfigError};
use std::collections::HashMap;
use std::path::Path;

/// One raw value and where it came from, for error messages.
pub(super) struct Layered {
    values: HashMap<&'static str, (String, String)>,
}

impl Layered {
    pub(super) fn new() -> Self {
        Self {
            values: HashMap::new(),
        }
    }

    pub(super) fn set(&mut self, key: &'static str, value: String, source: String) {
        self.values.insert(key, (value, source));
    }

    pub(super) fn get(&self, key: &str) -> Option<(&str, &str)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), s.as_str()))
    }
}

/// Every setting: (key in the file, environment variable).
pub(super) const SETTINGS: &[(&str, &str)] = &[
    ("host", "SWITCHBOARD_HOST"),
    ("port", "SWITCHBOARD_PORT"),
    ("database_url", "SWITCHBOARD_DATABASE_URL"),
    ("data_dir", "SWITCHBOARD_DATA_DIR"),
    ("database_app_role", "SWITCHBOARD_DATABASE_APP_ROLE"),
    (
        "database_max_connections",
        "SWITCHBOARD_DATABASE_MAX_CONNECTIONS",
    ),
    ("public_url", "SWITCHBOARD_PUBLIC_URL"),
    ("env", "SWITCHBOARD_ENV"),
    ("log_format", "SWITCHBOARD_LOG_FORMAT"),
    ("log", "SWITCHBOARD_LOG"),
    ("operator_key", "SWITCHBOARD_OPERATOR_KEY"),
    ("openai_api_key", "SWITCHBOARD_OPENAI_API_KEY"),
    ("openai_realtime_url", "SWITCHBOARD_OPENAI_REALTIME_URL"),
    ("openai_realtime_shape", "SWITCHBOARD_OPENAI_REALTIME_SHAPE"),
    ("twilio_api_url", "SWITCHBOARD_TWILIO_API_URL"),
    ("retell_api_url", "SWITCHBOARD_RETELL_API_URL"),
    ("signalwire_api_url", "SWITCHBOARD_SIGNALWIRE_API_URL"),
    ("openai_api_url", "SWITCHBOARD_OPENAI_API_URL"),
    ("deepgram_api_key", "SWITCHBOARD_DEEPGRAM_API_KEY"),
    ("deepgram_api_url", "SWITCHBOARD_DEEPGRAM_API_URL"),
    ("elevenlabs_api_key", "SWITCHBOARD_ELEVENLABS_API_KEY"),
    ("elevenlabs_api_url", "SWITCHBOARD_ELEVENLABS_API_URL"),
    ("whisper_model", "SWITCHBOARD_WHISPER_MODEL"),
    ("piper_voices_dir", "SWITCHBOARD_PIPER_VOICES_DIR"),
    ("onnxruntime_lib", "SWITCHBOARD_ONNXRUNTIME_LIB"),
    ("espeak_ng", "SWITCHBOARD_ESPEAK_NG"),
    ("offline_threads", "SWITCHBOARD_OFFLINE_THREADS"),
    ("twilio_skip_signature", "SWITCHBOARD_TWILIO_SKIP_SIGNATURE"),
    ("llm_base_url", "SWITCHBOARD_LLM_BASE_URL"),
    ("llm_api_key", "SWITCHBOARD_LLM_API_KEY"),
    ("llm_model", "SWITCHBOARD_LLM_MODEL"),
    ("llm_timeout_seconds", "SWITCHBOARD_LLM_TIMEOUT_SECONDS"),
    (
        "messaging_reply_budget_ms",
        "SWITCHBOARD_MESSAGING_REPLY_BUDGET_MS",
    ),
    (
        "webhooks_allow_private",
        "SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE",
    ),
    ("tools_allow_private", "SWITCHBOARD_TOOLS_ALLOW_PRIVATE"),
    ("smtp_url", "SWITCHBOARD_SMTP_URL"),
    ("smtp_from", "SWITCHBOARD_SMTP_FROM"),
    (
        "email_analysis_wait_seconds",
        "SWITCHBOARD_EMAIL_ANALYSIS_WAIT_SECONDS",
    ),
    (
        "shutdown_timeout_seconds",
        "SWITCHBOARD_SHUTDOWN_TIMEOUT_SECONDS",
    ),
    ("drain_timeout_seconds", "SWITCHBOARD_DRAIN_TIMEOUT_SECONDS"),
    (
        "instance_lease_seconds",
        "SWITCHBOARD_INSTANCE_LEASE_SECONDS",
    ),
    ("max_body_bytes", "SWITCHBOARD_MAX_BODY_BYTES"),
    ("first_org_name", "SWITCHBOARD_FIRST_ORG_NAME"),
    ("admin_email", "SWITCHBOARD_ADMIN_EMAIL"),
    ("trusted_proxies", "SWITCHBOARD_TRUSTED_PROXIES"),
    ("webhook_concurrency", "SWITCHBOARD_WEBHOOK_CONCURRENCY"),
    (
        "webhook_endpoint_concurrency",
        "SWITCHBOARD_WEBHOOK_ENDPOINT_CONCURRENCY",
    ),
    (
        "max_concurrent_calls_per_org",
        "SWITCHBOARD_MAX_CONCURRENT_CALLS_PER_ORG",
    ),
    (
        "max_text_replies_per_org",
        "SWITCHBOARD_MAX_TEXT_REPLIES_PER_ORG",
    ),
    ("max_websockets", "SWITCHBOARD_MAX_WEBSOCKETS"),
    ("api_rate_per_minute", "SWITCHBOARD_API_RATE_PER_MINUTE"),
    ("api_burst", "SWITCHBOARD_API_BURST"),
    ("max_inflight_requests", "SWITCHBOARD_MAX_INFLIGHT_REQUESTS"),
    ("master_key", "SWITCHBOARD_MASTER_KEY"),
    ("master_key_file", "SWITCHBOARD_MASTER_KEY_FILE"),
    ("previous_master_keys", "SWITCHBOARD_PREVIOUS_MASTER_KEYS"),
];

/// The process environment (the one place it is read).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("SWITCHBOARD_"))
        .collect()
}

pub(super) fn source_of(raw: &Layered, key: &str) -> String {
    raw.get(key)
        .map(|(_, s)| s.to_owned())
        .unwrap_or_else(|| key.to_owned())
}

/// [`parse_num`] within `lo..=hi`.
pub(super) fn parse_range<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    raw: &Layered,
    key: &str,
    default: T,
    (lo, hi): (T, T),
    what: &str,
) -> Result<T, ConfigError> {
    let expected = format!("{what} from {lo} to {hi}");
    let v = parse_num(raw, key, default, &expected)?;
    if v < lo || v > hi {
        return Err(err(source_of(raw, key), format!("expected {expected}")));
    }
    Ok(v)
}

pub(super) fn parse_num<T: std::str::FromStr>(
    raw: &Layered,
    key: &str,
    default: T,
    expected: &str,
) -> Result<T, ConfigError> {
    match raw.get(key) {
        None => Ok(default),
        Some((v, src)) => v
            .trim()
            .parse()
            .map_err(|_| err(src, format!("expected {expected}, got `{v}`"))),
    }
}

/// Reads `switchboard.toml`: the same names as the environment variables, lowercase,
/// without the `SWITCHBOARD_` prefix. Unknown keys are rejected so typos do not pass silently.
pub(super) fn read_file(path: &Path, raw: &mut Layered) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| err(path.display().to_string(), e.message().to_owned()))?;
    for (key, value) in table {
        let Some((known, _)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
            let names: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
            return Err(err(
                format!("`{key}` in {}", path.display()),
                format!("unknown setting; known: {}", names.join(", ")),
            ));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                return Err(err(
                    format!("`{key}` in {}", path.display()),
                    "expected a string or a number",
                ))
            }
        };
        raw.set(known, text, format!("`{key}` in {}", path.display()));
    }
    Ok(())
}
