//! `/webhooks`: endpoints (secret shown once, rotate, disable, delete), their deliveries, re-send.

use super::layout::{self, badge, field, time, time_opt};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::entities::Cursor;
use switchboard_domain::ids::{DeliveryId, WebhookEndpointId};
use switchboard_domain::webhooks::{
    NewWebhookEndpoint, WebhookEndpoint, WebhookEndpointUpdate, EVENT_TYPES,
};
use switchboard_jobs::signing::generate_secret;
use switchboard_store::{DeliveryFilter, StoreError};

/// `?flash=`, `?cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    flash: Option<String>,
}

fn event_checks(selected: Option<&[String]>) -> Markup {
    html! {
        div.checks #event-types {
            @for t in EVENT_TYPES {
                label.check { input type="checkbox" name="event_types" value=(t) checked[selected.is_some_and(|s| s.iter().any(|x| x == t))]; " " code { (t) } }
            }
        }
    }
}

fn secret_notice(secret: &str) -> Markup {
    html! {
        div.card.secret #new-secret role="status" {
            p { "Signing secret — " strong { "shown this once" } ". Verify each delivery's " code { "webhook-signature" } " with it." }
            code.copy #new-secret-value { (secret) }
        }
    }
}

async fn list_page(
    st: &AppState,
    dash: &Dash,
    q: &ListQuery,
    secret: Option<&str>,
    draft: Option<&Fields>,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_webhook_endpoints(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let chosen = draft.map(|f| f.all("event_types"));
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if let Some(s) = secret { (secret_notice(s)) }
        div.table-wrap {
            table.list #endpoints {
                thead { tr { th { "URL" } th { "Events" } th { "Status" } th { "Created" } } }
                tbody {
                    @for e in &page.data {
                        tr {
                            td { a href={ "/webhooks/" (e.id) } { (e.url) } }
                            td { @match &e.event_types { Some(t) => (t.join(", ")), None => span.muted { "all" } } }
                            td { (badge(if e.enabled { "enabled" } else { "disabled" })) @if let Some(r) = &e.disabled_reason { " " small.muted { (r) } } }
                            td { (time(e.created_at)) }
                        }
                    }
                    @if page.data.is_empty() { tr { td colspan="4" .empty { "No endpoints yet." } } }
                }
            }
        }
        (layout::pager("/webhooks", &[], page.next_cursor.as_deref()))
        @if dash.can_manage() {
            form.card method="post" action="/webhooks" #new-endpoint novalidate {
                h2 { "Add an endpoint" }
                (layout::csrf(dash))
                (field("URL", "url", errors, Some("https://… — signed with Standard Webhooks."), html! {
                    input #url name="url" type="url" value=(draft.map(|f| f.raw("url")).unwrap_or("")) placeholder="https://example.com/hooks";
                }))
                (field("Description", "description", errors, None, html! {
                    input #description name="description" value=(draft.map(|f| f.raw("description")).unwrap_or(""));
                }))
                (field("Events", "event_types", errors, Some("None ticked: every event type."), event_checks(chosen.as_deref())))
                button.primary type="submit" { "Add endpoint" }
            }
        }
    };
    layout::render(st, dash, "webhooks", "Webhooks", None, body).await
}

/// `GET /webhooks`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    Ok(
        list_page(&st, &dash, &q, None, None, &FieldErrors::default())
            .await?
            .into_response(),
    )
}

fn types_of(f: &Fields) -> Option<Vec<String>> {
    let t = f.all("event_types");
    (!t.is_empty()).then_some(t)
}

