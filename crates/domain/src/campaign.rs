//! Campaigns: their settings and validation, the calling window evaluated in a recipient's own
//! time zone, recipient lists (JSON or CSV with a header row), and which outcomes are retried.

use crate::agent::VoicemailMode;
use crate::ids::AgentId;
use crate::schedule::{parse_hhmm, weekday_name, DAY_NAMES};
use crate::values::PhoneNumber;
use crate::{Timestamp, ValidationError};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Dispositions a campaign calls again (after `retry_delay_seconds`, up to `max_attempts`).
pub const RETRIED: &[&str] = &["no_answer", "busy", "voicemail_left", "voicemail_hung_up"];

/// Recipients one campaign may hold.
pub const MAX_RECIPIENTS: usize = 100_000;

/// Campaign states.
pub const STATES: &[&str] = &["draft", "running", "paused", "completed", "canceled"];

/// When calls may be placed, in the recipient's local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingWindow {
    /// Days among `mon`..`sun` (default Monday to Friday).
    #[serde(default = "weekdays")]
    pub days: Vec<String>,
    /// First local time a call may start, `HH:MM` (default `09:00`).
    #[serde(default = "nine")]
    pub start: String,
    /// Local time after which no call starts, `HH:MM`, after `start` (default `18:00`).
    #[serde(default = "eighteen")]
    pub end: String,
}

fn weekdays() -> Vec<String> {
    DAY_NAMES[..5].iter().map(|d| (*d).to_owned()).collect()
}
fn nine() -> String {
    "09:00".into()
}
fn eighteen() -> String {
    "18:00".into()
}

impl Default for CallingWindow {
    fn default() -> Self {
        CallingWindow {
            days: weekdays(),
            start: nine(),
            end: eighteen(),
        }
    }
}

impl CallingWindow {
    /// Checks every field; the error names it (`window.start`, ...).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.days.is_empty() {
            return Err(ValidationError::new("window.days", "at least one day"));
        }
        for (i, d) in self.days.iter().enumerate() {
            if !DAY_NAMES.contains(&d.as_str()) {
                return Err(ValidationError::new(
                    format!("window.days[{i}]"),
                    format!("must be one of {}", DAY_NAMES.join(", ")),
                ));
            }
        }
        let start = parse_hhmm(&self.start)
            .ok_or_else(|| ValidationError::new("window.start", "must be a time like 09:00"))?;
        let end = parse_hhmm(&self.end)
            .ok_or_else(|| ValidationError::new("window.end", "must be a time like 18:00"))?;
        if end <= start {
            return Err(ValidationError::new(
                "window.end",
                "must be later than `start`",
            ));
        }
        Ok(())
    }

    /// Whether a call may start at `at` for someone living in `zone` (an unknown zone is
    /// treated as UTC; zones are validated when they are stored).
    pub fn is_open(&self, at: Timestamp, zone: &str) -> bool {
        let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
        let Ok(ts) = jiff::Timestamp::from_millisecond(at.millis()) else {
            return false;
        };
        let local = ts.to_zoned(tz).datetime();
        let (Some(start), Some(end)) = (parse_hhmm(&self.start), parse_hhmm(&self.end)) else {
            return false;
        };
        let day = weekday_name(local.weekday());
        self.days.iter().any(|d| d == day) && local.time() >= start && local.time() < end
    }
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    /// Id (`cmp_...`).
    pub id: String,
    /// Name.
    pub name: String,
    /// The agent that talks.
    pub agent_id: AgentId,
    /// The numbers calls are placed from, in turn.
    pub from_numbers: Vec<String>,
    /// `draft`, `running`, `paused`, `completed` or `canceled`.
    pub status: String,
    /// When calls may be placed, in each recipient's local time.
    pub window: CallingWindow,
    /// The zone of recipients whose zone is neither given nor implied by their number.
    pub timezone: String,
    /// Calls of this campaign ringing or live at once.
    pub max_concurrent_calls: i64,
    /// Calls per recipient at most (the first included).
    pub max_attempts: i64,
    /// Wait before calling again after `no_answer`, `busy` or voicemail.
    pub retry_delay_seconds: i64,
    /// No call before this time.
    pub start_at: Option<Timestamp>,
    /// Voicemail behaviour (else the agent's).
    pub voicemail: Option<VoicemailMode>,
    /// Record the calls (else the agent's setting).
    pub record: Option<bool>,
    /// Opaque JSON echoed in the calls' metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Recipients by state and final outcomes (see [`CampaignCounts`]).
    pub counts: CampaignCounts,
    /// When it was first started.
    pub started_at: Option<Timestamp>,
    /// When its last recipient was done (or it was canceled).
    pub completed_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// How a campaign's recipients stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignCounts {
    /// Every recipient row.
    pub total: i64,
    /// Still to call (first time or a retry).
    pub pending: i64,
    /// A call is open now.
    pub calling: i64,
    /// Finished (see `outcomes`).
    pub done: i64,
    /// Not called: opted out or a duplicate.
    pub skipped: i64,
    /// Rows that could not be read (the campaign starts only once skipping them is accepted).
    pub invalid: i64,
    /// Not called because the campaign was canceled.
    pub canceled: i64,
    /// Final dispositions of the done recipients: `completed`, `no_answer`, `busy`, `failed`,
    /// `voicemail_left`, `voicemail_hung_up`, `canceled`.
    pub outcomes: BTreeMap<String, i64>,
}

