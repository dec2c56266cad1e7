//! A call's recording: its audio streamed through Switchboard (fetched from Twilio with the
//! organization's credentials; neither they nor Twilio's URL reach the client), with `Range`
//! requests so a browser can seek, and its deletion here and at Twilio.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, OrgAuth};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_twilio::rest::RestError;
use switchboard_voice::recordings::{DeleteError, Recordings};

/// A single byte range asked for (`Range: bytes=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// `bytes=first-` or `bytes=first-last`.
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Last(u64),
}

/// Parses a `Range` header with one byte range. Anything else (several ranges, another unit,
/// nonsense) is `None`, and the whole file is served, as HTTP allows.
fn parse_range(raw: &str) -> Option<ByteRange> {
    let spec = raw.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(ByteRange::Last);
    }
    let first: u64 = first.parse().ok()?;
    if last.is_empty() {
        return Some(ByteRange::From(first, None));
    }
    let last: u64 = last.parse().ok()?;
    (last >= first).then_some(ByteRange::From(first, Some(last)))
}

/// The inclusive span of a range in a file of `len` bytes; `None` when it is unsatisfiable.
fn resolve(range: ByteRange, len: u64) -> Option<(u64, u64)> {
    match range {
        ByteRange::From(first, _) if first >= len => None,
        ByteRange::From(first, last) => Some((first, last.map_or(len - 1, |l| l.min(len - 1)))),
        ByteRange::Last(0) => None,
        ByteRange::Last(_) if len == 0 => None,
        ByteRange::Last(n) => Some((len.saturating_sub(n), len - 1)),
    }
}

fn not_found(message: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "recording_not_found", message)
}

/// Streams the call's recording to the client; errors are the API's JSON errors.
pub(crate) async fn serve(
    st: &AppState,
    org: &OrgId,
    call: &CallId,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let rec = st
        .store
        .call_recording(org, call)
        .await?
        .ok_or_else(|| not_found("the call has no recording"))?;
    if rec.deleted_at.is_some() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "recording_deleted",
            "the recording was deleted",
        ));
    }
    match rec.status.as_deref() {
        Some("completed") => {}
        Some("in-progress") | None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "recording_not_ready",
                "the recording is not finished yet; try again once the call has ended",
            ))
        }
        Some(other) => {
            return Err(not_found(&format!(
                "Twilio recorded nothing usable (status `{other}`)"
            )))
        }
    }
    let creds = st.store.twilio_credentials(org).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_configured",
            "the organization has no Twilio credentials",
        )
    })?;
    let asked = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let wire = asked.map(|r| match r {
        ByteRange::From(f, Some(l)) => format!("bytes={f}-{l}"),
        ByteRange::From(f, None) => format!("bytes={f}-"),
        ByteRange::Last(n) => format!("bytes=-{n}"),
    });
    let upstream = st
        .voice
        .twilio
        .at(creds.space.as_deref())
        .fetch_recording(
            &creds.account_sid,
            creds.auth_token.expose(),
            &rec.sid,
            wire.as_deref(),
        )
        .await
        .map_err(|e| match e {
            RestError::Api { status: 404, .. } => not_found("Twilio no longer has this recording"),
            RestError::Api { status: 416, .. } => unsatisfiable_error(),
            other => {
                tracing::warn!(call_id = %call, error = %other, "cannot fetch a recording from Twilio");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "twilio_unavailable",
                    "Twilio did not deliver the recording; try again",
                )
            }
        })?;
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .filter(|v| v.to_str().is_ok_and(|t| t.starts_with("audio/")))
        .cloned()
        .unwrap_or(HeaderValue::from_static("audio/wav"));
    let mut out = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"call-{call}.wav\""),
        );
    if upstream.status() == reqwest::StatusCode::PARTIAL_CONTENT {
        // Twilio (or its storage) served the range itself: pass it on.
        for name in [header::CONTENT_RANGE, header::CONTENT_LENGTH] {
            if let Some(v) = upstream.headers().get(&name) {
                out = out.header(name, v.clone());
            }
        }
        return out
            .status(StatusCode::PARTIAL_CONTENT)
            .body(Body::from_stream(upstream.bytes_stream()))
            .map_err(|e| ApiError::internal(&e));
    }
    let len = upstream.content_length();
    match (asked, len) {
        (Some(range), Some(len)) => {
            // The whole file came: cut the range out of it on the way through.
            let Some((first, last)) = resolve(range, len) else {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    unsatisfiable_error(),
                )
                    .into_response());
            };
            let body = slice(upstream, first, last - first + 1);
            out.status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}"))
                .header(header::CONTENT_LENGTH, last - first + 1)
                .body(body)
                .map_err(|e| ApiError::internal(&e))
        }
        (_, len) => {
            if let Some(len) = len {
                out = out.header(header::CONTENT_LENGTH, len);
            }
            out.status(StatusCode::OK)
                .body(Body::from_stream(upstream.bytes_stream()))
                .map_err(|e| ApiError::internal(&e))
        }
    }
}

