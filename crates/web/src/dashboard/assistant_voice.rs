//! Talking to the assistant from its page: `POST /assistant/voice` says whether a spoken
//! session can start and where its socket is; `GET /assistant/voice/stream` is that socket
//! (Media Streams framing, spoken by call.js), run by `crate::assistant::voice`.

use super::assistant::{json_body, principal};
use super::{same_secret, Dash, DashError};
use crate::assistant::voice;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use switchboard_domain::ids::random_token;
use switchboard_voice::{MediaSocket, WsFrame};

/// Largest frame the page may send (a 20 ms media frame is about 300 bytes).
const MAX_FRAME: usize = 64 * 1024;

/// The "Talk" panel of the assistant page.
pub(crate) fn panel(session: &str, available: Option<&str>) -> Markup {
    let body = json!({ "session_id": session }).to_string();
    html! {
        div.talk #assistant-voice data-start="/assistant/voice" data-body=(body) {
            button type="button" #assistant-voice-start disabled[available.is_some()] { "Talk" }
            button type="button" #assistant-voice-hangup hidden { "Stop talking" }
            span.muted #assistant-voice-state data-state="idle" role="status" {
                @match available {
                    Some(why) => (why),
                    None => "Speak with the assistant: changes still wait for your Confirm, or for you to say \u{201c}yes, do it\u{201d}.",
                }
            }
        }
    }
}

/// `POST /assistant/voice` (the page's script, `x-csrf-token`): `{"session_id"}`. Answers
/// what call.js opens the socket with, or 503 with the reason.
pub async fn start(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let v = json_body(&body)?;
    let key = v["session_id"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if key.is_empty() || key.chars().count() > switchboard_domain::assistant::MAX_SESSION_KEY {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"code": "invalid_session", "error": "the session id is missing or too long"})),
        )
            .into_response());
    }
    if let Some(why) = voice::unavailable(&st) {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "assistant_unavailable", "error": why})),
        )
            .into_response());
    }
    let media_path = format!(
        "/assistant/voice/stream?session={}&csrf={}",
        super::url_encode(&key),
        super::url_encode(&dash.session.csrf_token)
    );
    Ok(Json(json!({
        "call_sid": format!("WB{}", random_token(32)),
        "stream_sid": format!("MZ{}", random_token(32)),
        "media_path": media_path,
        "parameters": {"session_id": key},
    }))
    .into_response())
}

/// `?session=&csrf=` of the socket.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    session: String,
    csrf: String,
}

/// `GET /assistant/voice/stream`: the signed-in person's spoken session. A WebSocket is not
/// covered by the CSRF checks of forms, so it needs the session's CSRF token (only our pages
/// know it) and, from a browser, an `Origin` of this host.
pub async fn stream(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, DashError> {
    if !same_secret(&q.csrf, &dash.session.csrf_token) || !same_origin(&headers) {
        tracing::warn!(org_id = %dash.org, "spoken assistant socket refused: wrong token or origin");
        return Err(DashError::Forbidden);
    }
    let Some(slot) = st.admission.websocket() else {
        return Ok((StatusCode::SERVICE_UNAVAILABLE, "too many open sockets").into_response());
    };
    let who = principal(&dash);
    Ok(ws
        .read_buffer_size(switchboard_realtime::client::READ_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket: WebSocket| async move {
            let _slot = slot;
            voice::run(st, who, q.session, adapt(socket)).await;
        }))
}

/// An `Origin` header, when sent, names the host the request went to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The socket as the relay reads and writes it.
fn adapt(socket: WebSocket) -> MediaSocket {
    Box::pin(
        socket
            .map(|frame| match frame {
                Ok(Message::Text(t)) => Ok(WsFrame::Text(t.to_string())),
                Ok(Message::Close(_)) => Ok(WsFrame::Close),
                Ok(_) => Ok(WsFrame::Other),
                Err(e) => Err(e.to_string()),
            })
            .with(|text: String| async move { Ok::<_, axum::Error>(Message::Text(text.into())) })
            .sink_map_err(|e| e.to_string()),
    )
}