/// A row an import did not accept.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowIssue {
    /// The row (1-based, after the CSV header).
    pub row: i64,
    /// The number as written.
    pub number: String,
    /// Why: `opted_out`, `duplicate of row N`, or what is wrong with the row.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows that will be called.
    pub accepted: i64,
    /// Rows that will not be called and need nothing: opted-out contacts, duplicates.
    pub skipped: Vec<RowIssue>,
    /// Rows that could not be read: the campaign starts only with `skip_invalid_rows`.
    pub invalid: Vec<RowIssue>,
    /// The first accepted rows as they will be called (number, zone, variables).
    #[schema(value_type = Vec<Object>)]
    pub preview: Vec<Value>,
}

/// One recipient as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignRecipient {
    /// Id.
    pub id: String,
    /// Its row in the import.
    pub row: i64,
    /// E.164 (or the text of an unreadable row).
    pub number: String,
    /// The call's variables.
    #[schema(value_type = Object)]
    pub variables: Value,
    /// The zone its window is read in.
    pub timezone: Option<String>,
    /// `pending`, `calling`, `done`, `skipped`, `invalid` or `canceled`.
    pub status: String,
    /// Why it was skipped or is invalid.
    pub reason: Option<String>,
    /// Calls placed so far.
    pub attempts: i64,
    /// When the next attempt is due (retries).
    pub next_attempt_at: Option<Timestamp>,
    /// Its latest call.
    pub call_id: Option<String>,
    /// The latest call's disposition (final once `done`).
    pub outcome: Option<String>,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The body of `POST /api/v1/campaigns`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Name (required).
    pub name: String,
    /// The agent that talks (default: the agent of the first from-number).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<AgentId>,
    /// One of the organization's voice numbers to call from.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub from_number: Option<PhoneNumber>,
    /// A pool of them, used in turn (instead of `from_number`).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub from_numbers: Option<Vec<PhoneNumber>>,
    /// Calling window (default Monday to Friday, 09:00 to 18:00 local time).
    #[serde(default)]
    pub window: Option<CallingWindow>,
    /// Default zone of recipients, IANA (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Calls at once, 1 to 100 (default 5).
    #[serde(default)]
    pub max_concurrent_calls: Option<i64>,
    /// Calls per recipient, 1 to 10 (default 1: no retry).
    #[serde(default)]
    pub max_attempts: Option<i64>,
    /// Seconds before a retry, 60 to 604800 (default 3600).
    #[serde(default)]
    pub retry_delay_seconds: Option<i64>,
    /// No call before this time (RFC 3339).
    #[serde(default)]
    pub start_at: Option<Timestamp>,
    /// `hangup` or `leave_message` (default: the agent's).
    #[serde(default)]
    pub voicemail: Option<VoicemailMode>,
    /// Record the calls (default: the agent's setting).
    #[serde(default)]
    pub record: Option<bool>,
    /// Opaque JSON added to every call's metadata.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Recipients, like the body of `POST /api/v1/campaigns/{id}/recipients`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub recipients: Option<Vec<Value>>,
}

