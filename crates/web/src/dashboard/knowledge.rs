//! `/knowledge`: the documents agents answer from — the sources with their index status
//! (the list refreshes itself while one is indexing), a search box to try questions the way
//! an agent's `search_knowledge` does, adding text or Markdown, uploading a `.txt`, `.md` or
//! `.pdf`, and a source's page to read, change or delete it.

use super::layout::{self, badge, field, time};
use super::{same_secret, Dash, DashError, FieldErrors, Fields};
use crate::api::knowledge::{self as api, SearchResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use switchboard_domain::ids::KnowledgeSourceId;
use switchboard_domain::knowledge::{
    KnowledgeFormat, KnowledgePatch, KnowledgeSource, KnowledgeStatus, NewKnowledgeSource,
};

/// `?q=` (a search to try) and `?flash=`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct KnowledgeQuery {
    q: Option<String>,
    flash: Option<String>,
}

/// What the add form shows.
#[derive(Default)]
struct Draft {
    name: String,
    format: String,
    content: String,
}

fn status_badge(s: &KnowledgeSource) -> Markup {
    html! {
        @match s.status {
            KnowledgeStatus::Indexing => span.badge.live data-pending="1" { "indexing" },
            KnowledgeStatus::Ready => (badge("ready")),
            KnowledgeStatus::Failed => span { (badge("failed")) " " small.field-error { (s.error.as_deref().unwrap_or_default()) } },
        }
    }
}

fn sources_table(sources: &[KnowledgeSource]) -> Markup {
    html! {
        div.table-wrap {
            table.list #sources {
                thead { tr { th { "Name" } th { "Format" } th { "Status" } th { "Passages" } th { "Characters" } th { "Changed" } } }
                tbody {
                    @for s in sources {
                        tr data-source=(s.id) {
                            td { a href={ "/knowledge/" (s.id) } { (s.name) } }
                            td { (s.format.as_str()) }
                            td.status { (status_badge(s)) }
                            td { (s.chunks) }
                            td { (s.chars) }
                            td { (time(s.updated_at)) }
                        }
                    }
                    @if sources.is_empty() { tr { td colspan="6" .empty { "No sources yet: add your price list, policies or directions below." } } }
                }
            }
        }
    }
}

fn search_card(q: &str, result: Option<Result<&SearchResult, &str>>) -> Markup {
    html! {
        section.card #try-search {
            h2 { "Try a question" }
            p.muted { "Finds the passages an agent's " code { "search_knowledge" } " would be given (from every source here; an agent searches only its own)." }
            form method="get" action="/knowledge" {
                input #q name="q" value=(q) placeholder="How much is a colour treatment?" aria-label="Question";
                button.primary type="submit" #search { "Search" }
            }
            @match result {
                Some(Ok(r)) => {
                    p.muted { "Searched for: " (r.terms.join(", ")) }
                    ol #results {
                        @for h in &r.data {
                            li.hit {
                                div.meta { strong { (h.source) } @if let Some(head) = &h.heading { " · " (head) } }
                                p { (h.text) }
                            }
                        }
                    }
                    @if r.data.is_empty() { p #no-results { "Nothing matches." } }
                },
                Some(Err(e)) => p.field-error role="alert" { (e) },
                None => {},
            }
        }
    }
}

