//! `/tools/custom/...`: custom HTTP tools in the dashboard — list (atop the tool activity
//! page), create and edit (header values never shown), signing secret shown once, rotate,
//! delete, and "Test this tool" with the model's-eye view of the answer.

use super::layout::{self, badge, field, time};
use super::{redirect_with_flash, Dash, DashError, FieldErrors, Fields};
use crate::api::custom_tools::{self as api, ToolTestResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;
use switchboard_domain::custom_tool::{
    CustomTool, CustomToolPatch, NewCustomTool, ToolHeaders, ToolMethod, DEFAULT_TIMEOUT_MS,
    REDACTED,
};
use switchboard_domain::entities::ToolInvocationFilter;
use switchboard_domain::ids::CustomToolId;
use switchboard_domain::Secret;

/// The custom tools card of `/tools`.
pub(crate) async fn card(st: &AppState, dash: &Dash) -> Result<Markup, DashError> {
    let tools = st.store.list_custom_tools(&dash.org).await?;
    Ok(html! {
        section.card #custom-tools {
            h2 { "Custom tools" }
            p.muted { "Functions your own systems answer over HTTPS. Tick them in an agent's tools to offer them." }
            div.table-wrap {
                table.list {
                    thead { tr { th { "Name" } th { "Endpoint" } th { "Timeout" } th { "Changed" } } }
                    tbody {
                        @for t in &tools {
                            tr {
                                td { a href={ "/tools/custom/" (t.id) } { code { (t.name) } } }
                                td { small { (t.method.as_str()) " " (t.url) } }
                                td { (t.timeout_ms) " ms" }
                                td { (time(t.updated_at)) }
                            }
                        }
                        @if tools.is_empty() { tr { td colspan="4" .empty { "No custom tools yet." } } }
                    }
                }
            }
            @if dash.can_manage() { a.button href="/tools/custom/new" #new-custom-tool { "New custom tool" } }
        }
    })
}

/// What the form shows.
struct Draft {
    name: String,
    description: String,
    url: String,
    method: String,
    parameters: String,
    headers: String,
    timeout_ms: String,
    speak: bool,
    waiting_message: String,
}

impl Draft {
    fn empty() -> Draft {
        Draft {
            name: String::new(),
            description: String::new(),
            url: String::new(),
            method: "POST".into(),
            parameters: "{\n  \"type\": \"object\",\n  \"properties\": {}\n}".into(),
            headers: String::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS.to_string(),
            speak: false,
            waiting_message: String::new(),
        }
    }

    fn of(t: &CustomTool) -> Draft {
        Draft {
            name: t.name.clone(),
            description: t.description.clone(),
            url: t.url.clone(),
            method: t.method.as_str().into(),
            parameters: serde_json::to_string_pretty(&t.parameters).unwrap_or_default(),
            headers: t
                .headers
                .0
                .iter()
                .map(|(n, _)| format!("{n}: {REDACTED}"))
                .collect::<Vec<_>>()
                .join("\n"),
            timeout_ms: t.timeout_ms.to_string(),
            speak: t.speak_while_waiting,
            waiting_message: t.waiting_message.clone().unwrap_or_default(),
        }
    }

    fn from_form(f: &Fields) -> Draft {
        Draft {
            name: f.raw("name").trim().to_owned(),
            description: f.raw("description").trim().to_owned(),
            url: f.raw("url").trim().to_owned(),
            method: f.raw("method").to_owned(),
            parameters: f.raw("parameters").to_owned(),
            headers: f.raw("headers").to_owned(),
            timeout_ms: f.raw("timeout_ms").trim().to_owned(),
            speak: f.checked("speak_while_waiting"),
            waiting_message: f.raw("waiting_message").trim().to_owned(),
        }
    }

    /// The parts a form can get wrong before the domain checks: JSON, header lines, numbers.
    fn parse(&self, errors: &mut FieldErrors) -> Option<NewCustomTool> {
        let parameters = if self.parameters.trim().is_empty() {
            None
        } else {
            match serde_json::from_str::<Value>(&self.parameters) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.add("parameters", format!("is not valid JSON: {e}"));
                    None
                }
            }
        };
        let mut headers = Vec::new();
        for (i, line) in self.headers.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((n, v)) => headers.push((n.trim().to_owned(), Secret::new(v.trim()))),
                None => errors.add("headers", format!("line {} must read `Name: value`", i + 1)),
            }
        }
        let timeout_ms = if self.timeout_ms.is_empty() {
            None
        } else {
            match self.timeout_ms.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.add("timeout_ms", "must be a whole number of milliseconds");
                    None
                }
            }
        };
        let method = match ToolMethod::parse(&self.method) {
            Some(m) => m,
            None => {
                errors.add("method", "must be POST, PUT or PATCH");
                ToolMethod::Post
            }
        };
        if !errors.is_empty() {
            return None;
        }
        Some(NewCustomTool {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters,
            url: self.url.clone(),
            method,
            headers: ToolHeaders(headers),
            timeout_ms,
            speak_while_waiting: self.speak,
            waiting_message: (!self.waiting_message.is_empty())
                .then(|| self.waiting_message.clone()),
        })
    }
}