impl NewCampaign {
    /// Checks the settings (not the recipients: those are reported row by row).
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::values::require_text("name", &self.name, 200)?;
        if let Some(w) = &self.window {
            w.validate()?;
        }
        if let Some(tz) = &self.timezone {
            check_zone("timezone", tz)?;
        }
        for (field, v, range) in [
            ("max_concurrent_calls", self.max_concurrent_calls, 1..=100),
            ("max_attempts", self.max_attempts, 1..=10),
            (
                "retry_delay_seconds",
                self.retry_delay_seconds,
                60..=604_800,
            ),
        ] {
            if let Some(v) = v {
                if !range.contains(&v) {
                    return Err(ValidationError::new(
                        field,
                        format!("must be between {} and {}", range.start(), range.end()),
                    ));
                }
            }
        }
        if self.from_number.is_some() && self.from_numbers.is_some() {
            return Err(ValidationError::new(
                "from_numbers",
                "give `from_number` or `from_numbers`, not both",
            ));
        }
        if self.from_numbers.as_ref().is_some_and(|n| n.is_empty()) {
            return Err(ValidationError::new("from_numbers", "at least one number"));
        }
        Ok(())
    }
}

fn check_zone(field: &str, tz: &str) -> Result<(), ValidationError> {
    TimeZone::get(tz).map(|_| ()).map_err(|_| {
        ValidationError::new(
            field,
            format!("unknown time zone `{tz}`; use an IANA name such as America/New_York"),
        )
    })
}

/// One recipient row as read, before the store looks at opt-outs and duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientRow {
    /// 1-based: the CSV line after the header, or the JSON item's position.
    pub row: i64,
    /// What was read: the number (normalized), its zone if given, the call's variables.
    pub parsed: Result<ParsedRecipient, String>,
    /// The number as written (for reports of bad rows).
    pub raw_number: String,
}

/// A readable recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecipient {
    /// E.164.
    pub number: PhoneNumber,
    /// Its `timezone` column, validated.
    pub timezone: Option<String>,
    /// Every other column (or JSON field).
    pub variables: Map<String, Value>,
}

fn parse_one(row: i64, mut fields: Map<String, Value>) -> RecipientRow {
    let raw_number = match fields.remove("number") {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let zone = match fields.remove("timezone") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    };
    let parsed = (|| {
        if raw_number.trim().is_empty() {
            return Err("no number".to_owned());
        }
        let number = PhoneNumber::parse(raw_number.trim())
            .map_err(|m| format!("number `{}`: {m}", raw_number.trim()))?;
        if let Some(z) = &zone {
            check_zone("timezone", z).map_err(|e| e.message)?;
        }
        Ok(ParsedRecipient {
            number,
            timezone: zone,
            variables: fields,
        })
    })();
    RecipientRow {
        row,
        parsed,
        raw_number,
    }
}

/// Reads recipients given as a JSON array of objects (`{"number": "+1...", ...}`).
pub fn recipients_from_json(items: &[Value]) -> Result<Vec<RecipientRow>, ValidationError> {
    if items.len() > MAX_RECIPIENTS {
        return Err(too_many());
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let row = i64::try_from(i).unwrap_or(i64::MAX) + 1;
            match v {
                Value::Object(m) => parse_one(row, m.clone()),
                _ => RecipientRow {
                    row,
                    parsed: Err("must be an object with a `number`".into()),
                    raw_number: String::new(),
                },
            }
        })
        .collect())
}