fn add_forms(dash: &Dash, d: &Draft, errors: &FieldErrors, upload_error: Option<&str>) -> Markup {
    html! {
        div.columns {
            section.card #add-source {
                h2 { "Add text" }
                form method="post" action="/knowledge" novalidate {
                    (layout::csrf(dash))
                    (field("Name", "name", errors, None, html! { input #name name="name" value=(d.name) maxlength="200" placeholder="Price list"; }))
                    (field("Format", "format", errors, Some("Markdown headings name the passages under them."), html! {
                        select #format name="format" {
                            option value="text" selected[d.format != "markdown"] { "Plain text" }
                            option value="markdown" selected[d.format == "markdown"] { "Markdown" }
                        }
                    }))
                    (field("Text", "content", errors, None, html! { textarea #content name="content" rows="10" { (d.content) } }))
                    button.primary type="submit" #add { "Add" }
                }
            }
            section.card #upload-source {
                h2 { "Upload a file" }
                p.muted { ".txt, .md or .pdf, at most 10 MB. A PDF needs a text layer (a scan has only pictures of text)." }
                form method="post" action="/knowledge/upload" enctype="multipart/form-data" {
                    (layout::csrf(dash))
                    label for="upload-name" { "Name (default: the file's name)" }
                    input #upload-name name="name" maxlength="200";
                    label for="file" { "File" }
                    input #file type="file" name="file" accept=".txt,.md,.markdown,.pdf,text/plain,text/markdown,application/pdf";
                    @if let Some(e) = upload_error { p.field-error #upload-error role="alert" { (e) } }
                    button.primary type="submit" #upload { "Upload" }
                }
            }
        }
    }
}

async fn list_page(
    st: &AppState,
    dash: &Dash,
    q: &KnowledgeQuery,
    d: &Draft,
    errors: &FieldErrors,
    upload_error: Option<&str>,
) -> Result<Markup, DashError> {
    let sources = st.store.list_knowledge_sources(&dash.org).await?;
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let result = match query {
        Some(text) => Some(api::run_search(st, &dash.org, text, None, 5).await),
        None => None,
    };
    let result_ref = result
        .as_ref()
        .map(|r| r.as_ref().map_err(|e| e.message.as_str()));
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        p.muted { "Documents your agents answer from. Tick them under " strong { "Knowledge" } " on an agent's page: it then searches them with " code { "search_knowledge" } ", on calls and in texts." }
        div #live { (sources_table(&sources)) }
        (search_card(query.unwrap_or_default(), result_ref))
        @if dash.can_manage() { (add_forms(dash, d, errors, upload_error)) }
    };
    layout::render(st, dash, "knowledge", "Knowledge", None, body).await
}

/// `GET /knowledge`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<KnowledgeQuery>,
) -> Result<Response, DashError> {
    let page = list_page(
        &st,
        &dash,
        &q,
        &Draft::default(),
        &FieldErrors::default(),
        None,
    )
    .await?;
    Ok(page.into_response())
}

fn actor(dash: &Dash) -> String {
    format!("user:{}", dash.session.user.id)
}

/// `POST /knowledge`: adds a text or Markdown source.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let d = Draft {
        name: f.raw("name").trim().to_owned(),
        format: f.raw("format").to_owned(),
        content: f.raw("content").to_owned(),
    };
    let input = NewKnowledgeSource {
        name: d.name.clone(),
        format: Some(match d.format.as_str() {
            "markdown" => KnowledgeFormat::Markdown,
            _ => KnowledgeFormat::Text,
        }),
        content: d.content.clone(),
    };
    let mut errors = FieldErrors::default();
    match api::create_text(&st, &dash.org, &actor(&dash), input).await {
        Ok(s) => {
            return Ok(super::redirect_with_flash(
                "/knowledge",
                &format!("Added {}; it is being indexed", s.name),
            ))
        }
        Err(e) => errors.api(e)?,
    }
    let q = KnowledgeQuery::default();
    let page = list_page(&st, &dash, &q, &d, &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /knowledge/upload`: a multipart form with the file (its `_csrf` is checked here,
/// as a URL-encoded form's is by `Fields`).
pub async fn upload(
    State(st): State<AppState>,
    dash: Dash,
    req: Request,
) -> Result<Response, DashError> {
    let (parts, body) = req.into_parts();
    let read = api::read_upload(&parts.headers, body).await;
    let csrf_ok = read
        .as_ref()
        .ok()
        .and_then(|u| u.fields.get("_csrf"))
        .is_some_and(|t| same_secret(t, &dash.session.csrf_token));
    if read.is_ok() && !csrf_ok {
        return Err(DashError::BadRequest(
            "the form is out of date (CSRF token missing or wrong); reload the page and try again"
                .into(),
        ));
    }
    dash.require_manage()?;
    let outcome = match read {
        Ok(u) => api::create_upload(&st, &dash.org, &actor(&dash), u).await,
        Err(e) => Err(e),
    };
    let why = match outcome {
        Ok(s) => {
            return Ok(super::redirect_with_flash(
                "/knowledge",
                &format!("Uploaded {}; it is being indexed", s.name),
            ))
        }
        Err(e) if e.status == StatusCode::INTERNAL_SERVER_ERROR => {
            return Err(DashError::Internal(e.message))
        }
        Err(e) => e.message,
    };
    let q = KnowledgeQuery::default();
    let page = list_page(
        &st,
        &dash,
        &q,
        &Draft::default(),
        &FieldErrors::default(),
        Some(&why),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

fn source_id(raw: &str) -> Result<KnowledgeSourceId, DashError> {
    KnowledgeSourceId::parse(raw).ok_or(DashError::NotFound)
}

async fn source_page(
    st: &AppState,
    dash: &Dash,
    s: &KnowledgeSource,
    name: &str,
    content: &str,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<Markup, DashError> {
    let read_only = !dash.can_manage();
    let body = html! {
        (layout::flash(flash))
        div #live data-subject=(s.id) {
            p {
                (status_badge(s)) " " (s.format.as_str())
                @if let Some(f) = &s.file_name { " · " code { (f) } }
                " · " (s.chunks) " passages · " (s.chars) " characters · version " (s.version)
                " · added by " (s.created_by) " " (time(s.created_at))
            }
        }
        form method="post" action={ "/knowledge/" (s.id) } novalidate #source-form {
            (layout::csrf(dash))
            fieldset disabled[read_only] {
                (field("Name", "name", errors, None, html! { input #name name="name" value=(name) maxlength="200"; }))
                (field("Text", "content", errors, Some("Saving new text indexes it again; searches use the previous passages until then."), html! {
                    textarea #content name="content" rows="18" { (content) }
                }))
                @if !read_only { button.primary type="submit" #save { "Save" } }
            }
        }
        @if !read_only {
            (layout::action_button(dash, &format!("/knowledge/{}/delete", s.id), "Delete source", Some("Delete this source? Agents answering from it no longer will.")))
        }
    };
    layout::render(st, dash, "knowledge", &s.name, None, body).await
}

/// `GET /knowledge/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<KnowledgeQuery>,
) -> Result<Response, DashError> {
    let id = source_id(&id)?;
    let (s, content) = st.store.get_knowledge_source(&dash.org, &id).await?;
    let page = source_page(
        &st,
        &dash,
        &s,
        &s.name,
        &content,
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?;
    Ok(page.into_response())
}

/// `POST /knowledge/{id}`: saves the name and the text (re-indexed only when it changed).
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = source_id(&id)?;
    let f = Fields::managing(&dash, &body)?;
    let (current, content) = st.store.get_knowledge_source(&dash.org, &id).await?;
    let name = f.raw("name").trim().to_owned();
    // Browsers send textarea line ends as CRLF: compare as stored.
    let typed = f.raw("content").replace("\r\n", "\n");
    let patch = KnowledgePatch {
        name: (name != current.name).then(|| name.clone()),
        content: (typed != content).then(|| typed.clone()),
    };
    let mut errors = FieldErrors::default();
    match api::update(&st, &dash.org, &id, patch).await {
        Ok(_) => {
            return Ok(super::redirect_with_flash(
                &format!("/knowledge/{id}"),
                "Saved",
            ))
        }
        Err(e) => errors.api(e)?,
    }
    let page = source_page(&st, &dash, &current, &name, &typed, &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /knowledge/{id}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = source_id(&id)?;
    Fields::managing(&dash, &body)?;
    st.store.delete_knowledge_source(&dash.org, &id).await?;
    tracing::info!(org_id = %dash.org, source_id = %id, "knowledge source deleted");
    Ok(super::redirect_with_flash("/knowledge", "Source deleted"))
}