fn form(dash: &Dash, action: &str, d: &Draft, errors: &FieldErrors) -> Markup {
    let read_only = !dash.can_manage();
    html! {
        form.agent-form method="post" action=(action) novalidate #tool-form {
            (layout::csrf(dash))
            fieldset disabled[read_only] {
                (field("Name", "name", errors, Some("What the model calls it: letters, digits, _ and -."), html! {
                    input #name name="name" value=(d.name) required placeholder="order_status";
                }))
                (field("Description", "description", errors, Some("What it does and when the agent should use it."), html! {
                    textarea #description name="description" rows="3" { (d.description) }
                }))
                (field("Endpoint", "url", errors, Some("https://… — requests are signed with Standard Webhooks."), html! {
                    div.row {
                        select #method name="method" aria-label="Method" {
                            @for m in ["POST", "PUT", "PATCH"] { option value=(m) selected[d.method == m] { (m) } }
                        }
                        input #url name="url" type="url" value=(d.url) placeholder="https://crm.example.com/tools/order-status";
                    }
                }))
                (field("Arguments (JSON Schema)", "parameters", errors, Some(r#"An object schema, e.g. {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}"#), html! {
                    textarea #parameters name="parameters" rows="8" spellcheck="false" { (d.parameters) }
                }))
                (field("Headers", "headers", errors, Some("One `Name: value` per line. Values are stored as secrets and never shown; keep `[redacted]` to keep a value."), html! {
                    textarea #headers name="headers" rows="3" spellcheck="false" placeholder="Authorization: Bearer …" { (d.headers) }
                }))
                (field("Timeout (ms)", "timeout_ms", errors, Some("500 to 30000."), html! {
                    input #timeout_ms name="timeout_ms" inputmode="numeric" value=(d.timeout_ms);
                }))
                label.check { input #speak_while_waiting type="checkbox" name="speak_while_waiting" checked[d.speak]; " On calls, say something while waiting" }
                (field("What to say while waiting", "waiting_message", errors, Some("Optional; otherwise the agent says briefly that it is checking."), html! {
                    input #waiting_message name="waiting_message" value=(d.waiting_message) placeholder="One moment while I look that up.";
                }))
                @if !read_only { button.primary type="submit" #save { "Save" } }
            }
        }
    }
}

fn secret_notice(secret: &str) -> Markup {
    html! {
        div.card.secret #new-secret role="status" {
            p { "Signing secret — " strong { "shown this once" } ". Verify each request's " code { "webhook-signature" } " with it (Standard Webhooks)." }
            code.copy #new-secret-value { (secret) }
        }
    }
}

