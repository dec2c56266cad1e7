//! Organization settings.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OrgAuth};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use switchboard_domain::settings::{OrgSettings, SettingsUpdate};

/// The organization's settings (the Twilio auth token is never returned).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = OrgSettings)), security(("api_key" = [])))]
pub async fn get_settings(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<OrgSettings>, ApiError> {
    Ok(Json(st.store.get_settings(&auth.org).await?))
}

/// Change settings; absent fields keep their value. All fields are validated before
/// anything is saved.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", request_body = SettingsUpdate,
    responses((status = 200, body = OrgSettings), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn put_settings(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<SettingsUpdate>,
) -> Result<Json<OrgSettings>, ApiError> {
    let credentials_changed = body.changes_carrier_account();
    crate::retell::check_key(&st, &body).await?;
    let saved = st.store.update_settings(&auth.org, body).await?;
    if credentials_changed {
        // Every number is proven again with the new credentials, in the background.
        crate::numbers::spawn_verify_org(st.store.clone(), st.voice.twilio.clone(), auth.org);
    }
    Ok(Json(saved))
}
