//! The per-call media token: HMAC-SHA256 over (organization, call, expiry) with a platform
//! secret. It travels as a TwiML `<Parameter>` and is checked on the stream's `start` before
//! any model session is opened, so an unauthenticated socket costs nothing.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// How long a token is valid: Twilio opens the stream right after it fetches the TwiML.
pub const TOKEN_TTL_MS: i64 = 120_000;

fn mac(secret: &str, org: &OrgId, call: &CallId, expires_ms: i64) -> HmacSha256 {
    let mut m = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(format!("{org}\n{call}\n{expires_ms}").as_bytes());
    m
}

/// Mints a token valid until `now + TOKEN_TTL_MS`: `<expiry ms>.<base64url MAC>`.
pub fn mint(secret: &str, org: &OrgId, call: &CallId, now: Timestamp) -> String {
    let expires = now.millis() + TOKEN_TTL_MS;
    let tag = mac(secret, org, call, expires).finalize().into_bytes();
    format!(
        "{expires}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a token in constant time; `false` when wrong, malformed or expired.
pub fn verify(secret: &str, org: &OrgId, call: &CallId, token: &str, now: Timestamp) -> bool {
    let Some((exp, tag)) = token.split_once('.') else {
        return false;
    };
    let Ok(expires) = exp.parse::<i64>() else {
        return false;
    };
    if expires < now.millis() || expires > now.millis() + TOKEN_TTL_MS {
        return false;
    }
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    mac(secret, org, call, expires).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_org_call_and_time() {
        let (org, call) = (OrgId::generate(), CallId::generate());
        let now = Timestamp::now();
        let t = mint("s3cret", &org, &call, now);
        assert!(verify("s3cret", &org, &call, &t, now));
        assert!(!verify("other", &org, &call, &t, now));
        assert!(!verify("s3cret", &OrgId::generate(), &call, &t, now));
        assert!(!verify("s3cret", &org, &CallId::generate(), &t, now));
        let later = Timestamp::from_millis(now.millis() + TOKEN_TTL_MS + 1);
        assert!(!verify("s3cret", &org, &call, &t, later));
        assert!(!verify("s3cret", &org, &call, "garbage", now));
        let forged = format!(
            "{}.{}",
            now.millis() + 1000,
            t.split_once('.').map(|p| p.1).unwrap_or("")
        );
        assert!(!verify("s3cret", &org, &call, &forged, now));
    }
}
