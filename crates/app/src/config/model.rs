//! What the configuration is: the validated settings, where the process runs, and the error
//! that names an invalid setting (how they are read is the parent module's).

use super::keys::MasterKeys;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::Secret;

/// Where the process runs: production insists on an https public URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Laptops and tests.
    Development,
    /// Real traffic.
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub host: IpAddr,
    /// Listen port.
    pub port: u16,
    /// `postgres://...`; `None` means SQLite under `data_dir`.
    pub database_url: Option<Secret>,
    /// Where the SQLite file lives.
    pub data_dir: PathBuf,
    /// PostgreSQL role without BYPASSRLS used when the login has it.
    pub database_app_role: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// The https address Twilio and browsers reach this server at, without trailing `/`.
    pub public_url: Option<String>,
    /// Development or production.
    pub environment: Environment,
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `switchboard=debug,info`.
    pub log_filter: String,
    /// Operator key accepted in addition to stored ones.
    pub operator_key: Option<Secret>,
    /// OpenAI key (realtime voice).
    pub openai_api_key: Option<Secret>,
    /// OpenAI Realtime WebSocket URL.
    pub openai_realtime_url: String,
    /// Realtime event shape: GA (default) or beta.
    pub openai_realtime_shape: switchboard_realtime::Shape,
    /// Twilio REST base URL.
    pub twilio_api_url: String,
    /// Retell REST base URL (`SWITCHBOARD_RETELL_API_URL`).
    pub retell_api_url: String,
    /// Where every SignalWire space is reached instead of `https://{space}`
    /// (`SWITCHBOARD_SIGNALWIRE_API_URL`; tests point it at a fake).
    pub signalwire_api_url: Option<String>,
    /// OpenAI REST base for speech and transcription (`SWITCHBOARD_OPENAI_API_URL`).
    pub openai_api_url: String,
    /// Deepgram key: speech-to-text of cascaded agents (`SWITCHBOARD_DEEPGRAM_API_KEY`).
    pub deepgram_api_key: Option<Secret>,
    /// Deepgram base (`SWITCHBOARD_DEEPGRAM_API_URL`; its socket is the `wss://` twin).
    pub deepgram_api_url: String,
    /// ElevenLabs key: text-to-speech of cascaded agents (`SWITCHBOARD_ELEVENLABS_API_KEY`).
    pub elevenlabs_api_key: Option<Secret>,
    /// ElevenLabs base (`SWITCHBOARD_ELEVENLABS_API_URL`).
    pub elevenlabs_api_url: String,
    /// The offline providers' files (`SWITCHBOARD_WHISPER_MODEL`,
    /// `SWITCHBOARD_PIPER_VOICES_DIR`, `SWITCHBOARD_ONNXRUNTIME_LIB`, `SWITCHBOARD_ESPEAK_NG`,
    /// `SWITCHBOARD_OFFLINE_THREADS`).
    pub offline: switchboard_cascade::offline::OfflineConfig,
    /// Development only: accept Twilio webhooks without checking signatures.
    pub twilio_skip_signature: bool,
    /// Chat-completions endpoint.
    pub llm_base_url: String,
    /// Chat-completions key.
    pub llm_api_key: Option<Secret>,
    /// Default chat model for text agents.
    pub llm_model: String,
    /// Whole-request timeout of a chat completion.
    pub llm_timeout: Duration,
    /// How long the messaging webhook waits for the agent's reply before answering and
    /// sending the reply through the REST API.
    pub messaging_reply_budget: Duration,
    /// Webhooks may target loopback, private and link-local addresses.
    pub webhooks_allow_private: bool,
    /// Custom tools may target loopback, private and link-local addresses.
    pub tools_allow_private: bool,
    /// SMTP server for notification e-mails (`smtp://user:pass@host:587?tls=starttls`).
    pub smtp_url: Option<Secret>,
    /// From address of notification e-mails.
    pub smtp_from: Option<String>,
    /// How long a call's e-mail waits for its analysis.
    pub email_analysis_wait: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a drain lets live calls go on before they hear the goodbye.
    pub drain_timeout: Duration,
    /// How long an instance's heartbeat counts before its live calls are recovered.
    pub instance_lease: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// First-start organization name.
    pub first_org_name: String,
    /// First-start operator login.
    pub admin_email: String,
    /// Webhook attempts in flight on this instance.
    pub webhook_concurrency: usize,
    /// Webhook attempts in flight to one endpoint, across instances.
    pub webhook_endpoint_concurrency: i64,
    /// Live calls one organization may have at once (inbound calls over it hear a busy message).
    pub max_concurrent_calls_per_org: i64,
    /// Text-agent replies one organization may have in flight at once, across instances.
    pub max_text_replies_per_org: i64,
    /// Requests per API key per minute, and how many at once.
    pub api_rate: switchboard_store::Rate,
    /// Open WebSockets (media streams) this instance accepts.
    pub max_websockets: usize,
    /// HTTP requests this instance handles at once; more are answered 503.
    pub max_inflight_requests: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: switchboard_web::security::TrustedProxies,
    /// The keys that encrypt secrets at rest.
    pub master_keys: MasterKeys,
    /// The file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// A setting that is invalid: which one, and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    /// The setting as the user wrote it (`SWITCHBOARD_PORT`, `port` in switchboard.toml, `--port`).
    pub setting: String,
    /// What is wrong and what is expected.
    pub message: String,
}
