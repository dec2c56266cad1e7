//! Webhook endpoints, their deliveries and attempts, the event log, analysis re-runs and
//! e-mail notifications.

use super::paging;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::entities::Page;
use switchboard_domain::ids::{CallId, DeliveryId, WebhookEndpointId};
use switchboard_domain::webhooks::{
    EmailNotification, NewWebhookEndpoint, OutboxEvent, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookEndpointUpdate, EVENT_TYPES,
};
use switchboard_domain::Secret;
use switchboard_domain::Timestamp;
use switchboard_jobs::signing::generate_secret;
use switchboard_store::DeliveryFilter;

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// An endpoint with its signing secret: answered once, at creation and rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_...`: verify deliveries with it (Standard Webhooks). Not shown again.
    #[serde(serialize_with = "Secret::serialize_exposed")]
    #[schema(value_type = String)]
    pub secret: Secret,
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: WebhookDelivery,
    /// Every attempt, oldest first.
    pub history: Vec<WebhookAttempt>,
}

/// The document every delivery POSTs (also `payload` in `GET /api/v1/events`), signed per
/// Standard Webhooks with the headers `webhook-id` (the event id, the same on every retry),
/// `webhook-timestamp` and `webhook-signature`.
///
/// `data` by type (version 1):
/// - `call.started`, `call.ended`: `{"call": Call}`; `call.ended` carries the final
///   `status`, `duration_seconds`, `end_reason` and `disposition`.
/// - `call.analyzed`: `{"call_id", "conversation_id", "analysis"}`, where `analysis` is
///   `{"status": "completed", "summary", "intent", "outcome": {"success", "reason"},
///   "sentiment", "fields": {...}, "model", "analyzed_at"}` or `{"status": "failed",
///   "error", "analyzed_at"}`. Always after the call's `call.ended`.
/// - `call.handoff`: `{"call": Call, "handoff"}`.
/// - `call.transfer_started`, `call.transfer_answered`, `call.transfer_completed`,
///   `call.transfer_failed`: `{"call": Call, "transfer": CallTransfer}`.
/// - `message.received`, `message.sent`, `message.failed`: `{"conversation_id", "message": Message}`.
/// - `conversation.started`, `conversation.closed`: `{"conversation": Conversation}`.
/// - `conversation.analyzed`: `{"conversation_id", "analysis"}` (text conversations).
/// - `tool.executed`: `{"tool_invocation": ToolInvocation}`.
/// - `webhook_endpoint.disabled`: `{"endpoint": WebhookEndpoint, "reason"}`.
///
/// Events about one call or conversation reach an endpoint in `sequence` order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventEnvelope {
    /// Event id (`evt_...`), also the `webhook-id` header: deduplicate on it.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    #[schema(example = "call.ended")]
    pub kind: String,
    /// Envelope version, 1.
    pub version: i64,
    /// The organization.
    pub org_id: String,
    /// Per-organization sequence number, increasing in commit order.
    pub sequence: i64,
    /// When the change happened.
    pub timestamp: Timestamp,
    /// The type's data, see above.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Create an endpoint; the answer carries its signing secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhooks", request_body = NewWebhookEndpoint,
    responses((status = 201, body = EndpointWithSecret), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_endpoint(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewWebhookEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    body.validate(st.webhooks_allow_private)?;
    let secret = generate_secret();
    let endpoint = st
        .store
        .create_webhook_endpoint(&auth.org, &body, &secret, Timestamp::now())
        .await?;
    tracing::info!(org_id = %auth.org, endpoint_id = %endpoint.id, "webhook endpoint created");
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint,
            secret: Secret::new(secret),
        }),
    ))
}

/// List endpoints, newest first.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhooks", params(super::PageQuery),
    responses((status = 200, body = Page<WebhookEndpoint>)), security(("api_key" = [])))]
