//! The organization's settings page.

use super::layout::{self, field};
use super::manage::{form_error, ListQuery};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use switchboard_domain::settings::{SettingsUpdate, NOTIFY_CALLS};
use switchboard_domain::values::Carrier;
use switchboard_domain::Secret;

async fn settings_page(
    st: &AppState,
    dash: &Dash,
    draft: Option<&Fields>,
    errors: &FieldErrors,
    flash: Option<&str>,
    check: Option<&crate::twilio_setup::CredentialCheck>,
) -> Result<Markup, DashError> {
    let s = st.store.get_settings(&dash.org).await?;
    let v = |k: &str, stored: String| -> String {
        draft.map(|f| f.raw(k).to_owned()).unwrap_or(stored)
    };
    let body = html! {
        (layout::flash(flash))
        (super::setup::twilio_card(st, dash, check))
        form.card method="post" action="/settings" #settings-form novalidate {
            (layout::csrf(dash))
            @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was saved. Correct the fields marked below." } }
            fieldset disabled[!dash.can_manage()] {
                h2 { "Organization" }
                (field("Time zone", "timezone", errors, Some("What \"today\" and a day mean on the calendar and in day filters; an IANA name such as Europe/Paris."), html! {
                    input #timezone name="timezone" list="timezones" autocomplete="off" value=(v("timezone", s.timezone.clone()));
                    (layout::timezone_list())
                }))
                h2 { "Messaging sessions" }
                div.row {
                    (field("Session window (s)", "session_window_seconds", errors, Some("A new text conversation starts after this much silence."), html! {
                        input #session_window_seconds name="session_window_seconds" inputmode="numeric" value=(v("session_window_seconds", s.session_window_seconds.to_string()));
                    }))
                    (field("Business-initiated window (s)", "business_session_window_seconds", errors, None, html! {
                        input #business_session_window_seconds name="business_session_window_seconds" inputmode="numeric" value=(v("business_session_window_seconds", s.business_session_window_seconds.to_string()));
                    }))
                }
                (field("HELP reply", "help_text", errors, None, html! { input #help_text name="help_text" value=(v("help_text", s.help_text.clone().unwrap_or_default())); }))
                h2 { "Outbound calls" }
                (field("Simultaneous outbound calls", "max_concurrent_outbound_calls", errors, Some("Calls ringing or live at once; more wait their turn (1 to 1000)."), html! {
                    input #max_concurrent_outbound_calls name="max_concurrent_outbound_calls" inputmode="numeric" value=(v("max_concurrent_outbound_calls", s.max_concurrent_outbound_calls.to_string()));
                }))
                (field("Transfer destinations", "transfer_destinations", errors, Some("Where staff may transfer live calls besides each agent's own transfer number: one per line, an E.164 number, a SIP URI, or a number prefix ending in * (+1555*). Empty: only the agent's own."), html! {
                    textarea #transfer_destinations name="transfer_destinations" rows="3" spellcheck="false" { (v("transfer_destinations", s.transfer_destinations.join("\n"))) }
                }))
                (field("Keep call recordings (days)", "recording_retention_days", errors, Some("Older recordings are deleted here and at Twilio. Empty: keep them until deleted by hand."), html! {
                    input #recording_retention_days name="recording_retention_days" inputmode="numeric" value=(v("recording_retention_days", s.recording_retention_days.map(|d| d.to_string()).unwrap_or_default()));
                }))
                h2 { "Notifications" }
                (field("Call report e-mails", "notification_emails", errors, Some("One address per line."), html! {
                    textarea #notification_emails name="notification_emails" rows="3" { (v("notification_emails", s.notification_emails.join("\n"))) }
                }))
                (field("Send reports for", "notify_calls", errors, None, html! {
                    select #notify_calls name="notify_calls" {
                        @let cur = v("notify_calls", s.notify_calls.clone());
                        @for n in NOTIFY_CALLS { option value=(n) selected[cur == *n] { (n) " calls" } }
                    }
                }))
                (field("Carrier", "carrier", errors, Some("Who carries calls and texts. Switching needs the other carrier's credentials below."), html! {
                    select #carrier name="carrier" {
                        @let cur = v("carrier", s.carrier.as_str().to_owned());
                        option value="twilio" selected[cur == "twilio"] { "Twilio" }
                        option value="signalwire" selected[cur == "signalwire"] { "SignalWire" }
                    }
                }))
                h2 { "Twilio" }
                div.row {
                    (field("Account SID", "twilio_account_sid", errors, None, html! {
                        input #twilio_account_sid name="twilio_account_sid" value=(v("twilio_account_sid", s.twilio_account_sid.clone().unwrap_or_default())) placeholder="AC…";
                    }))
                    (field("Auth token", "twilio_auth_token", errors, Some(if s.twilio_auth_token_set { "Set. Write-only: leave empty to keep it." } else { "Not set." }), html! {
                        input #twilio_auth_token type="password" name="twilio_auth_token" autocomplete="off" value="";
                    }))
                }
                h2 { "SignalWire" }
                p.muted { "Its compatibility API: point the numbers' voice and messaging webhooks at the same /twilio/... URLs as for Twilio." }
                div.row {
                    (field("Space", "signalwire_space", errors, None, html! {
                        input #signalwire_space name="signalwire_space" value=(v("signalwire_space", s.signalwire_space.clone().unwrap_or_default())) placeholder="example.signalwire.com";
                    }))
                    (field("Project id", "signalwire_project_id", errors, None, html! {
                        input #signalwire_project_id name="signalwire_project_id" value=(v("signalwire_project_id", s.signalwire_project_id.clone().unwrap_or_default()));
                    }))
                }
                div.row {
                    (field("API token", "signalwire_api_token", errors, Some(if s.signalwire_api_token_set { "Set. Write-only: leave empty to keep it." } else { "Not set." }), html! {
                        input #signalwire_api_token type="password" name="signalwire_api_token" autocomplete="off" value="";
                    }))
                    (field("Signing key", "signalwire_signing_key", errors, Some(if s.signalwire_signing_key_set { "Set. Write-only: leave empty to keep it." } else { "Not set. It verifies SignalWire's webhooks." }), html! {
                        input #signalwire_signing_key type="password" name="signalwire_signing_key" autocomplete="off" value="";
                    }))
                }
                h2 { "Retell" }
                p.muted { "When Retell runs an agent's calls: the API key with the webhook badge verifies Retell's webhooks and proves each call's socket. Connect an agent by its Retell agent id on the agent's page." }
                (field("Retell API key", "retell_api_key", errors, Some(if s.retell_api_key_set { "Set. Write-only: leave empty to keep it; tick below to remove it." } else { "Not set." }), html! {
                    input #retell_api_key type="password" name="retell_api_key" autocomplete="off" value="";
                }))
                @if s.retell_api_key_set {
                    label { input type="checkbox" name="retell_api_key_remove" value="1"; " Remove the Retell API key" }
                }
                @if dash.can_manage() { button.primary type="submit" #save-settings { "Save settings" } }
            }
        }
    };
    layout::render(st, dash, "settings", "Settings", None, body).await
}

/// `GET /settings`.
pub async fn settings(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    Ok(settings_page(
        &st,
        &dash,
        None,
        &FieldErrors::default(),
        q.flash.as_deref(),
        None,
    )
    .await?
    .into_response())
}

/// `POST /settings`: all or nothing.
pub async fn save_settings(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let mut int = |k: &str| match f.raw(k).trim() {
        "" => None,
        t => t
            .parse::<i64>()
            .map_err(|_| errors.add(k, "must be a whole number"))
            .ok(),
    };
    let session = int("session_window_seconds");
    let business = int("business_session_window_seconds");
    let outbound = int("max_concurrent_outbound_calls");
    // Empty means "keep recordings": the field is always sent, so clearing it works.
    let retention = Some(int("recording_retention_days"));
    let current = st.store.get_settings(&dash.org).await?;
    let sid = f.get("twilio_account_sid").map(str::to_owned);
    // A page from before the field existed sends nothing: keep the stored carrier.
    let carrier = match f.get("carrier") {
        None => current.carrier,
        Some(c) => Carrier::parse(c).unwrap_or_else(|| {
            errors.add("carrier", "choose Twilio or SignalWire");
            current.carrier
        }),
    };
    // Only the chosen carrier's fields are sent; unchanged values are not re-sent, so the
    // write-only secrets are never required again.
    let (twilio, signalwire) = (carrier == Carrier::Twilio, carrier == Carrier::SignalWire);
    let changed = |k: &str, now: &Option<String>| {
        f.get(k)
            .map(str::to_owned)
            .filter(|v| Some(v) != now.as_ref())
    };
    let update = SettingsUpdate {
        carrier: Some(carrier).filter(|c| *c != current.carrier),
        twilio_account_sid: sid
            .filter(|s| Some(s) != current.twilio_account_sid.as_ref())
            .filter(|_| twilio),
        twilio_auth_token: f
            .get("twilio_auth_token")
            .map(Secret::new)
            .filter(|_| twilio),
        signalwire_space: changed("signalwire_space", &current.signalwire_space)
            .filter(|_| signalwire),
        signalwire_project_id: changed("signalwire_project_id", &current.signalwire_project_id)
            .filter(|_| signalwire),
        signalwire_api_token: f
            .get("signalwire_api_token")
            .map(Secret::new)
            .filter(|_| signalwire),
        signalwire_signing_key: f
            .get("signalwire_signing_key")
            .map(Secret::new)
            .filter(|_| signalwire),
        retell_api_key: match (f.get("retell_api_key"), f.get("retell_api_key_remove")) {
            (Some(k), _) => Some(Some(Secret::new(k))),
            (None, Some(_)) => Some(None),
            (None, None) => None,
        },
        session_window_seconds: session,
        business_session_window_seconds: business,
        notification_emails: Some(
            f.raw("notification_emails")
                .split([',', '\n'])
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        help_text: Some(f.get("help_text").map(str::to_owned)),
        notify_calls: f.get("notify_calls").map(str::to_owned),
        max_concurrent_outbound_calls: outbound,
        recording_retention_days: retention,
        transfer_destinations: Some(
            f.raw("transfer_destinations")
                .split(['\n', ','])
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        // A page from before the field existed sends nothing: keep the stored zone.
        timezone: f.get("timezone").map(str::to_owned),
    };
    // Every invalid field at once, beside its input (not only the first the API would name).
    for v in update.validate_all() {
        errors.validation(&v);
    }
    if errors.is_empty() {
        if let Err(v) = crate::retell::check_key(&st, &update).await {
            errors.validation(&v);
        }
    }
    if errors.is_empty() {
        let credentials_changed = update.changes_carrier_account();
        match st.store.update_settings(&dash.org, update).await {
            Ok(_) => {
                if credentials_changed {
                    crate::numbers::spawn_verify_org(
                        st.store.clone(),
                        st.voice.twilio.clone(),
                        dash.org.clone(),
                    );
                }
                return Ok(Redirect::to("/settings?flash=Settings+saved").into_response());
            }
            Err(e) => form_error(e, &mut errors, "twilio_account_sid")?,
        }
    }
    let page = settings_page(&st, &dash, Some(&f), &errors, None, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The settings page showing Twilio's answer to "Check credentials".
pub(super) async fn page_with_check(
    st: &AppState,
    dash: &Dash,
    check: &crate::twilio_setup::CredentialCheck,
) -> Result<Markup, DashError> {
    settings_page(st, dash, None, &FieldErrors::default(), None, Some(check)).await
}
