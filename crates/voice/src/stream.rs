//! The TwiML that connects a call to its media stream here: `<Connect><Stream>` to
//! `<public>/twilio/media` with the call's one-time token, for a new call and for a call that
//! comes back on a new stream (`resume`). A drain waits for the stream as for a live call.

use crate::VoiceServices;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Timestamp;
use switchboard_twilio::twiml;

/// The WebSocket base of the public URL (`https://` becomes `wss://`).
pub fn ws_base(public: &str) -> String {
    if let Some(rest) = public.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public.to_owned()
    }
}

/// The `customParameters` a browser's stream starts with for `call` ("Call this agent"): the
/// same one-time token `<Stream>` carries for a phone call, expected within the set-up
/// timeout.
pub fn browser_stream(
    svc: &VoiceServices,
    org: &OrgId,
    call: &CallId,
    now: Timestamp,
) -> Vec<(String, String)> {
    let token = crate::token::mint(&svc.token_secret, org, call, now);
    svc.pending.expect(
        call.clone(),
        std::time::Instant::now() + svc.config.setup_timeout,
    );
    vec![
        ("org_id".into(), org.to_string()),
        ("call_id".into(), call.to_string()),
        ("token".into(), token),
    ]
}

/// `<Connect><Stream>` for `call` with a token minted at `now` and the `extra` parameters
/// (e.g. `("resume", "transfer")`); the stream is expected within the set-up timeout.
pub fn stream_twiml(
    svc: &VoiceServices,
    public: &str,
    org: &OrgId,
    call: &CallId,
    now: Timestamp,
    extra: &[(&str, &str)],
) -> String {
    let token = crate::token::mint(&svc.token_secret, org, call, now);
    svc.pending.expect(
        call.clone(),
        std::time::Instant::now() + svc.config.setup_timeout,
    );
    let mut params = vec![
        ("org_id", org.as_str()),
        ("call_id", call.as_str()),
        ("token", token.as_str()),
    ];
    params.extend_from_slice(extra);
    twiml::connect_stream(&format!("{}/twilio/media", ws_base(public)), &params)
}
