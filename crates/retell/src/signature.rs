//! `x-retell-signature: v=<timestamp_ms>,d=<hex>`, where the hex is the lowercase
//! HMAC-SHA256 of the raw body followed by the timestamp's decimal digits, keyed with the
//! Retell API key that has the webhook badge (protocols.md 6.2, as Retell's SDK verifies it).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from now (Retell's SDK: 5 minutes).
pub const TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent or not `v=<digits>,d=<64 lowercase hex>`.
    #[error("the x-retell-signature header is missing or malformed")]
    Malformed,
    /// The timestamp is more than five minutes from now.
    #[error("the signature's timestamp is more than five minutes from now")]
    Stale,
    /// The digest does not match the body and the key.
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac(key: &str, body: &[u8], timestamp_ms: i64) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(body);
    m.update(timestamp_ms.to_string().as_bytes());
    m
}

/// The header value Retell would send for `body` at `timestamp_ms` (for fakes and tests).
pub fn sign(key: &str, body: &[u8], timestamp_ms: i64) -> String {
    let digest = mac(key, body, timestamp_ms).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v={timestamp_ms},d={hex}")
}

fn parse(header: &str) -> Option<(i64, [u8; 32])> {
    let rest = header.strip_prefix("v=")?;
    let (ts, hex) = rest.split_once(",d=")?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) || hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        digest[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some((ts.parse().ok()?, digest))
}

/// Checks `header` against the raw `body` with `key`, at `now_ms`. The comparison is
/// constant-time.
pub fn verify(key: &str, body: &[u8], header: &str, now_ms: i64) -> Result<(), SignatureError> {
    let (ts, digest) = parse(header.trim()).ok_or(SignatureError::Malformed)?;
    if (now_ms - ts).abs() > TOLERANCE_MS {
        return Err(SignatureError::Stale);
    }
    mac(key, body, ts)
        .verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_700_000_000_000;
    const VECTOR: &str =
        "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e";

    #[test]
    fn protocols_test_vector() {
        let body = br#"{"event":"call_ended"}"#;
        assert_eq!(sign("test-api-key", body, TS), VECTOR);
        assert_eq!(verify("test-api-key", body, VECTOR, TS + 1000), Ok(()));
    }

    #[test]
    fn refusals() {
        let body = br#"{"event":"call_ended"}"#;
        assert_eq!(
            verify("other-key", body, VECTOR, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("test-api-key", br#"{"event":"call_started"}"#, VECTOR, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("test-api-key", body, VECTOR, TS + TOLERANCE_MS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("test-api-key", body, VECTOR, TS - TOLERANCE_MS - 1),
            Err(SignatureError::Stale)
        );
        for bad in [
            "",
            "v=,d=00",
            "d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e",
            "v=1700000000000,d=07024CABE7DD8F6D1C6E4A8324CA92C812E6AD4A7EE506C04F7E462E3321823E",
            "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823",
            "v=-1,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e",
        ] {
            assert_eq!(
                verify("test-api-key", body, bad, TS),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
