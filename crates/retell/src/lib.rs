//! Retell AI wire formats (protocols.md section 6): the `x-retell-signature` webhook
//! signature, the custom-LLM WebSocket's messages both ways, the webhook payload, and the
//! one REST call Switchboard makes (`GET /v2/get-call/{call_id}`, to prove a socket's call is
//! real). Knows nothing of tenants.

pub mod api;
pub mod signature;
pub mod socket;
pub mod webhook;

pub use api::{RetellApi, RetellApiError, DEFAULT_API_URL};
pub use signature::{sign, verify, SignatureError, TOLERANCE_MS};
pub use socket::{Interaction, Utterance, UtteranceRole};
pub use webhook::{RetellCall, WebhookEvent};

/// Whether `id` can be a Retell call or agent id: 1 to 128 ASCII letters, digits, `_` or `-`.
/// Retell's ids are hex or `call_`/`agent_` plus hex; anything else in a URL path is refused
/// before it reaches a query or a log line.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids() {
        assert!(super::valid_id("call_7445abc0f814871ec306c78cf60"));
        assert!(super::valid_id("c2a3bb9ef69532220dde5eeb26a9c289"));
        assert!(!super::valid_id(""));
        assert!(!super::valid_id("../etc"));
        assert!(!super::valid_id("a b"));
        assert!(!super::valid_id(&"a".repeat(129)));
    }
}
