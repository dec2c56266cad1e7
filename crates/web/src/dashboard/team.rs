//! The team page (admins): who can sign in and with which role, invitations (e-mailed, or
//! shown for copying when the server cannot send e-mail), role changes, removals, and the
//! audit trail of all of it.

use super::layout::{self, badge, field, time};
use super::links::{mail_link, public_base, shown_base, why_not_mailed};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::ids::UserId;
use switchboard_domain::team::Actor;
use switchboard_domain::values::Role;
use switchboard_store::StoreError;

/// `?flash=`.
#[derive(Debug, Default, Deserialize)]
pub struct TeamQuery {
    flash: Option<String>,
}

/// A new invitation's link, and what happened to its e-mail.
struct NewInvite {
    email: String,
    link: String,
    mailed: Result<(), String>,
}

fn actor(dash: &Dash) -> Actor {
    Actor::user(&dash.session.user.id, &dash.session.user.email)
}

/// The roles this user may hand out.
fn grantable(dash: &Dash) -> &'static [Role] {
    if dash.is_operator() {
        &[Role::Member, Role::Admin, Role::Operator]
    } else {
        &[Role::Member, Role::Admin]
    }
}

fn role_select(id: &str, name: &str, current: Role, roles: &[Role]) -> Markup {
    html! {
        select id=(id) name=(name) {
            @for r in roles { option value=(r.as_str()) selected[*r == current] { (r.as_str()) } }
        }
    }
}

async fn render(
    st: &AppState,
    dash: &Dash,
    flash: Option<&str>,
    invite: Option<&NewInvite>,
    errors: &FieldErrors,
    entered: (&str, Role),
) -> Result<Markup, DashError> {
    let users = st.store.list_users(&dash.org).await?;
    let invites = st.store.open_invites(&dash.org).await?;
    let audit = st.store.audit_log(&dash.org, 50).await?;
    let now = st.clock.now();
    let me = &dash.session.user.id;
    let roles = grantable(dash);
    let body = html! {
        (layout::flash(flash))
        @if let Some(inv) = invite {
            div.card.secret #new-invite role="status" {
                @match &inv.mailed {
                    Ok(()) => p { "An invitation was e-mailed to " strong { (inv.email) } ". You can also pass the link on yourself:" },
                    Err(why) => p #invite-not-mailed { "The invitation for " strong { (inv.email) } " was not e-mailed: " (why) ". Copy the link and send it yourself:" },
                }
                code.copy #invite-link { (inv.link) }
                p.muted { "It works once, for 7 days. " strong { "It is shown this once." } }
            }
        }
        section.card #users-card {
            h2 { "People" }
            div.table-wrap {
                table.list #users {
                    thead { tr { th { "E-mail" } th { "Role" } th { "Since" } th {} } }
                    tbody {
                        @for u in &users {
                            @let locked = &u.id == me || (u.role == Role::Operator && !dash.is_operator());
                            tr data-email=(u.email) {
                                td { (u.email) @if &u.id == me { " " span.muted { "(you)" } } }
                                td {
                                    @if locked { (u.role.as_str()) } @else {
                                        form.inline method="post" action={ "/team/users/" (u.id) "/role" } {
                                            (layout::csrf(dash))
                                            label.sr for={ "role-" (u.id) } { "Role of " (u.email) }
                                            (role_select(&format!("role-{}", u.id), "role", u.role, roles))
                                            button.small type="submit" { "Change" }
                                        }
                                    }
                                }
                                td { (time(u.created_at)) }
                                td { @if !locked {
                                    (layout::action_button(dash, &format!("/team/users/{}/remove", u.id), "Remove", Some("Remove this person? They are signed out at once and can no longer sign in.")))
                                } }
                            }
                        }
                    }
                }
            }
        }
        section.card #invites-card {
            h2 { "Invitations" }
            div.table-wrap {
                table.list #invites {
                    thead { tr { th { "E-mail" } th { "Role" } th { "Sent" } th { "Expires" } th {} } }
                    tbody {
                        @for i in &invites {
                            tr data-email=(i.email) {
                                td { (i.email) }
                                td { (i.role.map(Role::as_str).unwrap_or("member")) }
                                td { (time(i.created_at)) }
                                td { @if now >= i.expires_at { (badge("expired")) } @else { (time(i.expires_at)) } }
                                td { (layout::action_button(dash, &format!("/team/invites/{}/revoke", i.id), "Withdraw", Some("Withdraw this invitation? Its link stops working."))) }
                            }
                        }
                        @if invites.is_empty() { tr { td colspan="5" .empty { "No open invitations." } } }
                    }
                }
            }
            form method="post" action="/team/invite" #invite-form novalidate {
                h3 { "Invite someone" }
                (layout::csrf(dash))
                (field("E-mail", "email", errors, None, html! { input #invite-email type="email" name="email" value=(entered.0) required autocomplete="off"; }))
                (field("Role", "role", errors, Some("Admins change settings and manage the team; members see everything and change nothing."),
                    role_select("invite-role", "role", entered.1, roles)))
                button.primary type="submit" { "Send invitation" }
            }
        }
        section.card #audit-card {
            h2 { "Audit trail" }
            div.table-wrap {
                table.list #audit {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Whom" } th { "Details" } } }
                    tbody {
                        @for a in &audit {
                            tr data-action=(a.action) {
                                td { (time(a.created_at)) } td { (a.actor) } td { code { (a.action) } } td { (a.target) }
                                td { (a.detail.as_deref().unwrap_or("")) }
                            }
                        }
                        @if audit.is_empty() { tr { td colspan="5" .empty { "Nothing yet." } } }
                    }
                }
            }
        }
    };
    layout::render(st, dash, "team", "Team", None, body).await
}

