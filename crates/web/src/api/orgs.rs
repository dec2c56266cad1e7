//! Operator endpoints: organizations.

use super::{paging, PageQuery};
use crate::api::api_keys::{CreatedApiKey, NewApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OperatorAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::entities::{Organization, Page};
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::OrgStatus;

/// The body of `POST /api/v1/orgs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Display name.
    pub name: String,
}

/// Create an organization.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organizations", request_body = NewOrg,
    responses((status = 201, body = Organization), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn create_org(
    _: OperatorAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_org(&body.name).await?),
    ))
}

/// List organizations, newest first.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organizations", params(PageQuery),
    responses((status = 200, body = Page<Organization>), (status = 403, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn list_orgs(
    _: OperatorAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Organization>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(st.store.list_orgs(p.limit, p.cursor.as_ref()).await?))
}

/// Get an organization.
#[utoipa::path(get, path = "/api/v1/orgs/{id}", tag = "organizations", params(("id" = String, Path)),
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn get_org(
    _: OperatorAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    let id = path_id(&id, OrgId::parse)?;
    Ok(Json(st.store.get_org(&id).await?))
}

/// Disable an organization: its keys stop working and its numbers are refused.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/disable", tag = "organizations", params(("id" = String, Path)),
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn disable_org(
    _: OperatorAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    let id = path_id(&id, OrgId::parse)?;
    Ok(Json(
        st.store.set_org_status(&id, OrgStatus::Disabled).await?,
    ))
}

/// Enable a disabled organization.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/enable", tag = "organizations", params(("id" = String, Path)),
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn enable_org(
    _: OperatorAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    let id = path_id(&id, OrgId::parse)?;
    Ok(Json(st.store.set_org_status(&id, OrgStatus::Active).await?))
}

/// Create an API key for an organization (to hand to the business). The key is shown once.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/api-keys", tag = "organizations", params(("id" = String, Path)),
    request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 404, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn create_org_api_key(
    _: OperatorAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let id = path_id(&id, OrgId::parse)?;
    let (key, secret) = st.store.create_api_key(&id, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: secret,
            api_key: key,
        }),
    ))
}
