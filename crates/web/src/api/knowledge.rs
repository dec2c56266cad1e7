//! Knowledge sources: documents agents answer from. Text and Markdown are given inline;
//! `.txt`, `.md` and `.pdf` files are uploaded (multipart). A PDF's text is extracted at
//! upload, so a file that cannot be read is refused there and then with the reason; the
//! passages are then built by a background job (`status` goes from `indexing` to `ready`).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{path_id, ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use switchboard_domain::entities::Page;
use switchboard_domain::ids::{KnowledgeSourceId, OrgId};
use switchboard_domain::knowledge::{
    search_terms, source_text, validate_name, KnowledgeFormat, KnowledgeHit, KnowledgePatch,
    KnowledgeSource, NewKnowledgeSource, SourceText, MAX_UPLOAD_BYTES,
};
use switchboard_domain::Timestamp;
use switchboard_store::NewSource;

/// How long reading one PDF may take before the upload is refused.
const PDF_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest plain field of an upload form (its name, the CSRF token).
const MAX_FIELD_BYTES: u64 = 64 * 1024;

/// A source with its text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceWithContent {
    /// The source.
    #[serde(flatten)]
    pub source: KnowledgeSource,
    /// Its text (as extracted, for uploads).
    pub content: String,
}

/// Query of `GET /api/v1/knowledge/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The question or key words.
    pub q: String,
    /// Search only this source.
    pub source_id: Option<String>,
    /// Passages to answer, 1 to 20 (default 5).
    pub limit: Option<u32>,
}

/// What a search found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    /// The passages, best first.
    pub data: Vec<KnowledgeHit>,
    /// The words searched for (stop words dropped).
    pub terms: Vec<String>,
}

/// The organization's knowledge sources, by name (at most 500; one page).
#[utoipa::path(get, path = "/api/v1/knowledge/sources", tag = "knowledge",
    responses((status = 200, body = Page<KnowledgeSource>)), security(("api_key" = [])))]
pub async fn list_sources(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<Page<KnowledgeSource>>, ApiError> {
    Ok(Json(Page {
        data: st.store.list_knowledge_sources(&auth.org).await?,
        next_cursor: None,
    }))
}

/// Add a source from text or Markdown. It is searchable once `status` is `ready`.
#[utoipa::path(post, path = "/api/v1/knowledge/sources", tag = "knowledge", request_body = NewKnowledgeSource,
    responses((status = 201, body = KnowledgeSource), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_source(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewKnowledgeSource>,
) -> Result<(StatusCode, Json<KnowledgeSource>), ApiError> {
    let source = create_text(&st, &auth.org, &auth.actor, body).await?;
    Ok((StatusCode::CREATED, Json(source)))
}

/// Creates a source from inline text (the API, the dashboard and the assistant).
pub(crate) async fn create_text(
    st: &AppState,
    org: &OrgId,
    actor: &str,
    body: NewKnowledgeSource,
) -> Result<KnowledgeSource, ApiError> {
    let format = body.format.unwrap_or(KnowledgeFormat::Text);
    if format == KnowledgeFormat::Pdf {
        return Err(ApiError::invalid(
            "format",
            "upload a PDF to POST /api/v1/knowledge/sources/upload; inline text is `text` or `markdown`",
        ));
    }
    let input = NewSource {
        name: validate_name(&body.name)?,
        format,
        file_name: None,
        text: source_text("content", &body.content)?,
        created_by: actor.to_owned(),
    };
    store_new(st, org, input).await
}

async fn store_new(
    st: &AppState,
    org: &OrgId,
    input: NewSource,
) -> Result<KnowledgeSource, ApiError> {
    let source = st
        .store
        .create_knowledge_source(org, input, Timestamp::now())
        .await?;
    tracing::info!(org_id = %org, source_id = %source.id, chars = source.chars, format = source.format.as_str(), "knowledge source added");
    Ok(source)
}

/// Upload a `.txt`, `.md` or `.pdf` file (at most 10 MiB) as `multipart/form-data` with the
/// file in the field `file` and an optional `name` (default: the file's name). A PDF must
/// have a text layer: a scan, an encrypted or a damaged file is refused with the reason.
#[utoipa::path(post, path = "/api/v1/knowledge/sources/upload", tag = "knowledge",
    request_body(content_type = "multipart/form-data", description = "`file` (the document) and optional `name`"),
    responses((status = 201, body = KnowledgeSource), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload_source(
    auth: OrgAuth,
    State(st): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<KnowledgeSource>), ApiError> {
    let (parts, body) = req.into_parts();
    let upload = read_upload(&parts.headers, body).await?;
    let source = create_upload(&st, &auth.org, &auth.actor, upload).await?;
    Ok((StatusCode::CREATED, Json(source)))
}

/// A multipart form as read: its plain fields and its file, if any.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    /// Plain fields by name.
    pub fields: HashMap<String, String>,
    /// The `file` field: its file name and bytes.
    pub file: Option<(String, Vec<u8>)>,
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
        format!(
            "the file is larger than {} MiB",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ),
    )
}

fn bad_upload(e: &multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large()
        }
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_upload",
            format!("the upload could not be read: {other}"),
        ),
    }
}

