//! Date ranges in the organization's days, and CSV exports of calls, conversations and
//! appointments streamed a page at a time: the response starts at once, and an export of a
//! hundred thousand rows holds one page of them, not all.

use crate::AppState;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::time::Instant;
use switchboard_domain::analytics::LatencyHistogram;
use switchboard_domain::entities::{Call, Conversation, Cursor};
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_domain::Timestamp;
use switchboard_store::{CalendarEntry, ExportAfter, StoreError};

/// The longest range a chart or an export covers.
pub const MAX_DAYS: i64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;
/// Rows read per page of an export.
const PAGE: i64 = 1000;

/// Days `first..=last` in the organization's time zone, and where each starts.
#[derive(Debug, Clone)]
pub struct DayRange {
    /// First day.
    pub first: Date,
    /// Last day (included).
    pub last: Date,
    /// The start of each day, then the end of the last one.
    pub bounds: Vec<Timestamp>,
}

impl DayRange {
    /// The instants the range covers, `[start, end)`.
    pub fn span(&self) -> (Timestamp, Timestamp) {
        (
            self.bounds
                .first()
                .copied()
                .unwrap_or(Timestamp::from_millis(0)),
            self.bounds
                .last()
                .copied()
                .unwrap_or(Timestamp::from_millis(0)),
        )
    }
}

/// Reads `from`/`to` (`YYYY-MM-DD`, days in `tz`; both optional: the last 30 days by
/// default, `to` alone means the 30 days up to it). Every problem is returned, by field.
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<DayRange, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let mut day = |field: &'static str, v: Option<&str>| -> Option<Date> {
        let v = v.map(str::trim).filter(|s| !s.is_empty())?;
        let d = switchboard_domain::schedule::parse_date(v);
        if d.is_none() {
            errors.push((field, "must be a day, like 2026-12-07".to_owned()));
        }
        d
    };
    let from_d = day("from", from);
    let to_d = day("to", to);
    if !errors.is_empty() {
        return Err(errors);
    }
    let last = to_d.unwrap_or_else(|| crate::appointments::today(tz, now));
    let first = from_d.unwrap_or_else(|| {
        last.checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
            .unwrap_or(last)
    });
    if last < first {
        return Err(vec![("to", "must not be before `from`".to_owned())]);
    }
    let days = i64::from(first.until(last).map(|s| s.get_days()).unwrap_or(0)) + 1;
    if days > MAX_DAYS {
        return Err(vec![(
            "from",
            format!("the range is {days} days; at most {MAX_DAYS} at once"),
        )]);
    }
    let mut bounds = Vec::with_capacity(days as usize + 1);
    let mut d = first;
    for _ in 0..=days {
        let Some(start) = crate::appointments::day_start(d, tz) else {
            return Err(vec![("from", "is not a day in the time zone".to_owned())]);
        };
        bounds.push(start);
        d = match d.tomorrow() {
            Ok(n) => n,
            Err(_) => return Err(vec![("to", "is out of range".to_owned())]),
        };
    }
    Ok(DayRange {
        first,
        last,
        bounds,
    })
}

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// `calls.csv`.
    Calls,
    /// `conversations.csv`.
    Conversations,
    /// `appointments.csv`.
    Appointments,
}

impl ExportKind {
    /// From the file name in the path.
    pub fn from_file(name: &str) -> Option<ExportKind> {
        match name {
            "calls.csv" => Some(ExportKind::Calls),
            "conversations.csv" => Some(ExportKind::Conversations),
            "appointments.csv" => Some(ExportKind::Appointments),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ExportKind::Calls => "calls",
            ExportKind::Conversations => "conversations",
            ExportKind::Appointments => "appointments",
        }
    }

    fn header(self) -> &'static str {
        match self {
            ExportKind::Calls => {
                "id,started_at,started_local,answered_at,ended_at,direction,from_number,to_number,\
                 agent_id,agent_name,status,disposition,end_reason,duration_seconds,success,summary,\
                 turn_latency_p50_ms,turn_latency_p95_ms,campaign_id,conversation_id\r\n"
            }
            ExportKind::Conversations => {
                "id,started_at,started_local,last_message_at,ended_at,channel,direction,\
                 contact_number,our_number,agent_id,agent_name,status,messages,success,summary\r\n"
            }
            ExportKind::Appointments => {
                "id,starts_at,starts_local,ends_at,status,title,agent_id,agent_name,contact_id,\
                 contact_name,contact_number,notes,created_at\r\n"
            }
        }
    }
}

