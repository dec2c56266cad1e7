//! The organization's calendar feed: `GET /calendar/{token}.ics`, an iCalendar (RFC 5545)
//! document of its appointments from 60 days ago to a year ahead, for Google Calendar, Outlook
//! or Apple Calendar to subscribe to. The token in the URL is the only credential (made and
//! revoked through `/api/v1/calendar-feed` or the appointments page); canceled appointments
//! are published with `STATUS:CANCELLED` and a higher `SEQUENCE`, so subscribers drop them,
//! and a moved one keeps its `UID` with a higher `SEQUENCE`, so subscribers move it.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_domain::Timestamp;
use switchboard_store::CalendarEntry;

const DAY_MS: i64 = 86_400_000;
const FEED_LIMIT: i64 = 5000;

/// The subscription URL for `token` (relative without a public URL).
pub(crate) fn feed_url(st: &AppState, token: &str) -> String {
    let base = st
        .twilio
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{base}/calendar/{token}.ics")
}

/// `GET /calendar/{token}.ics`.
pub(crate) async fn feed(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such calendar: the link was revoked or mistyped\n",
        )
            .into_response()
    };
    let Some(token) = file.strip_suffix(".ics") else {
        return not_found();
    };
    let ok = token.strip_prefix("cal_").is_some_and(|t| {
        !t.is_empty() && t.len() <= 80 && t.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !ok {
        return not_found();
    }
    let render = async {
        let Some(org) = st.store.calendar_feed_org(token).await? else {
            return Ok(None);
        };
        let o = st.store.get_org(&org).await?;
        let settings = st.store.get_settings(&org).await?;
        let now = st.clock.now();
        let range = (
            Timestamp::from_millis(now.millis() - 60 * DAY_MS),
            Timestamp::from_millis(now.millis() + 366 * DAY_MS),
        );
        let entries = st
            .store
            .calendar_entries(&org, range, None, None, true, FEED_LIMIT)
            .await?;
        Ok::<_, switchboard_store::StoreError>(Some(ics(
            &o.name,
            &settings.timezone,
            &entries,
            now,
        )))
    };
    match render.await {
        Ok(Some(body)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            body,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "calendar feed failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the calendar is not available right now\n",
            )
                .into_response()
        }
    }
}

/// The iCalendar document.
pub(crate) fn ics(
    org_name: &str,
    timezone: &str,
    entries: &[CalendarEntry],
    now: Timestamp,
) -> String {
    let mut out = String::with_capacity(256 + entries.len() * 400);
    let mut line = |name: &str, value: &str| fold(&mut out, name, value);
    line("BEGIN", "VCALENDAR");
    line("VERSION", "2.0");
    line("PRODID", "-//Switchboard//Appointments//EN");
    line("CALSCALE", "GREGORIAN");
    line("METHOD", "PUBLISH");
    line("X-WR-CALNAME", &text(&format!("{org_name} appointments")));
    line("X-WR-TIMEZONE", &text(timezone));
    line("REFRESH-INTERVAL;VALUE=DURATION", "PT15M");
    line("X-PUBLISHED-TTL", "PT15M");
    for e in entries {
        let a = &e.appointment;
        line("BEGIN", "VEVENT");
        line("UID", &format!("{}@switchboard", a.id));
        line("DTSTAMP", &utc(now));
        line("CREATED", &utc(a.created_at));
        line("LAST-MODIFIED", &utc(a.updated_at));
        line("SEQUENCE", &a.revision.to_string());
        line("DTSTART", &utc(a.starts_at));
        line("DTEND", &utc(a.ends_at));
        line("SUMMARY", &text(&a.title));
        let mut desc = Vec::new();
        match (&e.contact_name, &e.contact_number) {
            (Some(n), Some(num)) => desc.push(format!("Contact: {n} ({num})")),
            (None, Some(num)) => desc.push(format!("Contact: {num}")),
            _ => {}
        }
        if let Some(n) = &a.notes {
            desc.push(n.clone());
        }
        if !desc.is_empty() {
            line("DESCRIPTION", &text(&desc.join("\n")));
        }
        let status = if a.status == "booked" {
            "CONFIRMED"
        } else {
            "CANCELLED"
        };
        line("STATUS", status);
        line("TRANSP", "OPAQUE");
        line("END", "VEVENT");
    }
    line("END", "VCALENDAR");
    out
}

/// A UTC date-time, `20261207T090000Z`.
fn utc(t: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(t.millis()) {
        Ok(ts) => ts.strftime("%Y%m%dT%H%M%SZ").to_string(),
        Err(_) => "19700101T000000Z".to_owned(),
    }
}

/// A TEXT value escaped (RFC 5545 3.3.11): backslash, semicolon, comma and newlines; other
/// control characters are dropped (they are not allowed in a content line).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `name:value` as a content line folded at 75 octets (RFC 5545 3.1), never inside
/// a UTF-8 sequence, with CRLF line ends.
fn fold(out: &mut String, name: &str, value: &str) {
    let line = format!("{name}:{value}");
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_lines_are_folded() {
        assert_eq!(text("a,b;c\\d\r\ne\nf\u{7}"), "a\\,b\\;c\\\\d\\ne\\nf");
        let mut out = String::new();
        let long = "é".repeat(60);
        fold(&mut out, "SUMMARY", &long);
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{long}\r\n"));
    }

    #[test]
    fn times_are_utc() {
        let t = Timestamp::parse_rfc3339("2026-12-07T09:30:00Z").expect("time");
        assert_eq!(utc(t), "20261207T093000Z");
    }
}
