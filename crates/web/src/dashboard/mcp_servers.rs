//! `/tools/mcp/...`: the organization's external MCP servers — listed on the tools page with
//! their last failure, registered and edited (the header value never shown), checked live
//! (the tools the server offers now and which the allow-list lets agents use), deleted.

use super::layout::{self, badge, field, time};
use super::{redirect_with_flash, Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use switchboard_domain::custom_tool::REDACTED;
use switchboard_domain::ids::McpServerId;
use switchboard_domain::mcp_server::{McpAuth, McpServer, McpServerPatch, NewMcpServer};
use switchboard_domain::{Secret, Timestamp, ValidationError};
use switchboard_store::StoreError;

/// The MCP servers card of `/tools`.
pub(crate) async fn card(st: &AppState, dash: &Dash) -> Result<Markup, DashError> {
    let servers = st.store.list_mcp_servers(&dash.org).await?;
    Ok(html! {
        section.card #mcp-servers {
            h2 { "MCP servers" }
            p.muted { "Other systems' MCP servers whose tools your agents may use: tick " code { "mcp:<name>" } " in an agent's tools." }
            div.table-wrap {
                table.list {
                    thead { tr { th { "Name" } th { "Endpoint" } th { "Allowed tools" } th { "Status" } } }
                    tbody {
                        @for s in &servers {
                            tr {
                                td { a href={ "/tools/mcp/" (s.id) } { code { (s.name) } } }
                                td { small { (s.url) } }
                                td { small { (s.allowed_tools.join(", ")) } }
                                td { (status(s)) }
                            }
                        }
                        @if servers.is_empty() { tr { td colspan="4" .empty { "No MCP servers yet." } } }
                    }
                }
            }
            @if dash.can_manage() { a.button href="/tools/mcp/new" #new-mcp-server { "Add an MCP server" } }
        }
    })
}

fn status(s: &McpServer) -> Markup {
    html! {
        @match (&s.last_error, s.last_error_at) {
            (Some(e), Some(at)) => { (badge("failed")) " " small.muted { "unreachable at " (time(at)) ": " (e) } }
            _ => { (badge("ok")) }
        }
    }
}

struct Draft {
    name: String,
    url: String,
    /// `none`, `header` or `oauth`.
    auth_type: String,
    header_name: String,
    header_value: String,
    scopes: String,
    client_id: String,
    client_secret: String,
    allowed: String,
}

impl Draft {
    fn of(s: &McpServer) -> Draft {
        let mut d = Draft {
            name: s.name.clone(),
            url: s.url.clone(),
            auth_type: "none".into(),
            header_name: String::new(),
            header_value: String::new(),
            scopes: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            allowed: s.allowed_tools.join("\n"),
        };
        match &s.auth {
            McpAuth::Header { name, .. } => {
                d.auth_type = "header".into();
                d.header_name = name.clone();
                d.header_value = REDACTED.to_owned();
            }
            McpAuth::Oauth {
                scopes,
                client_id,
                client_secret,
            } => {
                d.auth_type = "oauth".into();
                d.scopes = scopes.join(" ");
                d.client_id = client_id.clone().unwrap_or_default();
                if client_secret.is_some() {
                    d.client_secret = REDACTED.to_owned();
                }
            }
            McpAuth::None => {}
        }
        d
    }

    fn from_form(f: &Fields) -> Draft {
        let header_name = f.raw("header_name").trim().to_owned();
        // Without a choice (older forms), a header name means header authentication.
        let auth_type = match f.get("auth_type") {
            Some(t) => t.to_owned(),
            None if !header_name.is_empty() => "header".into(),
            None => "none".into(),
        };
        Draft {
            name: f.raw("name").trim().to_owned(),
            url: f.raw("url").trim().to_owned(),
            auth_type,
            header_name,
            header_value: f.raw("header_value").trim().to_owned(),
            scopes: f.raw("scopes").trim().to_owned(),
            client_id: f.raw("client_id").trim().to_owned(),
            client_secret: f.raw("client_secret").trim().to_owned(),
            allowed: f.raw("allowed_tools").to_owned(),
        }
    }

    /// The credentials chosen; a header filled in while "None" is chosen is refused rather
    /// than silently dropped.
    fn auth(&self) -> Result<McpAuth, ValidationError> {
        if self.auth_type == "none" && !self.header_name.is_empty() {
            return Err(ValidationError::new(
                "header",
                "choose “A header” under Authentication to use this header, or clear it",
            ));
        }
        Ok(match self.auth_type.as_str() {
            "header" => McpAuth::Header {
                name: self.header_name.clone(),
                value: Secret::new(self.header_value.clone()),
            },
            "oauth" => McpAuth::Oauth {
                scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
                client_id: Some(self.client_id.clone()).filter(|c| !c.is_empty()),
                client_secret: Some(self.client_secret.clone())
                    .filter(|c| !c.is_empty())
                    .map(Secret::new),
            },
            _ => McpAuth::None,
        })
    }

    fn allowed(&self) -> Vec<String> {
        self.allowed
            .split(['\n', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

fn form(dash: &Dash, action: &str, d: &Draft, errors: &FieldErrors) -> Markup {
    html! {
        form.agent-form method="post" action=(action) novalidate #mcp-form {
            (layout::csrf(dash))
            fieldset disabled[!dash.can_manage()] {
                (field("Name", "name", errors, Some("Lowercase letters, digits and _: its tools appear as mcp__<name>__<tool>."), html! {
                    input #name name="name" value=(d.name) placeholder="crm";
                }))
                (field("Endpoint", "url", errors, Some("The server's Streamable HTTP URL."), html! {
                    input #url name="url" type="url" value=(d.url) placeholder="https://crm.example.com/mcp";
                }))
                (field("Authentication", "auth", errors, Some("OAuth: save, then Connect to sign in at the server's authorization server."), html! {
                    select #auth_type name="auth_type" {
                        option value="none" selected[d.auth_type == "none"] { "None" }
                        option value="header" selected[d.auth_type == "header"] { "A header (API key)" }
                        option value="oauth" selected[d.auth_type == "oauth"] { "OAuth" }
                    }
                }))
                (field("Header", "header", errors, Some("With a header: e.g. Authorization with its value. The value is a secret and never shown; keep [redacted] to keep it."), html! {
                    div.row {
                        input #header_name name="header_name" value=(d.header_name) placeholder="Authorization" aria-label="Header name";
                        input #header_value name="header_value" value=(d.header_value) placeholder="Bearer …" aria-label="Header value";
                    }
                }))
                (field("OAuth", "oauth", errors, Some("With OAuth, all optional: scopes (space-separated; empty asks for what the server advertises), and a client id and secret registered with the authorization server (empty registers Switchboard automatically). The secret is never shown."), html! {
                    div.row {
                        input #scopes name="scopes" value=(d.scopes) placeholder="Scopes" aria-label="Scopes";
                        input #client_id name="client_id" value=(d.client_id) placeholder="Client id" aria-label="Client id";
                        input #client_secret name="client_secret" value=(d.client_secret) placeholder="Client secret" aria-label="Client secret";
                    }
                }))
                (field("Allowed tools", "allowed_tools", errors, Some("One per line; * allows every tool."), html! {
                    textarea #allowed_tools name="allowed_tools" rows="4" { (d.allowed) }
                }))
                @if dash.can_manage() { button.primary type="submit" #save { "Save" } }
            }
        }
    }
}

fn server_id(raw: &str) -> Result<McpServerId, DashError> {
    McpServerId::parse(raw).ok_or(DashError::NotFound)
}

fn errors_of(e: StoreError, errors: &mut FieldErrors) -> Result<(), DashError> {
    match e {
        StoreError::Invalid(v) => {
            let at = v
                .field
                .split(['.', '['])
                .next()
                .unwrap_or("name")
                .to_owned();
            errors.add(&at, v.message);
            Ok(())
        }
        StoreError::Conflict(m) => {
            errors.add("name", m);
            Ok(())
        }
        other => Err(other.into()),
    }
}

/// `GET /tools/mcp/new` (admins).
pub async fn new_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    let d = Draft {
        name: String::new(),
        url: String::new(),
        auth_type: "none".into(),
        header_name: String::new(),
        header_value: String::new(),
        scopes: String::new(),
        client_id: String::new(),
        client_secret: String::new(),
        allowed: String::new(),
    };
    let body = form(&dash, "/tools/mcp/new", &d, &FieldErrors::default());
    Ok(
        layout::render(&st, &dash, "tools", "Add an MCP server", None, body)
            .await?
            .into_response(),
    )
}

/// `POST /tools/mcp/new`.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let d = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    let created = d.auth().and_then(|auth| {
        let input = NewMcpServer {
            name: d.name.clone(),
            url: d.url.clone(),
            transport: None,
            auth: Some(auth),
            allowed_tools: d.allowed(),
        };
        McpServer::create(input, st.tools_allow_private, Timestamp::now())
    });
    match created {
        Ok(s) => match st.store.create_mcp_server(&dash.org, &s).await {
            Ok(()) => {
                tracing::info!(org_id = %dash.org, server = %s.name, "MCP server registered in the dashboard");
                return Ok(redirect_with_flash(
                    &format!("/tools/mcp/{}", s.id),
                    "Server added",
                ));
            }
            Err(e) => errors_of(e, &mut errors)?,
        },
        Err(v) => errors_of(StoreError::Invalid(v), &mut errors)?,
    }
    let page = layout::render(
        &st,
        &dash,
        "tools",
        "Add an MCP server",
        None,
        form(&dash, "/tools/mcp/new", &d, &errors),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `?flash=`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FlashQuery {
    flash: Option<String>,
}

async fn page(
    st: &AppState,
    dash: &Dash,
    s: &McpServer,
    d: &Draft,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<Markup, DashError> {
    // The live check: what the server offers now.
    let live = st
        .messaging
        .registry()
        .mcp_server_tools(&st.store, &dash.org, s)
        .await;
    let body = html! {
        (layout::flash(flash))
        div.columns {
            section {
                (form(dash, &format!("/tools/mcp/{}", s.id), d, errors))
                (super::mcp_oauth::card(dash, s))
                @if dash.can_manage() {
                    (layout::action_button(dash, &format!("/tools/mcp/{}/delete", s.id), "Delete server", Some("Remove this MCP server?")))
                }
            }
            section.card #mcp-check {
                h2 { "What it offers now" }
                @match &live {
                    Ok(tools) => {
                        p { (badge("ok")) " " (tools.len()) " tools" }
                        div.table-wrap { table.list #mcp-tools {
                            thead { tr { th { "Tool" } th { "Agents may use it" } th { "The model sees" } } }
                            tbody {
                                @for t in tools {
                                    tr {
                                        td { code { (t["name"].as_str().unwrap_or_default()) } br; small.muted { (t["description"].as_str().unwrap_or_default()) } }
                                        td { @if t["allowed"] == true { (badge("allowed")) } @else { span.muted { "no" } } }
                                        td { code { (t["model_name"].as_str().unwrap_or("—")) } }
                                    }
                                }
                            }
                        } }
                    }
                    Err(why) => { p #mcp-unavailable { (badge("failed")) " " (why) } }
                }
                @if let (Some(e), Some(at)) = (&s.last_error, s.last_error_at) {
                    p.muted { "Last failure in a conversation, " (time(at)) ": " (e) }
                }
            }
        }
    };
    layout::render(st, dash, "tools", &s.name, None, body).await
}

/// `GET /tools/mcp/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> Result<Response, DashError> {
    let id = server_id(&id)?;
    let s = st.store.get_mcp_server(&dash.org, &id).await?;
    Ok(page(
        &st,
        &dash,
        &s,
        &Draft::of(&s),
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /tools/mcp/{id}`.
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = server_id(&id)?;
    let f = Fields::managing(&dash, &body)?;
    let d = Draft::from_form(&f);
    let allow = st.tools_allow_private;
    let mut errors = FieldErrors::default();
    let updated = match d.auth() {
        Ok(auth) => {
            let patch = McpServerPatch {
                name: Some(d.name.clone()),
                url: Some(d.url.clone()),
                auth: Some(auth),
                allowed_tools: Some(d.allowed()),
            };
            st.store
                .update_mcp_server(&dash.org, &id, |s| s.apply(patch, allow, Timestamp::now()))
                .await
        }
        Err(v) => Err(StoreError::Invalid(v)),
    };
    match updated {
        Ok(s) => {
            return Ok(redirect_with_flash(
                &format!("/tools/mcp/{}", s.id),
                "Server saved",
            ))
        }
        Err(e) => errors_of(e, &mut errors)?,
    }
    let s = st.store.get_mcp_server(&dash.org, &id).await?;
    let p = page(&st, &dash, &s, &d, &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
}

/// `POST /tools/mcp/{id}/delete` (admins); refused with the agents' names while in use.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = server_id(&id)?;
    Fields::managing(&dash, &body)?;
    match st.store.delete_mcp_server(&dash.org, &id).await {
        Ok(()) => Ok(redirect_with_flash("/tools", "Server removed")),
        Err(StoreError::Conflict(m)) => Ok(redirect_with_flash(&format!("/tools/mcp/{id}"), &m)),
        Err(e) => Err(e.into()),
    }
}