/// One CSV field: quoted when it holds a comma, quote or line break; text a spreadsheet
/// would run as a formula (`=`, `@`, or `+`/`-` not followed by a digit) gets a leading `'`.
fn field(out: &mut String, v: &str) {
    let risky = match v.as_bytes() {
        [b'=' | b'@' | b'\t' | b'\r', ..] => true,
        [b'+' | b'-', next, ..] => !next.is_ascii_digit(),
        [b'+' | b'-'] => true,
        _ => false,
    };
    let v = if risky {
        std::borrow::Cow::Owned(format!("'{v}"))
    } else {
        std::borrow::Cow::Borrowed(v)
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

fn iso(t: Option<Timestamp>) -> String {
    t.map(Timestamp::to_rfc3339).unwrap_or_default()
}

fn local(tz: &TimeZone, t: Timestamp) -> String {
    crate::appointments::local(tz, t)
        .map(|d| d.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn judged(a: Option<&serde_json::Value>) -> (String, String) {
    let success = match a.and_then(|a| a.pointer("/outcome/success")) {
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    let summary = a
        .and_then(|a| a.get("summary"))
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    (success, summary)
}

struct Exporter {
    st: AppState,
    org: OrgId,
    kind: ExportKind,
    span: (Timestamp, Timestamp),
    tz: TimeZone,
    agents: HashMap<AgentId, String>,
    after: ExportAfter,
    rows: u64,
    started: Instant,
    done: bool,
}

impl Exporter {
    fn agent(&self, id: Option<&AgentId>) -> (String, String) {
        match id {
            Some(a) => (
                a.to_string(),
                self.agents.get(a).cloned().unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        }
    }

    fn call(&self, out: &mut String, c: &Call) {
        let (agent_id, agent_name) = self.agent(c.agent_id.as_ref());
        let (success, summary) = judged(c.analysis.as_ref());
        let mut h = LatencyHistogram::default();
        c.turn_latencies_ms.iter().for_each(|ms| h.add(*ms));
        let p = |q: f64| h.percentile(q).map(|v| v.to_string()).unwrap_or_default();
        row(
            out,
            &[
                c.id.as_str(),
                &c.started_at.to_rfc3339(),
                &local(&self.tz, c.started_at),
                &iso(c.answered_at),
                &iso(c.ended_at),
                c.direction.as_str(),
                &c.from_number,
                &c.to_number,
                &agent_id,
                &agent_name,
                c.status.as_str(),
                c.disposition.as_deref().unwrap_or(""),
                c.end_reason.as_deref().unwrap_or(""),
                &c.duration_seconds
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                &success,
                &summary,
                &p(0.5),
                &p(0.95),
                c.campaign_id.as_deref().unwrap_or(""),
                c.conversation_id.as_str(),
            ],
        );
    }

    fn conversation(&self, out: &mut String, c: &Conversation, messages: i64) {
        let (agent_id, agent_name) = self.agent(c.agent_id.as_ref());
        let (success, summary) = judged(c.analysis.as_ref());
        row(
            out,
            &[
                c.id.as_str(),
                &c.started_at.to_rfc3339(),
                &local(&self.tz, c.started_at),
                &c.last_message_at.to_rfc3339(),
                &iso(c.ended_at),
                c.channel.as_str(),
                c.direction.as_str(),
                &c.contact_number,
                c.our_number.as_deref().unwrap_or(""),
                &agent_id,
                &agent_name,
                c.status.as_str(),
                &messages.to_string(),
                &success,
                &summary,
            ],
        );
    }

    fn appointment(&self, out: &mut String, e: &CalendarEntry) {
        let a = &e.appointment;
        let (agent_id, agent_name) = self.agent(a.agent_id.as_ref());
        row(
            out,
            &[
                &a.id,
                &a.starts_at.to_rfc3339(),
                &local(&self.tz, a.starts_at),
                &a.ends_at.to_rfc3339(),
                &a.status,
                &a.title,
                &agent_id,
                &agent_name,
                &a.contact_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                e.contact_name.as_deref().unwrap_or(""),
                e.contact_number.as_deref().unwrap_or(""),
                a.notes.as_deref().unwrap_or(""),
                &a.created_at.to_rfc3339(),
            ],
        );
    }

    /// The next page as CSV text; `None` when the export is over.
    async fn next(&mut self) -> Result<Option<String>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::with_capacity(64 * 1024);
        let store = &self.st.store;
        let n = match self.kind {
            ExportKind::Calls => {
                let page = store
                    .export_calls(&self.org, self.span, &self.after, PAGE)
                    .await?;
                page.iter().for_each(|c| self.call(&mut out, c));
                if let Some(c) = page.last() {
                    self.after = Some((c.started_at.millis(), c.id.to_string()));
                }
                page.len()
            }
            ExportKind::Conversations => {
                let page = store
                    .export_conversations(&self.org, self.span, &self.after, PAGE)
                    .await?;
                page.iter()
                    .for_each(|(c, n)| self.conversation(&mut out, c, *n));
                if let Some((c, _)) = page.last() {
                    self.after = Some((c.started_at.millis(), c.id.to_string()));
                }
                page.len()
            }
            ExportKind::Appointments => {
                let page = store
                    .export_appointments(&self.org, self.span, &self.after, PAGE)
                    .await?;
                page.iter().for_each(|e| self.appointment(&mut out, e));
                if let Some(e) = page.last() {
                    self.after = Some((e.appointment.starts_at.millis(), e.appointment.id.clone()));
                }
                page.len()
            }
        };
        self.rows += n as u64;
        if (n as i64) < PAGE {
            self.done = true;
            tracing::info!(
                org_id = %self.org,
                export = self.kind.name(),
                rows = self.rows,
                ms = self.started.elapsed().as_millis() as u64,
                "export finished"
            );
        }
        Ok((!out.is_empty() || !self.done).then_some(out))
    }
}

/// The organization's agents by id (tens, not thousands).
async fn agent_names(st: &AppState, org: &OrgId) -> Result<HashMap<AgentId, String>, StoreError> {
    let mut out = HashMap::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..10 {
        let page = st
            .store
            .list_agents(org, Some(200), cursor.as_ref())
            .await?;
        for a in page.data {
            out.insert(a.id, a.name);
        }
        match page.next_cursor.as_deref().and_then(Cursor::decode) {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// A streamed CSV download of `kind` for `range`.
pub async fn csv(
    st: &AppState,
    org: &OrgId,
    kind: ExportKind,
    range: &DayRange,
    tz: TimeZone,
) -> Result<Response, StoreError> {
    let agents = agent_names(st, org).await?;
    let exporter = Exporter {
        st: st.clone(),
        org: org.clone(),
        kind,
        span: range.span(),
        tz,
        agents,
        after: None,
        rows: 0,
        started: Instant::now(),
        done: false,
    };
    let head = futures_util::stream::once(async move {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(kind.header().as_bytes()))
    });
    let body = futures_util::stream::try_unfold(exporter, |mut e| async move {
        match e.next().await {
            Ok(Some(chunk)) => Ok(Some((Bytes::from(chunk), e))),
            Ok(None) => Ok(None),
            Err(err) => {
                // The status line is gone: the client sees the download cut short.
                tracing::error!(org_id = %e.org, export = e.kind.name(), rows = e.rows, error = %err, "export failed");
                Err(std::io::Error::other(err.to_string()))
            }
        }
    });
    let stream = futures_util::StreamExt::chain(head, body);
    let file = format!("{}-{}-to-{}.csv", kind.name(), range.first, range.last);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused_but_numbers_kept() {
        let mut s = String::new();
        row(
            &mut s,
            &[
                "plain",
                "a,b",
                "say \"hi\"",
                "line\nbreak",
                "=SUM(A1)",
                "+15551234567",
                "-3",
                "+cmd",
                "@x",
                "",
            ],
        );
        assert_eq!(
            s,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",'=SUM(A1),+15551234567,-3,'+cmd,'@x,\r\n"
        );
    }

    #[test]
    fn ranges_default_to_thirty_days_and_refuse_nonsense() {
        let tz = TimeZone::get("America/New_York").expect("tz");
        let now = Timestamp::parse_rfc3339("2026-03-10T12:00:00Z").expect("now");
        let r = parse_range(None, None, &tz, now).expect("default");
        assert_eq!(r.last.to_string(), "2026-03-10");
        assert_eq!(r.first.to_string(), "2026-02-09");
        assert_eq!(r.bounds.len(), 31);
        // 8 March 2026 is 23 hours long in New York.
        let r = parse_range(Some("2026-03-08"), Some("2026-03-08"), &tz, now).expect("one day");
        assert_eq!(r.bounds[1].millis() - r.bounds[0].millis(), 23 * 3_600_000);
        let e = parse_range(Some("yesterday"), Some("2026-13-01"), &tz, now).expect_err("bad");
        assert_eq!(e.len(), 2);
        assert!(parse_range(Some("2026-03-02"), Some("2026-03-01"), &tz, now).is_err());
        assert!(parse_range(Some("2024-01-01"), Some("2026-01-01"), &tz, now).is_err());
    }
}
