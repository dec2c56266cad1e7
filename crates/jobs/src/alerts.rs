//! E-mails to an organization's admins when something needs a person (the overview shows the
//! same alerts): a webhook endpoint the platform turned off after it kept failing, and call
//! e-mails that could not be sent. Each alert is sent at most once per subject in its interval,
//! claimed in the store, so several instances, or a burst of failures, send it once.

use crate::Jobs;
use std::time::Duration;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::Role;

/// How often one endpoint's "turned off" alert may repeat (it is turned off once per time it
/// was turned back on, so this only bounds a flapping endpoint).
pub(crate) const ENDPOINT_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the "call e-mails are failing" alert may repeat for an organization.
pub(crate) const EMAIL_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// One alert.
pub(crate) struct Alert<'a> {
    /// What it is about, for the once-per-interval claim (`endpoint_disabled:ep_...`).
    pub key: String,
    /// How long until the same key may be sent again.
    pub interval: Duration,
    /// The subject line.
    pub subject: String,
    /// Paragraphs.
    pub lines: Vec<String>,
    /// The dashboard page to open (a path such as `/webhooks/ep_...`).
    pub path: &'a str,
}

/// The alert for a call e-mail that could not be sent (`why`, as the server said).
pub(crate) fn email_failed(why: &str) -> Alert<'static> {
    Alert {
        key: "call_emails_failed".into(),
        interval: EMAIL_INTERVAL,
        subject: "Call e-mails could not be sent".into(),
        lines: vec![
            format!("A call e-mail could not be sent: {why}."),
            "Check the notification recipients in the settings; the overview lists how many failed. (This message is sent at most every 6 hours.)".into(),
        ],
        path: "/settings",
    }
}

impl Jobs {
    /// Sends `alert` to the organization's admins, unless it was sent within its interval, no
    /// SMTP server is configured, or there is no admin. Failures are logged: an alert never
    /// fails the work that raised it.
    pub(crate) async fn alert_admins(&self, org: &OrgId, alert: Alert<'_>) {
        let inner = &self.inner;
        let Some(mailer) = inner.mailer.as_ref() else {
            return;
        };
        let now = inner.clock.now();
        let admins: Vec<String> = match inner.store.list_users(org).await {
            Ok(users) => users
                .into_iter()
                .filter(|u| u.role == Role::Admin)
                .map(|u| u.email)
                .collect(),
            Err(e) => {
                tracing::error!(org_id = %org, error = %e, "cannot list the admins to alert");
                return;
            }
        };
        if admins.is_empty() {
            tracing::warn!(org_id = %org, alert = %alert.key, "nobody to alert: the organization has no admin");
            return;
        }
        let interval = i64::try_from(alert.interval.as_millis()).unwrap_or(i64::MAX);
        match inner
            .store
            .claim_alert(org, &alert.key, now, interval)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(org_id = %org, error = %e, "cannot claim the alert");
                return;
            }
        }
        let link = inner
            .config
            .dashboard_url
            .as_ref()
            .map(|u| format!("{}{}", u.trim_end_matches('/'), alert.path));
        let mut text = alert.lines.join("\n\n");
        if let Some(l) = &link {
            text.push_str(&format!("\n\n{l}\n"));
        }
        let mut body = String::from(
            "<div style=\"font-family: sans-serif; color: #1a1a1a; background: #ffffff; padding: 16px\">",
        );
        for l in &alert.lines {
            body.push_str(&format!(
                "<p style=\"color: #1a1a1a\">{}</p>",
                crate::email::esc(l)
            ));
        }
        if let Some(l) = &link {
            let l = crate::email::esc(l);
            body.push_str(&format!(
                "<p><a href=\"{l}\" style=\"color: #0b57d0\">{l}</a></p>"
            ));
        }
        body.push_str("</div>");
        match mailer.send(&admins, &alert.subject, text, body).await {
            Ok(()) => {
                tracing::info!(org_id = %org, alert = %alert.key, recipients = admins.len(), "alert e-mailed to the admins")
            }
            Err((_, why)) => {
                tracing::warn!(org_id = %org, alert = %alert.key, error = %why, "the alert e-mail could not be sent")
            }
        }
    }
}
