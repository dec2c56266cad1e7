//! The pages a single-use link opens without a session: accepting an invitation and choosing
//! a new password after "Forgot your password?". Their forms are protected like the sign-in
//! form (a double-submit cookie), and the links themselves are only e-mailed with the
//! configured public URL (never one taken from the request's `Host`, which a stranger could
//! point at a server of theirs).

use super::auth::ClientAddr;
use super::{cookie, layout, same_secret, set_cookie, DashError};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use std::collections::HashMap;
use switchboard_domain::ids::random_token;
use switchboard_domain::team::{validate_password, LinkProblem, TokenKind};
use switchboard_domain::Secret;
use switchboard_store::{LinkLookupError, StoreError};

/// The base of links sent by e-mail: the configured public URL only.
pub(super) fn public_base(st: &AppState) -> Option<String> {
    st.twilio
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// The base of a link shown to the admin who made it: the public URL, or else the address
/// their own browser used.
pub(super) fn shown_base(st: &AppState, headers: &HeaderMap) -> String {
    public_base(st).unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if st.dashboard.config.secure_cookies {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}")
    })
}

/// Why a link was not e-mailed.
pub(super) fn why_not_mailed(st: &AppState) -> Option<&'static str> {
    if st.jobs.mailer().is_none() {
        Some("e-mail is not set up on this server (SWITCHBOARD_SMTP_URL)")
    } else if public_base(st).is_none() {
        Some("the server's public address is not set (SWITCHBOARD_PUBLIC_URL), so a link could not be addressed")
    } else {
        None
    }
}

/// Sends a short e-mail carrying one link.
pub(super) async fn mail_link(
    st: &AppState,
    to: &str,
    subject: &str,
    lines: &[&str],
    link: &str,
) -> Result<(), String> {
    let Some(mailer) = st.jobs.mailer() else {
        return Err("e-mail is not set up on this server".into());
    };
    let mut text = lines.join("\n\n");
    text.push_str(&format!("\n\n{link}\n"));
    let html = html! {
        div style="font-family: sans-serif; color: #1a1a1a; background: #ffffff; padding: 16px" {
            @for l in lines { p style="color: #1a1a1a" { (l) } }
            p { a href=(link) style="color: #0b57d0" { (link) } }
        }
    }
    .into_string();
    mailer
        .send(&[to.to_owned()], subject, text, html)
        .await
        .map_err(|(_, why)| why)
}

/// A fresh double-submit token and the cookie that carries it.
fn fresh_form(st: &AppState) -> (String, HeaderValue) {
    let token = random_token(32);
    let c = set_cookie(
        st.dashboard.config.login_cookie(),
        &token,
        Some(3600),
        st.dashboard.config.secure_cookies,
    );
    (token, c)
}

/// The posted form, after its double-submit check.
fn posted(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let expected = cookie(headers, st.dashboard.config.login_cookie()).unwrap_or("");
    let sent = form.get("_csrf").map(String::as_str).unwrap_or("");
    (!expected.is_empty() && same_secret(expected, sent)).then_some(form)
}

/// Hashes a new password off the async threads, one hashing slot at a time.
pub(super) async fn hash_new_password(st: &AppState, pw: Secret) -> Result<String, DashError> {
    let _slot = st.admission.password_slot().await;
    tokio::task::spawn_blocking(move || switchboard_domain::auth::hash_password(&pw))
        .await
        .map_err(|e| DashError::Internal(e.to_string()))?
        .map_err(DashError::Internal)
}

/// The errors of a new password and its confirmation, all at once.
pub(super) fn new_password_errors(
    form: &HashMap<String, String>,
    errors: &mut super::FieldErrors,
) -> Secret {
    let pw = Secret::new(form.get("password").cloned().unwrap_or_default());
    if let Err(e) = validate_password("password", &pw) {
        errors.validation(&e);
    }
    if form.get("confirm").map(String::as_str) != Some(pw.expose()) {
        errors.add("confirm", "does not match the password above");
    }
    pw
}

fn link_failed(problem: LinkProblem) -> Response {
    let status = match problem {
        LinkProblem::Unknown => StatusCode::NOT_FOUND,
        _ => StatusCode::GONE,
    };
    let body = html! {
        div.card.notice #link-problem data-code=(problem.code()) {
            h1 { "This link does not work" }
            p { (problem.message()) }
            p { a href="/forgot-password" { "Reset your password" } " · " a href="/login" { "Sign in" } }
        }
    };
    (status, layout::bare_markup("Link not valid", body)).into_response()
}

fn lookup_error(e: LinkLookupError) -> Result<Response, DashError> {
    match e {
        LinkLookupError::Link(p) => Ok(link_failed(p)),
        LinkLookupError::Store(e) => Err(e.into()),
    }
}

