//! Where a call can be transferred: an E.164 number or a SIP URI, and whose number the
//! person called sees.

use crate::values::PhoneNumber;
use serde::{Deserialize, Serialize};

/// A transfer destination: `+15555550100` or `sip:desk@pbx.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransferTarget {
    /// A phone number (Twilio `<Number>`).
    Number(PhoneNumber),
    /// A SIP URI (Twilio `<Sip>`).
    Sip(String),
}

impl TransferTarget {
    /// An E.164 number, or a `sip:` / `sips:` URI with a user and a host (no spaces, quotes
    /// or angle brackets; at most 255 characters).
    pub fn parse(s: &str) -> Result<TransferTarget, String> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let rest = &s[s.find(':').map_or(0, |i| i + 1)..];
            let (user, host) = rest.split_once('@').unwrap_or(("", rest));
            let host = host.split([';', '?']).next().unwrap_or_default();
            let bad = s.len() > 255
                || user.is_empty()
                || host.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "\"<>'`\\".contains(c));
            if bad {
                return Err(
                    "must be a SIP URI like sip:desk@pbx.example.com (a user, a host, no spaces)"
                        .into(),
                );
            }
            return Ok(TransferTarget::Sip(s.to_owned()));
        }
        PhoneNumber::parse(s)
            .map(TransferTarget::Number)
            .map_err(|e| format!("{e}, or a SIP URI like sip:desk@pbx.example.com"))
    }

    /// Wraps a value read back from our own database.
    pub fn from_db(s: String) -> TransferTarget {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            TransferTarget::Sip(s)
        } else {
            TransferTarget::Number(PhoneNumber::from_db(s))
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        match self {
            TransferTarget::Number(n) => n.as_str(),
            TransferTarget::Sip(s) => s,
        }
    }
}

impl std::fmt::Display for TransferTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl utoipa::PartialSchema for TransferTarget {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "An E.164 number (+15555550100) or a SIP URI (sip:desk@pbx.example.com)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TransferTarget {}

impl Serialize for TransferTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TransferTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TransferTarget::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whose number the person a call is transferred to sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdPolicy {
    /// The business's number the call came in on (or went out from).
    #[default]
    OurNumber,
    /// The caller's own number (Twilio allows it on calls it carries; some carriers show the
    /// business's number anyway).
    Caller,
}

/// How `transfer_call` hands the caller over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// The caller is put through at once; the agent leaves.
    #[default]
    Cold,
    /// The caller waits on hold while the person is called, hears nothing of it, and is put
    /// through only when the person, told what the call is about, accepts.
    Warm,
}

impl TransferMode {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Cold => "cold",
            TransferMode::Warm => "warm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(
            TransferTarget::parse("+15555550100"),
            Ok(TransferTarget::Number(_))
        ));
        assert!(matches!(
            TransferTarget::parse("sip:desk@pbx.example.com;transport=tls"),
            Ok(TransferTarget::Sip(_))
        ));
        for bad in [
            "5555550100",
            "sip:pbx.example.com",
            "sip:desk@",
            "sip:de sk@pbx.example.com",
            "sip:\"x\"@pbx",
        ] {
            assert!(TransferTarget::parse(bad).is_err(), "{bad}");
        }
        let t: TransferTarget =
            serde_json::from_value(serde_json::json!("sips:front@example.com")).expect("json");
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            "sips:front@example.com"
        );
        assert_eq!(
            TransferTarget::from_db("+15555550100".into()),
            TransferTarget::parse("+15555550100").expect("number")
        );
    }
}

/// Where a call's latest transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Twilio is dialling the target; the caller hears ringing.
    Dialing,
    /// The target answered (a warm transfer's human is listening to the summary).
    Answered,
    /// The caller is connected to the target (cold: the bridged call ended; warm: accepted).
    Completed,
    /// Busy, no answer, failed, declined or cancelled: see `outcome`.
    Failed,
}

impl TransferStatus {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Dialing => "dialing",
            TransferStatus::Answered => "answered",
            TransferStatus::Completed => "completed",
            TransferStatus::Failed => "failed",
        }
    }
}

/// A call's latest transfer: who asked, where to, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallTransfer {
    /// An E.164 number or a SIP URI.
    pub target: TransferTarget,
    /// `cold` (the caller is put through) or `warm` (a person is briefed first).
    pub mode: String,
    /// `agent` (a tool call) or `staff` (a live call action).
    pub requested_by: String,
    /// The agent that had the call when it was transferred (it takes the call back when the
    /// transfer fails).
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<crate::ids::AgentId>,
    /// Where it stands.
    pub status: TransferStatus,
    /// Twilio's `DialCallStatus` once the dial ended: `completed`, `answered`, `busy`,
    /// `no-answer`, `failed`, `canceled`.
    pub outcome: Option<String>,
    /// When the dial was started.
    pub started_at: crate::Timestamp,
    /// When it was settled.
    pub ended_at: Option<crate::Timestamp>,
    /// Warm: what the person heard first about the call.
    #[serde(default)]
    pub summary: Option<String>,
    /// Warm: the CallSid of the call to the person.
    #[serde(default)]
    pub leg_call_sid: Option<String>,
    /// Failed: the caller's new stream reached the agent again.
    #[serde(default)]
    pub resumed: bool,
}

impl CallTransfer {
    /// What the agent taking the caller back is told, for a failed outcome.
    pub fn failure_note(&self) -> String {
        let why = match self.outcome.as_deref() {
            Some("busy") => "the line was busy",
            Some("no-answer") => "nobody answered",
            Some("declined") => "the person declined to take the call",
            Some("hung-up") => "the person hung up before taking the call",
            _ => "the call could not be connected",
        };
        format!(
            "You tried to transfer the caller to {}, but {why}. The caller is back with you now: \
             tell them briefly that the transfer did not go through and why, then offer to help \
             yourself, take a message, or arrange a call back.",
            self.target
        )
    }
}
