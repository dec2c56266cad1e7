//! `X-Twilio-Signature`: HMAC-SHA1 over the full URL followed by every POST parameter
//! (sorted by name, then value), keyed with the account's auth token, Base64-encoded.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Computes the signature Twilio sends for `url` and the decoded form `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = keyed(auth_token);
    feed(&mut mac, url, params);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn keyed(auth_token: &str) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha1::new_from_slice(auth_token.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn feed(mac: &mut HmacSha1, url: &str, params: &[(String, String)]) {
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then by value for repeated names (what the official validators do).
    sorted.sort();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
}

/// Checks `header` against `url` and `params` in constant time. Twilio is not consistent
/// about explicit default ports, so the URL is tried as given and with the default port
/// added or removed.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    url_variants(url).iter().any(|candidate| {
        let mut mac = keyed(auth_token);
        feed(&mut mac, candidate, params);
        mac.verify_slice(&expected).is_ok()
    })
}

/// The URL as given, plus the same URL with the scheme's default port toggled.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    for (scheme, port) in [
        ("https://", ":443"),
        ("http://", ":80"),
        ("wss://", ":443"),
        ("ws://", ":80"),
    ] {
        let Some(rest) = url.strip_prefix(scheme) else {
            continue;
        };
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(host_end);
        if let Some(bare) = host.strip_suffix(port) {
            out.push(format!("{scheme}{bare}{tail}"));
        } else if !host.contains(':') {
            out.push(format!("{scheme}{host}{port}{tail}"));
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    // Vectors from protocols.md section 2.4.
    #[test]
    fn docs_example() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            compute("12345", URL, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(validate(
            "12345",
            URL,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!validate(
            "54321",
            URL,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn with_and_without_default_port() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(
            compute("12345", URL, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute("12345", with_port, &params),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        // Either form of the URL validates either signature.
        for url in [URL, with_port] {
            assert!(validate(
                "12345",
                url,
                &params,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8="
            ));
            assert!(validate(
                "12345",
                url,
                &params,
                "kvajT1Ptam85bY51eRf/AJRuM3w="
            ));
        }
    }

    #[test]
    fn repeated_parameters() {
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            compute("12345", URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn tampering_fails() {
        let params = p(&[("To", "+18005551212")]);
        let sig = compute("12345", URL, &params);
        assert!(!validate("12345", URL, &p(&[("To", "+18005551213")]), &sig));
        assert!(!validate(
            "12345",
            "https://mycompany.com/other",
            &params,
            &sig
        ));
        assert!(!validate("12345", URL, &params, "not base64!"));
        // A dropped empty parameter changes the signature too.
        let with_empty = p(&[("To", "+18005551212"), ("ForwardedFrom", "")]);
        assert!(!validate("12345", URL, &with_empty, &sig));
    }
}
