//! Business hours and appointment slots: the pure rules behind the booking tools. Times are
//! interpreted in the agent's IANA time zone (daylight saving included), stored as UTC ms.

use crate::{Timestamp, ValidationError};
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Day names accepted in `days`, Monday first.
pub const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When an agent's organization takes appointments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone, e.g. `Europe/Paris` (default `UTC`).
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Open days among `mon`..`sun` (default Monday to Friday).
    #[serde(default = "default_days")]
    pub days: Vec<String>,
    /// Opening time, `HH:MM` (default `09:00`).
    #[serde(default = "default_open")]
    pub open: String,
    /// Closing time, `HH:MM`, after `open` (default `17:00`).
    #[serde(default = "default_close")]
    pub close: String,
    /// Length of one appointment in minutes, 5 to 480 (default 30).
    #[serde(default = "default_slot")]
    pub slot_minutes: i64,
}

fn default_tz() -> String {
    "UTC".into()
}
fn default_days() -> Vec<String> {
    DAY_NAMES[..5].iter().map(|d| (*d).to_owned()).collect()
}
fn default_open() -> String {
    "09:00".into()
}
fn default_close() -> String {
    "17:00".into()
}
fn default_slot() -> i64 {
    30
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self {
            timezone: default_tz(),
            days: default_days(),
            open: default_open(),
            close: default_close(),
            slot_minutes: default_slot(),
        }
    }
}

pub(crate) fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

pub(crate) fn weekday_name(w: Weekday) -> &'static str {
    DAY_NAMES[usize::from(w.to_monday_zero_offset() as u8)]
}

/// Why a requested slot cannot be booked; the message is meant to be spoken by the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The time could not be read.
    #[error("could not read the time `{0}`; use a local date and time like 2026-11-23T10:00")]
    Unreadable(String),
    /// The slot starts in the past.
    #[error("that time has already passed")]
    Past,
    /// The slot is outside opening hours.
    #[error("that time is outside business hours ({0})")]
    Closed(String),
}

