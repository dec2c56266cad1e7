//! Configuration: defaults, then an optional `switchboard.toml`, then `SWITCHBOARD_*`
//! environment variables, then command-line flags. This module is the only place that reads
//! the environment. Every setting is validated here; an invalid one names itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::Secret;

mod keys;
mod layers;
mod model;

pub use keys::{describe as describe_keys, open_keyring};
pub use layers::process_env;
use layers::{parse_num, parse_range, read_file, source_of, Layered, SETTINGS};
pub use model::{Config, ConfigError, Environment, LogFormat};

fn err(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        message: message.into(),
    }
}

/// Values given on the command line (the last layer).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

impl Config {
    /// Loads and validates the configuration from every layer.
    pub fn load(flags: &Flags, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut raw = Layered::new();
        // Layer 2: the file (explicit path must exist; the default one is optional).
        let explicit = flags
            .config
            .clone()
            .or_else(|| env.get("SWITCHBOARD_CONFIG").map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("switchboard.toml"));
        let config_file = if path.exists() {
            read_file(&path, &mut raw)?;
            Some(path)
        } else if let Some(p) = explicit {
            return Err(err(
                "--config / SWITCHBOARD_CONFIG",
                format!("file {} does not exist", p.display()),
            ));
        } else {
            None
        };
        // Layer 3: the environment.
        for (key, var) in SETTINGS {
            if let Some(v) = env.get(*var) {
                raw.set(key, v.clone(), (*var).to_owned());
            }
        }
        // Layer 4: flags.
        if let Some(h) = &flags.host {
            raw.set("host", h.clone(), "--host".into());
        }
        if let Some(p) = flags.port {
            raw.set("port", p.to_string(), "--port".into());
        }
        if let Some(u) = &flags.database_url {
            raw.set("database_url", u.clone(), "--database-url".into());
        }
        let mut c = Self::from_layers(&raw)?;
        c.config_file = config_file;
        Ok(c)
    }

