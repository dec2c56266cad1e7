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
    /// Days the business is closed although they are open days (holidays, closures), at
    /// most 200 entries.
    #[serde(default)]
    pub closures: Vec<Closure>,
}

/// A closure: one local date, or a range of dates, when nothing can be booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closure {
    /// First closed day, `YYYY-MM-DD` (local to the business).
    pub from: String,
    /// Last closed day, `YYYY-MM-DD`, inclusive; absent for a single day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why, e.g. `Christmas` (at most 200 characters; callers may hear it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The most closures one agent keeps.
pub const MAX_CLOSURES: usize = 200;

impl Closure {
    fn range(&self) -> Option<(Date, Date)> {
        let from = parse_date(&self.from)?;
        let to = match &self.to {
            Some(t) => parse_date(t)?,
            None => from,
        };
        Some((from, to))
    }

    /// `2026-12-24` or `2026-12-24..2026-12-26`, then the reason.
    pub fn describe(&self) -> String {
        let mut s = self.from.clone();
        if let Some(t) = self.to.as_ref().filter(|t| **t != self.from) {
            s.push_str("..");
            s.push_str(t);
        }
        if let Some(r) = &self.reason {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// Reads one line of the form `2026-12-24`, `2026-12-24..2026-12-26` or either followed
    /// by a reason (`2026-12-25 Christmas`).
    pub fn parse_line(line: &str) -> Result<Closure, String> {
        let line = line.trim();
        let (dates, reason) = match line.split_once(char::is_whitespace) {
            Some((d, r)) => (d, Some(r.trim().to_owned()).filter(|r| !r.is_empty())),
            None => (line, None),
        };
        let (from, to) = match dates.split_once("..") {
            Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
            None => (dates.to_owned(), None),
        };
        let c = Closure { from, to, reason };
        c.check().map_err(|m| format!("`{line}`: {m}"))?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        if parse_date(&self.from).is_none() {
            return Err("the first day must be a date like 2026-12-24".into());
        }
        if let Some(t) = &self.to {
            let Some(to) = parse_date(t) else {
                return Err("the last day must be a date like 2026-12-26".into());
            };
            if parse_date(&self.from).is_some_and(|f| to < f) {
                return Err("the last day is before the first".into());
            }
        }
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 200)
        {
            return Err("the reason is longer than 200 characters".into());
        }
        Ok(())
    }
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
            closures: Vec::new(),
        }
    }
}

/// Parses `HH:MM`.
pub fn parse_hhmm(s: &str) -> Option<Time> {
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
    /// The day is a closure (holiday).
    #[error("we are closed that day ({0})")]
    ClosedDay(String),
    /// The end is not after the start, or the appointment spans more than a day.
    #[error("an appointment must end after it starts, on the same day")]
    BadLength,
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
        if self.closures.len() > MAX_CLOSURES {
            return Err(ValidationError::new(
                "closures",
                format!("at most {MAX_CLOSURES} closures"),
            ));
        }
        for (i, c) in self.closures.iter().enumerate() {
            c.check()
                .map_err(|m| ValidationError::new(format!("closures[{i}]"), m))?;
        }
        Ok(())
    }

    /// The closure that covers local `date`, if any.
    pub fn closure_on(&self, date: Date) -> Option<&Closure> {
        self.closures
            .iter()
            .find(|c| c.range().is_some_and(|(f, t)| f <= date && date <= t))
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
        let end = Timestamp::from_millis(start.millis() + self.slot_minutes * 60_000);
        self.check_range(start, end, now)?;
        Ok(end)
    }

    /// Checks that `[start, end)` is in the future, on one open day that is not a closure,
    /// and within opening hours (staff choose the length; the tools use the slot length).
    pub fn check_range(
        &self,
        start: Timestamp,
        end: Timestamp,
        now: Timestamp,
    ) -> Result<(), SlotError> {
        if start <= now {
            return Err(SlotError::Past);
        }
        if end <= start {
            return Err(SlotError::BadLength);
        }
        let tz = self.tz();
        let local = |t: Timestamp| {
            jiff::Timestamp::from_millisecond(t.millis())
                .map(|ts| ts.to_zoned(tz.clone()).datetime())
                .map_err(|_| SlotError::Unreadable(t.to_rfc3339()))
        };
        let (ls, le) = (local(start)?, local(end)?);
        let (open, close) = self.hours();
        // An appointment ending at midnight ends on the next date at 00:00.
        let same_day = ls.date() == le.date()
            || (le.time() == Time::midnight() && ls.date().tomorrow().ok() == Some(le.date()));
        if !same_day {
            return Err(SlotError::BadLength);
        }
        if let Some(c) = self.closure_on(ls.date()) {
            return Err(SlotError::ClosedDay(c.describe()));
        }
        let day_open = self
            .days
            .iter()
            .any(|d| d == weekday_name(ls.date().weekday()));
        let ends_in_time = le.time() <= close && le.date() == ls.date();
        if !day_open || ls.time() < open || !ends_in_time {
            return Err(SlotError::Closed(self.describe()));
        }
        Ok(())
    }

    /// Every slot start on a local date that lies within opening hours and after `now`.
    pub fn slots_on(&self, date: Date, now: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let tz = self.tz();
        let (open, close) = self.hours();
        if !self.days.iter().any(|d| d == weekday_name(date.weekday()))
            || self.closure_on(date).is_some()
        {
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
    fn closures_close_the_day() {
        let mut h = paris();
        h.closures = vec![
            Closure::parse_line("2026-12-24..2026-12-26 Christmas").expect("range"),
            Closure::parse_line("2026-11-30").expect("day"),
        ];
        assert!(h.validate().is_ok());
        let now = h.parse_start("2026-11-20T12:00").expect("parses");
        let xmas = h.parse_start("2026-12-25T10:00").expect("parses");
        assert_eq!(
            h.check_slot(xmas, now),
            Err(SlotError::ClosedDay(
                "2026-12-24..2026-12-26 Christmas".into()
            ))
        );
        assert!(h
            .slots_on(parse_date("2026-11-30").expect("monday"), now)
            .is_empty());
        let after = h.parse_start("2026-12-28T10:00").expect("parses");
        assert!(h.check_slot(after, now).is_ok());
        // Staff lengths: any end after the start within the day's hours.
        let end = h.parse_start("2026-12-28T12:30").expect("parses");
        assert!(h.check_range(after, end, now).is_ok());
        let late = h.parse_start("2026-12-28T17:30").expect("parses");
        assert!(matches!(
            h.check_range(after, late, now),
            Err(SlotError::Closed(_))
        ));
        assert_eq!(h.check_range(after, after, now), Err(SlotError::BadLength));
        for bad in ["2026-13-01", "2026-12-26..2026-12-24", "tomorrow"] {
            assert!(Closure::parse_line(bad).is_err(), "{bad}");
        }
        h.closures = vec![Closure {
            from: "2026-12-24".into(),
            to: Some("soon".into()),
            reason: None,
        }];
        assert_eq!(h.validate().expect_err("bad").field, "closures[0]");
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