impl BusinessHours {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if TimeZone::get(&self.timezone).is_err() {
            return Err(ValidationError::new(
                "timezone",
                format!(
                    "unknown time zone `{}`; use an IANA name such as Europe/Paris",
                    self.timezone
                ),
            ));
        }
        if self.days.is_empty() {
            return Err(ValidationError::new("days", "at least one open day"));
        }
        for (i, d) in self.days.iter().enumerate() {
            if !DAY_NAMES.contains(&d.as_str()) {
                return Err(ValidationError::new(
                    format!("days[{i}]"),
                    format!("must be one of {}", DAY_NAMES.join(", ")),
                ));
            }
        }
        let open = parse_hhmm(&self.open)
            .ok_or_else(|| ValidationError::new("open", "must be a time like 09:00"))?;
        let close = parse_hhmm(&self.close)
            .ok_or_else(|| ValidationError::new("close", "must be a time like 17:00"))?;
        if close <= open {
            return Err(ValidationError::new("close", "must be later than `open`"));
        }
        if !(5..=480).contains(&self.slot_minutes) {
            return Err(ValidationError::new(
                "slot_minutes",
                "must be between 5 and 480",
            ));
        }
        Ok(())
    }

    fn tz(&self) -> TimeZone {
        // Validated on save; a zone that vanished from the database falls back to UTC.
        TimeZone::get(&self.timezone).unwrap_or(TimeZone::UTC)
    }

    fn hours(&self) -> (Time, Time) {
        (
            parse_hhmm(&self.open).unwrap_or(Time::midnight()),
            parse_hhmm(&self.close).unwrap_or(Time::MAX),
        )
    }

    /// A short human description, e.g. `mon, tue 09:00-17:00 Europe/Paris`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}-{} {}",
            self.days.join(", "),
            self.open,
            self.close,
            self.timezone
        )
    }

    /// Reads a requested start: RFC 3339 with an offset, or a local `YYYY-MM-DDTHH:MM` in the
    /// business time zone (what a caller says: "Monday at 10").
    pub fn parse_start(&self, s: &str) -> Result<Timestamp, SlotError> {
        if let Some(t) = Timestamp::parse_rfc3339(s) {
            return Ok(t);
        }
        let local: DateTime = s
            .trim()
            .replace(' ', "T")
            .parse()
            .map_err(|_| SlotError::Unreadable(s.to_owned()))?;
        let zoned = local
            .to_zoned(self.tz())
            .map_err(|_| SlotError::Unreadable(s.to_owned()))?;
        Ok(Timestamp::from_millis(zoned.timestamp().as_millisecond()))
    }

    /// Checks that `[start, start + slot)` is in the future and within opening hours.
    pub fn check_slot(&self, start: Timestamp, now: Timestamp) -> Result<Timestamp, SlotError> {
        if start <= now {
            return Err(SlotError::Past);
        }
        let end = Timestamp::from_millis(start.millis() + self.slot_minutes * 60_000);
        let tz = self.tz();
        let local = |t: Timestamp| {
            jiff::Timestamp::from_millisecond(t.millis())
                .map(|ts| ts.to_zoned(tz.clone()).datetime())
                .map_err(|_| SlotError::Unreadable(t.to_rfc3339()))
        };
        let (ls, le) = (local(start)?, local(end)?);
        let (open, close) = self.hours();
        let day_open = self
            .days
            .iter()
            .any(|d| d == weekday_name(ls.date().weekday()));
        if !day_open || ls.date() != le.date() || ls.time() < open || le.time() > close {
            return Err(SlotError::Closed(self.describe()));
        }
        Ok(end)
    }

    /// Every slot start on a local date that lies within opening hours and after `now`.
    pub fn slots_on(&self, date: Date, now: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let tz = self.tz();
        let (open, close) = self.hours();
        if !self.days.iter().any(|d| d == weekday_name(date.weekday())) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut t = date.to_datetime(open);
        let step = jiff::SignedDuration::from_mins(self.slot_minutes);
        while let Ok(end) = t.checked_add(step) {
            if end.date() != date || end.time() > close {
                break;
            }
            if let (Ok(zs), Ok(ze)) = (t.to_zoned(tz.clone()), end.to_zoned(tz.clone())) {
                let (s, e) = (
                    Timestamp::from_millis(zs.timestamp().as_millisecond()),
                    Timestamp::from_millis(ze.timestamp().as_millisecond()),
                );
                if s > now {
                    out.push((s, e));
                }
            }
            t = end;
        }
        out
    }

    /// Formats a stored time in the business time zone, e.g. `2026-11-23T10:00:00+01:00`.
    pub fn local_string(&self, t: Timestamp) -> String {
        match jiff::Timestamp::from_millisecond(t.millis()) {
            Ok(ts) => ts
                .to_zoned(self.tz())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            Err(_) => t.to_rfc3339(),
        }
    }

    /// The local date of `t` in the business time zone (`today` with `Timestamp::now()`).
    pub fn local_date(&self, t: Timestamp) -> Option<Date> {
        jiff::Timestamp::from_millisecond(t.millis())
            .ok()
            .map(|ts| ts.to_zoned(self.tz()).date())
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> BusinessHours {
        BusinessHours {
            timezone: "Europe/Paris".into(),
            ..BusinessHours::default()
        }
    }

    #[test]
    fn validation_names_fields() {
        let mut h = paris();
        h.timezone = "Mars/Base".into();
        assert_eq!(h.validate().expect_err("bad tz").field, "timezone");
        let mut h = paris();
        h.close = "08:00".into();
        assert_eq!(h.validate().expect_err("close").field, "close");
        let mut h = paris();
        h.days = vec!["mon".into(), "funday".into()];
        assert_eq!(h.validate().expect_err("day").field, "days[1]");
        assert!(paris().validate().is_ok());
    }

    #[test]
    fn local_times_follow_the_time_zone() {
        let h = paris();
        let now = h.parse_start("2026-11-20T12:00").expect("parses");
        // Monday 23 Nov 2026, 10:00 in Paris is 09:00 UTC (winter time).
        let start = h.parse_start("2026-11-23T10:00").expect("parses");
        assert_eq!(
            start,
            Timestamp::parse_rfc3339("2026-11-23T09:00:00Z").expect("utc")
        );
        assert!(h.check_slot(start, now).is_ok());
        assert_eq!(h.local_string(start), "2026-11-23T10:00:00+01:00");
        // Saturday, before opening, running past closing, and the past are refused.
        for s in ["2026-11-21T10:00", "2026-11-23T08:30", "2026-11-23T16:45"] {
            let t = h.parse_start(s).expect("parses");
            assert!(
                matches!(h.check_slot(t, now), Err(SlotError::Closed(_))),
                "{s}"
            );
        }
        let past = h.parse_start("2026-11-19T10:00").expect("parses");
        assert_eq!(h.check_slot(past, now), Err(SlotError::Past));
        assert!(matches!(
            h.parse_start("next monday"),
            Err(SlotError::Unreadable(_))
        ));
    }

    #[test]
    fn slots_cover_the_open_day() {
        let h = paris();
        let now = h.parse_start("2026-11-20T12:00").expect("parses");
        let monday = parse_date("2026-11-23").expect("date");
        let slots = h.slots_on(monday, now);
        assert_eq!(slots.len(), 16);
        assert_eq!(h.local_string(slots[0].0), "2026-11-23T09:00:00+01:00");
        assert_eq!(h.local_string(slots[15].1), "2026-11-23T17:00:00+01:00");
        assert!(h
            .slots_on(parse_date("2026-11-22").expect("sunday"), now)
            .is_empty());
    }
}