    fn from_layers(raw: &Layered) -> Result<Config, ConfigError> {
        let host = match raw.get("host") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some((v, src)) => v.parse().map_err(|_| {
                err(
                    src,
                    format!("expected an IP address such as 0.0.0.0 or 127.0.0.1, got `{v}`"),
                )
            })?,
        };
        let port = parse_num::<u16>(raw, "port", 8080, "a port number from 0 to 65535")?;
        let database_url = match raw.get("database_url") {
            None => None,
            Some(("", _)) => None,
            Some((v, src)) => {
                if !(v.starts_with("postgres://")
                    || v.starts_with("postgresql://")
                    || v.starts_with("sqlite:"))
                {
                    return Err(err(src, "expected postgres://user@host/db (or sqlite://path); leave it unset for the embedded SQLite database"));
                }
                Some(Secret::new(v))
            }
        };
        let data_dir = PathBuf::from(raw.get("data_dir").map(|(v, _)| v).unwrap_or("./data"));
        let database_app_role = raw
            .get("database_app_role")
            .map(|(v, _)| v)
            .unwrap_or("switchboard_app")
            .to_owned();
        if let Some((v, src)) = raw.get("database_app_role") {
            let ok = !v.is_empty()
                && v.len() <= 63
                && v.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(err(
                    src,
                    "expected a role name of lowercase letters, digits and `_`",
                ));
            }
        }
        let database_max_connections = parse_num::<u32>(
            raw,
            "database_max_connections",
            10,
            "a pool size from 1 to 1000",
        )?;
        if !(1..=1000).contains(&database_max_connections) {
            return Err(err(
                source_of(raw, "database_max_connections"),
                "expected a pool size from 1 to 1000",
            ));
        }
        let environment = match raw.get("env") {
            None => Environment::Development,
            Some(("development" | "dev", _)) => Environment::Development,
            Some(("production" | "prod", _)) => Environment::Production,
            Some((v, src)) => {
                return Err(err(
                    src,
                    format!("expected `development` or `production`, got `{v}`"),
                ))
            }
        };
        let public_url = match raw.get("public_url") {
            None | Some(("", _)) => None,
            Some((v, src)) => Some(validate_public_url(v, environment).map_err(|m| err(src, m))?),
        };
        let log_format = match raw.get("log_format") {
            None | Some(("text", _)) => LogFormat::Text,
            Some(("json", _)) => LogFormat::Json,
            Some((v, src)) => {
                return Err(err(src, format!("expected `text` or `json`, got `{v}`")))
            }
        };
        let log_filter = raw.get("log").map(|(v, _)| v).unwrap_or("info").to_owned();
        let secret = |key: &str| {
            raw.get(key)
                .filter(|(v, _)| !v.is_empty())
                .map(|(v, _)| Secret::new(v))
        };
        let operator_key = secret("operator_key");
        if let Some(k) = &operator_key {
            if k.expose().len() < 24 {
                return Err(err(
                    source_of(raw, "operator_key"),
                    "must be at least 24 characters (it guards every organization)",
                ));
            }
        }
        let llm_base_url = raw
            .get("llm_base_url")
            .map(|(v, _)| v)
            .unwrap_or(switchboard_llm::DEFAULT_BASE_URL)
            .trim_end_matches('/')
            .to_owned();
        if !(llm_base_url.starts_with("http://") || llm_base_url.starts_with("https://")) {
            return Err(err(
                source_of(raw, "llm_base_url"),
                "expected an http:// or https:// URL such as https://api.openai.com/v1",
            ));
        }
        let llm_model = raw
            .get("llm_model")
            .map(|(v, _)| v)
            .unwrap_or(switchboard_llm::DEFAULT_MODEL)
            .to_owned();
        if llm_model.is_empty() || llm_model.len() > 200 || llm_model.contains(char::is_whitespace)
        {
            return Err(err(
                source_of(raw, "llm_model"),
                "expected a model name without spaces, such as gpt-4.1-mini",
            ));
        }
        let llm_timeout = parse_num::<u64>(
            raw,
            "llm_timeout_seconds",
            60,
            "a number of seconds from 1 to 600",
        )?;
        if !(1..=600).contains(&llm_timeout) {
            return Err(err(
                source_of(raw, "llm_timeout_seconds"),
                "expected a number of seconds from 1 to 600",
            ));
        }
        let reply_budget = parse_num::<u64>(
            raw,
            "messaging_reply_budget_ms",
            10_000,
            "milliseconds from 0 to 14000 (Twilio waits 15 s)",
        )?;
        if reply_budget > 14_000 {
            return Err(err(
                source_of(raw, "messaging_reply_budget_ms"),
                "expected milliseconds from 0 to 14000 (Twilio waits 15 s)",
            ));
        }
        let openai_realtime_url = raw
            .get("openai_realtime_url")
            .map(|(v, _)| v)
            .unwrap_or(switchboard_voice::DEFAULT_REALTIME_URL)
            .trim_end_matches('/')
            .to_owned();
        if !(openai_realtime_url.starts_with("wss://") || openai_realtime_url.starts_with("ws://"))
            || openai_realtime_url.contains('#')
        {
            return Err(err(
                source_of(raw, "openai_realtime_url"),
                "expected a wss:// URL such as wss://api.openai.com/v1/realtime",
            ));
        }
        let openai_realtime_shape = match raw.get("openai_realtime_shape") {
            None | Some(("ga", _)) => switchboard_realtime::Shape::Ga,
            // OpenAI closes beta-shape sessions (code 4000, `beta_api_shape_disabled`); the
            // shape stays for providers that still speak it (older Azure OpenAI deployments).
            Some(("beta", src)) if openai_realtime_url.contains("api.openai.com") => {
                return Err(err(
                    src,
                    "OpenAI no longer accepts the beta Realtime shape (it closes the session with beta_api_shape_disabled); use `ga`, or set SWITCHBOARD_OPENAI_REALTIME_URL to a provider that still speaks the beta shape",
                ))
            }
            Some(("beta", _)) => switchboard_realtime::Shape::Beta,
            Some((v, src)) => return Err(err(src, format!("expected `ga` or `beta`, got `{v}`"))),
        };
        let http_url = |key: &str, default: &str| {
            let url = raw
                .get(key)
                .map(|(v, _)| v)
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_owned();
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(url)
            } else {
                Err(err(
                    source_of(raw, key),
                    format!("expected an http(s) URL such as {default}"),
                ))
            }
        };
        let twilio_api_url = http_url("twilio_api_url", switchboard_twilio::rest::DEFAULT_API_URL)?;
        let retell_api_url = http_url("retell_api_url", switchboard_retell::DEFAULT_API_URL)?;
        let signalwire_api_url = match raw.get("signalwire_api_url") {
            None => None,
            Some(_) => Some(http_url(
                "signalwire_api_url",
                "https://example.signalwire.com",
            )?),
        };
        let openai_api_url = http_url("openai_api_url", switchboard_cascade::OPENAI_API_URL)?;
        let deepgram_api_url = http_url("deepgram_api_url", switchboard_cascade::DEEPGRAM_API_URL)?;
        let elevenlabs_api_url = http_url(
            "elevenlabs_api_url",
            switchboard_cascade::ELEVENLABS_API_URL,
        )?;
        let path = |key: &str| raw.get(key).map(|(v, _)| std::path::PathBuf::from(v));
        let offline_threads = match raw.get("offline_threads") {
            None => 0,
            Some((v, src)) => match v.parse::<usize>() {
                Ok(n) if n <= 256 => n,
                _ => {
                    return Err(err(
                        src,
                        format!(
                            "expected a number of threads from 0 (all cores) to 256, got `{v}`"
                        ),
                    ))
                }
            },
        };
        let offline = switchboard_cascade::offline::OfflineConfig {
            whisper_model: path("whisper_model"),
            piper_voices: path("piper_voices_dir"),
            onnxruntime: path("onnxruntime_lib"),
            espeak: path("espeak_ng"),
            threads: offline_threads,
        };
        let twilio_skip_signature = match raw.get("twilio_skip_signature") {
            None | Some(("false" | "0" | "", _)) => false,
            Some(("true" | "1", src)) => {
                if environment == Environment::Production {
                    return Err(err(
                        src,
                        "signature checks cannot be switched off in production",
                    ));
                }
                true
            }
            Some((v, src)) => {
                return Err(err(src, format!("expected `true` or `false`, got `{v}`")))
            }
        };
        let webhooks_allow_private = match raw.get("webhooks_allow_private") {
            None | Some(("false" | "0" | "", _)) => false,
            Some(("true" | "1", _)) => true,
            Some((v, src)) => {
                return Err(err(src, format!("expected `true` or `false`, got `{v}`")))
            }
        };
        let tools_allow_private = match raw.get("tools_allow_private") {
            None | Some(("false" | "0" | "", _)) => false,
            Some(("true" | "1", _)) => true,
            Some((v, src)) => {
                return Err(err(src, format!("expected `true` or `false`, got `{v}`")))
            }
        };
        let smtp_url = secret("smtp_url");
        let smtp_from = raw
            .get("smtp_from")
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, _)| v.to_owned());
        if let Some(u) = &smtp_url {
            // The same parser the mailer uses, so a bad URL stops the start, not the first e-mail.
            let from = smtp_from.as_deref().unwrap_or("switchboard@localhost");
            switchboard_jobs::email::Mailer::new(u.expose(), from)
                .map_err(|m| err(source_of(raw, "smtp_url"), m))?;
            if smtp_from.is_none() {
                return Err(err(
                    "SWITCHBOARD_SMTP_FROM",
                    "is required with SWITCHBOARD_SMTP_URL, e.g. Switchboard <calls@example.com>",
                ));
            }
        } else if let Some(from) = &smtp_from {
            switchboard_jobs::email::Mailer::new("smtp://localhost", from)
                .map_err(|m| err(source_of(raw, "smtp_from"), m))?;
        }
        let email_wait = parse_num::<u64>(
            raw,
            "email_analysis_wait_seconds",
            600,
            "a number of seconds from 0 to 86400",
        )?;
        if email_wait > 86_400 {
            return Err(err(
                source_of(raw, "email_analysis_wait_seconds"),
                "expected a number of seconds from 0 to 86400",
            ));
        }
        let shutdown = parse_num::<u64>(
            raw,
            "shutdown_timeout_seconds",
            20,
            "a number of seconds from 1 to 600",
        )?;
        if !(1..=600).contains(&shutdown) {
            return Err(err(
                source_of(raw, "shutdown_timeout_seconds"),
                "expected a number of seconds from 1 to 600",
            ));
        }
        let drain = parse_num::<u64>(
            raw,
            "drain_timeout_seconds",
            600,
            "a number of seconds from 0 to 86400",
        )?;
        if drain > 86_400 {
            return Err(err(
                source_of(raw, "drain_timeout_seconds"),
                "expected a number of seconds from 0 to 86400",
            ));
        }
        let lease = parse_num::<u64>(
            raw,
            "instance_lease_seconds",
            15,
            "a number of seconds from 3 to 600",
        )?;
        if !(3..=600).contains(&lease) {
            return Err(err(
                source_of(raw, "instance_lease_seconds"),
                "expected a number of seconds from 3 to 600",
            ));
        }
        let max_body_bytes = parse_num::<usize>(
            raw,
            "max_body_bytes",
            1024 * 1024,
            "a size in bytes from 1024 to 104857600",
        )?;
        if !(1024..=100 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(err(
                source_of(raw, "max_body_bytes"),
                "expected a size in bytes from 1024 to 104857600",
            ));
        }
        let first_org_name = raw
            .get("first_org_name")
            .map(|(v, _)| v)
            .unwrap_or("My organization")
            .to_owned();
        let admin_email = raw
            .get("admin_email")
            .map(|(v, _)| v)
            .unwrap_or("admin@example.com")
            .to_owned();
        if let Err(m) = switchboard_domain::values::validate_email(&admin_email) {
            return Err(err(source_of(raw, "admin_email"), m));
        }
        let master_keys = keys::parse(raw, environment)?;
        let webhook_concurrency =
            parse_range::<usize>(raw, "webhook_concurrency", 64, (1, 1024), "a count")?;
        let webhook_endpoint_concurrency =
            parse_range::<i64>(raw, "webhook_endpoint_concurrency", 4, (1, 64), "a count")?;
        let max_concurrent_calls_per_org = parse_range::<i64>(
            raw,
            "max_concurrent_calls_per_org",
            100,
            (1, 100_000),
            "a count",
        )?;
        let max_text_replies_per_org =
            parse_range::<i64>(raw, "max_text_replies_per_org", 20, (1, 10_000), "a count")?;
        let api_rate = switchboard_store::Rate {
            per_minute: parse_range::<u32>(
                raw,
                "api_rate_per_minute",
                1200,
                (1, 1_000_000),
                "requests per minute",
            )?,
            burst: parse_range::<u32>(raw, "api_burst", 120, (1, 100_000), "a count")?,
        };
        let max_websockets =
            parse_range::<usize>(raw, "max_websockets", 4096, (1, 1_000_000), "a count")?;
        let max_inflight_requests = parse_range::<usize>(
            raw,
            "max_inflight_requests",
            2048,
            (1, 1_000_000),
            "a count",
        )?;
        let trusted_proxies = match raw.get("trusted_proxies") {
            None => Default::default(),
            Some((v, src)) => switchboard_web::security::TrustedProxies::parse(v).map_err(|m| {
                err(
                    src,
                    format!("{m}; expected addresses or networks such as 10.0.0.0/8, 127.0.0.1"),
                )
            })?,
        };
        Ok(Config {
            host,
            port,
            database_url,
            data_dir,
            database_app_role,
            database_max_connections,
            public_url,
            environment,
            log_format,
            log_filter,
            operator_key,
            openai_api_key: secret("openai_api_key"),
            openai_realtime_url,
            openai_realtime_shape,
            twilio_api_url,
            retell_api_url,
            signalwire_api_url,
            openai_api_url,
            deepgram_api_key: secret("deepgram_api_key"),
            deepgram_api_url,
            elevenlabs_api_key: secret("elevenlabs_api_key"),
            elevenlabs_api_url,
            offline,
            twilio_skip_signature,
            llm_base_url,
            llm_api_key: secret("llm_api_key"),
            llm_model,
            llm_timeout: Duration::from_secs(llm_timeout),
            messaging_reply_budget: Duration::from_millis(reply_budget),
            webhooks_allow_private,
            tools_allow_private,
            smtp_url,
            smtp_from,
            email_analysis_wait: Duration::from_secs(email_wait),
            shutdown_timeout: Duration::from_secs(shutdown),
            drain_timeout: Duration::from_secs(drain),
            instance_lease: Duration::from_secs(lease),
            max_body_bytes,
            first_org_name,
            admin_email,
            webhook_concurrency,
            webhook_endpoint_concurrency,
            max_concurrent_calls_per_org,
            max_text_replies_per_org,
            max_websockets,
            max_inflight_requests,
            api_rate,
            trusted_proxies,
            master_keys,
            config_file: None,
        })
    }

    /// Where the embedded SQLite database is (absolute, as people should read it) when it is
    /// missing; `None` when it exists or the database is PostgreSQL. Opening a missing one
    /// would create it, empty.
    pub fn missing_embedded_database(&self) -> Option<PathBuf> {
        if self.database_url.is_some() {
            return None;
        }
        let path = self.data_dir.join("switchboard.db");
        if path.exists() {
            return None;
        }
        Some(
            std::env::current_dir()
                .map(|d| d.join(&path))
                .unwrap_or(path),
        )
    }

    /// Store options from this configuration.
    pub fn store_options(
        &self,
        keyring: std::sync::Arc<switchboard_store::Keyring>,
    ) -> switchboard_store::StoreOptions {
        switchboard_store::StoreOptions {
            keyring,
            url: self.database_url.as_ref().map(|u| u.expose().to_owned()),
            data_dir: self.data_dir.clone(),
            max_connections: self.database_max_connections,
            app_role: self.database_app_role.clone(),
            refuse_privileged_login: self.environment == Environment::Production,
        }
    }
}

/// A public URL is scheme + host (+ port), nothing else: Twilio signs the exact URL, so a
/// path or a trailing slash here would break every signature check later.
pub fn validate_public_url(v: &str, environment: Environment) -> Result<String, String> {
    let trimmed = v.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| format!("expected a URL such as https://voice.example.com, got `{v}`"))?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("expected an https:// URL, got `{v}`"));
    }
    if scheme == "http" && environment == Environment::Production {
        return Err("must be https:// in production (Twilio media streams need wss://)".into());
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!("expected only scheme and host (and port), such as https://voice.example.com, got `{v}`"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests;
