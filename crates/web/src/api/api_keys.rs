//! Organization API keys.

use super::{paging, PageQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::entities::{ApiKey, Page};
use switchboard_domain::ids::ApiKeyId;
use switchboard_domain::Secret;

/// The body of `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// A label, e.g. `crm-integration`.
    pub name: String,
}

/// A new key: its record plus the secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The record.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key to send as `Authorization: Bearer <key>`. Not retrievable later.
    #[serde(serialize_with = "Secret::serialize_exposed")]
    #[schema(value_type = String)]
    pub key: Secret,
}

/// Create an API key (shown once).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_api_key(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let (key, secret) = st.store.create_api_key(&auth.org, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: secret,
            api_key: key,
        }),
    ))
}

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(PageQuery),
    responses((status = 200, body = Page<ApiKey>)), security(("api_key" = [])))]
pub async fn list_api_keys(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_api_keys(&auth.org, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Revoke an API key; it stops authenticating at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn revoke_api_key(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let id = path_id(&id, ApiKeyId::parse)?;
    Ok(Json(st.store.revoke_api_key(&auth.org, &id).await?))
}
