//! Extractors that turn every kind of bad input into an `ApiError`: JSON bodies (strict,
//! unknown fields rejected, the field named), query strings, path ids and credentials.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::OrgStatus;

/// A JSON body parsed strictly: 415 without a JSON content type, 413 over the size limit,
/// 400 for broken JSON, 422 naming the field for anything that does not fit the schema.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a JSON body with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "request body is larger than the server accepts",
                    )
                } else {
                    ApiError::malformed(format!("could not read the request body: {rej}"))
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON the way [`ApiJson`] does (exposed for tests and other extractors).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = plain_words(&strip_position(&inner.to_string()));
            return Err(if inner.is_syntax() || inner.is_eof() {
                ApiError::malformed(format!("request body is not valid JSON: {message}"))
            } else {
                let field = field_name(&path, &message);
                ApiError::invalid(field, message)
            });
        }
    };
    de.end().map_err(|e| {
        ApiError::malformed(format!(
            "trailing data after the JSON value: {}",
            strip_position(&e.to_string())
        ))
    })?;
    Ok(value)
}

/// The field an error is about. For an unknown field serde's path already ends with its
/// name; for a missing one the path is the parent and the name is quoted in the message.
fn field_name(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (p, Some(name)) => format!("{p}.{name}"),
        (".", None) => "body".to_owned(),
        (p, None) => p.to_owned(),
    }
}

/// serde names Rust types (`expected f64`, `expected u32`, `expected struct NewAgent`); people
/// read "a number", "a whole number", "an object".
pub(crate) fn plain_words(message: &str) -> String {
    const TYPES: &[(&str, &str)] = &[
        ("f64", "a number"),
        ("f32", "a number"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("i16", "a whole number"),
        ("i8", "a whole number"),
        ("isize", "a whole number"),
        ("u64", "a whole number, 0 or more"),
        ("u32", "a whole number, 0 or more"),
        ("u16", "a whole number, 0 or more"),
        ("u8", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("a sequence", "a list"),
        ("a map", "an object"),
        ("a boolean", "true or false"),
        ("unit", "null"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("expected ") {
        out.push_str(&rest[..i + "expected ".len()]);
        rest = &rest[i + "expected ".len()..];
        let end = rest.find([',', ';']).unwrap_or(rest.len());
        let word = &rest[..end];
        if let Some((_, plain)) = TYPES.iter().find(|(t, _)| *t == word) {
            out.push_str(plain);
            rest = &rest[end..];
        } else if word.starts_with("struct ") || word.starts_with("internally tagged enum") {
            out.push_str("an object");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    // serde's names of what it found.
    out.replace("invalid type: floating point", "invalid type: number")
        .replace("invalid type: integer", "invalid type: number")
        .replace("invalid value: integer", "invalid value: number")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("invalid type: map", "invalid type: object")
}

/// serde_json appends " at line 1 column 17"; clients do not need it for field errors.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A query string parsed strictly into `T` (unknown parameters rejected with 422).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let param = field_name(&path, &message);
                ApiError::invalid_query(&param, message)
            })
    }
}

/// An authenticated organization principal: an API key, or (only on `/mcp` and the API
/// requests its tools make) an OAuth access token.
pub struct OrgAuth {
    /// The principal's organization: the only source of tenant identity for API handlers.
    pub org: OrgId,
    /// Who it is, as audited: `api_key:key_...` or `oauth:<client id>`.
    pub actor: String,
}

/// An in-process API request made by an MCP tool, with the principal `/mcp` already
/// authenticated (the request carries no credential of its own to check again). Only the
/// server sets request extensions, so this cannot come from the network; it is the one way an
/// OAuth access token (issued for the `/mcp` resource) reaches the REST API's handlers.
#[derive(Debug, Clone)]
pub(crate) struct McpInternal {
    /// The principal's organization.
    pub org: OrgId,
    /// The principal, as audited.
    pub actor: String,
}

/// An authenticated operator key.
pub struct OperatorAuth;

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 200 {
        return Err(ApiError::unauthorized());
    }
    Ok(hash_api_key(token))
}

impl AppState {
    async fn is_operator(&self, hash: &str) -> Result<bool, ApiError> {
        if self.operator_key_hash.as_deref() == Some(hash) {
            return Ok(true);
        }
        Ok(self.store.authenticate_operator_key(hash).await?)
    }
}

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(i) = parts.extensions.get::<McpInternal>() {
            return Ok(OrgAuth {
                org: i.org.clone(),
                actor: i.actor.clone(),
            });
        }
        authenticate(parts, state, false).await
    }
}

