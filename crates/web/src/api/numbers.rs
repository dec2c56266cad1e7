//! Phone numbers.

use super::{paging, PageQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use switchboard_domain::entities::{NewPhoneNumber, OwnedNumber, Page, PhoneNumberPatch};
use switchboard_domain::ids::PhoneNumberId;

/// Register a phone number (E.164) for a channel, and check at once with the organization's
/// Twilio credentials that the number is in its account: the answer says `verified`, or
/// `pending_verification` with the reason. 409 when this organization already has the
/// number+channel, or another organization has proven it is theirs (the same answer either
/// way).
#[utoipa::path(post, path = "/api/v1/phone-numbers", tag = "phone-numbers", request_body = NewPhoneNumber,
    responses((status = 201, body = OwnedNumber), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_number(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewPhoneNumber>,
) -> Result<(StatusCode, Json<OwnedNumber>), ApiError> {
    let created = st.store.create_number(&auth.org, body).await?;
    let number = crate::numbers::verify(&st.store, &st.voice.twilio, &auth.org, &created.id)
        .await
        .unwrap_or(created);
    Ok((StatusCode::CREATED, Json(number)))
}

/// Check again, with the organization's Twilio credentials, that the number is in its
/// account; answers the number with its new verification state.
#[utoipa::path(post, path = "/api/v1/phone-numbers/{id}/verify", tag = "phone-numbers", params(("id" = String, Path)),
    responses((status = 200, body = OwnedNumber), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn verify_number(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OwnedNumber>, ApiError> {
    let id = path_id(&id, PhoneNumberId::parse)?;
    Ok(Json(
        crate::numbers::verify(&st.store, &st.voice.twilio, &auth.org, &id).await?,
    ))
}

/// List phone numbers, newest first.
#[utoipa::path(get, path = "/api/v1/phone-numbers", tag = "phone-numbers", params(PageQuery),
    responses((status = 200, body = Page<OwnedNumber>)), security(("api_key" = [])))]
pub async fn list_numbers(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<OwnedNumber>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_numbers(&auth.org, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get a phone number.
#[utoipa::path(get, path = "/api/v1/phone-numbers/{id}", tag = "phone-numbers", params(("id" = String, Path)),
    responses((status = 200, body = OwnedNumber), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_number(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OwnedNumber>, ApiError> {
    let id = path_id(&id, PhoneNumberId::parse)?;
    Ok(Json(st.store.get_number(&auth.org, &id).await?))
}

/// Change a number's agent or active flag.
#[utoipa::path(patch, path = "/api/v1/phone-numbers/{id}", tag = "phone-numbers", params(("id" = String, Path)), request_body = PhoneNumberPatch,
    responses((status = 200, body = OwnedNumber), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_number(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PhoneNumberPatch>,
) -> Result<Json<OwnedNumber>, ApiError> {
    let id = path_id(&id, PhoneNumberId::parse)?;
    Ok(Json(st.store.update_number(&auth.org, &id, body).await?))
}

/// Release a phone number.
#[utoipa::path(delete, path = "/api/v1/phone-numbers/{id}", tag = "phone-numbers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_number(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, PhoneNumberId::parse)?;
    st.store.delete_number(&auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
