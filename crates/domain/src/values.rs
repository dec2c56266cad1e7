//! Validated value types: E.164 numbers, channels, roles, statuses, e-mail addresses.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in E.164 form: `+`, a non-zero country digit, 7 to 15 digits in all.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "+15555550123")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Validates E.164. Spaces, dashes or a missing `+` are rejected rather than guessed at:
    /// a "fixed" number that routes to the wrong business is worse than a clear error.
    pub fn parse(s: &str) -> Result<Self, String> {
        let digits = s
            .strip_prefix('+')
            .ok_or("must be E.164: start with `+` and the country code, e.g. +15555550123")?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be E.164: `+` followed by digits only, e.g. +15555550123".into());
        }
        if !(7..=15).contains(&digits.len()) {
            return Err("must be E.164: between 7 and 15 digits after `+`".into());
        }
        if digits.starts_with('0') {
            return Err("must be E.164: the country code cannot start with 0".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps a value read back from our own database.
    pub fn from_db(s: String) -> Self {
        Self(s)
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Declares a string enum with its wire names, parsing and display in one place.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted names, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// The channel a phone number serves.
    NumberChannel { Voice => "voice", Sms => "sms", Whatsapp => "whatsapp" }
);

string_enum!(
    /// Whether Switchboard has proven that a number belongs to its organization (for Twilio:
    /// the number is in the organization's account, by IncomingPhoneNumbers).
    NumberVerification {
        /// Proven; only one organization's claim on a number and channel can be verified.
        Verified => "verified",
        /// Not proven (yet): see the reason. Does not route in production.
        PendingVerification => "pending_verification",
    }
);

string_enum!(
    /// The channel of a conversation; `web` is the browser/API test channel.
    Channel { Voice => "voice", Sms => "sms", Whatsapp => "whatsapp", Web => "web" }
);

string_enum!(
    /// A dashboard user's role.
    Role {
        /// Runs the platform: sees every organization.
        Operator => "operator",
        /// Manages one organization.
        Admin => "admin",
        /// Reads one organization.
        Member => "member",
    }
);

string_enum!(
    /// Who carries an organization's calls and texts. SignalWire's compatibility API speaks
    /// Twilio's REST shapes (under the space's URL), TwiML (cXML) and Media Streams; its
    /// webhooks are signed the same way with the project's signing key, in
    /// `X-SignalWire-Signature`.
    Carrier { Twilio => "twilio", SignalWire => "signalwire" }
);

string_enum!(
    /// Whether an organization may use the platform.
    OrgStatus { Active => "active", Disabled => "disabled" }
);

string_enum!(
    /// Lifecycle of a conversation.
    ConversationStatus { Active => "active", Closed => "closed", Failed => "failed" }
);

string_enum!(
    /// Who started a conversation or call.
    Direction { Inbound => "inbound", Outbound => "outbound" }
);

string_enum!(
    /// Call status, following Twilio's lifecycle.
    CallStatus {
        Queued => "queued", Initiated => "initiated", Ringing => "ringing",
        InProgress => "in-progress", Completed => "completed", Busy => "busy",
        NoAnswer => "no-answer", Canceled => "canceled", Failed => "failed",
    }
);

string_enum!(
    /// The author of a transcript item.
    MessageRole { User => "user", Assistant => "assistant", System => "system", Tool => "tool", Human => "human" }
);

string_enum!(
    /// What a transcript item holds.
    MessageKind { Message => "message", FunctionCall => "function_call", FunctionOutput => "function_output" }
);

impl From<NumberChannel> for Channel {
    fn from(c: NumberChannel) -> Self {
        match c {
            NumberChannel::Voice => Channel::Voice,
            NumberChannel::Sms => Channel::Sms,
            NumberChannel::Whatsapp => Channel::Whatsapp,
        }
    }
}

/// Validates a plain e-mail address (one `@`, a dotted domain, no spaces). Deliverability is
/// the mail server's business; this catches typos and pasted lists.
pub fn validate_email(s: &str) -> Result<(), String> {
    let (local, domain) = s
        .split_once('@')
        .ok_or("must be an e-mail address like ops@example.com")?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';');
    if ok {
        Ok(())
    } else {
        Err("must be a single e-mail address like ops@example.com".into())
    }
}

/// Checks a required free-text field: trimmed non-empty and at most `max` characters.
pub fn require_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    check_len(field, value, max)
}

/// Checks that a text field is at most `max` characters.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_valid_numbers() {
        for n in ["+15555550123", "+442071838750", "+4930123456", "+1234567"] {
            assert!(PhoneNumber::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn e164_rejects_everything_else() {
        for n in [
            "15555550123",
            "+1 555 555 0123",
            "+1-555-555-0123",
            "+0123456789",
            "+123456",
            "+1234567890123456",
            "",
            "+",
            "whatsapp:+15555550123",
            "+1555555012a",
        ] {
            assert!(PhoneNumber::parse(n).is_err(), "{n}");
        }
    }

    #[test]
    fn e164_property_digits_round_trip() {
        // Every 7..=15 digit string with a non-zero first digit is accepted unchanged.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 7 + (seed % 9) as usize;
            let mut s = String::from("+");
            let mut x = seed;
            for i in 0..len {
                let d = (x % 10) as u8;
                x = x / 10 + 7919 * (i as u64 + 1);
                s.push(char::from(b'0' + if i == 0 { 1 + d % 9 } else { d }));
            }
            assert_eq!(PhoneNumber::parse(&s).map(|p| p.as_str().to_owned()), Ok(s));
        }
    }

    #[test]
    fn enums_round_trip_their_wire_names() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(*c));
        }
        assert_eq!(
            CallStatus::parse("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(NumberChannel::parse("web"), None);
    }

    #[test]
    fn emails() {
        assert!(validate_email("ops@example.com").is_ok());
        for bad in [
            "ops",
            "ops@",
            "@example.com",
            "a@b",
            "a@example.com, b@example.com",
            "a b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