/// `GET /team` (admins).
pub async fn page(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<TeamQuery>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let page = render(
        &st,
        &dash,
        q.flash.as_deref(),
        None,
        &FieldErrors::default(),
        ("", Role::Member),
    )
    .await?;
    Ok(page.into_response())
}

fn parse_role(dash: &Dash, f: &Fields, errors: &mut FieldErrors) -> Role {
    match f.get("role").and_then(Role::parse) {
        Some(r) if grantable(dash).contains(&r) => r,
        _ => {
            let names: Vec<&str> = grantable(dash).iter().map(|r| r.as_str()).collect();
            errors.add("role", format!("must be one of: {}", names.join(", ")));
            Role::Member
        }
    }
}

/// `POST /team/invite`: the link is e-mailed when the server can, and shown either way.
pub async fn invite(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let email = f.raw("email").trim().to_lowercase();
    let role = parse_role(&dash, &f, &mut errors);
    if let Err(m) = switchboard_domain::values::validate_email(&email) {
        errors.add("email", m);
    }
    let created = if errors.0.is_empty() {
        match st
            .store
            .create_invite(&dash.org, &email, role, &actor(&dash), st.clock.now())
            .await
        {
            Ok(made) => Some(made),
            Err(e) => {
                super::manage::form_error(e, &mut errors, "email")?;
                None
            }
        }
    } else {
        None
    };
    let Some((token, secret)) = created else {
        let page = render(&st, &dash, None, None, &errors, (&email, role)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let path = format!("/invite/{}", secret.expose());
    let mailed = match why_not_mailed(&st) {
        Some(why) => Err(why.to_owned()),
        None => {
            let link = format!("{}{path}", public_base(&st).unwrap_or_default());
            let org = dash.session.org_name.clone();
            let inviter = dash.session.user.email.clone();
            let intro = format!(
                "{inviter} invited you to {org} on Switchboard, as {}.",
                role.as_str()
            );
            mail_link(
                &st,
                &token.email,
                &format!("You are invited to {org} on Switchboard"),
                &[
                    &intro,
                    "Open this link to choose your password. It works once, for 7 days.",
                ],
                &link,
            )
            .await
        }
    };
    match &mailed {
        Ok(()) => tracing::info!(org_id = %dash.org, invite = %token.id, "invitation e-mailed"),
        Err(why) => {
            tracing::warn!(org_id = %dash.org, invite = %token.id, reason = %why, "invitation not e-mailed")
        }
    }
    let inv = NewInvite {
        email: token.email.clone(),
        link: format!("{}{path}", shown_base(&st, &headers)),
        mailed,
    };
    let page = render(
        &st,
        &dash,
        None,
        Some(&inv),
        &FieldErrors::default(),
        ("", Role::Member),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response())
}

/// `POST /team/invites/{id}/revoke`.
pub async fn revoke_invite(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    if !id.starts_with("tok_") || id.len() > 40 {
        return Err(DashError::NotFound);
    }
    let t = st
        .store
        .revoke_invite(&dash.org, &id, &actor(&dash), st.clock.now())
        .await?;
    Ok(super::redirect_with_flash(
        "/team",
        &format!("The invitation for {} was withdrawn", t.email),
    ))
}

/// The user a team action is about: not the actor themself, and an operator only for an
/// operator.
async fn target(st: &AppState, dash: &Dash, id: &str) -> Result<UserId, DashError> {
    let id = UserId::parse(id).ok_or(DashError::NotFound)?;
    if id == dash.session.user.id {
        return Err(DashError::BadRequest(
            "you cannot change your own role or remove yourself; ask another admin".into(),
        ));
    }
    let users = st.store.list_users(&dash.org).await?;
    let user = users
        .iter()
        .find(|u| u.id == id)
        .ok_or(DashError::NotFound)?;
    if user.role == Role::Operator && !dash.is_operator() {
        return Err(DashError::Forbidden);
    }
    Ok(id)
}

fn refused(e: StoreError, path: &str) -> Result<Response, DashError> {
    match e {
        StoreError::Conflict(m) => Ok(super::redirect_with_flash(path, &m)),
        other => Err(other.into()),
    }
}

/// `POST /team/users/{id}/role`.
pub async fn set_role(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = target(&st, &dash, &id).await?;
    let mut errors = FieldErrors::default();
    let role = parse_role(&dash, &f, &mut errors);
    if let Some(m) = errors.get("role") {
        return Err(DashError::BadRequest(format!("role {m}")));
    }
    match st
        .store
        .set_user_role(&dash.org, &id, role, &actor(&dash), st.clock.now())
        .await
    {
        Ok(u) => Ok(super::redirect_with_flash(
            "/team",
            &format!("{} is now {}", u.email, role.as_str()),
        )),
        Err(e) => refused(e, "/team"),
    }
}

/// `POST /team/users/{id}/remove`.
pub async fn remove(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = target(&st, &dash, &id).await?;
    match st
        .store
        .remove_user(&dash.org, &id, &actor(&dash), st.clock.now())
        .await
    {
        Ok(u) => Ok(super::redirect_with_flash(
            "/team",
            &format!("{} was removed", u.email),
        )),
        Err(e) => refused(e, "/team"),
    }
}
