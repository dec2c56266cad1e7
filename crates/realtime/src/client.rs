//! Opening the model WebSocket.

use crate::events::Shape;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open model session socket.
pub type ModelSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the model session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not usable.
    #[error("invalid realtime URL: {0}")]
    Url(String),
    /// The handshake failed (network, TLS, HTTP status such as 401).
    #[error("realtime handshake failed: {0}")]
    Handshake(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Largest frame accepted from the model (audio deltas are a few kilobytes).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Bytes read from the socket at a time. tungstenite zero-fills this much of its read buffer
/// before every read (128 KiB by default): with a message every 20 ms per call that was the
/// largest single cost of a call's relay (BENCHMARKS.md, issue 22). A larger message still
/// arrives whole: the buffer grows for it.
pub const READ_BUFFER: usize = 4 * 1024;

/// Connects to `base_url` (e.g. `wss://api.openai.com/v1/realtime`) for `model`, with the
/// bearer key, and the beta header when the beta shape is selected.
pub async fn connect(
    base_url: &str,
    model: &str,
    api_key: &str,
    shape: Shape,
) -> Result<ModelSocket, ConnectError> {
    let sep = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{sep}model={}", encode(model));
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Url(e.to_string()))?;
    let auth = HeaderValue::from_str(&format!("Bearer {api_key}"))
        .map_err(|_| ConnectError::Url("the API key contains invalid characters".into()))?;
    req.headers_mut().insert("Authorization", auth);
    if shape == Shape::Beta {
        req.headers_mut()
            .insert("OpenAI-Beta", HeaderValue::from_static("realtime=v1"));
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (socket, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(socket)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
