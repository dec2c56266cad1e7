//! Contacts.

use super::paging;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::entities::{Contact, ContactPatch, NewContact, Page};
use switchboard_domain::ids::ContactId;

/// Query parameters of `GET /api/v1/contacts`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Matches a number prefix (`+4930`) or part of the name, case-insensitive.
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Create a contact (number unique within the organization).
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = NewContact,
    responses((status = 201, body = Contact), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_contact(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_contact(&auth.org, body).await?),
    ))
}

/// List or search contacts, newest first.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = Page<Contact>)), security(("api_key" = [])))]
pub async fn list_contacts(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::invalid_query(
            "q",
            "must be at most 200 characters",
        ));
    }
    Ok(Json(
        st.store
            .list_contacts(&auth.org, q.q.as_deref(), p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get a contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_contact(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let id = path_id(&id, ContactId::parse)?;
    Ok(Json(st.store.get_contact(&auth.org, &id).await?))
}

/// Change a contact.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)), request_body = ContactPatch,
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_contact(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ContactPatch>,
) -> Result<Json<Contact>, ApiError> {
    let id = path_id(&id, ContactId::parse)?;
    Ok(Json(st.store.update_contact(&auth.org, &id, body).await?))
}

/// Delete a contact.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_contact(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, ContactId::parse)?;
    st.store.delete_contact(&auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