/// Authenticates the bearer credential of a request: an organization API key, or an OAuth
/// access token when `oauth` allows it (on `/mcp`).
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
    oauth: bool,
) -> Result<OrgAuth, ApiError> {
    let hash = bearer(parts)?;
    let disabled = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "organization_disabled",
            "this organization is disabled; ask the operator to enable it",
        )
    };
    match state.store.authenticate_api_key(&hash).await? {
        Some(p) if p.org_status == OrgStatus::Disabled => Err(disabled()),
        Some(p) => {
            let org = p.org_id.clone();
            let limited = state
                .store
                .take_request_token(
                    &org,
                    p.key_id.as_str(),
                    state.admission.limits.api_rate,
                    state.clock.now(),
                )
                .await?;
            if let Some(wait_ms) = limited {
                state
                    .admission
                    .rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let seconds = u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000).max(1);
                return Err(ApiError::rate_limited(seconds));
            }
            if let Err(e) = state.store.touch_api_key(&org, &p).await {
                // Bookkeeping only: never fail a request because last-used could not be saved.
                tracing::warn!(error = %e, "could not record API key use");
            }
            Ok(OrgAuth {
                org,
                actor: format!("api_key:{}", p.key_id),
            })
        }
        None if oauth => match state
            .store
            .authenticate_oauth_token(&hash, state.clock.now())
            .await?
        {
            Some(p) if p.org_status == OrgStatus::Disabled => Err(disabled()),
            Some(p) => Ok(OrgAuth {
                org: p.org_id,
                actor: format!("oauth:{}", p.client_id),
            }),
            None => Err(ApiError::unauthorized()),
        },
        None if state.is_operator(&hash).await? => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "operator keys manage organizations only; use an organization API key here",
        )),
        None => Err(ApiError::unauthorized()),
    }
}

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = bearer(parts)?;
        if state.is_operator(&hash).await? {
            return Ok(OperatorAuth);
        }
        if state.store.authenticate_api_key(&hash).await?.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_only",
                "this endpoint needs an operator key",
            ));
        }
        Err(ApiError::unauthorized())
    }
}

/// Parses a path id; anything malformed is simply not found.
pub fn path_id<T>(raw: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(raw).ok_or_else(ApiError::not_found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rust_type_names_become_words() {
        use super::plain_words;
        assert_eq!(
            plain_words("invalid type: string \"hot\", expected f64"),
            "invalid type: string \"hot\", expected a number"
        );
        assert_eq!(
            plain_words("invalid value: integer `-1`, expected u32"),
            "invalid value: number `-1`, expected a whole number, 0 or more"
        );
        assert_eq!(
            plain_words("invalid type: map, expected a sequence"),
            "invalid type: object, expected a list"
        );
        assert_eq!(
            plain_words("invalid type: string \"x\", expected struct BusinessHours"),
            "invalid type: string \"x\", expected an object"
        );
        assert_eq!(plain_words("missing field `name`"), "missing field `name`");
        assert_eq!(
            plain_words("unknown variant `x`, expected `a` or `b`"),
            "unknown variant `x`, expected `a` or `b`"
        );
    }

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"name":"x","extra":1}"#).expect_err("unknown");
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("extra"))
        );
        let e = parse_json::<Body>(br#"{}"#).expect_err("missing");
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = parse_json::<Body>(br#"{"name":"x","inner":{"n":300}}"#).expect_err("range");
        assert_eq!(e.field.as_deref(), Some("inner.n"));
        let e = parse_json::<Body>(br#"{"name":"x","inner":{"m":1}}"#).expect_err("nested unknown");
        assert_eq!(e.field.as_deref(), Some("inner.m"));
        let e = parse_json::<Body>(br#"{"name": "#).expect_err("syntax");
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "malformed_json")
        );
        let e = parse_json::<Body>(br#"{"name":"x"} {}"#).expect_err("trailing");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
