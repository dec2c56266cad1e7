//! Call e-mails over SMTP: a plain-text part and an HTML part whose styles are all inline
//! (mail clients strip `<style>` blocks and classes), with solid colours set on every block
//! so the message stays readable when a client forces a dark theme.

use crate::analysis::{contact_label, unsuccessful, RunError};
use crate::{transcript, Jobs};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;
use std::time::Duration;
use switchboard_domain::entities::Call;
use switchboard_domain::ids::EmailId;
use switchboard_domain::values::CallStatus;
use switchboard_store::{Job, StoreError};

/// An SMTP sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for logs.
    pub server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .finish()
    }
}

impl Mailer {
    /// A sender for `smtp://user:pass@host:port?tls=starttls|tls|none` (or `smtps://`,
    /// implicit TLS). The default is STARTTLS, required; ports default to 587 (STARTTLS),
    /// 465 (TLS) and 25 (none).
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let u = url::Url::parse(url).map_err(|e| format!("SMTP URL is not a URL: {e}"))?;
        let mut tls_mode = match u.scheme() {
            "smtp" => "starttls",
            "smtps" => "tls",
            other => {
                return Err(format!(
                    "SMTP URL scheme must be smtp or smtps, not `{other}`"
                ))
            }
        };
        for (k, v) in u.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "starttls" | "required") => tls_mode = "starttls",
                ("tls", "tls" | "wrapper" | "implicit") => tls_mode = "tls",
                ("tls", "none" | "off") => tls_mode = "none",
                ("tls", other) => {
                    return Err(format!(
                        "SMTP URL `tls` must be starttls, tls or none, not `{other}`"
                    ))
                }
                (other, _) => return Err(format!("SMTP URL has an unknown parameter `{other}`")),
            }
        }
        let host = u
            .host_str()
            .ok_or("SMTP URL has no host")?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let port = u.port().unwrap_or(match tls_mode {
            "tls" => 465,
            "starttls" => 587,
            _ => 25,
        });
        let params =
            || TlsParameters::new(host.clone()).map_err(|e| format!("SMTP TLS setup failed: {e}"));
        let tls = match tls_mode {
            "starttls" => Tls::Required(params()?),
            "tls" => Tls::Wrapper(params()?),
            _ => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if !u.username().is_empty() {
            let decode = |s: &str| {
                percent_decode(s).map_err(|_| "SMTP URL credentials are not valid UTF-8".to_owned())
            };
            let user = decode(u.username())?;
            let pass = decode(u.password().unwrap_or_default())?;
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("SMTP from address `{from}` is invalid: {e}"))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{host}:{port}"),
        })
    }

    /// Connects and greets the server (and signs in, when the URL has credentials) without
    /// sending anything: what `doctor` checks.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{} did not answer as an SMTP server", self.server)),
            Err(e) => Err(format!("{}: {e}", self.server)),
        }
    }

    /// Sends one multipart message. `Err((permanent, why))`.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), (bool, String)> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject);
        for r in to {
            let mb: Mailbox = r
                .parse()
                .map_err(|e| (true, format!("recipient `{r}` is invalid: {e}")))?;
            b = b.to(mb);
        }
        let msg = b
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| (true, format!("cannot build the message: {e}")))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| (e.is_permanent(), format!("SMTP {}: {e}", self.server)))
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// What the e-mail shows.
pub struct CallReport<'a> {
    /// Organization name.
    pub org_name: &'a str,
    /// The call.
    pub call: &'a Call,
    /// Agent name.
    pub agent: Option<&'a str>,
    /// The transcript.
    pub lines: &'a [transcript::Line],
    /// Link to the call in the dashboard.
    pub link: Option<String>,
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn duration(s: Option<i64>) -> String {
    match s {
        Some(s) => format!("{}:{:02}", s / 60, s % 60),
        None => "-".into(),
    }
}