pub async fn list_endpoints(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<Page<WebhookEndpoint>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_webhook_endpoints(&auth.org, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get an endpoint.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_endpoint(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let id = path_id(&id, WebhookEndpointId::parse)?;
    Ok(Json(st.store.get_webhook_endpoint(&auth.org, &id).await?))
}

/// Change an endpoint's URL, event types, description or enabled flag. Enabling clears the
/// platform's disabled reason.
#[utoipa::path(patch, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = WebhookEndpointUpdate,
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_endpoint(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookEndpointUpdate>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let id = path_id(&id, WebhookEndpointId::parse)?;
    body.validate(st.webhooks_allow_private)?;
    Ok(Json(
        st.store
            .update_webhook_endpoint(&auth.org, &id, &body, Timestamp::now())
            .await?,
    ))
}

/// Delete an endpoint with its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_endpoint(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, WebhookEndpointId::parse)?;
    st.store.delete_webhook_endpoint(&auth.org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret. For 24 hours deliveries carry a signature with the old secret
/// too, so receivers can switch without rejecting anything.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate_secret(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let id = path_id(&id, WebhookEndpointId::parse)?;
    let (endpoint, secret) =
        rotate_with_overlap(&st.store, &auth.org, &id, Timestamp::now()).await?;
    Ok(Json(EndpointWithSecret {
        endpoint,
        secret: Secret::new(secret),
    }))
}

/// Gives an endpoint a new secret while the old one keeps signing for the overlap (the API
/// and the dashboard both rotate through here). Returns the endpoint and the new secret.
pub(crate) async fn rotate_with_overlap(
    store: &switchboard_store::Store,
    org: &switchboard_domain::ids::OrgId,
    id: &WebhookEndpointId,
    now: Timestamp,
) -> Result<(WebhookEndpoint, String), switchboard_store::StoreError> {
    let secret = generate_secret();
    let endpoint = store
        .rotate_webhook_secret(
            org,
            id,
            &secret,
            Timestamp::from_millis(now.millis() + ROTATION_OVERLAP_MS),
            now,
        )
        .await?;
    tracing::info!(org_id = %org, endpoint_id = %id, "webhook secret rotated");
    Ok((endpoint, secret))
}

/// Query parameters of `GET /api/v1/webhook-deliveries`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// One endpoint.
    pub endpoint_id: Option<String>,
    /// One call's or conversation's deliveries: its conversation id.
    pub subject_id: Option<String>,
    /// `pending`, `delivering`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// List deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhook-deliveries", tag = "webhooks", params(DeliveryQuery),
    responses((status = 200, body = Page<WebhookDelivery>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_deliveries(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Page<WebhookDelivery>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let endpoint_id = match q.endpoint_id.as_deref() {
        None => None,
        Some(e) => Some(WebhookEndpointId::parse(e).ok_or_else(|| {
            ApiError::invalid_query("endpoint_id", "is not a webhook endpoint id")
        })?),
    };
    if let Some(s) = &q.status {
        if !["pending", "delivering", "succeeded", "failed"].contains(&s.as_str()) {
            return Err(ApiError::invalid_query(
                "status",
                "must be pending, delivering, succeeded or failed",
            ));
        }
    }
    let filter = DeliveryFilter {
        endpoint_id,
        subject_id: q.subject_id,
        status: q.status,
    };
    Ok(Json(
        st.store
            .list_webhook_deliveries(&auth.org, &filter, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// Get a delivery with every attempt (time, status, latency, response excerpt, error).
#[utoipa::path(get, path = "/api/v1/webhook-deliveries/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_delivery(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let id = path_id(&id, DeliveryId::parse)?;
    let (delivery, attempts) = st.store.get_webhook_delivery(&auth.org, &id).await?;
    Ok(Json(DeliveryDetail {
        delivery,
        history: attempts,
    }))
}

/// Send a delivery again now, with the same `webhook-id` (409 while an attempt is running).
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/resend", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = WebhookDelivery), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn resend_delivery(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookDelivery>), ApiError> {
    let id = path_id(&id, DeliveryId::parse)?;
    let d = st
        .store
        .resend_webhook_delivery(&auth.org, &id, st.clock.now())
        .await?;
    tracing::info!(org_id = %auth.org, delivery_id = %id, "webhook delivery re-sent by hand");
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// Query parameters of `GET /api/v1/events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events with a greater `sequence` (pass the last one you saw).
    pub after: Option<i64>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// A page of events in sequence order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// The events.
    pub data: Vec<OutboxEvent>,
    /// Pass as `after` for the next page; `null` when there are none.
    pub next_after: Option<i64>,
}

/// The organization's event log in sequence order (what webhooks deliver).
#[utoipa::path(get, path = "/api/v1/events", tag = "webhooks", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_events(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_query(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let data = st.store.list_events(&auth.org, q.after, limit).await?;
    let next_after = data.last().map(|e| e.sequence);
    Ok(Json(EventPage { data, next_after }))
}

/// Event types a webhook endpoint can subscribe to.
#[utoipa::path(get, path = "/api/v1/event-types", tag = "webhooks",
    responses((status = 200, body = Vec<String>)), security(("api_key" = [])))]
pub async fn event_types(_auth: OrgAuth) -> Json<Vec<&'static str>> {
    Json(EVENT_TYPES.to_vec())
}

/// Analyse a finished call again (e.g. after the agent's fields changed); a new
/// `call.analyzed` follows. 409 while the call is going.
#[utoipa::path(post, path = "/api/v1/calls/{id}/analyze", tag = "calls", params(("id" = String, Path)),
    responses((status = 202, description = "Queued"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn analyze_call(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = path_id(&id, CallId::parse)?;
    st.store
        .request_call_analysis(&auth.org, &id, st.clock.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "queued", "call_id": id})),
    ))
}

/// Query parameters of `GET /api/v1/email-notifications`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmailQuery {
    /// One call's e-mails.
    pub call_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// E-mail notifications and their outcome (sent, skipped, failed with the reason), newest first.
#[utoipa::path(get, path = "/api/v1/email-notifications", tag = "notifications", params(EmailQuery),
    responses((status = 200, body = Page<EmailNotification>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_emails(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<EmailQuery>,
) -> Result<Json<Page<EmailNotification>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let call = match q.call_id.as_deref() {
        None => None,
        Some(c) => Some(
            CallId::parse(c)
                .ok_or_else(|| ApiError::invalid_query("call_id", "is not a call id"))?,
        ),
    };
    Ok(Json(
        st.store
            .list_email_notifications(&auth.org, call.as_ref(), p.limit, p.cursor.as_ref())
            .await?,
    ))
}
