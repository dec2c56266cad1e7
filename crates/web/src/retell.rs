//! Retell's endpoints: the custom-LLM WebSocket (`GET /retell/llm/{call_id}`) and the
//! webhook (`POST /retell/webhook`). They are Retell's contract; the work is in
//! `switchboard_voice::retell`.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use switchboard_voice::retell::{RetellOut, WebhookError, WebhookOutcome};
use switchboard_voice::WsFrame;

/// Refuses a Retell key that Retell itself refuses, before it is saved (a key Retell cannot
/// be asked about now is saved, with a warning in the log: its webhooks will tell).
pub(crate) async fn check_key(
    st: &AppState,
    update: &switchboard_domain::settings::SettingsUpdate,
) -> Result<(), switchboard_domain::ValidationError> {
    let Some(Some(key)) = &update.retell_api_key else {
        return Ok(());
    };
    if update.validate().is_err() {
        // The field's own error comes from the store with the others.
        return Ok(());
    }
    match st.retell.api.accepts_key(key.expose()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(switchboard_domain::ValidationError::new(
            "retell_api_key",
            "Retell refused this key: use the API key from the Retell dashboard that has the webhook badge",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "cannot ask Retell about a new API key; saved unchecked");
            Ok(())
        }
    }
}

/// Largest frame Retell sends (a long call's transcript rides on every request).
const MAX_FRAME: usize = 1024 * 1024;

/// `GET /retell/llm/{call_id}`: Retell's custom-LLM socket for one call.
pub(crate) async fn llm_socket(
    State(st): State<AppState>,
    Path(call_id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(slot) = st.admission.websocket() else {
        tracing::warn!("Retell socket refused: too many open");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open sockets").into_response();
    };
    let front = st.retell.clone();
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket: WebSocket| async move {
            let _slot = slot;
            let adapted = socket
                .map(|frame| {
                    frame
                        .map(|m| match m {
                            Message::Text(t) => WsFrame::Text(t.to_string()),
                            Message::Close(_) => WsFrame::Close,
                            _ => WsFrame::Other,
                        })
                        .map_err(|e| e.to_string())
                })
                .sink_map_err(|e: axum::Error| e.to_string())
                .with(|out: RetellOut| async move {
                    Ok::<_, String>(match out {
                        RetellOut::Text(t) => Message::Text(t.into()),
                        RetellOut::Close(code, reason) => Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })),
                    })
                });
            switchboard_voice::retell::serve_socket(front, call_id, Box::pin(adapted)).await;
        })
}

/// `POST /retell/webhook`: `call_started`, `call_ended`, `call_analyzed`, signed with the
/// organization's Retell key (`x-retell-signature`). 204 when recorded or ignored; 400 for
/// a body that is not a Retell webhook, 401 for a bad signature, 403 for an organization
/// without a Retell key or disabled, 404 when no agent is connected to the Retell agent,
/// 409 for a call id another organization holds. Retell retries anything but 2xx.
pub(crate) async fn webhook(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-retell-signature")
        .and_then(|v| v.to_str().ok());
    let stats = &st.retell.stats;
    match st.retell.webhook(&body, signature).await {
        Ok(WebhookOutcome::Recorded(_) | WebhookOutcome::Ignored(_)) => {
            stats
                .webhooks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            stats
                .refused_webhooks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (status, code) = match &e {
                WebhookError::Malformed(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
                WebhookError::Signature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
                WebhookError::NotConfigured => (StatusCode::FORBIDDEN, "retell_not_configured"),
                WebhookError::Disabled => (StatusCode::FORBIDDEN, "org_disabled"),
                WebhookError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_retell_agent"),
                WebhookError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                WebhookError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            };
            if status.is_server_error() {
                tracing::error!(error = %e, "cannot record a Retell webhook");
                return crate::error::ApiError::new(status, code, "internal error").into_response();
            }
            tracing::warn!(error = %e, code, "Retell webhook refused");
            crate::error::ApiError::new(status, code, e.to_string()).into_response()
        }
    }
}
