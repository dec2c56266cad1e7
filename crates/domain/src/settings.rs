//! Per-organization settings: session windows, notification e-mails, Twilio credentials.

use crate::values::{validate_email, Carrier};
use crate::{Secret, ValidationError};
use serde::{Deserialize, Serialize};

/// Default idle window for inbound-started text sessions (5 minutes).
pub const DEFAULT_SESSION_WINDOW_SECONDS: i64 = 300;
/// Default idle window for business-started conversations (72 hours).
pub const DEFAULT_BUSINESS_SESSION_WINDOW_SECONDS: i64 = 72 * 3600;

/// Settings as returned by `GET /api/v1/settings`. The Twilio auth token is write-only: only
/// whether one is set is shown.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OrgSettings {
    /// Idle window after which an inbound text conversation ends, in seconds.
    pub session_window_seconds: i64,
    /// Idle window for business-started conversations, in seconds.
    pub business_session_window_seconds: i64,
    /// Who receives notification e-mails.
    pub notification_emails: Vec<String>,
    /// Twilio account SID (`AC...`), if configured.
    pub twilio_account_sid: Option<String>,
    /// Whether a Twilio auth token is stored.
    pub twilio_auth_token_set: bool,
    /// Who carries the organization's calls and texts: `twilio` (default) or `signalwire`.
    pub carrier: Carrier,
    /// The SignalWire space (`example.signalwire.com`), when the carrier is SignalWire.
    pub signalwire_space: Option<String>,
    /// The SignalWire project id, when the carrier is SignalWire.
    pub signalwire_project_id: Option<String>,
    /// Whether a SignalWire API token is stored.
    pub signalwire_api_token_set: bool,
    /// Whether a SignalWire signing key (it verifies SignalWire's webhooks) is stored.
    pub signalwire_signing_key_set: bool,
    /// Whether a Retell API key is stored (it verifies Retell's webhooks and looks up the
    /// calls of Retell agents connected to this organization's agents).
    pub retell_api_key_set: bool,
    /// What a texter who sends HELP receives; `None` means a default naming the organization.
    pub help_text: Option<String>,
    /// Which finished calls e-mail the recipients: `all`, `unsuccessful` (failed, not
    /// answered, or judged unsuccessful by the analysis) or `none`.
    pub notify_calls: String,
    /// How many outbound calls may be ringing or live at once (others wait their turn).
    pub max_concurrent_outbound_calls: i64,
    /// Call recordings older than this many days are deleted (here and at Twilio); `None`
    /// keeps them until deleted by hand.
    pub recording_retention_days: Option<i64>,
    /// Where calls may be transferred besides each agent's own `transfer_number`: E.164
    /// numbers, SIP URIs, or number prefixes ending in `*` (`+1555*`). Empty: only the
    /// agent's own destination.
    pub transfer_destinations: Vec<String>,
    /// The organization's IANA time zone (default `UTC`): what "today" and a day mean on the
    /// dashboard (calendar, analytics), in day filters of the API and in the calendar feed.
    pub timezone: String,
}

impl OrgSettings {
    /// The organization's time zone (UTC if the stored name is no longer known).
    pub fn tz(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// Whether `target` is on the organization's transfer allow-list.
    pub fn allows_transfer_to(&self, target: &crate::transfer::TransferTarget) -> bool {
        self.transfer_destinations
            .iter()
            .any(|d| match d.strip_suffix('*') {
                Some(prefix) => target.as_str().starts_with(prefix),
                None => d.eq_ignore_ascii_case(target.as_str()),
            })
    }
}

/// Default cap on the organization's simultaneous outbound calls.
pub const DEFAULT_MAX_CONCURRENT_OUTBOUND: i64 = 10;

/// Values `notify_calls` accepts.
pub const NOTIFY_CALLS: &[&str] = &["all", "unsuccessful", "none"];

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            session_window_seconds: DEFAULT_SESSION_WINDOW_SECONDS,
            business_session_window_seconds: DEFAULT_BUSINESS_SESSION_WINDOW_SECONDS,
            notification_emails: Vec::new(),
            twilio_account_sid: None,
            twilio_auth_token_set: false,
            carrier: Carrier::Twilio,
            signalwire_space: None,
            signalwire_project_id: None,
            signalwire_api_token_set: false,
            signalwire_signing_key_set: false,
            retell_api_key_set: false,
            help_text: None,
            notify_calls: "all".into(),
            max_concurrent_outbound_calls: DEFAULT_MAX_CONCURRENT_OUTBOUND,
            recording_retention_days: None,
            transfer_destinations: Vec::new(),
            timezone: "UTC".into(),
        }
    }
}