/// Reads a `multipart/form-data` body with its own limit (the file may be larger than other
/// requests' bodies).
pub(crate) async fn read_upload(headers: &HeaderMap, body: Body) -> Result<Upload, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as multipart/form-data in the field `file`",
        )
    })?;
    let limit = u64::try_from(MAX_UPLOAD_BYTES).unwrap_or(u64::MAX);
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit + MAX_FIELD_BYTES)
            .per_field(limit),
    );
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut upload = Upload::default();
    while let Some(mut field) = form.next_field().await.map_err(|e| bad_upload(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| bad_upload(&e))? {
                if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            upload.file = Some((file_name, bytes));
        } else {
            let text = field.text().await.map_err(|e| bad_upload(&e))?;
            if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_FIELD_BYTES {
                return Err(ApiError::invalid(name, "is too long"));
            }
            upload.fields.insert(name, text);
        }
    }
    Ok(upload)
}

/// Creates a source from an upload (the API and the dashboard).
pub(crate) async fn create_upload(
    st: &AppState,
    org: &OrgId,
    actor: &str,
    upload: Upload,
) -> Result<KnowledgeSource, ApiError> {
    let Some((file_name, bytes)) = upload.file else {
        return Err(ApiError::invalid("file", "is required"));
    };
    let (format, text) = file_text(&file_name, bytes).await?;
    let name = upload
        .fields
        .get("name")
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .unwrap_or(&file_name);
    let input = NewSource {
        name: validate_name(name)?,
        format,
        file_name: Some(file_name.chars().take(255).collect()),
        text,
        created_by: actor.to_owned(),
    };
    store_new(st, org, input).await
}

/// The text of an uploaded file, by its extension.
async fn file_text(
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<(KnowledgeFormat, SourceText), ApiError> {
    let format = KnowledgeFormat::of_file_name(file_name).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_file",
            format!("`{file_name}` is not a .txt, .md or .pdf file"),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("file", "is empty"));
    }
    let text = match format {
        KnowledgeFormat::Pdf => pdf_text(bytes).await?,
        KnowledgeFormat::Text | KnowledgeFormat::Markdown => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            String::from_utf8(body.to_vec()).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_text",
                    format!("`{file_name}` is not UTF-8 text"),
                )
            })?
        }
    };
    Ok((format, source_text("file", &text)?))
}

fn unreadable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unreadable_pdf",
        format!("the PDF could not be read: {why}"),
    )
}