fn too_many() -> ValidationError {
    ValidationError::new(
        "recipients",
        format!("at most {MAX_RECIPIENTS} recipients per campaign"),
    )
}

/// Reads a CSV with a header row: a `number` column, an optional `timezone` column, and any
/// other columns, which become the call's variables (by header name).
pub fn recipients_from_csv(text: &str) -> Result<Vec<RecipientRow>, ValidationError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ValidationError::new("csv", format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "number") {
        return Err(ValidationError::new(
            "csv",
            "the header row needs a `number` column",
        ));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if rows.len() >= MAX_RECIPIENTS {
            return Err(too_many());
        }
        let row = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        match record {
            Ok(r) if r.len() != headers.len() => rows.push(RecipientRow {
                row,
                parsed: Err(format!(
                    "has {} columns where the header has {}",
                    r.len(),
                    headers.len()
                )),
                raw_number: String::new(),
            }),
            Ok(r) => {
                let fields: Map<String, Value> = headers
                    .iter()
                    .zip(r.iter())
                    .filter(|(h, _)| !h.is_empty())
                    .map(|(h, v)| (h.clone(), Value::String(v.to_owned())))
                    .collect();
                rows.push(parse_one(row, fields));
            }
            Err(e) => rows.push(RecipientRow {
                row,
                parsed: Err(format!("cannot be read: {e}")),
                raw_number: String::new(),
            }),
        }
    }
    Ok(rows)
}

/// The zone a recipient is called in: its own, else its number's (when unambiguous), else
/// the campaign's.
pub fn recipient_zone<'a>(own: Option<&'a str>, number: &str, default: &'a str) -> &'a str {
    own.or_else(|| crate::numbering::timezone_of(number))
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_read_in_the_recipients_zone() {
        let w = CallingWindow::default();
        // Monday 2026-11-30 14:00 UTC: 09:00 in New York, 06:00 in Los Angeles.
        let at = Timestamp::parse_rfc3339("2026-11-30T14:00:00Z").expect("valid");
        assert!(w.is_open(at, "America/New_York"));
        assert!(!w.is_open(at, "America/Los_Angeles"));
        // Saturday: closed everywhere by default.
        let sat = Timestamp::parse_rfc3339("2026-11-28T15:00:00Z").expect("valid");
        assert!(!w.is_open(sat, "UTC"));
        // The end is exclusive.
        let end = Timestamp::parse_rfc3339("2026-11-30T18:00:00Z").expect("valid");
        assert!(!w.is_open(end, "UTC"));
    }

    #[test]
    fn csv_rows_become_recipients_or_reasons() {
        let rows = recipients_from_csv(
            "Number,first_name,timezone\n+12125550100,Ada,\nnot-a-number,Bob,\n+14155550100,Cy,Mars/Base\n+33612345678,Dee\n",
        )
        .expect("valid");
        assert_eq!(rows.len(), 4);
        let ok = rows[0].parsed.as_ref().expect("valid");
        assert_eq!(ok.number.as_str(), "+12125550100");
        assert_eq!(ok.variables["first_name"], "Ada");
        assert!(rows[1]
            .parsed
            .as_ref()
            .expect_err("an error")
            .contains("not-a-number"));
        assert!(rows[2]
            .parsed
            .as_ref()
            .expect_err("an error")
            .contains("Mars/Base"));
        assert!(rows[3]
            .parsed
            .as_ref()
            .expect_err("an error")
            .contains("columns"));
        assert!(recipients_from_csv("phone\n+12125550100\n").is_err());
        assert_eq!(
            recipient_zone(None, "+12125550100", "UTC"),
            "America/New_York"
        );
        assert_eq!(
            recipient_zone(Some("Asia/Tokyo"), "+12125550100", "UTC"),
            "Asia/Tokyo"
        );
        assert_eq!(
            recipient_zone(None, "+15555550100", "Europe/Paris"),
            "Europe/Paris"
        );
    }
}