fn field_value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CallReport<'_> {
    /// The outcome line and whether the analysis is there.
    fn outcome(&self) -> (String, Option<&Value>) {
        let a = self.call.analysis.as_ref();
        match a.and_then(|a| a.get("status")).and_then(Value::as_str) {
            Some("completed") => {
                let success = a
                    .and_then(|a| a.pointer("/outcome/success"))
                    .and_then(Value::as_bool);
                let reason = a
                    .and_then(|a| a.pointer("/outcome/reason"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let label = match success {
                    Some(true) => "Successful",
                    Some(false) => "Unsuccessful",
                    None => "Unknown",
                };
                (format!("{label}: {reason}"), a)
            }
            Some("failed") => (
                format!(
                    "Analysis failed: {}",
                    a.and_then(|a| a.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                ),
                None,
            ),
            _ => (
                "Analysis not available: it did not finish in time, so this e-mail was sent without it."
                    .into(),
                None,
            ),
        }
    }

    /// Subject line.
    pub fn subject(&self) -> String {
        let c = self.call;
        format!(
            "[{}] Call from {} ({}, {})",
            self.org_name,
            c.from_number,
            c.status.as_str(),
            duration(c.duration_seconds)
        )
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let c = self.call;
        let (outcome, _) = self.outcome();
        vec![
            ("Caller", c.from_number.clone()),
            ("Our number", c.to_number.clone()),
            ("Agent", self.agent.unwrap_or("-").to_owned()),
            ("Started", c.started_at.to_rfc3339()),
            ("Duration", duration(c.duration_seconds)),
            ("Status", c.status.as_str().to_owned()),
            ("Outcome", outcome),
        ]
    }

    fn analysis_parts(&self) -> (Option<String>, Vec<(String, String)>) {
        let (_, a) = self.outcome();
        let Some(a) = a else {
            return (None, Vec::new());
        };
        let summary = a.get("summary").and_then(Value::as_str).map(str::to_owned);
        let mut fields = Vec::new();
        if let Some(i) = a.get("intent").and_then(Value::as_str) {
            fields.push(("intent".to_owned(), i.to_owned()));
        }
        if let Some(s) = a.get("sentiment").and_then(Value::as_str) {
            fields.push(("sentiment".to_owned(), s.to_owned()));
        }
        if let Some(Value::Object(m)) = a.get("fields") {
            for (k, v) in m {
                fields.push((k.clone(), field_value(v)));
            }
        }
        (summary, fields)
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        let mut out = format!("Call report from {}\n\n", self.org_name);
        for (k, v) in self.facts() {
            out.push_str(&format!("{k}: {v}\n"));
        }
        let (summary, fields) = self.analysis_parts();
        if let Some(s) = summary {
            out.push_str(&format!("\nSummary\n{s}\n"));
        }
        if !fields.is_empty() {
            out.push_str("\nDetails\n");
            for (k, v) in &fields {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out.push_str("\nTranscript\n");
        if self.lines.is_empty() {
            out.push_str("(nothing was said)\n");
        }
        out.push_str(&transcript::plain(self.lines));
        out.push('\n');
        if let Some(l) = &self.link {
            out.push_str(&format!("\nOpen the call: {l}\n"));
        }
        out
    }

    /// The HTML part: tables and inline styles only.
    pub fn html(&self) -> String {
        const TEXT: &str = "color:#1f2937;";
        const MUTED: &str = "color:#4b5563;";
        const FONT: &str =
            "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:20px;";
        let mut h = String::new();
        h.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"color-scheme\" content=\"light\"></head>");
        h.push_str(&format!("<body style=\"margin:0;padding:0;background-color:#f3f4f6;{FONT}{TEXT}\" bgcolor=\"#f3f4f6\">"));
        h.push_str("<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"background-color:#f3f4f6;\" bgcolor=\"#f3f4f6\"><tr><td align=\"center\" style=\"padding:24px 12px;\">");
        h.push_str("<table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:600px;width:100%;background-color:#ffffff;border:1px solid #d1d5db;\" bgcolor=\"#ffffff\">");
        h.push_str(&format!(
            "<tr><td style=\"background-color:#1e3a8a;color:#ffffff;padding:16px 20px;{FONT}font-size:18px;font-weight:bold;\" bgcolor=\"#1e3a8a\">Call report &middot; {}</td></tr>",
            esc(self.org_name)
        ));
        h.push_str("<tr><td style=\"padding:16px 20px;background-color:#ffffff;\" bgcolor=\"#ffffff\"><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">");
        for (k, v) in self.facts() {
            h.push_str(&format!(
                "<tr><td style=\"padding:4px 12px 4px 0;{FONT}{MUTED}width:120px;vertical-align:top;\">{}</td><td style=\"padding:4px 0;{FONT}{TEXT}font-weight:bold;\">{}</td></tr>",
                esc(k),
                esc(&v)
            ));
        }
        h.push_str("</table></td></tr>");
        let (summary, fields) = self.analysis_parts();
        let section = |title: &str| {
            format!("<tr><td style=\"padding:12px 20px 4px 20px;background-color:#ffffff;{FONT}color:#1e3a8a;font-size:16px;font-weight:bold;\" bgcolor=\"#ffffff\">{}</td></tr>", esc(title))
        };
        if let Some(s) = summary {
            h.push_str(&section("Summary"));
            h.push_str(&format!(
                "<tr><td style=\"padding:4px 20px 12px 20px;background-color:#ffffff;{FONT}{TEXT}\" bgcolor=\"#ffffff\">{}</td></tr>",
                esc(&s)
            ));
        }
        if !fields.is_empty() {
            h.push_str(&section("Details"));
            h.push_str("<tr><td style=\"padding:4px 20px 12px 20px;background-color:#ffffff;\" bgcolor=\"#ffffff\"><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">");
            for (k, v) in &fields {
                h.push_str(&format!(
                    "<tr><td style=\"padding:3px 12px 3px 0;{FONT}{MUTED}width:160px;vertical-align:top;\">{}</td><td style=\"padding:3px 0;{FONT}{TEXT}\">{}</td></tr>",
                    esc(k),
                    esc(v)
                ));
            }
            h.push_str("</table></td></tr>");
        }
        h.push_str(&section("Transcript"));
        h.push_str("<tr><td style=\"padding:4px 20px 16px 20px;background-color:#ffffff;\" bgcolor=\"#ffffff\">");
        if self.lines.is_empty() {
            h.push_str(&format!(
                "<p style=\"margin:0;{FONT}{MUTED}\">Nothing was said.</p>"
            ));
        }
        for l in self.lines {
            let (bg, who) = match l.speaker {
                "Agent" => ("#e0e7ff", "#1e3a8a"),
                "Tool" | "System" => ("#f3f4f6", "#374151"),
                _ => ("#ecfdf5", "#065f46"),
            };
            h.push_str(&format!(
                "<p style=\"margin:0 0 6px 0;padding:8px 10px;background-color:{bg};{FONT}{TEXT}\"><span style=\"color:{who};font-weight:bold;\">{}:</span> {}</p>",
                esc(l.speaker),
                esc(&l.text)
            ));
        }
        h.push_str("</td></tr>");
        if let Some(link) = &self.link {
            h.push_str(&format!(
                "<tr><td style=\"padding:0 20px 20px 20px;background-color:#ffffff;\" bgcolor=\"#ffffff\"><a href=\"{}\" style=\"display:inline-block;padding:10px 16px;background-color:#1e3a8a;color:#ffffff;text-decoration:none;{FONT}font-weight:bold;\">Open the call</a></td></tr>",
                esc(link)
            ));
        }
        h.push_str("</table></td></tr></table></body></html>");
        h
    }
}

impl Jobs {
    /// Runs one e-mail job: composes and sends the call report, or records why not.
    pub(crate) async fn send_email(&self, job: &Job) -> Result<(), RunError> {
        let inner = &self.inner;
        let org = &job.org_id;
        let id = crate::payload_id(job, "email_id", EmailId::parse)
            .ok_or_else(|| RunError::Stop("job without an e-mail id".into()))?;
        let note = inner.store.get_email_notification(org, &id).await?;
        if note.status != "pending" {
            return Ok(());
        }
        let now = inner.clock.now();
        let record = |status: &'static str, subject: Option<String>, error: Option<String>| {
            let store = inner.store.clone();
            let org = org.clone();
            let id = id.clone();
            async move {
                store
                    .record_email(&org, &id, status, subject.as_deref(), error.as_deref(), now)
                    .await
            }
        };
        let Some(call_id) = &note.call_id else {
            record("failed", None, Some("the call no longer exists".into())).await?;
            return Ok(());
        };
        let call = match inner.store.get_call(org, call_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                record("failed", None, Some("the call no longer exists".into())).await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let settings = inner.store.get_settings(org).await?;
        let wanted = match settings.notify_calls.as_str() {
            "none" => false,
            "unsuccessful" => {
                let call_failed = matches!(
                    call.status,
                    CallStatus::Failed
                        | CallStatus::Busy
                        | CallStatus::NoAnswer
                        | CallStatus::Canceled
                );
                // Without an analysis the call cannot be judged a success: send it.
                call_failed || unsuccessful(call.analysis.as_ref()).unwrap_or(true)
            }
            _ => true,
        };
        if !wanted {
            record("skipped", None, None).await?;
            return Ok(());
        }
        let Some(mailer) = &inner.mailer else {
            record(
                "failed",
                None,
                Some(
                    "e-mail is not configured (set SWITCHBOARD_SMTP_URL and SWITCHBOARD_SMTP_FROM)"
                        .into(),
                ),
            )
            .await?;
            return Ok(());
        };
        let org_name = inner
            .store
            .get_org(org)
            .await
            .map(|o| o.name)
            .unwrap_or_else(|_| org.to_string());
        let agent = match &call.agent_id {
            Some(a) => inner.store.get_agent(org, a).await.ok().map(|a| a.name),
            None => None,
        };
        let items = inner
            .store
            .recent_messages(org, &call.conversation_id, 400)
            .await?;
        let lines = transcript::lines(
            &items,
            contact_label(switchboard_domain::values::Channel::Voice),
        );
        let report = CallReport {
            org_name: &org_name,
            call: &call,
            agent: agent.as_deref(),
            lines: &lines,
            link: inner
                .config
                .dashboard_url
                .as_ref()
                .map(|u| format!("{}/calls/{}", u.trim_end_matches('/'), call.id)),
        };
        let subject = report.subject();
        match mailer
            .send(&note.recipients, &subject, report.text(), report.html())
            .await
        {
            Ok(()) => {
                record("sent", Some(subject), None).await?;
                inner
                    .stats
                    .emails_sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(org_id = %org, call_id = %call.id, recipients = note.recipients.len(), "call e-mail sent");
                Ok(())
            }
            Err((true, why)) => {
                record("failed", Some(subject), Some(why.clone())).await?;
                inner
                    .stats
                    .emails_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(org_id = %org, call_id = %call.id, error = %why, "call e-mail rejected");
                self.alert_admins(org, crate::alerts::email_failed(&why))
                    .await;
                Ok(())
            }
            Err((false, why)) => {
                record("pending", Some(subject), Some(why.clone())).await?;
                Err(RunError::Retry(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_with_their_tls_modes() {
        assert!(Mailer::new(
            "smtp://user:p%40ss@mail.example.com:587?tls=starttls",
            "Switchboard <noreply@example.com>"
        )
        .is_ok());
        let m = Mailer::new("smtp://127.0.0.1:2525?tls=none", "a@example.com").expect("plain");
        assert_eq!(m.server, "127.0.0.1:2525");
        let m = Mailer::new("smtps://mail.example.com", "a@example.com").expect("tls");
        assert_eq!(m.server, "mail.example.com:465");
        assert!(Mailer::new("http://x", "a@example.com").is_err());
        assert!(Mailer::new("smtp://x?tls=maybe", "a@example.com").is_err());
        assert!(Mailer::new("smtp://x", "not an address").is_err());
        assert_eq!(percent_decode("p%40ss%zz").expect("utf8"), "p@ss%zz");
    }
}
