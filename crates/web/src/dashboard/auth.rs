//! Sign-in, sign-out, the operator's organization switcher, and the sign-in rate limit.

use super::layout;
use super::{cookie, safe_next, same_secret, set_cookie, Dash, DashError, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_domain::auth::{hash_api_key, verify_password};
use switchboard_domain::ids::{random_token, OrgId};
use switchboard_domain::{Secret, Timestamp};

/// Counts failed sign-ins per e-mail and per client address in a fixed window, so password
/// guessing is slow whichever of the two an attacker varies. An address gets four times the
/// allowance of an e-mail (an office behind one NAT has several people). Per instance: with
/// several instances behind a balancer the allowance multiplies by their number.
#[derive(Debug)]
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// `max` failures per key in `window`.
    pub fn new(max: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when any key has used up its allowance.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some((n, since)) = map.get(k) {
                let elapsed = now.duration_since(*since);
                let max = if k.starts_with("ip:") {
                    self.max * 4
                } else {
                    self.max
                };
                if *n >= max && elapsed < self.window {
                    return Err(self.window - elapsed);
                }
            }
        }
        Ok(())
    }

    /// Counts a failure against every key.
    pub fn fail(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    /// Forgets a key's failures (after a successful sign-in).
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The client's address (through trusted proxies), when the server was started with
/// connection info.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let proxies = &st.dashboard.config.trusted_proxies;
        Ok(ClientAddr(peer.map(|p| proxies.client(p, &parts.headers))))
    }
}

/// A real argon2id hash of a random password, made once, for unknown e-mails.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            switchboard_domain::auth::hash_password(&switchboard_domain::auth::generate_password())
                .unwrap_or_default()
        })
        .clone()
}

/// `?next=` after sign-in.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// `joined` (after accepting an invitation) or `reset` (after a password reset).
    notice: Option<String>,
}

/// What the sign-in page says after an invitation or a reset.
fn notice_text(notice: Option<&str>) -> Option<&'static str> {
    match notice {
        Some("joined") => Some("Your login is ready. Sign in with your e-mail and new password."),
        Some("reset") => Some("Your password was changed. Sign in with the new one."),
        _ => None,
    }
}

