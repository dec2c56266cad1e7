//! OAuth 2.1 for the MCP server (the authorization flow MCP specifies for remote servers):
//! dynamic client registration (RFC 7591), PKCE with S256 (RFC 7636), and the rules a
//! registration's redirect URIs must follow.

use crate::{Timestamp, ValidationError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The one scope: use Switchboard's MCP server for the consenting admin's organization.
pub const SCOPE: &str = "mcp";
/// How long an access token lasts.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// How long a refresh token lasts (each use replaces it).
pub const REFRESH_TOKEN_SECONDS: i64 = 30 * 24 * 3600;
/// How long an authorization code may wait to be exchanged.
pub const CODE_SECONDS: i64 = 300;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A public client (PKCE only): desktop and browser apps.
    None,
    /// `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
}

impl ClientAuth {
    /// As stored and in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::ClientSecretBasic => "client_secret_basic",
        }
    }

    /// Reads a stored value.
    pub fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "none" => Some(ClientAuth::None),
            "client_secret_post" => Some(ClientAuth::ClientSecretPost),
            "client_secret_basic" => Some(ClientAuth::ClientSecretBasic),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// `client_name` (shown on the consent page).
    pub name: String,
    /// Where codes may be sent.
    pub redirect_uris: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub auth: ClientAuth,
    /// SHA-256 of its secret (confidential clients).
    pub secret_hash: Option<String>,
    /// Registered.
    pub created_at: Timestamp,
}

/// A registration request (RFC 7591 §2); unknown metadata is ignored, as the RFC says.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    /// Required: where codes may be sent.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Display name.
    pub client_name: Option<String>,
    /// `none` (default for this server), `client_secret_post` or `client_secret_basic`.
    pub token_endpoint_auth_method: Option<String>,
    /// Must include `authorization_code` when given.
    pub grant_types: Option<Vec<String>>,
    /// Must be `code` when given.
    pub response_types: Option<Vec<String>>,
    /// Must be `mcp` (or absent).
    pub scope: Option<String>,
}

/// Why a registration was refused: the RFC 7591 error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub error: &'static str,
    /// What is wrong.
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> RegistrationError {
    RegistrationError {
        error,
        description: description.into(),
    }
}

impl Registration {
    /// Checks the request; answers the client's auth method.
    pub fn validate(&self) -> Result<ClientAuth, RegistrationError> {
        if self.redirect_uris.is_empty() || self.redirect_uris.len() > 10 {
            return Err(refuse("invalid_redirect_uri", "give 1 to 10 redirect_uris"));
        }
        for uri in &self.redirect_uris {
            check_redirect_uri(uri).map_err(|m| refuse("invalid_redirect_uri", m))?;
        }
        let auth = match self.token_endpoint_auth_method.as_deref() {
            None => ClientAuth::None,
            Some(m) => ClientAuth::parse(m).ok_or_else(|| {
                refuse(
                    "invalid_client_metadata",
                    "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic",
                )
            })?,
        };
        if let Some(g) = &self.grant_types {
            if !g.iter().any(|g| g == "authorization_code")
                || g.iter()
                    .any(|g| g != "authorization_code" && g != "refresh_token")
            {
                return Err(refuse(
                    "invalid_client_metadata",
                    "grant_types may be authorization_code and refresh_token",
                ));
            }
        }
        if let Some(r) = &self.response_types {
            if r.iter().any(|r| r != "code") {
                return Err(refuse(
                    "invalid_client_metadata",
                    "response_types must be [\"code\"]",
                ));
            }
        }
        if let Some(s) = &self.scope {
            if s.split(' ').any(|s| !s.is_empty() && s != SCOPE) {
                return Err(refuse("invalid_client_metadata", "the only scope is `mcp`"));
            }
        }
        if self
            .client_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200)
        {
            return Err(refuse(
                "invalid_client_metadata",
                "client_name: at most 200 characters",
            ));
        }
        Ok(auth)
    }
}

/// A redirect URI: `https://...`, or `http://` to a loopback host (native apps, RFC 8252),
/// no fragment, at most 2,000 characters.
pub fn check_redirect_uri(uri: &str) -> Result<url::Url, String> {
    if uri.len() > 2000 {
        return Err("a redirect URI has at most 2,000 characters".into());
    }
    let u = url::Url::parse(uri).map_err(|e| format!("{uri} is not a URL: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("{uri}: a redirect URI has no fragment"));
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(format!(
            "{uri}: redirect URIs use https (http only to localhost or 127.0.0.1)"
        )),
    }
}

/// Whether `verifier` matches `challenge` under S256 (RFC 7636 §4.6); the verifier must be 43
/// to 128 unreserved characters.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    shaped && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Whether a `code_challenge` has the S256 shape (43 base64url characters).
pub fn challenge_shaped(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A validation error for a form field (the consent page).
pub fn invalid(field: &str, message: &str) -> ValidationError {
    ValidationError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b_vector() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(challenge_shaped(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn redirect_uris_are_https_or_loopback() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://localhost:6274/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1/cb").is_ok());
        assert!(check_redirect_uri("http://evil.example/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://x.example/cb#frag").is_err());
    }
}
