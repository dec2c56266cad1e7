//! Recordings in the fake Twilio, as the real one keeps them:
//!
//! - `Record=true` on a created call, or `POST .../Calls/{sid}/Recordings.json` on a live one,
//!   makes a two-channel recording that is finished when the call ends; its signed status
//!   callback (`RecordingSid`, `RecordingStatus=completed`, `RecordingDuration`,
//!   `RecordingChannels`, ...) then goes to `RecordingStatusCallback`.
//! - `GET .../Recordings/{sid}.wav` needs HTTP Basic auth with the account's credentials and
//!   answers with a redirect to a signed URL at a separate media host (another port), which
//!   serves the whole file and ignores `Range`, and refuses a request that also carries an
//!   `Authorization` header (as pre-signed storage URLs do): a client must not forward the
//!   credentials, and must cut ranges itself.
//! - `DELETE .../Recordings/{sid}.json` answers 204, then 404 like a recording never made.

use crate::twilio_calls::ServerLink;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// A recording the fake holds.
#[derive(Debug, Clone)]
pub struct FakeRecording {
    /// `RE...`.
    pub sid: String,
    /// Its account.
    pub account_sid: String,
    /// Its call.
    pub call_sid: String,
    /// `OutboundAPI` (Record=true at create) or `StartCallRecordingAPI`.
    pub source: &'static str,
    /// Where its status callback goes.
    pub callback: String,
    /// Finished (its call ended).
    pub finished: bool,
    /// Deleted through the API.
    pub deleted: bool,
}

/// The fake's recordings and its media host.
pub(crate) struct Recordings {
    api_url: String,
    /// Plays SignalWire: UUID SIDs.
    signalwire: bool,
    media_url: Mutex<String>,
    items: Mutex<Vec<FakeRecording>>,
    /// Media fetches that reached the storage host (with their `Range`, if any).
    pub(crate) media_fetches: Mutex<Vec<Option<String>>>,
}

/// The audio of every fake recording: a valid two-channel 8 kHz 16-bit WAV of two seconds
/// whose samples differ byte by byte, so a range of it can be checked exactly.
pub fn recording_audio() -> Vec<u8> {
    let data_len: u32 = 8000 * 2 * 2 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&2u16.to_le_bytes()); // channels
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000u32 * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend((0..data_len).map(|i| (i.wrapping_mul(7) % 251) as u8));
    out
}

type MediaState = Arc<Recordings>;

impl Recordings {
    /// The recordings of a fake at `api_url` (a SignalWire space's includes `/api/laml`).
    pub(crate) fn new(api_url: &str, signalwire: bool) -> Recordings {
        Recordings {
            api_url: api_url.to_owned(),
            signalwire,
            media_url: Mutex::new(String::new()),
            items: Mutex::new(Vec::new()),
            media_fetches: Mutex::new(Vec::new()),
        }
    }

    /// Starts the media host on its own port.
    pub(crate) async fn start_media(self: &Arc<Self>) {
        let app = Router::new()
            .route("/media/{sid}", get(media))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *self.media_url.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    /// A new recording of `call_sid` (not finished yet); returns its sid.
    pub(crate) fn create(
        &self,
        account_sid: &str,
        call_sid: &str,
        source: &'static str,
        callback: &str,
    ) -> String {
        let mut items = self.items.lock().unwrap();
        let sid = crate::twilio::fake_sid("RE", items.len() as u128 + 0x5ec0_0000, self.signalwire);
        items.push(FakeRecording {
            sid: sid.clone(),
            account_sid: account_sid.to_owned(),
            call_sid: call_sid.to_owned(),
            source,
            callback: callback.to_owned(),
            finished: false,
            deleted: false,
        });
        sid
    }

    pub(crate) fn list(&self) -> Vec<FakeRecording> {
        self.items.lock().unwrap().clone()
    }

    /// The call ended: its recordings are finished and their callbacks posted.
    pub(crate) async fn finish_call(&self, call_sid: &str, link: Option<ServerLink>) {
        let done: Vec<FakeRecording> = {
            let mut items = self.items.lock().unwrap();
            items
                .iter_mut()
                .filter(|r| r.call_sid == call_sid && !r.finished)
                .map(|r| {
                    r.finished = true;
                    r.clone()
                })
                .collect()
        };
        let Some(link) = link else { return };
        for r in done {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Recordings/{}",
                self.api_url, r.account_sid, r.sid
            );
            let params = [
                ("AccountSid", r.account_sid.as_str()),
                ("CallSid", r.call_sid.as_str()),
                ("RecordingSid", r.sid.as_str()),
                ("RecordingUrl", url.as_str()),
                ("RecordingStatus", "completed"),
                ("RecordingDuration", "2"),
                ("RecordingChannels", "2"),
                ("RecordingStartTime", "Sun, 29 Nov 2026 10:00:00 +0000"),
                ("RecordingSource", r.source),
                ("RecordingTrack", "both"),
                ("ErrorCode", "0"),
            ];
            let _ = link.post(&r.callback, &params).await;
        }
    }

    /// `GET .../Recordings/{sid}.wav`: Basic auth, then a redirect to the media host.
    pub(crate) fn fetch(
        &self,
        account: &str,
        file: &str,
        headers: &HeaderMap,
        link: Option<&ServerLink>,
    ) -> Response {
        let Some(sid) = file
            .strip_suffix(".wav")
            .or_else(|| file.strip_suffix(".mp3"))
        else {
            return not_found();
        };
        if !authorized(headers, account, link) {
            return unauthorized();
        }
        let known = self
            .items
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.sid == sid && r.account_sid == account && r.finished && !r.deleted);
        if !known {
            return not_found();
        }
        let location = format!(
            "{}/media/{sid}?Expires=1700000000&Signature=fake-signature",
            self.media_url.lock().unwrap()
        );
        (StatusCode::FOUND, [("location", location)]).into_response()
    }

    /// `DELETE .../Recordings/{sid}.json`.
    pub(crate) fn delete(
        &self,
        account: &str,
        file: &str,
        headers: &HeaderMap,
        link: Option<&ServerLink>,
    ) -> Response {
        if !authorized(headers, account, link) {
            return unauthorized();
        }
        let sid = file.trim_end_matches(".json");
        let mut items = self.items.lock().unwrap();
        match items
            .iter_mut()
            .find(|r| r.sid == sid && r.account_sid == account && !r.deleted)
        {
            Some(r) => {
                r.deleted = true;
                StatusCode::NO_CONTENT.into_response()
            }
            None => not_found(),
        }
    }
}

/// Whether the request carries Basic auth with the account's SID and auth token.
fn authorized(headers: &HeaderMap, account: &str, link: Option<&ServerLink>) -> bool {
    use base64::Engine;
    let Some(link) = link else { return false };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{account}:{}", link.rest_token))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"code": 20404, "message": "The requested resource was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}),
        ),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"code": 20003, "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})),
    )
        .into_response()
}

/// The media host: the whole file, whatever `Range` says; a second credential is refused.
async fn media(
    State(recs): State<MediaState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key("authorization") {
        return (
            StatusCode::BAD_REQUEST,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )
            .into_response();
    }
    recs.media_fetches.lock().unwrap().push(
        headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    let exists = recs
        .items
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.sid == sid && !r.deleted);
    if !exists {
        return StatusCode::FORBIDDEN.into_response();
    }
    (
        StatusCode::OK,
        [("content-type", "audio/x-wav")],
        recording_audio(),
    )
        .into_response()
}
