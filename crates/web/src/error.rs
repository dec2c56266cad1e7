//! The one error type of the HTTP edge: `{"error": {"code", "message", "field"?}}` with a
//! stable machine-readable `code`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_store::StoreError;

/// An API error: status, stable code, human message and optionally the field at fault.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code clients can branch on.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
    /// Input field at fault (422).
    pub field: Option<String>,
    /// Seconds before a retry can succeed (`Retry-After`, with 429 and 503).
    pub retry_after: Option<u64>,
}

/// The JSON envelope of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Error details.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `malformed_json`, `unauthorized`, `forbidden`, `operator_only`,
    /// `organization_disabled`, `not_found`, `method_not_allowed`, `conflict`,
    /// `invalid_field`, `invalid_query`, `payload_too_large`, `unsupported_media_type`,
    /// `internal`, `unavailable`.
    pub code: String,
    /// Human explanation.
    pub message: String,
    /// The input field at fault, for `invalid_field` and `invalid_query`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 429: this API key sent more requests than its rate allows; retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests with this API key; retry in {seconds} s"),
        );
        e.retry_after = Some(seconds);
        e
    }

    /// 400: the request could not be parsed.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 401: no or unknown credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid API key: send `Authorization: Bearer <key>`",
        )
    }

    /// 404 without saying whether the thing exists elsewhere.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 422 naming the field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: format!("{field}: {message}"),
            field: Some(field),
            retry_after: None,
        }
    }

    /// 422 for a query-string parameter.
    pub fn invalid_query(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_query",
            message: format!("{param}: {}", message.into()),
            field: Some(param.to_owned()),
            retry_after: None,
        }
    }

    /// 500; the cause is logged here, once, and not returned.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

impl From<switchboard_domain::ValidationError> for ApiError {
    fn from(v: switchboard_domain::ValidationError) -> Self {
        ApiError::invalid(v.field, v.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            StoreError::Invalid(v) => ApiError::invalid(v.field, v.message),
            other => ApiError::internal(&other),
        }
    }
}

impl From<switchboard_messaging::MessagingError> for ApiError {
    fn from(e: switchboard_messaging::MessagingError) -> Self {
        use switchboard_messaging::MessagingError as M;
        let code = e.code();
        match e {
            M::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, "not_found", what),
            M::Invalid(v) => ApiError::invalid(v.field, v.message),
            M::Store(s) => s.into(),
            M::OptedOut
            | M::WhatsappWindowClosed
            | M::ConversationClosed(_)
            | M::UnsupportedChannel(_)
            | M::NotConfigured(_) => ApiError::new(StatusCode::CONFLICT, code, e.to_string()),
            M::Model(_) | M::Twilio(_) | M::TwilioUnreachable(_) => {
                tracing::warn!(error = %e, "upstream failure");
                ApiError::new(StatusCode::BAD_GATEWAY, code, e.public_message())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}
