//! Campaigns: many outbound calls placed by one agent within a calling window (read in each
//! recipient's time zone), with a concurrency cap and retries. Create a draft (optionally
//! with recipients), add recipients (JSON or CSV), start, pause, resume, cancel; read the
//! counts per disposition and each recipient's attempts and outcome.

use super::outbound::{calling_agent, dial_configured};
use super::paging;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_json, path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_domain::campaign::{
    recipients_from_csv, recipients_from_json, Campaign, CampaignRecipient, ImportReport,
    NewCampaign, RecipientRow,
};
use switchboard_domain::entities::Page;
use switchboard_domain::ids::{CampaignId, OrgId};
use switchboard_domain::values::NumberChannel;
use switchboard_store::{CampaignAction, NewCampaignRow, Refusal};

/// A campaign with what an import of recipients did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignImport {
    /// The campaign as it stands.
    pub campaign: Campaign,
    /// What the recipients given did: accepted rows, skipped rows (opted out, duplicate),
    /// invalid rows (with the reason), and a preview of the first accepted rows.
    pub import: ImportReport,
}

/// The body of `POST /api/v1/campaigns/{id}/start` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCampaign {
    /// Start although some rows could not be read (they are not called).
    #[serde(default)]
    pub skip_invalid_rows: bool,
}

/// Query of `GET /api/v1/campaigns/{id}/recipients`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// `pending`, `calling`, `done`, `skipped`, `invalid` or `canceled`.
    pub status: Option<String>,
    /// Rows after this row number (the last `row` of the previous page).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Query of `GET /api/v1/campaigns`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignListQuery {
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

fn refused(r: Refusal) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, r.code, r.message)
}

fn campaign_id(raw: &str) -> Result<String, ApiError> {
    Ok(path_id(raw, CampaignId::parse)?.to_string())
}

/// Create a campaign (status `draft`). `from_number` or `from_numbers` name the
/// organization's active voice numbers to call from (default: the first one); `agent_id`
/// defaults to that number's agent. `recipients` may be given here or added later.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = NewCampaign,
    responses((status = 201, body = CampaignImport),
        (status = 409, description = "No voice number (`no_voice_number`), Twilio or the public URL not configured (`not_configured`)", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewCampaign>,
) -> Result<Response, ApiError> {
    // Recipients are read before anything is written, so a bad list creates nothing.
    let rows = match &body.recipients {
        Some(items) => Some(recipients_from_json(items)?),
        None => None,
    };
    let (campaign, import) = create(&st, &auth.org, body, rows).await?;
    Ok((
        StatusCode::CREATED,
        Json(CampaignImport { campaign, import }),
    )
        .into_response())
}

/// Checks and creates a draft campaign with its recipients (the API and the dashboard).
pub(crate) async fn create(
    st: &AppState,
    org: &OrgId,
    body: NewCampaign,
    rows: Option<Vec<RecipientRow>>,
) -> Result<(Campaign, ImportReport), ApiError> {
    body.validate()?;
    let numbers = st.store.active_numbers(org, NumberChannel::Voice).await?;
    let wanted: Vec<_> = match (&body.from_number, &body.from_numbers) {
        (Some(n), _) => vec![n.clone()],
        (None, Some(list)) => list.clone(),
        (None, None) => numbers
            .first()
            .map(|n| n.number.clone())
            .into_iter()
            .collect(),
    };
    if wanted.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_voice_number",
            "the organization has no active voice number to call from",
        ));
    }
    let mut pool = Vec::new();
    for (i, n) in wanted.iter().enumerate() {
        let found = numbers.iter().find(|o| &o.number == n).ok_or_else(|| {
            let field = if body.from_number.is_some() {
                "from_number".to_owned()
            } else {
                format!("from_numbers[{i}]")
            };
            ApiError::invalid(field, "not an active voice number of this organization")
        })?;
        pool.push(found);
    }
    let agent = calling_agent(
        st,
        org,
        body.agent_id.as_ref(),
        pool[0].agent_id.as_ref(),
        body.voicemail,
    )
    .await?;
    let agent_id = agent.id.clone();
    dial_configured(st, org).await?;
    let now = st.clock.now();
    let campaign = st
        .store
        .create_campaign(
            org,
            NewCampaignRow {
                name: body.name.trim().to_owned(),
                agent_id,
                from_numbers: pool.iter().map(|n| n.number.to_string()).collect(),
                window: body.window.clone().unwrap_or_default(),
                timezone: body.timezone.clone().unwrap_or_else(|| "UTC".into()),
                max_concurrent: body.max_concurrent_calls.unwrap_or(5),
                max_attempts: body.max_attempts.unwrap_or(1),
                retry_delay_seconds: body.retry_delay_seconds.unwrap_or(3600),
                start_at: body.start_at,
                voicemail: body.voicemail,
                record: body.record,
                metadata: body.metadata.clone(),
                now,
            },
        )
        .await?;
    tracing::info!(org_id = %org, campaign_id = %campaign.id, "campaign created");
    let import = match rows {
        Some(rows) => import(st, org, &campaign.id, rows).await?,
        None => ImportReport::default(),
    };
    let campaign = st.store.get_campaign(org, &campaign.id).await?;
    Ok((campaign, import))
}

