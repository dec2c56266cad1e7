//! The signed-in user's own login: who they are, and changing their password.

use super::layout::{self, field};
use super::links::{hash_new_password, new_password_errors};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use switchboard_domain::auth::verify_password;
use switchboard_domain::Secret;

/// `?flash=`.
#[derive(Debug, Deserialize)]
pub struct FlashQuery {
    flash: Option<String>,
}

async fn render(
    st: &AppState,
    dash: &Dash,
    flash: Option<&str>,
    errors: &FieldErrors,
) -> Result<maud::Markup, DashError> {
    let user = &dash.session.user;
    let body = html! {
        (layout::flash(flash))
        section.card #who {
            h2 { "Your login" }
            dl.kv {
                dt { "E-mail" } dd #account-email { (user.email) }
                dt { "Role" } dd { (user.role.as_str()) }
                dt { "Member since" } dd { (layout::time(user.created_at)) }
            }
        }
        form.card method="post" action="/account/password" #password-form novalidate {
            h2 { "Change your password" }
            p.muted { "Your other signed-in browsers are signed out when you change it." }
            (layout::csrf(dash))
            (field("Current password", "current", errors, None,
                html! { input #current type="password" name="current" required autocomplete="current-password"; }))
            (field("New password", "password", errors, Some("At least 12 characters."),
                html! { input #password type="password" name="password" required autocomplete="new-password" minlength="12"; }))
            (field("Repeat the new password", "confirm", errors, None,
                html! { input #confirm type="password" name="confirm" required autocomplete="new-password"; }))
            button.primary type="submit" { "Change password" }
        }
    };
    layout::render(st, dash, "account", "Account", None, body).await
}

/// `GET /account`.
pub async fn page(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<FlashQuery>,
) -> Result<Response, DashError> {
    Ok(
        render(&st, &dash, q.flash.as_deref(), &FieldErrors::default())
            .await?
            .into_response(),
    )
}

/// `POST /account/password`: needs the current password; every error is shown at once.
pub async fn change_password(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::parse(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let user = dash.session.user.clone();
    let current = Secret::new(f.raw("current").to_owned());
    let new = new_password_errors(&f.0, &mut errors);
    if !errors.0.contains_key("password") && new.expose() == current.expose() {
        errors.add("password", "is the same as the current password");
    }
    let stored = st
        .store
        .find_login(&user.email)
        .await?
        .map(|(_, hash)| hash)
        .ok_or(DashError::Forbidden)?;
    let ok = {
        let _slot = st.admission.password_slot().await;
        let pw = current.clone();
        tokio::task::spawn_blocking(move || verify_password(&pw, &stored))
            .await
            .map_err(|e| DashError::Internal(e.to_string()))?
    };
    if !ok {
        errors.add("current", "is not your current password");
    }
    if !errors.0.is_empty() {
        let page = render(&st, &dash, None, &errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let hash = hash_new_password(&st, new).await?;
    st.store
        .change_password(&user, &hash, &dash.token_hash, st.clock.now())
        .await?;
    tracing::info!(user_id = %user.id, "password changed");
    Ok(super::redirect_with_flash(
        "/account",
        "Password changed. Your other browsers were signed out.",
    ))
}