fn test_panel(dash: &Dash, t: &CustomTool, args: &str, result: Option<&ToolTestResult>) -> Markup {
    html! {
        section.card #test-tool {
            h2 { "Test this tool" }
            p.muted { "Calls the endpoint now, as an agent would (the request's " code { "context.test" } " is true). The result is exactly what the model would get." }
            form method="post" action={ "/tools/custom/" (t.id) "/test" } #test-form {
                (layout::csrf(dash))
                label for="arguments" { "Arguments (JSON)" }
                textarea #arguments name="arguments" rows="4" spellcheck="false" { (args) }
                button.primary type="submit" #run-test { "Run test" }
            }
            @if let Some(r) = result {
                div #test-result data-status=(r.status) {
                    p { (badge(&r.status)) " in " (r.duration_ms) " ms" }
                    pre.json { (serde_json::to_string_pretty(&r.output).unwrap_or_default()) }
                }
            }
        }
    }
}

struct Extras<'a> {
    secret: Option<&'a str>,
    test: Option<(&'a str, Result<&'a ToolTestResult, &'a str>)>,
    flash: Option<&'a str>,
}

async fn tool_page(
    st: &AppState,
    dash: &Dash,
    t: &CustomTool,
    d: &Draft,
    errors: &FieldErrors,
    x: Extras<'_>,
) -> Result<Markup, DashError> {
    let recent = st
        .store
        .search_tool_invocations(
            &dash.org,
            &ToolInvocationFilter {
                tool: Some(t.name.clone()),
                ..ToolInvocationFilter::default()
            },
            Some(20),
            None,
        )
        .await?
        .data;
    let (args, result, test_error) = match x.test {
        Some((a, Ok(r))) => (a, Some(r), None),
        Some((a, Err(e))) => (a, None, Some(e)),
        None => ("{}", None, None),
    };
    let body = html! {
        (layout::flash(x.flash))
        @if let Some(s) = x.secret { (secret_notice(s)) }
        div.columns {
            section {
                (form(dash, &format!("/tools/custom/{}", t.id), d, errors))
                @if dash.can_manage() {
                    (layout::action_button(dash, &format!("/tools/custom/{}/rotate", t.id), "Rotate signing secret", Some("Replace the signing secret? The old one keeps signing for 24 hours.")))
                    (layout::action_button(dash, &format!("/tools/custom/{}/delete", t.id), "Delete tool", Some("Delete this tool?")))
                }
            }
            @if dash.can_manage() {
                div {
                    (test_panel(dash, t, args, result))
                    @if let Some(e) = test_error { p.field-error #test-error role="alert" { (e) } }
                }
            }
        }
        h2 { "Recent executions" }
        (super::tools::table(&recent, "custom-tool-invocations"))
    };
    layout::render(st, dash, "tools", &t.name, None, body).await
}

/// The tool's page showing it as saved, with `x` (a secret, a test result, a flash).
async fn saved_page(
    st: &AppState,
    dash: &Dash,
    t: &CustomTool,
    x: Extras<'_>,
) -> Result<Markup, DashError> {
    tool_page(st, dash, t, &Draft::of(t), &FieldErrors::default(), x).await
}

fn tool_id(raw: &str) -> Result<CustomToolId, DashError> {
    CustomToolId::parse(raw).ok_or(DashError::NotFound)
}

/// `GET /tools/custom/new` (admins).
pub async fn new_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    let body = form(
        &dash,
        "/tools/custom/new",
        &Draft::empty(),
        &FieldErrors::default(),
    );
    Ok(
        layout::render(&st, &dash, "tools", "New custom tool", None, body)
            .await?
            .into_response(),
    )
}

/// `POST /tools/custom/new`.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    if let Some(input) = draft.parse(&mut errors) {
        match api::create(&st, &dash.org, input).await {
            Ok((tool, secret)) => {
                let x = Extras {
                    secret: Some(&secret),
                    test: None,
                    flash: Some("Tool created"),
                };
                let page = saved_page(&st, &dash, &tool, x).await?;
                return Ok((StatusCode::CREATED, page).into_response());
            }
            Err(e) => errors.api(e)?,
        }
    }
    let page = layout::render(
        &st,
        &dash,
        "tools",
        "New custom tool",
        None,
        form(&dash, "/tools/custom/new", &draft, &errors),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `?flash=`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FlashQuery {
    flash: Option<String>,
}

/// `GET /tools/custom/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<FlashQuery>,
) -> Result<Response, DashError> {
    let id = tool_id(&id)?;
    let t = st.store.get_custom_tool(&dash.org, &id).await?;
    let x = Extras {
        secret: None,
        test: None,
        flash: q.flash.as_deref(),
    };
    Ok(saved_page(&st, &dash, &t, x).await?.into_response())
}

