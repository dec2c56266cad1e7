//! The page shell, shared widgets and the embedded assets.

use super::{auth, Dash, DashError, FieldErrors};
use crate::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use maud::{html, Markup, DOCTYPE};
use switchboard_domain::Timestamp;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// `GET /assets/app.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
}

/// The icon browsers show in tabs and bookmarks.
const FAVICON: &str = include_str!("assets/favicon.svg");

/// `GET /assets/favicon.svg` and `GET /favicon.ico` (browsers ask for the latter by default;
/// they read an SVG served there as well).
pub async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
}

/// `GET /assets/app.js`.
pub async fn js() -> impl IntoResponse {
    script(JS)
}

/// "Call this agent": the page's script and the audio thread's worklet.
const CALL_JS: &str = include_str!("assets/call.js");
/// The assistant page's script.
const ASSISTANT_JS: &str = include_str!("assets/assistant.js");

/// `GET /assets/assistant.js`.
pub async fn assistant_js() -> impl IntoResponse {
    script(ASSISTANT_JS)
}
const CALL_WORKLET: &str = include_str!("assets/call-worklet.js");

/// `GET /assets/call.js`.
pub async fn call_js() -> impl IntoResponse {
    script(CALL_JS)
}

/// `GET /assets/call-worklet.js`.
pub async fn call_worklet() -> impl IntoResponse {
    script(CALL_WORKLET)
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Switchboard" }
            link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, text: &str) -> Markup {
    bare_markup(
        title,
        html! {
            div.card.notice {
                h1 { (title) }
                p { (text) }
                p { a href="/" { "Back to the dashboard" } }
            }
        },
    )
}

/// A page without navigation around `body`.
pub fn bare_markup(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main.narrow { (body) } }
        }
    }
}

const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/", "Overview"),
    ("assistant", "/assistant", "Assistant"),
    ("calls", "/calls", "Calls"),
    ("campaigns", "/campaigns", "Campaigns"),
    ("conversations", "/conversations", "Conversations"),
    ("appointments", "/appointments", "Appointments"),
    ("analytics", "/analytics", "Analytics"),
    ("agents", "/agents", "Agents"),
    ("numbers", "/phone-numbers", "Phone numbers"),
    ("contacts", "/contacts", "Contacts"),
    ("keys", "/api-keys", "API keys"),
    ("webhooks", "/webhooks", "Webhooks"),
    ("tools", "/tools", "Tools"),
    ("knowledge", "/knowledge", "Knowledge"),
    ("team", "/team", "Team"),
    ("settings", "/settings", "Settings"),
];

/// A full page: header with the organization (and the switcher for operators), navigation,
/// then `body`. `live` lists the event-type prefixes that refresh the `#live` region.
pub async fn render(
    st: &AppState,
    dash: &Dash,
    active: &str,
    title: &str,
    live: Option<&str>,
    body: Markup,
) -> Result<Markup, DashError> {
    let switcher = auth::switcher(st, dash).await?;
    // Times show in the organization's time zone (the script reads it), like every "day".
    let tz = st.store.get_settings(&dash.org).await?.timezone;
    let user = &dash.session.user;
    Ok(html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-csrf=(dash.session.csrf_token) data-tz=(tz) data-live=[live]
                data-live-since=[live.and(dash.seen)] {
                header.top {
                    a.brand href="/" { "Switchboard" }
                    @match switcher {
                        Some(s) => (s),
                        None => span.org #org-name { (dash.session.org_name) },
                    }
                    span.who { a #account-link href="/account" { (user.email) } " · " span #role { (user.role.as_str()) } }
                    form.inline method="post" action="/logout" {
                        input type="hidden" name="_csrf" value=(dash.session.csrf_token);
                        button.link type="submit" #sign-out { "Sign out" }
                    }
                }
                nav.side {
                    @for (key, href, label) in NAV.iter().filter(|(k, _, _)| *k != "team" || dash.can_manage()) {
                        a href=(href) class=[(*key == active).then_some("active")] { (label) }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    })
}

/// `<datalist id="timezones">` of every IANA time zone this binary knows, for time-zone inputs.
pub fn timezone_list() -> Markup {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut v: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            // Canonical region names; the legacy aliases (US/..., Etc/...) still validate.
            .filter(|n| {
                n == "UTC"
                    || [
                        "Africa/",
                        "America/",
                        "Antarctica/",
                        "Asia/",
                        "Atlantic/",
                        "Australia/",
                        "Europe/",
                        "Indian/",
                        "Pacific/",
                    ]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        v.sort();
        v
    });
    html! { datalist #timezones { @for n in NAMES.iter() { option value=(n) {} } } }
}

/// A time as `<time>`: UTC text that the script turns into the reader's local time.
pub fn time(ts: Timestamp) -> Markup {
    let iso = ts.to_rfc3339();
    let text = iso.get(..19).unwrap_or(&iso).replace('T', " ");
    html! { time datetime=(iso) { (text) " UTC" } }
}

/// An optional time.
pub fn time_opt(ts: Option<Timestamp>) -> Markup {
    match ts {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// Seconds as `m:ss` (or `h:mm:ss`).
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A coloured status label.
pub fn badge(text: &str) -> Markup {
    let class = match text {
        "in-progress" | "ringing" | "queued" | "initiated" | "active" | "pending" | "live" => {
            "badge live"
        }
        "completed" | "closed" | "succeeded" | "delivered" | "sent" | "success" | "enabled" => {
            "badge ok"
        }
        "failed" | "busy" | "no-answer" | "canceled" | "undelivered" | "disabled"
        | "unsuccessful" | "revoked" | "opted out" => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) { (text) } }
}

/// A labelled form field with its error beside it.
pub fn field(
    label: &str,
    name: &str,
    errors: &FieldErrors,
    hint: Option<&str>,
    input: Markup,
) -> Markup {
    let err = errors.get(name);
    html! {
        div class={ "field" @if err.is_some() { " has-error" } } data-field=(name) {
            label for=(name) { (label) }
            (input)
            @if let Some(h) = hint { small.hint { (h) } }
            @if let Some(e) = err { p.field-error id={ "error-" (name) } role="alert" { (e) } }
        }
    }
}

/// The hidden CSRF input.
pub fn csrf(dash: &Dash) -> Markup {
    html! { input type="hidden" name="_csrf" value=(dash.session.csrf_token); }
}

/// A one-button form posting to `action` (with an optional confirmation).
pub fn action_button(dash: &Dash, action: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf(dash))
            button.small type="submit" { (label) }
        }
    }
}

/// "Next page" link carrying the current filters.
pub fn pager(path: &str, params: &[(&str, String)], next: Option<&str>) -> Markup {
    let Some(cursor) = next else {
        return html! {};
    };
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.append_pair("cursor", cursor);
    html! { p.pager { a #next-page href={ (path) "?" (q.finish()) } { "Next page →" } } }
}

/// A notice at the top of a page (after a redirect).
pub fn flash(msg: Option<&str>) -> Markup {
    html! { @if let Some(m) = msg { p.flash role="status" { (m) } } }
}

/// Pretty JSON in a `<pre>`.
pub fn json_block(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}