fn unsatisfiable_error() -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        "the requested range is outside the recording",
    )
}

/// The bytes `skip..skip+take` of a streamed answer, streamed.
fn slice(upstream: reqwest::Response, skip: u64, take: u64) -> Body {
    let stream = upstream
        .bytes_stream()
        .scan((skip, take), |(skip, take), chunk| {
            let out = match chunk {
                Err(e) => Some(Err(e)),
                Ok(_) if *take == 0 => None,
                Ok(mut bytes) => {
                    let n = bytes.len() as u64;
                    if *skip >= n {
                        *skip -= n;
                        Some(Ok(axum::body::Bytes::new()))
                    } else {
                        let from = usize::try_from(*skip).unwrap_or(usize::MAX);
                        *skip = 0;
                        let mut part = bytes.split_off(from);
                        if part.len() as u64 > *take {
                            part.truncate(usize::try_from(*take).unwrap_or(usize::MAX));
                        }
                        *take -= part.len() as u64;
                        Some(Ok(part))
                    }
                }
            };
            std::future::ready(out)
        });
    Body::from_stream(stream)
}

/// The call's recording as audio (`audio/wav`, two channels when recorded so: the callee or
/// caller on one, the agent on the other). `Range: bytes=...` is answered with 206 so players
/// can seek. The audio comes from Twilio through Switchboard: no Twilio URL or credential is
/// ever exposed.
#[utoipa::path(get, path = "/api/v1/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path), ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "The audio", content_type = "audio/wav"),
        (status = 206, description = "The requested range of the audio", content_type = "audio/wav"),
        (status = 404, description = "No recording (`recording_not_found`)", body = ErrorBody),
        (status = 409, description = "Still recording (`recording_not_ready`), or no Twilio credentials (`not_configured`)", body = ErrorBody),
        (status = 410, description = "Deleted (`recording_deleted`)", body = ErrorBody),
        (status = 416, description = "Range outside the file (`range_not_satisfiable`)", body = ErrorBody),
        (status = 502, description = "Twilio did not deliver it (`twilio_unavailable`)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_recording(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(&id, CallId::parse)?;
    serve(&st, &auth.org, &id, &headers).await
}

/// Deletes the call's recording at Twilio and here (the call keeps `recording.status:
/// "deleted"`). Nothing is marked deleted unless Twilio deleted it (or no longer had it).
#[utoipa::path(delete, path = "/api/v1/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No recording (`recording_not_found`)", body = ErrorBody),
        (status = 409, description = "No Twilio credentials (`not_configured`)", body = ErrorBody),
        (status = 502, description = "Twilio refused or was unreachable (`twilio_unavailable`)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_recording(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, CallId::parse)?;
    delete(&st, &auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a call's recording (API and dashboard).
pub(crate) async fn delete(st: &AppState, org: &OrgId, call: &CallId) -> Result<(), ApiError> {
    let recordings = Recordings::new(st.store.clone(), st.voice.twilio.clone(), st.clock.clone());
    match recordings.delete(org, call).await {
        Ok(_) => Ok(()),
        Err(DeleteError::NoRecording) => Err(not_found("the call has no recording")),
        Err(DeleteError::NoCredentials) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_configured",
            "the organization has no Twilio credentials",
        )),
        Err(DeleteError::Twilio(e)) => {
            tracing::warn!(call_id = %call, error = %e, "Twilio did not delete a recording");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "twilio_unavailable",
                "Twilio did not delete the recording; nothing changed, try again",
            ))
        }
        Err(DeleteError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve_like_http_says() {
        assert_eq!(
            parse_range("bytes=0-99"),
            Some(ByteRange::From(0, Some(99)))
        );
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100, None)));
        assert_eq!(parse_range("bytes=-50"), Some(ByteRange::Last(50)));
        assert_eq!(parse_range("bytes=5-1"), None);
        assert_eq!(parse_range("bytes=0-1,5-9"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(resolve(ByteRange::From(0, Some(99)), 50), Some((0, 49)));
        assert_eq!(resolve(ByteRange::From(50, None), 50), None);
        assert_eq!(resolve(ByteRange::Last(10), 50), Some((40, 49)));
        assert_eq!(resolve(ByteRange::Last(80), 50), Some((0, 49)));
        assert_eq!(resolve(ByteRange::Last(0), 50), None);
    }
}