/// `POST /tools/custom/{id}`.
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = tool_id(&id)?;
    let f = Fields::managing(&dash, &body)?;
    let draft = Draft::from_form(&f);
    let current = st.store.get_custom_tool(&dash.org, &id).await?;
    let mut errors = FieldErrors::default();
    if let Some(n) = draft.parse(&mut errors) {
        let patch = CustomToolPatch {
            name: Some(n.name),
            description: Some(n.description),
            parameters: Some(
                n.parameters
                    .unwrap_or_else(switchboard_domain::custom_tool::empty_schema),
            ),
            url: Some(n.url),
            method: Some(n.method),
            headers: Some(n.headers),
            timeout_ms: Some(n.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
            speak_while_waiting: Some(n.speak_while_waiting),
            waiting_message: Some(n.waiting_message),
        };
        match api::update(&st, &dash.org, &id, patch).await {
            Ok(t) => {
                return Ok(redirect_with_flash(
                    &format!("/tools/custom/{}", t.id),
                    "Tool saved",
                ))
            }
            Err(e) => errors.api(e)?,
        }
    }
    let x = Extras {
        secret: None,
        test: None,
        flash: None,
    };
    let page = tool_page(&st, &dash, &current, &draft, &errors, x).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /tools/custom/{id}/test` (admins): runs the tool and shows what the model would get.
pub async fn test(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = tool_id(&id)?;
    let f = Fields::managing(&dash, &body)?;
    let t = st.store.get_custom_tool(&dash.org, &id).await?;
    let raw = f.raw("arguments").to_owned();
    let parsed = if raw.trim().is_empty() {
        Ok(serde_json::json!({}))
    } else {
        serde_json::from_str::<Value>(&raw)
            .map_err(|e| format!("The arguments are not valid JSON: {e}"))
    };
    let actor = format!("user:{}", dash.session.user.id);
    let outcome = match parsed {
        Ok(args) => api::run_test(&st, &dash.org, &id, Some(args), &actor)
            .await
            .map_err(|e| e.message),
        Err(e) => Err(e),
    };
    let x = Extras {
        secret: None,
        test: Some((&raw, outcome.as_ref().map_err(String::as_str))),
        flash: None,
    };
    Ok(saved_page(&st, &dash, &t, x).await?.into_response())
}

/// `POST /tools/custom/{id}/rotate` (admins): shows the new secret once.
pub async fn rotate(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = tool_id(&id)?;
    Fields::managing(&dash, &body)?;
    let (t, secret) = api::rotate(&st.store, &dash.org, &id)
        .await
        .map_err(|e| match e.status {
            StatusCode::NOT_FOUND => DashError::NotFound,
            _ => DashError::Internal(e.message),
        })?;
    let x = Extras {
        secret: Some(&secret),
        test: None,
        flash: Some("Secret rotated; the previous one keeps signing for 24 hours"),
    };
    Ok(saved_page(&st, &dash, &t, x).await?.into_response())
}

/// `POST /tools/custom/{id}/delete` (admins); refused with the agents' names while in use.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = tool_id(&id)?;
    Fields::managing(&dash, &body)?;
    match st.store.delete_custom_tool(&dash.org, &id).await {
        Ok(()) => Ok(redirect_with_flash("/tools", "Tool deleted")),
        Err(switchboard_store::StoreError::Conflict(m)) => {
            Ok(redirect_with_flash(&format!("/tools/custom/{id}"), &m))
        }
        Err(e) => Err(e.into()),
    }
}