/// `POST /webhooks`.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let input = NewWebhookEndpoint {
        url: f.raw("url").trim().to_owned(),
        event_types: types_of(&f),
        description: f.get("description").map(str::to_owned),
        enabled: Some(true),
    };
    let mut errors = FieldErrors::default();
    match input.validate(st.webhooks_allow_private) {
        Err(v) => errors.validation(&v),
        Ok(()) => {
            let secret = generate_secret();
            match st
                .store
                .create_webhook_endpoint(&dash.org, &input, &secret, st.clock.now())
                .await
            {
                Ok(ep) => {
                    tracing::info!(org_id = %dash.org, endpoint_id = %ep.id, "webhook endpoint created in the dashboard");
                    let page = list_page(
                        &st,
                        &dash,
                        &ListQuery::default(),
                        Some(&secret),
                        None,
                        &errors,
                    )
                    .await?;
                    return Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response());
                }
                Err(StoreError::Invalid(v)) => errors.validation(&v),
                Err(e) => return Err(e.into()),
            }
        }
    }
    let page = list_page(&st, &dash, &ListQuery::default(), None, Some(&f), &errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

async fn show_page(
    st: &AppState,
    dash: &Dash,
    ep: &WebhookEndpoint,
    q: &ListQuery,
    secret: Option<&str>,
    draft: Option<&Fields>,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let deliveries = st
        .store
        .list_webhook_deliveries(
            &dash.org,
            &DeliveryFilter {
                endpoint_id: Some(ep.id.clone()),
                ..DeliveryFilter::default()
            },
            Some(50),
            cursor.as_ref(),
        )
        .await?;
    let types = draft
        .map(types_of)
        .unwrap_or_else(|| ep.event_types.clone());
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if let Some(s) = secret { (secret_notice(s)) }
        form.card method="post" action={ "/webhooks/" (ep.id) } #endpoint-form novalidate {
            (layout::csrf(dash))
            fieldset disabled[!dash.can_manage()] {
                (field("URL", "url", errors, None, html! { input #url name="url" type="url" value=(draft.map(|f| f.raw("url").to_owned()).unwrap_or_else(|| ep.url.clone())); }))
                (field("Description", "description", errors, None, html! {
                    input #description name="description" value=(draft.map(|f| f.raw("description").to_owned()).unwrap_or_else(|| ep.description.clone().unwrap_or_default()));
                }))
                (field("Events", "event_types", errors, Some("None ticked: every event type."), event_checks(types.as_deref())))
                label.check { input type="checkbox" name="enabled" checked[draft.map(|f| f.checked("enabled")).unwrap_or(ep.enabled)]; " Enabled" }
                @if let Some(r) = &ep.disabled_reason { p.field-error { "Disabled: " (r) } }
                @if dash.can_manage() { p { button.primary type="submit" { "Save" } } }
            }
        }
        @if dash.can_manage() {
            div.actions {
                (layout::action_button(dash, &format!("/webhooks/{}/rotate", ep.id), "Rotate secret", Some("Make a new secret? The old one keeps signing for 24 hours.")))
                (layout::action_button(dash, &format!("/webhooks/{}/delete", ep.id), "Delete endpoint", Some("Delete this endpoint and its delivery history?")))
            }
        }
        h2 { "Deliveries" }
        div.table-wrap {
            table.list #deliveries {
                thead { tr { th { "Event" } th { "Seq" } th { "Status" } th { "Attempts" } th { "Last answer" } th { "Next attempt" } th { "Created" } th {} } }
                tbody {
                    @for d in &deliveries.data {
                        tr {
                            td { (d.event_type) }
                            td { (d.sequence) }
                            td { (badge(&d.status)) }
                            td { (d.attempts) }
                            td { @if let Some(c) = d.last_status_code { (c) " " } @if let Some(e) = &d.last_error { small.muted { (e) } } }
                            td { (time_opt(d.next_attempt_at)) }
                            td { (time(d.created_at)) }
                            td { @if dash.can_manage() { (layout::action_button(dash, &format!("/webhooks/deliveries/{}/resend", d.id), "Re-send", None)) } }
                        }
                    }
                    @if deliveries.data.is_empty() { tr { td colspan="8" .empty { "Nothing delivered yet." } } }
                }
            }
        }
        (layout::pager(&format!("/webhooks/{}", ep.id), &[], deliveries.next_cursor.as_deref()))
    };
    layout::render(st, dash, "webhooks", &ep.url, None, body).await
}

/// `GET /webhooks/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let id = WebhookEndpointId::parse(&id).ok_or(DashError::NotFound)?;
    let ep = st.store.get_webhook_endpoint(&dash.org, &id).await?;
    Ok(
        show_page(&st, &dash, &ep, &q, None, None, &FieldErrors::default())
            .await?
            .into_response(),
    )
}

/// `POST /webhooks/{id}`: URL, description, event types, enabled.
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = WebhookEndpointId::parse(&id).ok_or(DashError::NotFound)?;
    let ep = st.store.get_webhook_endpoint(&dash.org, &id).await?;
    let update = WebhookEndpointUpdate {
        url: Some(f.raw("url").trim().to_owned()),
        event_types: Some(types_of(&f)),
        description: Some(f.get("description").map(str::to_owned)),
        enabled: Some(f.checked("enabled")),
    };
    let mut errors = FieldErrors::default();
    match update.validate(st.webhooks_allow_private) {
        Err(v) => errors.validation(&v),
        Ok(()) => match st
            .store
            .update_webhook_endpoint(&dash.org, &id, &update, st.clock.now())
            .await
        {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/webhooks/{id}?flash=Saved")).into_response())
            }
            Err(StoreError::Invalid(v)) => errors.validation(&v),
            Err(e) => return Err(e.into()),
        },
    }
    let page = show_page(
        &st,
        &dash,
        &ep,
        &ListQuery::default(),
        None,
        Some(&f),
        &errors,
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /webhooks/{id}/rotate`: a new secret, shown once.
pub async fn rotate(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = WebhookEndpointId::parse(&id).ok_or(DashError::NotFound)?;
    let (ep, secret) =
        crate::api::webhooks::rotate_with_overlap(&st.store, &dash.org, &id, st.clock.now())
            .await?;
    let page = show_page(
        &st,
        &dash,
        &ep,
        &ListQuery::default(),
        Some(&secret),
        None,
        &FieldErrors::default(),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response())
}

/// `POST /webhooks/{id}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = WebhookEndpointId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.delete_webhook_endpoint(&dash.org, &id).await?;
    Ok(Redirect::to("/webhooks?flash=Endpoint+deleted").into_response())
}

/// `POST /webhooks/deliveries/{id}/resend`: the same `webhook-id`, sent again.
pub async fn resend(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = DeliveryId::parse(&id).ok_or(DashError::NotFound)?;
    let d = st
        .store
        .resend_webhook_delivery(&dash.org, &id, st.clock.now())
        .await?;
    tracing::info!(org_id = %dash.org, delivery_id = %id, "webhook delivery re-sent from the dashboard");
    Ok(Redirect::to(&format!(
        "/webhooks/{}?flash=Queued+to+send+again",
        d.endpoint_id
    ))
    .into_response())
}