/// The link `token` opens for `kind`, or the page that says why it does not work.
async fn open_link(
    st: &AppState,
    token: &str,
    kind: TokenKind,
    now: switchboard_domain::Timestamp,
) -> Result<Result<switchboard_domain::team::UserToken, Response>, DashError> {
    let t = match st.store.user_token(token).await {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Err(link_failed(LinkProblem::Unknown))),
        Err(e) => return lookup_error(e).map(Err),
    };
    Ok(t.usable(kind, now).map(|()| t).map_err(link_failed))
}

/// The form that chooses a password (invitation or reset).
fn password_form(
    action: &str,
    heading: &str,
    intro: Markup,
    csrf: &str,
    errors: &super::FieldErrors,
) -> Markup {
    let body = html! {
        form.card.login method="post" action=(action) #password-form novalidate {
            h1 { (heading) }
            (intro)
            input type="hidden" name="_csrf" value=(csrf);
            @if let Some(e) = errors.get("_form") { p.error-banner role="alert" { (e) } }
            (layout::field("New password", "password", errors, Some("At least 12 characters; a few words make a good one."),
                html! { input #password type="password" name="password" required autocomplete="new-password" minlength="12"; }))
            (layout::field("Repeat it", "confirm", errors, None,
                html! { input #confirm type="password" name="confirm" required autocomplete="new-password"; }))
            button.primary type="submit" { "Save password" }
        }
    };
    layout::bare_markup(heading, body)
}

/// The password form as a page, with a fresh double-submit cookie.
fn password_page(
    st: &AppState,
    action: &str,
    heading: &str,
    intro: Markup,
    errors: &super::FieldErrors,
    status: StatusCode,
) -> Response {
    let (csrf, c) = fresh_form(st);
    with_cookie(
        status,
        c,
        password_form(action, heading, intro, &csrf, errors),
    )
}

/// The new password of a posted password form, with its errors (an expired form is one).
fn posted_password(
    st: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    errors: &mut super::FieldErrors,
) -> Secret {
    match posted(st, headers, body) {
        Some(f) => new_password_errors(&f, errors),
        None => {
            errors.add(
                "_form",
                "The form expired. Please enter the password again.",
            );
            Secret::new("")
        }
    }
}

fn with_cookie(status: StatusCode, c: HeaderValue, page: Markup) -> Response {
    (
        status,
        [
            (header::SET_COOKIE, c),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page,
    )
        .into_response()
}

// ---- invitations ----

async fn invite_intro(
    st: &AppState,
    email: &str,
    role: &str,
    org: &switchboard_domain::ids::OrgId,
) -> Result<Markup, DashError> {
    let org = st.store.get_org(org).await?;
    Ok(html! {
        p #invite-intro { "Join " strong { (org.name) } " as " strong { (role) } " with the login " strong #invite-email { (email) } ". Choose your password." }
    })
}

/// `GET /invite/{token}`.
pub async fn invite_page(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, DashError> {
    let t = match open_link(&st, &token, TokenKind::Invite, st.clock.now()).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let role = t.role.map(|r| r.as_str()).unwrap_or("member");
    let intro = invite_intro(&st, &t.email, role, &t.org_id).await?;
    Ok(password_page(
        &st,
        &format!("/invite/{token}"),
        "Accept the invitation",
        intro,
        &super::FieldErrors::default(),
        StatusCode::OK,
    ))
}

/// `POST /invite/{token}`: creates the login, then sends the person to sign in.
pub async fn accept(
    State(st): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    let now = st.clock.now();
    let t = match open_link(&st, &token, TokenKind::Invite, now).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let mut errors = super::FieldErrors::default();
    let pw = posted_password(&st, &headers, &body, &mut errors);
    if !errors.0.is_empty() {
        let role = t.role.map(|r| r.as_str()).unwrap_or("member");
        let intro = invite_intro(&st, &t.email, role, &t.org_id).await?;
        return Ok(password_page(
            &st,
            &format!("/invite/{token}"),
            "Accept the invitation",
            intro,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let hash = hash_new_password(&st, pw).await?;
    match st.store.accept_invite(&token, &hash, now).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, org_id = %user.org_id, "invitation accepted");
            Ok(Redirect::to("/login?notice=joined").into_response())
        }
        Err(LinkLookupError::Store(StoreError::Conflict(m))) => Err(DashError::BadRequest(m)),
        Err(e) => lookup_error(e),
    }
}

// ---- forgotten passwords ----

fn forgot_form(csrf: &str, email: &str, notice: Option<&str>, error: Option<&str>) -> Markup {
    let body = html! {
        form.card.login method="post" action="/forgot-password" #forgot-form {
            h1 { "Reset your password" }
            p.muted { "Enter your login's e-mail; we send you a link to choose a new password. It works once, for an hour." }
            input type="hidden" name="_csrf" value=(csrf);
            @if let Some(n) = notice { p.flash role="status" #forgot-notice { (n) } }
            @if let Some(e) = error { p.error-banner role="alert" { (e) } }
            label for="email" { "E-mail" }
            input #email type="email" name="email" value=(email) required autocomplete="username";
            button.primary type="submit" { "Send the link" }
            p { a href="/login" { "Back to sign in" } }
        }
    };
    layout::bare_markup("Reset your password", body)
}

/// `GET /forgot-password`.
pub async fn forgot_page(State(st): State<AppState>) -> Response {
    let (csrf, c) = fresh_form(&st);
    with_cookie(StatusCode::OK, c, forgot_form(&csrf, "", None, None))
}

/// `POST /forgot-password`: the answer is the same whether or not the e-mail has a login,
/// and the e-mail is sent after the answer, so its timing tells nothing either.
pub async fn forgot(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    let (csrf, c) = fresh_form(&st);
    let Some(form) = posted(&st, &headers, &body) else {
        let page = forgot_form(&csrf, "", None, Some("The form expired. Please try again."));
        return Ok(with_cookie(StatusCode::BAD_REQUEST, c, page));
    };
    let email = form
        .get("email")
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    if switchboard_domain::values::validate_email(&email).is_err() {
        let page = forgot_form(
            &csrf,
            &email,
            None,
            Some("Enter the e-mail address you sign in with."),
        );
        return Ok(with_cookie(StatusCode::UNPROCESSABLE_ENTITY, c, page));
    }
    // Each request counts against the sign-in allowance, so the form cannot be used to
    // flood someone's inbox.
    let mut keys = vec![format!("reset:{email}")];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    if let Err(wait) = st.dashboard.limiter.check(&keys) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let page = forgot_form(
            &csrf,
            &email,
            None,
            Some(&format!(
                "Too many requests. Try again in {minutes} minute(s)."
            )),
        );
        return Ok(with_cookie(StatusCode::TOO_MANY_REQUESTS, c, page));
    }
    st.dashboard.limiter.fail(&keys);
    if let Some(why) = why_not_mailed(&st) {
        let msg = format!(
            "This server cannot send the link: {why}. Ask an admin of your organization: they can run `switchboard user reset-password --email {email}`."
        );
        return Ok(with_cookie(
            StatusCode::OK,
            c,
            forgot_form(&csrf, &email, Some(&msg), None),
        ));
    }
    if let Some((user, secret)) = st
        .store
        .request_password_reset(&email, st.clock.now())
        .await?
    {
        let base = public_base(&st).unwrap_or_default();
        let link = format!("{base}/reset-password/{}", secret.expose());
        let st2 = st.clone();
        tokio::spawn(async move {
            let sent = mail_link(
                &st2,
                &user.email,
                "Reset your Switchboard password",
                &[
                    "Someone (we hope you) asked to reset the password of your Switchboard login.",
                    "Open this link to choose a new one. It works once, for an hour. If you did not ask, ignore this e-mail: your password stays as it is.",
                ],
                &link,
            )
            .await;
            match sent {
                Ok(()) => tracing::info!(user_id = %user.id, "password-reset e-mail sent"),
                Err(why) => {
                    tracing::warn!(user_id = %user.id, error = %why, "password-reset e-mail failed")
                }
            }
        });
    } else {
        tracing::info!("password reset asked for an e-mail without a login");
    }
    let msg = "If a login with that e-mail exists, a link to reset its password is on its way. It works once, for an hour.";
    Ok(with_cookie(
        StatusCode::OK,
        c,
        forgot_form(&csrf, &email, Some(msg), None),
    ))
}

/// `GET /reset-password/{token}`.
pub async fn reset_page(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, DashError> {
    let t = match open_link(&st, &token, TokenKind::Reset, st.clock.now()).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let intro = html! { p { "For the login " strong #reset-email { (t.email) } "." } };
    Ok(password_page(
        &st,
        &format!("/reset-password/{token}"),
        "Choose a new password",
        intro,
        &super::FieldErrors::default(),
        StatusCode::OK,
    ))
}

/// `POST /reset-password/{token}`: sets the password, ends every session of the login, and
/// sends the person to sign in.
pub async fn reset(
    State(st): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    let now = st.clock.now();
    let t = match open_link(&st, &token, TokenKind::Reset, now).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let mut errors = super::FieldErrors::default();
    let pw = posted_password(&st, &headers, &body, &mut errors);
    if !errors.0.is_empty() {
        let intro = html! { p { "For the login " strong #reset-email { (t.email) } "." } };
        return Ok(password_page(
            &st,
            &format!("/reset-password/{token}"),
            "Choose a new password",
            intro,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let hash = hash_new_password(&st, pw).await?;
    match st.store.reset_password(&token, &hash, now).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "password reset with a link");
            Ok(Redirect::to("/login?notice=reset").into_response())
        }
        Err(e) => lookup_error(e),
    }
}
