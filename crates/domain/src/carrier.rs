//! The carrier of an organization's calls and texts: Twilio, or SignalWire through its
//! compatibility API. What differs is where the REST API lives (`https://{space}/api/laml`
//! instead of `https://api.twilio.com`), what the webhooks are signed with (the project's
//! signing key, not the API token) and the header that carries it
//! (`X-SignalWire-Signature`; SignalWire documents `X-Twilio-Signature` as an accepted
//! alias). The shapes of requests, callbacks, TwiML (cXML) and media streams are Twilio's.

use crate::settings::SettingsUpdate;
use crate::values::Carrier;
use crate::ValidationError;

/// Whether `s` is a SignalWire space host: `<name>.signalwire.com`.
pub fn valid_space(s: &str) -> bool {
    let Some(name) = s.strip_suffix(".signalwire.com") else {
        return false;
    };
    !name.is_empty()
        && s.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether `s` is a project id: a UUID in its 8-4-4-4-12 hexadecimal form.
pub fn valid_project_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn token_ok(t: &str) -> bool {
    !t.is_empty() && t.len() <= 200 && !t.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The SignalWire fields of a settings update, each on its own.
pub(crate) fn validate_signalwire(u: &SettingsUpdate) -> Result<(), ValidationError> {
    if let Some(s) = &u.signalwire_space {
        if !valid_space(s) {
            return Err(ValidationError::new(
                "signalwire_space",
                "must be the space's host, e.g. example.signalwire.com",
            ));
        }
    }
    if let Some(p) = &u.signalwire_project_id {
        if !valid_project_id(p) {
            return Err(ValidationError::new(
                "signalwire_project_id",
                "must be the project id from the SignalWire dashboard (a UUID)",
            ));
        }
    }
    for (field, v) in [
        ("signalwire_api_token", &u.signalwire_api_token),
        ("signalwire_signing_key", &u.signalwire_signing_key),
    ] {
        if v.as_ref().is_some_and(|t| !token_ok(t.expose())) {
            return Err(ValidationError::new(
                field,
                "must be the non-empty value from the SignalWire dashboard, without spaces",
            ));
        }
    }
    Ok(())
}

impl SettingsUpdate {
    /// Whether the update changes the carrier account numbers are proven with (so they are
    /// checked again).
    pub fn changes_carrier_account(&self) -> bool {
        self.carrier.is_some()
            || self.twilio_account_sid.is_some()
            || self.twilio_auth_token.is_some()
            || self.signalwire_space.is_some()
            || self.signalwire_project_id.is_some()
            || self.signalwire_api_token.is_some()
    }
}

/// The carrier an update leaves, and the check that it brings what a switch needs: moving
/// to a carrier needs all of its credentials, and one carrier's fields cannot be set while
/// the organization uses the other.
pub fn check_switch(current: Carrier, u: &SettingsUpdate) -> Result<Carrier, ValidationError> {
    let target = u.carrier.unwrap_or(current);
    let twilio_fields = u.twilio_account_sid.is_some() || u.twilio_auth_token.is_some();
    let sw_fields = u.signalwire_space.is_some()
        || u.signalwire_project_id.is_some()
        || u.signalwire_api_token.is_some()
        || u.signalwire_signing_key.is_some();
    match target {
        Carrier::Twilio => {
            if sw_fields {
                return Err(ValidationError::new(
                    "carrier",
                    "SignalWire credentials need \"carrier\": \"signalwire\"",
                ));
            }
            if current != Carrier::Twilio
                && (u.twilio_account_sid.is_none() || u.twilio_auth_token.is_none())
            {
                let field = if u.twilio_account_sid.is_none() {
                    "twilio_account_sid"
                } else {
                    "twilio_auth_token"
                };
                return Err(ValidationError::new(
                    field,
                    "required when the carrier changes to Twilio",
                ));
            }
        }
        Carrier::SignalWire => {
            if twilio_fields {
                return Err(ValidationError::new(
                    "carrier",
                    "Twilio credentials need \"carrier\": \"twilio\"",
                ));
            }
            if current != Carrier::SignalWire {
                for (field, missing) in [
                    ("signalwire_space", u.signalwire_space.is_none()),
                    ("signalwire_project_id", u.signalwire_project_id.is_none()),
                    ("signalwire_api_token", u.signalwire_api_token.is_none()),
                    ("signalwire_signing_key", u.signalwire_signing_key.is_none()),
                ] {
                    if missing {
                        return Err(ValidationError::new(
                            field,
                            "required when the carrier changes to SignalWire",
                        ));
                    }
                }
            }
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn spaces_and_projects() {
        assert!(valid_space("example.signalwire.com"));
        assert!(valid_space("my-shop.signalwire.com"));
        assert!(!valid_space("signalwire.com"));
        assert!(!valid_space("evil.com/.signalwire.com"));
        assert!(!valid_space("127.0.0.1"));
        assert!(!valid_space("Example.signalwire.com"));
        assert!(!valid_space("https://example.signalwire.com"));
        assert!(valid_project_id("5f1c2b6e-8d2a-4f3b-9c1d-2e3f4a5b6c7d"));
        assert!(!valid_project_id("AC0123456789abcdef0123456789abcdef"));
        assert!(!valid_project_id("5f1c2b6e-8d2a-4f3b-9c1d-2e3f4a5b6c7"));
    }

    #[test]
    fn switching_needs_the_new_carriers_credentials() {
        let full = SettingsUpdate {
            carrier: Some(Carrier::SignalWire),
            signalwire_space: Some("example.signalwire.com".into()),
            signalwire_project_id: Some("5f1c2b6e-8d2a-4f3b-9c1d-2e3f4a5b6c7d".into()),
            signalwire_api_token: Some(Secret::new("PTabc")),
            signalwire_signing_key: Some(Secret::new("PSKabc")),
            ..SettingsUpdate::default()
        };
        assert_eq!(
            check_switch(Carrier::Twilio, &full),
            Ok(Carrier::SignalWire)
        );
        let partial = SettingsUpdate {
            signalwire_signing_key: None,
            ..full.clone()
        };
        assert_eq!(
            check_switch(Carrier::Twilio, &partial).map_err(|e| e.field),
            Err("signalwire_signing_key".to_owned())
        );
        // Once on SignalWire, one field may change alone.
        let one = SettingsUpdate {
            signalwire_signing_key: Some(Secret::new("PSKnew")),
            ..SettingsUpdate::default()
        };
        assert_eq!(
            check_switch(Carrier::SignalWire, &one),
            Ok(Carrier::SignalWire)
        );
        assert!(
            check_switch(Carrier::Twilio, &one).is_err(),
            "not while on Twilio"
        );
        let twilio_on_sw = SettingsUpdate {
            twilio_auth_token: Some(Secret::new("t")),
            ..SettingsUpdate::default()
        };
        assert!(check_switch(Carrier::SignalWire, &twilio_on_sw).is_err());
        assert_eq!(
            check_switch(Carrier::Twilio, &twilio_on_sw),
            Ok(Carrier::Twilio)
        );
    }
}