/// The body of `PUT /api/v1/settings`. Absent fields keep their value; `twilio_auth_token`
/// is accepted but never returned.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// Twilio account SID, `AC` followed by 32 hex digits.
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token (write-only).
    #[schema(value_type = Option<String>)]
    pub twilio_auth_token: Option<Secret>,
    /// `twilio` or `signalwire`. Switching needs the new carrier's credentials in the same
    /// request (both Twilio fields, or the four SignalWire ones).
    pub carrier: Option<Carrier>,
    /// SignalWire space host, e.g. `example.signalwire.com`.
    pub signalwire_space: Option<String>,
    /// SignalWire project id (a UUID).
    pub signalwire_project_id: Option<String>,
    /// SignalWire API token (write-only).
    #[schema(value_type = Option<String>)]
    pub signalwire_api_token: Option<Secret>,
    /// SignalWire signing key (write-only): it verifies SignalWire's webhooks.
    #[schema(value_type = Option<String>)]
    pub signalwire_signing_key: Option<Secret>,
    /// Retell API key, the one with the webhook badge (write-only); `null` removes it.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<String>)]
    pub retell_api_key: Option<Option<Secret>>,
    /// Inbound session window, 60 s to 30 days.
    pub session_window_seconds: Option<i64>,
    /// Business-started session window, 60 s to 30 days.
    pub business_session_window_seconds: Option<i64>,
    /// Notification recipients (at most 20).
    pub notification_emails: Option<Vec<String>>,
    /// Answer to a HELP text (at most 1,600 characters); `null` restores the default.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<String>)]
    pub help_text: Option<Option<String>>,
    /// `all`, `unsuccessful` or `none`.
    pub notify_calls: Option<String>,
    /// Outbound calls ringing or live at once, 1 to 1000.
    pub max_concurrent_outbound_calls: Option<i64>,
    /// Days a call recording is kept, 1 to 3650; `null` keeps recordings until deleted.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<i64>)]
    pub recording_retention_days: Option<Option<i64>>,
    /// Transfer allow-list (at most 100 entries): E.164 numbers, SIP URIs, or number
    /// prefixes ending in `*`.
    pub transfer_destinations: Option<Vec<String>>,
    /// IANA time zone name, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
}

const MAX_WINDOW_SECONDS: i64 = 30 * 24 * 3600;

impl SettingsUpdate {
    /// Every invalid field, each with its own error (a form shows them all at once). Each
    /// rule concerns one field, so each field is checked on its own.
    pub fn validate_all(&self) -> Vec<ValidationError> {
        let d = SettingsUpdate::default;
        [
            SettingsUpdate {
                twilio_account_sid: self.twilio_account_sid.clone(),
                ..d()
            },
            SettingsUpdate {
                twilio_auth_token: self.twilio_auth_token.clone(),
                ..d()
            },
            SettingsUpdate {
                retell_api_key: self.retell_api_key.clone(),
                ..d()
            },
            SettingsUpdate {
                signalwire_space: self.signalwire_space.clone(),
                ..d()
            },
            SettingsUpdate {
                signalwire_project_id: self.signalwire_project_id.clone(),
                ..d()
            },
            SettingsUpdate {
                signalwire_api_token: self.signalwire_api_token.clone(),
                ..d()
            },
            SettingsUpdate {
                signalwire_signing_key: self.signalwire_signing_key.clone(),
                ..d()
            },
            SettingsUpdate {
                session_window_seconds: self.session_window_seconds,
                ..d()
            },
            SettingsUpdate {
                business_session_window_seconds: self.business_session_window_seconds,
                ..d()
            },
            SettingsUpdate {
                notification_emails: self.notification_emails.clone(),
                ..d()
            },
            SettingsUpdate {
                help_text: self.help_text.clone(),
                ..d()
            },
            SettingsUpdate {
                notify_calls: self.notify_calls.clone(),
                ..d()
            },
            SettingsUpdate {
                max_concurrent_outbound_calls: self.max_concurrent_outbound_calls,
                ..d()
            },
            SettingsUpdate {
                recording_retention_days: self.recording_retention_days,
                ..d()
            },
            SettingsUpdate {
                transfer_destinations: self.transfer_destinations.clone(),
                ..d()
            },
            SettingsUpdate {
                timezone: self.timezone.clone(),
                ..d()
            },
        ]
        .iter()
        .filter_map(|one| one.validate().err())
        .collect()
    }

