//! Twilio wire formats only: request signatures, TwiML, Media Streams messages and the REST
//! calls we make. Knows nothing about organizations or agents.

pub mod media;
pub mod numbers;
pub mod recordings;
pub mod rest;
pub mod signature;
pub mod twiml;

/// Whether `sid` can be a resource SID in a REST path or a callback: Twilio's (`CA`, `RE`,
/// `PN`... and hex) or SignalWire's (UUIDs), 1 to 64 letters, digits and `-`.
pub fn valid_sid(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= 64
        && sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn sids() {
        assert!(super::valid_sid("CA0123456789abcdef0123456789abcdef"));
        assert!(super::valid_sid("5f1c2b6e-8d2a-4f3b-9c1d-2e3f4a5b6c7d"));
        assert!(!super::valid_sid("../x"));
        assert!(!super::valid_sid(""));
        assert!(!super::valid_sid(&"a".repeat(65)));
    }
}