async fn import(
    st: &AppState,
    org: &OrgId,
    id: &str,
    rows: Vec<RecipientRow>,
) -> Result<ImportReport, ApiError> {
    st.store
        .add_recipients(org, id, rows, st.clock.now())
        .await?
        .map_err(refused)
}

/// Add recipients to a draft campaign: a JSON array of objects (`number`, optional
/// `timezone`, any other field becomes a variable of the call) or `text/csv` with a header row
/// (`number`, optional `timezone`, other columns become variables). Rows that cannot be read
/// are kept as `invalid` with the reason (the campaign then starts only with
/// `skip_invalid_rows`); opted-out contacts and numbers already listed are `skipped`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/recipients", tag = "campaigns",
    params(("id" = String, Path)),
    request_body(content = String, description = "`text/csv` with a header row, or a JSON array of objects", content_type = "text/csv"),
    responses((status = 200, body = CampaignImport),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a draft (`campaign_state`)", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_recipients(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CampaignImport>, ApiError> {
    let id = campaign_id(&id)?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let rows = match mime.as_str() {
        "text/csv" => {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::invalid("csv", "must be UTF-8 text"))?;
            recipients_from_csv(text)?
        }
        "application/json" => {
            let items: Vec<Value> = parse_json(&body)?;
            recipients_from_json(&items)?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send `Content-Type: text/csv` or `application/json`",
            ))
        }
    };
    let import = import(&st, &auth.org, &id, rows).await?;
    let campaign = st.store.get_campaign(&auth.org, &id).await?;
    Ok(Json(CampaignImport { campaign, import }))
}

/// List campaigns, newest first, with their counts.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", params(CampaignListQuery),
    responses((status = 200, body = Page<Campaign>), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_campaigns(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<CampaignListQuery>,
) -> Result<Json<Page<Campaign>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    Ok(Json(
        st.store
            .list_campaigns(&auth.org, p.limit, p.cursor.as_ref())
            .await?,
    ))
}

/// A campaign with its counts: recipients per state and the final dispositions of those done.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    let id = campaign_id(&id)?;
    Ok(Json(st.store.get_campaign(&auth.org, &id).await?))
}

/// A campaign's recipients in row order, with each one's attempts, latest call and outcome.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/recipients", tag = "campaigns",
    params(("id" = String, Path), RecipientQuery),
    responses((status = 200, body = Vec<CampaignRecipient>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_recipients(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RecipientQuery>,
) -> Result<Json<Vec<CampaignRecipient>>, ApiError> {
    let id = campaign_id(&id)?;
    let states = [
        "pending", "calling", "done", "skipped", "invalid", "canceled",
    ];
    if let Some(s) = &q.status {
        if !states.contains(&s.as_str()) {
            return Err(ApiError::invalid_query(
                "status",
                format!("must be one of {}", states.join(", ")),
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_query(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    Ok(Json(
        st.store
            .list_recipients(&auth.org, &id, q.status.as_deref(), q.after, limit)
            .await?,
    ))
}

/// Starts, pauses, resumes or cancels a campaign (the API and the dashboard).
pub(crate) async fn change(
    st: &AppState,
    org: &OrgId,
    id: &str,
    action: CampaignAction,
) -> Result<Json<Campaign>, ApiError> {
    let id = campaign_id(id)?;
    if matches!(
        action,
        CampaignAction::Start { .. } | CampaignAction::Resume
    ) {
        dial_configured(st, org).await?;
    }
    let c = st
        .store
        .change_campaign(org, &id, action, st.clock.now())
        .await?
        .map_err(refused)?;
    tracing::info!(org_id = %org, campaign_id = %id, status = %c.status, "campaign state changed");
    Ok(Json(c))
}

/// Start a draft campaign: `campaign.started` is sent and the runner begins calling within
/// a second (at `start_at` if later). 409 `invalid_rows` when some rows could not be read and
/// `skip_invalid_rows` is not `true`; 409 `no_recipients` when nobody is to be called.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/start", tag = "campaigns",
    params(("id" = String, Path)), request_body(content = Option<StartCampaign>),
    responses((status = 200, body = Campaign), (status = 404, body = ErrorBody),
        (status = 409, description = "`campaign_state`, `invalid_rows`, `no_recipients`, `not_configured`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn start_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Campaign>, ApiError> {
    let opts: StartCampaign = if body.iter().all(u8::is_ascii_whitespace) {
        StartCampaign::default()
    } else {
        parse_json(&body)?
    };
    let action = CampaignAction::Start {
        skip_invalid_rows: opts.skip_invalid_rows,
    };
    change(&st, &auth.org, &id, action).await
}

/// Pause a running campaign: no new call starts (calls already placed go on).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = ErrorBody),
        (status = 409, description = "Not running (`campaign_state`)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn pause_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    change(&st, &auth.org, &id, CampaignAction::Pause).await
}

/// Resume a paused campaign where it stopped.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = ErrorBody),
        (status = 409, description = "Not paused (`campaign_state`)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resume_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    change(&st, &auth.org, &id, CampaignAction::Resume).await
}

/// Cancel a campaign: recipients not called yet are `canceled`; calls already placed go on.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished (`campaign_state`)", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_campaign(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    change(&st, &auth.org, &id, CampaignAction::Cancel).await
}
