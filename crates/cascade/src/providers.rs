//! Where the providers are and the keys they take; one per server, shared by every call.

use std::time::Duration;
use switchboard_domain::secret::Secret;
use switchboard_llm::ChatClient;

/// OpenAI's REST base.
pub const OPENAI_API_URL: &str = "https://api.openai.com/v1";
/// Deepgram's base.
pub const DEEPGRAM_API_URL: &str = "https://api.deepgram.com";
/// ElevenLabs' base.
pub const ELEVENLABS_API_URL: &str = "https://api.elevenlabs.io";

/// The providers' endpoints and keys.
#[derive(Debug, Clone)]
pub struct Providers {
    /// For the REST calls (OpenAI transcription and speech, key and voice checks).
    pub http: reqwest::Client,
    /// The chat model (`SWITCHBOARD_LLM_URL`); `None` when the server has none.
    pub chat: Option<ChatClient>,
    /// OpenAI's REST base, e.g. `https://api.openai.com/v1`.
    pub openai_url: String,
    /// OpenAI key (transcription and speech).
    pub openai_key: Option<Secret>,
    /// Deepgram's base, e.g. `https://api.deepgram.com` (the socket is its `wss://` twin).
    pub deepgram_url: String,
    /// Deepgram key.
    pub deepgram_key: Option<Secret>,
    /// ElevenLabs' base, e.g. `https://api.elevenlabs.io`.
    pub elevenlabs_url: String,
    /// ElevenLabs key.
    pub elevenlabs_key: Option<Secret>,
    /// How long opening a provider's socket may take.
    pub connect_timeout: Duration,
    /// Counters for `/metrics`.
    pub stats: std::sync::Arc<crate::Stats>,
    /// The offline providers' models.
    pub local: std::sync::Arc<crate::offline::Local>,
}

/// `https://host/x` as `wss://host/x` (and `http` as `ws`, for local fakes).
pub(crate) fn socket_url(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// An open provider socket.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `name`'s socket at `url` with the key in header `header`, within the connect
/// timeout; errors name the provider.
pub(crate) async fn open_socket(
    p: &Providers,
    name: &str,
    url: &str,
    header: &'static str,
    value: &str,
) -> Result<Socket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("invalid {name} URL: {e}"))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("the {name} key contains invalid characters"))?;
    req.headers_mut().insert(header, value);
    match tokio::time::timeout(p.connect_timeout, tokio_tungstenite::connect_async(req)).await {
        Ok(Ok((s, _))) => Ok(s),
        Ok(Err(e)) => Err(format!("{name} refused the stream: {e}")),
        Err(_) => Err(format!("{name} did not answer in time")),
    }
}

/// What a provider said about a key or a voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// Accepted (and the voice exists).
    Ok,
    /// The key was refused (401 or 403).
    KeyRefused,
    /// The key works but the voice does not exist.
    NoSuchVoice,
    /// No answer or an unexpected one.
    Unreachable(String),
}

/// Asks Deepgram whether the key works (`GET /v1/projects`).
pub async fn check_deepgram_key(p: &Providers, key: &str) -> KeyCheck {
    let url = format!("{}/v1/projects", p.deepgram_url.trim_end_matches('/'));
    match p
        .http
        .get(url)
        .header("Authorization", format!("Token {key}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => KeyCheck::Ok,
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => KeyCheck::KeyRefused,
        Ok(r) => KeyCheck::Unreachable(format!("Deepgram answered {}", r.status())),
        Err(e) => KeyCheck::Unreachable(format!("Deepgram is unreachable: {e}")),
    }
}

/// Asks ElevenLabs whether the key works and the voice exists (`GET /v1/voices/{id}`).
pub async fn check_elevenlabs_voice(p: &Providers, key: &str, voice: &str) -> KeyCheck {
    let url = format!(
        "{}/v1/voices/{voice}",
        p.elevenlabs_url.trim_end_matches('/')
    );
    match p
        .http
        .get(url)
        .header("xi-api-key", key)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => KeyCheck::Ok,
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => KeyCheck::KeyRefused,
        // ElevenLabs answers an unknown voice id with 400 (`voice_not_found`) or 404.
        Ok(r) if matches!(r.status().as_u16(), 400 | 404 | 422) => KeyCheck::NoSuchVoice,
        Ok(r) => KeyCheck::Unreachable(format!("ElevenLabs answered {}", r.status())),
        Err(e) => KeyCheck::Unreachable(format!("ElevenLabs is unreachable: {e}")),
    }
}
