//! JSON request bodies of the REST API, through the same strict parser the handlers use
//! (`ApiJson` → `parse_json`), then the same validation the store runs before writing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::agent::{Agent, AgentPatch, NewAgent};
use switchboard_domain::campaign::{recipients_from_json, NewCampaign};
use switchboard_domain::custom_tool::{CustomTool, NewCustomTool};
use switchboard_domain::entities::{
    validate_contact_fields, ContactPatch, NewContact, NewPhoneNumber,
};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::webhooks::{NewWebhookEndpoint, WebhookEndpointUpdate};
use switchboard_domain::{Secret, Timestamp};
use switchboard_web::extract::parse_json;

fn now() -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000)
}

fn base_agent() -> Agent {
    let new: NewAgent = match parse_json(br#"{"name":"Front desk","instructions":"Be kind."}"#) {
        Ok(a) => a,
        Err(e) => panic!("the base agent does not parse: {e:?}"),
    };
    match Agent::create(new, now()) {
        Ok(a) => a,
        Err(e) => panic!("the base agent is invalid: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    // Every error is an `ApiError` with a code and a message: rendering it must not panic.
    let seen = |r: Result<(), switchboard_web::error::ApiError>| {
        if let Err(e) = r {
            let _ = format!("{e:?}");
        }
    };
    match which % 11 {
        0 => seen(parse_json::<NewAgent>(body).map(|a| {
            let _ = Agent::create(a, now());
        })),
        1 => seen(parse_json::<AgentPatch>(body).map(|p| {
            let _ = base_agent().apply(p, now());
        })),
        2 => seen(parse_json::<NewContact>(body).map(|c| {
            let _ = validate_contact_fields(
                c.name.as_deref(),
                c.metadata.as_ref().unwrap_or(&serde_json::Value::Null),
            );
        })),
        3 => seen(parse_json::<ContactPatch>(body).map(|_| ())),
        4 => seen(parse_json::<NewCampaign>(body).map(|c| {
            let _ = c.validate();
            if let Some(items) = &c.recipients {
                let _ = recipients_from_json(items);
            }
        })),
        5 => seen(parse_json::<SettingsUpdate>(body).map(|s| {
            let _ = s.validate();
        })),
        6 => seen(parse_json::<NewWebhookEndpoint>(body).map(|w| {
            let _ = w.validate(false);
        })),
        7 => seen(parse_json::<WebhookEndpointUpdate>(body).map(|w| {
            let _ = w.validate(false);
        })),
        8 => seen(parse_json::<NewCustomTool>(body).map(|t| {
            let _ = CustomTool::create(t, Secret::new(String::from("whsec_AAAA")), false, now());
        })),
        9 => seen(parse_json::<NewPhoneNumber>(body).map(|_| ())),
        _ => seen(parse_json::<switchboard_web::api::outbound::PlaceCall>(body).map(|_| ())),
    }
});