/// A PDF's text, read off the async threads under a time limit. The reader may panic on a
/// damaged file: that is caught (the task's panic) and reported as unreadable.
async fn pdf_text(bytes: Vec<u8>) -> Result<String, ApiError> {
    // The header may follow up to 1 KiB of junk (PDF 1.7, 7.5.2 and implementation notes).
    if !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Err(unreadable("it is not a PDF file"));
    }
    let task = tokio::task::spawn_blocking(move || pdf_extract::extract_text_from_mem(&bytes));
    let text = match tokio::time::timeout(PDF_TIMEOUT, task).await {
        Err(_) => return Err(unreadable("reading it took too long")),
        Ok(Err(_panicked)) => {
            return Err(unreadable(
                "the file is damaged or uses features that cannot be read",
            ))
        }
        Ok(Ok(Err(e))) => return Err(unreadable(e)),
        Ok(Ok(Ok(text))) => text,
    };
    if !text.chars().any(char::is_alphanumeric) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_text",
            "the PDF has no text to read (a scanned document has only pictures of text)",
        ));
    }
    Ok(text)
}

/// One source with its text.
#[utoipa::path(get, path = "/api/v1/knowledge/sources/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = SourceWithContent), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_source(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SourceWithContent>, ApiError> {
    let id = path_id(&id, KnowledgeSourceId::parse)?;
    let (source, content) = st.store.get_knowledge_source(&auth.org, &id).await?;
    Ok(Json(SourceWithContent { source, content }))
}

/// Rename a source or replace its text (which is indexed again; searches use the previous
/// passages until then).
#[utoipa::path(patch, path = "/api/v1/knowledge/sources/{id}", tag = "knowledge", params(("id" = String, Path)), request_body = KnowledgePatch,
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_source(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<KnowledgePatch>,
) -> Result<Json<KnowledgeSource>, ApiError> {
    let id = path_id(&id, KnowledgeSourceId::parse)?;
    Ok(Json(update(&st, &auth.org, &id, body).await?))
}

/// Changes a source (the API, the dashboard and the assistant).
pub(crate) async fn update(
    st: &AppState,
    org: &OrgId,
    id: &KnowledgeSourceId,
    body: KnowledgePatch,
) -> Result<KnowledgeSource, ApiError> {
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let text = body
        .content
        .as_deref()
        .map(|c| source_text("content", c))
        .transpose()?;
    let source = st
        .store
        .update_knowledge_source(org, id, name, text, Timestamp::now())
        .await?;
    tracing::info!(org_id = %org, source_id = %id, version = source.version, "knowledge source changed");
    Ok(source)
}

/// Delete a source and its passages; agents that answered from it no longer do.
#[utoipa::path(delete, path = "/api/v1/knowledge/sources/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_source(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, KnowledgeSourceId::parse)?;
    st.store.delete_knowledge_source(&auth.org, &id).await?;
    tracing::info!(org_id = %auth.org, source_id = %id, "knowledge source deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Search the organization's knowledge as an agent would: the passages that best match
/// any of the question's words (English stemming; stop words dropped), best first.
#[utoipa::path(get, path = "/api/v1/knowledge/search", tag = "knowledge", params(SearchQuery),
    responses((status = 200, body = SearchResult), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn search(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResult>, ApiError> {
    let source = match q.source_id.as_deref() {
        Some(s) => Some(
            KnowledgeSourceId::parse(s)
                .ok_or_else(|| ApiError::invalid_query("source_id", "is not a source id"))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(5);
    if !(1..=20).contains(&limit) {
        return Err(ApiError::invalid_query("limit", "must be between 1 and 20"));
    }
    Ok(Json(
        run_search(&st, &auth.org, &q.q, source.as_ref(), limit).await?,
    ))
}

/// Runs a search (the API and the dashboard's search box).
pub(crate) async fn run_search(
    st: &AppState,
    org: &OrgId,
    q: &str,
    source: Option<&KnowledgeSourceId>,
    limit: u32,
) -> Result<SearchResult, ApiError> {
    if q.chars().count() > 1_000 {
        return Err(ApiError::invalid_query(
            "q",
            "must be at most 1000 characters",
        ));
    }
    let terms = search_terms(q);
    let only = source.map(std::slice::from_ref);
    let data = st.store.search_knowledge(org, &terms, only, limit).await?;
    Ok(SearchResult { data, terms })
}