fn login_form(
    csrf: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> maud::Markup {
    let body = html! {
        form.card.login method="post" action="/login" {
            p.product #product {
                img src="/assets/favicon.svg" alt="" width="28" height="28";
                span { "Switchboard" }
            }
            h1 { "Sign in" }
            input type="hidden" name="_csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            @if let Some(n) = notice { p.flash role="status" #login-notice { (n) } }
            @if let Some(e) = error { p.error-banner role="alert" id="login-error" { (e) } }
            label for="email" { "E-mail" }
            input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" required autocomplete="current-password";
            button.primary type="submit" { "Sign in" }
            p { a #forgot-link href="/forgot-password" { "Forgot your password?" } }
        }
    };
    layout::bare_markup("Sign in", body)
}

/// `GET /login`.
pub async fn login_page(
    State(st): State<AppState>,
    dash: Option<Dash>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if dash.is_some() {
        return Redirect::to(&next).into_response();
    }
    let csrf = random_token(32);
    (
        [(
            header::SET_COOKIE,
            set_cookie(
                st.dashboard.config.login_cookie(),
                &csrf,
                Some(3600),
                st.dashboard.config.secure_cookies,
            ),
        )],
        login_form(&csrf, &next, "", None, notice_text(q.notice.as_deref())),
    )
        .into_response()
}

/// `POST /login`.
pub async fn login(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let next = safe_next(form.get("next").map(String::as_str));
    let email = field("email").to_lowercase();
    let csrf = cookie(&headers, st.dashboard.config.login_cookie()).unwrap_or("");
    let again = |status: StatusCode, msg: &str| {
        // A fresh double-submit token with every re-rendered form.
        let token = random_token(32);
        (
            status,
            [(
                header::SET_COOKIE,
                set_cookie(
                    st.dashboard.config.login_cookie(),
                    &token,
                    Some(3600),
                    st.dashboard.config.secure_cookies,
                ),
            )],
            login_form(&token, &next, &email, Some(msg), None),
        )
            .into_response()
    };
    if csrf.is_empty() || !same_secret(csrf, form.get("_csrf").map(String::as_str).unwrap_or("")) {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The sign-in form expired. Please try again.",
        ));
    }
    let mut keys = vec![format!("email:{email}")];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    if let Err(wait) = st.dashboard.limiter.check(&keys) {
        tracing::warn!(client = ?ip, "sign-in rate limit reached");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins. Try again in {minutes} minute(s)."),
        ));
    }
    let password = Secret::new(form.get("password").cloned().unwrap_or_default());
    let found = if email.is_empty() {
        None
    } else {
        st.store.find_login(&email).await?
    };
    // argon2 is deliberately slow: off the async threads. An unknown e-mail is checked
    // against a dummy hash so the answer takes as long either way.
    let phc = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(dummy_hash);
    let pw = password.clone();
    // Bounded: a burst of sign-ins queues for a hashing slot instead of taking every core.
    let _slot = st.admission.password_slot().await;
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
        .await
        .map_err(|e| DashError::Internal(e.to_string()))?;
    let Some((user, _)) = found.filter(|_| ok) else {
        st.dashboard.limiter.fail(&keys);
        tracing::info!(client = ?ip, "failed dashboard sign-in");
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "The e-mail or password is wrong.",
        ));
    };
    st.dashboard.limiter.reset(&keys[0]);
    let token = random_token(43);
    let now = st.clock.now();
    let ttl = st.dashboard.config.session_ttl;
    st.store
        .create_dashboard_session(
            &user.id,
            &user.org_id,
            &hash_api_key(&token),
            &random_token(32),
            now,
            Timestamp::from_millis(now.millis() + ttl.as_millis() as i64),
        )
        .await?;
    tracing::info!(user_id = %user.id, org_id = %user.org_id, "dashboard sign-in");
    let secure = st.dashboard.config.secure_cookies;
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            st.dashboard.config.session_cookie(),
            &token,
            Some(ttl.as_secs()),
            secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(st.dashboard.config.login_cookie(), "", None, secure),
    );
    Ok(res)
}

/// `POST /logout`.
pub async fn logout(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::parse(&dash, &body)?;
    st.store.delete_dashboard_session(&dash.token_hash).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            st.dashboard.config.session_cookie(),
            "",
            None,
            st.dashboard.config.secure_cookies,
        ),
    );
    Ok(res)
}

/// `POST /switch-org` (operators): act in another organization.
pub async fn switch_org(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::parse(&dash, &body)?;
    if !dash.is_operator() {
        return Err(DashError::Forbidden);
    }
    let org = f
        .get("org_id")
        .and_then(OrgId::parse)
        .ok_or(DashError::NotFound)?;
    st.store
        .switch_dashboard_org(&dash.token_hash, &org)
        .await?;
    tracing::info!(user_id = %dash.session.user.id, org_id = %org, "operator switched organization");
    Ok(Redirect::to("/").into_response())
}

/// The organization switcher shown to operators in the header.
pub async fn switcher(st: &AppState, dash: &Dash) -> Result<Option<maud::Markup>, DashError> {
    if !dash.is_operator() {
        return Ok(None);
    }
    let orgs = st.store.list_orgs(Some(200), None).await?;
    Ok(Some(html! {
        form.switcher method="post" action="/switch-org" {
            input type="hidden" name="_csrf" value=(dash.session.csrf_token);
            label.sr for="org-switch" { "Organization" }
            select #org-switch name="org_id" onchange="this.form.submit()" {
                @for o in &orgs.data {
                    option value=(o.id) selected[o.id == dash.org] { (o.name) }
                }
            }
            noscript { button type="submit" { "Switch" } }
        }
    }))
}
