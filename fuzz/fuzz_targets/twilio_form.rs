//! Twilio's form-encoded webhook bodies and their `X-Twilio-Signature`, as the voice,
//! status and messaging routes read them.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard_domain::ids::CallId;
use switchboard_domain::messaging::parse_address;
use switchboard_domain::values::{CallStatus, PhoneNumber};
use switchboard_twilio::signature;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    body: &'a [u8],
    query: &'a str,
    header: &'a str,
    token: &'a str,
    https: bool,
    port: Option<u16>,
}

fuzz_target!(|i: Input<'_>| {
    let params: Vec<(String, String)> = form_urlencoded::parse(i.body).into_owned().collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The fields the routes interpret.
    for name in ["From", "To", "Called", "Caller"] {
        if let Some(v) = get(name) {
            let _ = parse_address(v);
            let _ = PhoneNumber::parse(v);
        }
    }
    if let Some(v) = get("CallStatus") {
        let _ = CallStatus::parse(v);
    }
    for (k, v) in form_urlencoded::parse(i.query.as_bytes()) {
        if k == "call_id" {
            let _ = CallId::parse(&v);
        } else if k == "drain_hop" {
            let _ = v.parse::<u32>();
        }
    }
    // The signature check answers for anything, and never panics.
    let scheme = if i.https { "https" } else { "http" };
    let port = i.port.map(|p| format!(":{p}")).unwrap_or_default();
    let url = format!(
        "{scheme}://switchboard.example{port}/twilio/voice?{}",
        i.query
    );
    let _ = signature::validate(i.token, &url, &params, i.header);
    // What Twilio would sign validates, with the default port written or not.
    let sig = signature::compute(i.token, &url, &params);
    assert!(signature::validate(i.token, &url, &params, &sig));
    let default = if i.https { ":443" } else { ":80" };
    if i.port.is_none() && !i.query.contains(['#']) {
        let explicit = format!(
            "{scheme}://switchboard.example{default}/twilio/voice?{}",
            i.query
        );
        let sig = signature::compute(i.token, &explicit, &params);
        assert!(signature::validate(i.token, &url, &params, &sig));
    }
    // Parameters in another order sign the same (Twilio sorts them).
    let mut reversed = params.clone();
    reversed.reverse();
    let sig = signature::compute(i.token, &url, &params);
    assert!(signature::validate(i.token, &url, &reversed, &sig));
});
