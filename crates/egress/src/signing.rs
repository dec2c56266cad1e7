//! Standard Webhooks signing (protocols.md section 7): `v1,` + base64(HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}")), where the key is the base64-decoded part of `whsec_...`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_domain::Secret;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24 to 64).
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    switchboard_domain::ids::fill_random(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a `whsec_` secret; `None` when it is not valid base64.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).ok()
}

/// The `v1,<base64>` signature of one attempt.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error case cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one entry per secret, space-separated, so receivers
/// holding either the new or the previous secret accept it during a rotation.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| secret_key(s.expose()))
        .map(|k| sign(&k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How far a `webhook-timestamp` may be from the receiver's clock, either way (the spec's
/// recommended five minutes), so a captured request cannot be replayed later.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The secret is not `whsec_` + base64.
    BadSecret,
    /// `webhook-timestamp` is not a whole number of seconds.
    BadTimestamp,
    /// `webhook-timestamp` is further than [`TOLERANCE_SECS`] from now.
    Stale,
    /// No `v1` entry of `webhook-signature` matched.
    NoMatch,
}

/// Verifies a received Standard Webhooks request the way the spec's receivers do: the key is
/// the base64 after `whsec_`, the signed content is `id.timestamp.body`, the header holds
/// space-separated `version,signature` entries of which only `v1` ones are checked, each in
/// constant time. Every input comes from the network, so nothing here may panic or overflow.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now_secs: i64,
) -> Result<(), VerifyError> {
    let key = secret_key(secret).ok_or(VerifyError::BadSecret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if ts.abs_diff(now_secs) > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    for entry in header.split(' ') {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        if mac.clone().verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_vector() {
        // protocols.md section 7.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_decode_to_32_bytes_and_differ() {
        let a = generate_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_key(&a).map(|k| k.len()), Some(32));
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let secrets = vec![
            Secret::new(generate_secret()),
            Secret::new(generate_secret()),
        ];
        let h = signature_header(&secrets, "evt_1", 10, b"{}");
        assert_eq!(h.split(' ').count(), 2);
        assert!(h.split(' ').all(|p| p.starts_with("v1,")));
    }

    #[test]
    fn verify_accepts_the_vector_and_refuses_the_rest() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let ts = 1614265330;
        assert_eq!(verify(secret, id, "1614265330", body, sig, ts), Ok(()));
        // Another entry first (a rotated secret, a future version) does not hide the match.
        let both = format!("v2,abc v1,AAAA {sig}");
        assert_eq!(verify(secret, id, "1614265330", body, &both, ts), Ok(()));
        assert_eq!(
            verify(secret, id, "1614265330", b"{}", sig, ts),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(secret, id, "1614265330", body, sig, ts + TOLERANCE_SECS + 1),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(secret, id, "soon", body, sig, ts),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify("whsec_!!", id, "1614265330", body, sig, ts),
            Err(VerifyError::BadSecret)
        );
        // Extreme clocks are refused, not overflowed.
        assert_eq!(
            verify(secret, id, &i64::MIN.to_string(), body, sig, i64::MAX),
            Err(VerifyError::Stale)
        );
    }
}