    /// Validates every provided field; the error names the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(tz) = &self.timezone {
            if tz.is_empty() || tz.len() > 64 || jiff::tz::TimeZone::get(tz).is_err() {
                return Err(ValidationError::new(
                    "timezone",
                    format!("unknown time zone `{tz}`; use an IANA name such as Europe/Paris"),
                ));
            }
        }
        if let Some(list) = &self.transfer_destinations {
            if list.len() > 100 {
                return Err(ValidationError::new(
                    "transfer_destinations",
                    "at most 100 destinations",
                ));
            }
            for (i, d) in list.iter().enumerate() {
                let ok = match d.strip_suffix('*') {
                    Some(prefix) => {
                        prefix.starts_with('+')
                            && prefix.len() >= 2
                            && prefix[1..].bytes().all(|b| b.is_ascii_digit())
                    }
                    None => crate::transfer::TransferTarget::parse(d).is_ok(),
                };
                if !ok {
                    return Err(ValidationError::new(
                        format!("transfer_destinations[{i}]"),
                        "must be an E.164 number, a SIP URI, or a number prefix ending in `*` (+1555*)",
                    ));
                }
            }
        }
        if let Some(sid) = &self.twilio_account_sid {
            let ok = sid.len() == 34
                && sid.starts_with("AC")
                && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(ValidationError::new(
                    "twilio_account_sid",
                    "must be `AC` followed by 32 hexadecimal digits",
                ));
            }
        }
        if let Some(token) = &self.twilio_auth_token {
            let t = token.expose();
            if t.is_empty() || t.len() > 128 || t.chars().any(|c| c.is_whitespace()) {
                return Err(ValidationError::new(
                    "twilio_auth_token",
                    "must be the non-empty auth token from the Twilio console, without spaces",
                ));
            }
        }
        crate::carrier::validate_signalwire(self)?;
        if let Some(Some(key)) = &self.retell_api_key {
            let k = key.expose();
            if k.is_empty()
                || k.len() > 200
                || k.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ValidationError::new(
                    "retell_api_key",
                    "must be the non-empty API key from the Retell dashboard (the one with the webhook badge), without spaces",
                ));
            }
        }
        for (field, v) in [
            ("session_window_seconds", self.session_window_seconds),
            (
                "business_session_window_seconds",
                self.business_session_window_seconds,
            ),
        ] {
            if let Some(v) = v {
                if !(60..=MAX_WINDOW_SECONDS).contains(&v) {
                    return Err(ValidationError::new(
                        field,
                        format!("must be between 60 and {MAX_WINDOW_SECONDS} seconds"),
                    ));
                }
            }
        }
        if let Some(n) = self.max_concurrent_outbound_calls {
            if !(1..=1000).contains(&n) {
                return Err(ValidationError::new(
                    "max_concurrent_outbound_calls",
                    "must be between 1 and 1000",
                ));
            }
        }
        if let Some(Some(days)) = self.recording_retention_days {
            if !(1..=3650).contains(&days) {
                return Err(ValidationError::new(
                    "recording_retention_days",
                    "must be between 1 and 3650 days, or null to keep recordings",
                ));
            }
        }
        if let Some(Some(text)) = &self.help_text {
            crate::values::require_text("help_text", text, 1600)?;
        }
        if let Some(n) = &self.notify_calls {
            if !NOTIFY_CALLS.contains(&n.as_str()) {
                return Err(ValidationError::new(
                    "notify_calls",
                    "must be `all`, `unsuccessful` or `none`",
                ));
            }
        }
        if let Some(list) = &self.notification_emails {
            if list.len() > 20 {
                return Err(ValidationError::new(
                    "notification_emails",
                    "at most 20 recipients",
                ));
            }
            for (i, e) in list.iter().enumerate() {
                validate_email(e)
                    .map_err(|m| ValidationError::new(format!("notification_emails[{i}]"), m))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_field_is_named() {
        let bad = SettingsUpdate {
            twilio_account_sid: Some("AC123".into()),
            session_window_seconds: Some(5),
            timezone: Some("Nowhere/Land".into()),
            notification_emails: Some(vec!["nope".into()]),
            ..Default::default()
        };
        let fields: Vec<String> = bad.validate_all().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "twilio_account_sid",
                "session_window_seconds",
                "notification_emails[0]",
                "timezone"
            ]
        );
        assert!(SettingsUpdate::default().validate_all().is_empty());
    }

    #[test]
    fn validation_names_fields() {
        let bad_sid = SettingsUpdate {
            twilio_account_sid: Some("AC123".into()),
            ..Default::default()
        };
        assert_eq!(
            bad_sid.validate().expect_err("bad").field,
            "twilio_account_sid"
        );
        let bad_email = SettingsUpdate {
            notification_emails: Some(vec!["a@example.com".into(), "nope".into()]),
            ..Default::default()
        };
        assert_eq!(
            bad_email.validate().expect_err("bad").field,
            "notification_emails[1]"
        );
        let ok = SettingsUpdate {
            twilio_account_sid: Some(format!("AC{}", "a".repeat(32))),
            twilio_auth_token: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            session_window_seconds: Some(600),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }
}
