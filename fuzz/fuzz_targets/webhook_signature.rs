//! The Standard Webhooks `webhook-signature` / `webhook-timestamp` headers, as a receiver
//! checks them with Switchboard's verifier.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use switchboard_domain::Secret;
use switchboard_egress::signing;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a str,
    id: &'a str,
    timestamp: &'a str,
    header: &'a str,
    body: &'a [u8],
    now: i64,
    key: [u8; 24],
}

fuzz_target!(|i: Input<'_>| {
    // Whatever arrives, the verifier answers without panicking or overflowing.
    let _ = signing::verify(i.secret, i.id, i.timestamp, i.body, i.header, i.now);
    // What we sign, a receiver with the same secret accepts, even behind junk entries.
    let secret = format!("{}{}", signing::SECRET_PREFIX, STANDARD.encode(i.key));
    let ts = i.now / 2;
    let header = signing::signature_header(&[Secret::new(secret.clone())], i.id, ts, i.body);
    let padded = format!("{} {header}", i.header.replace(' ', ""));
    assert_eq!(
        signing::verify(&secret, i.id, &ts.to_string(), i.body, &padded, ts),
        Ok(())
    );
    // And a different body is refused.
    let mut other = i.body.to_vec();
    other.push(b'x');
    assert_eq!(
        signing::verify(&secret, i.id, &ts.to_string(), &other, &header, ts),
        Err(signing::VerifyError::NoMatch)
    );
});
