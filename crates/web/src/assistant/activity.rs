//! `activity_summary`: what happened over a period of the organization's days (in its time
//! zone, weeks from Monday): calls by direction and disposition, missed inbound calls,
//! unreached outbound ones, minutes, texts and successful conversations.

use super::tools::Ran;
use super::Ctx;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use switchboard_domain::Timestamp;
use switchboard_store::AnalyticsQuery;

/// The days `first..=last` a named period covers, as of `today`.
fn period(name: &str, today: Date) -> Option<(Date, Date)> {
    let days = |n: i64| jiff::Span::new().days(n);
    let monday = today
        .checked_sub(days(i64::from(today.weekday().to_monday_zero_offset())))
        .ok()?;
    let first_of_month = today.first_of_month();
    Some(match name {
        "today" => (today, today),
        "yesterday" => {
            let y = today.yesterday().ok()?;
            (y, y)
        }
        "this_week" => (monday, today),
        "last_week" => (monday.checked_sub(days(7)).ok()?, monday.yesterday().ok()?),
        "last_7_days" => (today.checked_sub(days(6)).ok()?, today),
        "last_30_days" => (today.checked_sub(days(29)).ok()?, today),
        "this_month" => (first_of_month, today),
        "last_month" => {
            let end = first_of_month.yesterday().ok()?;
            (end.first_of_month(), end)
        }
        _ => return None,
    })
}

/// Inbound calls that ended without a conversation, outbound ones nobody took.
const UNANSWERED: &[&str] = &["no_answer", "busy", "failed", "canceled", "voicemail"];

/// Runs the tool.
pub(crate) async fn run(ctx: &Ctx<'_>, args: &Map<String, Value>) -> Ran {
    let tz = TimeZone::get(&ctx.timezone).unwrap_or(TimeZone::UTC);
    let now = Timestamp::now();
    let today = crate::appointments::today(&tz, now);
    let named = args.get("period").and_then(Value::as_str);
    let (from, to) = match named {
        Some(p) => match period(p, today) {
            Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
            None => return Ran::error("invalid_arguments", format!("unknown period `{p}`")),
        },
        None => (
            args.get("from").and_then(Value::as_str).map(str::to_owned),
            args.get("to").and_then(Value::as_str).map(str::to_owned),
        ),
    };
    let range = match crate::exports::parse_range(from.as_deref(), to.as_deref(), &tz, now) {
        Ok(r) => r,
        Err(errors) => {
            let why: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Ran::error("invalid_arguments", why.join("; "));
        }
    };
    let st = ctx.st;
    let org = &ctx.who.org;
    let counts = match st.store.call_counts(org, range.span()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "activity: cannot count calls");
            return Ran::error("unavailable", "the calls cannot be counted right now");
        }
    };
    let query = AnalyticsQuery {
        bounds: range.bounds.clone(),
        agent: None,
        number: None,
    };
    let totals = match st.store.analytics(org, &query).await {
        Ok(a) => a.total(),
        Err(e) => {
            tracing::error!(error = %e, "activity: cannot read the figures");
            return Ran::error("unavailable", "the figures cannot be read right now");
        }
    };
    let mut by: BTreeMap<&str, (i64, BTreeMap<String, i64>, i64)> = BTreeMap::new();
    for c in &counts {
        let dir = if c.direction == "outbound" {
            "outbound"
        } else {
            "inbound"
        };
        let entry = by.entry(dir).or_default();
        let disposition = c
            .disposition
            .clone()
            .unwrap_or_else(|| "in-progress".into());
        entry.0 += c.calls;
        if UNANSWERED.contains(&disposition.as_str()) {
            entry.2 += c.calls;
        }
        *entry.1.entry(disposition).or_default() += c.calls;
    }
    let side = |d: &str| {
        let (total, dispositions, unanswered) = by.get(d).cloned().unwrap_or_default();
        (total, dispositions, unanswered)
    };
    let (in_total, in_by, missed) = side("inbound");
    let (out_total, out_by, unreached) = side("outbound");
    Ran::ok(json!({
        "ok": true,
        "period": {"from": range.first.to_string(), "to": range.last.to_string(), "timezone": ctx.timezone, "named": named},
        "calls": {
            "total": in_total + out_total,
            "inbound": {"total": in_total, "missed": missed, "by_disposition": in_by},
            "outbound": {"total": out_total, "unreached": unreached, "by_disposition": out_by},
            "minutes": (totals.minutes() * 10.0).round() / 10.0,
            "judged_by_analysis": totals.analysed,
            "successful": totals.successes,
        },
        "texts": {"received": totals.messages_in, "sent": totals.messages_out},
        "note": "missed: inbound calls that ended without a conversation (no answer, busy, failed, cancelled by the caller); unreached: outbound calls nobody took (including voicemail)"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Weekday;

    #[test]
    fn named_periods_are_organization_days_with_weeks_from_monday() {
        let wed = Date::new(2026, 12, 2).expect("date");
        assert_eq!(wed.weekday(), Weekday::Wednesday);
        let d = |y, m, dd| Date::new(y, m, dd).expect("date");
        assert_eq!(period("this_week", wed), Some((d(2026, 11, 30), wed)));
        assert_eq!(
            period("last_week", wed),
            Some((d(2026, 11, 23), d(2026, 11, 29)))
        );
        assert_eq!(
            period("yesterday", wed),
            Some((d(2026, 12, 1), d(2026, 12, 1)))
        );
        assert_eq!(
            period("last_month", wed),
            Some((d(2026, 11, 1), d(2026, 11, 30)))
        );
        assert_eq!(period("this_month", wed), Some((d(2026, 12, 1), wed)));
        assert_eq!(period("last_7_days", wed), Some((d(2026, 11, 26), wed)));
        assert_eq!(period("fortnight", wed), None);
    }
}
