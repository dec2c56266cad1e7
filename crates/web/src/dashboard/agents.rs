//! `/agents`: list, create and edit with errors beside each field, delete, and "Try it".

use super::layout::{self, field, time};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::agent::{
    Agent, AgentPatch, AnalysisField, NewAgent, TurnDetection, VoicemailMode, BUILTIN_TOOLS,
    DEFAULT_MAX_CALL_SECONDS, DEFAULT_MODEL, DEFAULT_VOICE, VOICES,
};
use switchboard_domain::entities::Cursor;
use switchboard_domain::ids::AgentId;
use switchboard_domain::transfer::TransferTarget;
use switchboard_store::StoreError;

/// `?flash=` after a redirect, `?cursor=` for paging.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    flash: Option<String>,
}

/// `GET /agents`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_agents(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if dash.can_manage() { p { a.button.primary #new-agent href="/agents/new" { "New agent" } } }
        div.table-wrap {
            table.list #agents {
                thead { tr { th { "Name" } th { "Voice" } th { "Model" } th { "Tools" } th { "Updated" } } }
                tbody {
                    @for a in &page.data {
                        tr { td { a href={ "/agents/" (a.id) } { (a.name) } } td { (a.voice) } td { (a.model) } td { (a.tools.join(", ")) } td { (time(a.updated_at)) } }
                    }
                    @if page.data.is_empty() { tr { td colspan="5" .empty { "No agents yet." } } }
                }
            }
        }
        (layout::pager("/agents", &[], page.next_cursor.as_deref()))
    };
    Ok(layout::render(&st, &dash, "agents", "Agents", None, body)
        .await?
        .into_response())
}

/// What the form shows: the stored agent, or what was typed.
struct Draft {
    name: String,
    instructions: String,
    greeting: String,
    voice: String,
    model: String,
    chat_model: String,
    language: String,
    temperature: String,
    vad: String,
    threshold: String,
    silence_ms: String,
    eagerness: String,
    tools: Vec<String>,
    transfer_number: String,
    max_seconds: String,
    analysis_fields: String,
    voicemail: String,
    voicemail_message: String,
    record: bool,
}

impl Draft {
    fn empty() -> Draft {
        Draft {
            name: String::new(),
            instructions: String::new(),
            greeting: String::new(),
            voice: DEFAULT_VOICE.into(),
            model: DEFAULT_MODEL.into(),
            chat_model: String::new(),
            language: String::new(),
            temperature: String::new(),
            vad: "server_vad".into(),
            threshold: String::new(),
            silence_ms: String::new(),
            eagerness: String::new(),
            tools: vec![],
            transfer_number: String::new(),
            max_seconds: DEFAULT_MAX_CALL_SECONDS.to_string(),
            analysis_fields: "[]".into(),
            voicemail: VoicemailMode::Hangup.as_str().into(),
            voicemail_message: String::new(),
            record: false,
        }
    }

    fn of(a: &Agent) -> Draft {
        let (vad, threshold, silence_ms, eagerness) = match &a.turn_detection {
            TurnDetection::ServerVad {
                threshold,
                silence_duration_ms,
                ..
            } => (
                "server_vad",
                threshold.map(|t| t.to_string()).unwrap_or_default(),
                silence_duration_ms
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                String::new(),
            ),
            TurnDetection::SemanticVad { eagerness } => (
                "semantic_vad",
                String::new(),
                String::new(),
                eagerness.clone().unwrap_or_default(),
            ),
        };
        Draft {
            name: a.name.clone(),
            instructions: a.instructions.clone(),
            greeting: a.greeting.clone().unwrap_or_default(),
            voice: a.voice.clone(),
            model: a.model.clone(),
            chat_model: a.chat_model.clone().unwrap_or_default(),
            language: a.language.clone().unwrap_or_default(),
            temperature: a.temperature.map(|t| t.to_string()).unwrap_or_default(),
            vad: vad.into(),
            threshold,
            silence_ms,
            eagerness,
            tools: a.tools.clone(),
            transfer_number: a
                .transfer_number
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            max_seconds: a.max_call_duration_seconds.to_string(),
            analysis_fields: serde_json::to_string_pretty(&a.analysis_fields)
                .unwrap_or_else(|_| "[]".into()),
            voicemail: a.voicemail.as_str().into(),
            voicemail_message: a.voicemail_message.clone().unwrap_or_default(),
            record: a.record,
        }
    }

    fn from_form(f: &Fields) -> Draft {
        Draft {
            name: f.raw("name").to_owned(),
            instructions: f.raw("instructions").to_owned(),
            greeting: f.raw("greeting").to_owned(),
            voice: f.raw("voice").trim().to_owned(),
            model: f.raw("model").trim().to_owned(),
            chat_model: f.raw("chat_model").trim().to_owned(),
            language: f.raw("language").trim().to_owned(),
            temperature: f.raw("temperature").trim().to_owned(),
            vad: f.raw("vad").trim().to_owned(),
            threshold: f.raw("threshold").trim().to_owned(),
            silence_ms: f.raw("silence_duration_ms").trim().to_owned(),
            eagerness: f.raw("eagerness").trim().to_owned(),
            tools: f.all("tools"),
            transfer_number: f.raw("transfer_number").trim().to_owned(),
            max_seconds: f.raw("max_call_duration_seconds").trim().to_owned(),
            analysis_fields: f.raw("analysis_fields").to_owned(),
            voicemail: f.raw("voicemail").trim().to_owned(),
            voicemail_message: f.raw("voicemail_message").to_owned(),
            record: f.checked("record"),
        }
    }

    /// Parses the typed values; every problem found is recorded beside its field.
    fn parse(&self, errors: &mut FieldErrors) -> Option<NewAgent> {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let temperature = match self.temperature.as_str() {
            "" => None,
            t => match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    errors.add("temperature", "must be a number between 0 and 2");
                    None
                }
            },
        };
        let turn_detection = match self.vad.as_str() {
            "" | "server_vad" => {
                let threshold = match self.threshold.as_str() {
                    "" => None,
                    t => t.parse::<f64>().ok().or_else(|| {
                        errors.add(
                            "turn_detection",
                            "threshold must be a number between 0 and 1",
                        );
                        None
                    }),
                };
                let silence = match self.silence_ms.as_str() {
                    "" => None,
                    t => t.parse::<i64>().ok().or_else(|| {
                        errors.add(
                            "turn_detection",
                            "silence must be a whole number of milliseconds",
                        );
                        None
                    }),
                };
                TurnDetection::ServerVad {
                    threshold,
                    prefix_padding_ms: None,
                    silence_duration_ms: silence,
                }
            }
            "semantic_vad" => TurnDetection::SemanticVad {
                eagerness: opt(&self.eagerness),
            },
            _ => {
                errors.add("turn_detection", "choose server VAD or semantic VAD");
                TurnDetection::default()
            }
        };
        let transfer_number = match self.transfer_number.as_str() {
            "" => None,
            n => match TransferTarget::parse(n) {
                Ok(p) => Some(p),
                Err(m) => {
                    errors.add("transfer_number", m);
                    None
                }
            },
        };
        let max_seconds = match self.max_seconds.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) if self.max_seconds.is_empty() => None,
            Err(_) => {
                errors.add(
                    "max_call_duration_seconds",
                    "must be a whole number of seconds between 30 and 14400",
                );
                None
            }
        };
        let analysis_fields = match self.analysis_fields.trim() {
            "" => Some(vec![]),
            t => match serde_json::from_str::<Vec<AnalysisField>>(t) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.add(
                        "analysis_fields",
                        format!("must be a JSON list of {{\"name\", \"type\", \"description\", \"options\"?}}: {e}"),
                    );
                    None
                }
            },
        };
        let voicemail = VoicemailMode::parse(&self.voicemail).unwrap_or_else(|| {
            errors.add("voicemail", "choose hang up or leave a message");
            VoicemailMode::Hangup
        });
        if !errors.is_empty() {
            return None;
        }
        Some(NewAgent {
            name: self.name.trim().to_owned(),
            instructions: self.instructions.trim().to_owned(),
            greeting: opt(&self.greeting),
            voice: opt(&self.voice),
            model: opt(&self.model),
            language: opt(&self.language),
            temperature,
            turn_detection: Some(turn_detection),
            tools: Some(self.tools.clone()),
            transfer_number,
            max_call_duration_seconds: max_seconds,
            analysis_fields,
            business_hours: None,
            chat_model: opt(&self.chat_model),
            voicemail: Some(voicemail),
            voicemail_message: opt(&self.voicemail_message),
            record: Some(self.record),
            // Edited on the agent page's call control card.
            handoffs: None,
            digits: None,
            transfer_caller_id: None,
            transfer_message: None,
        })
    }
}

/// The organization's custom tools and MCP servers (`mcp:<name>`), offered beside the
/// built-ins.
async fn custom_tool_names(st: &AppState, dash: &Dash) -> Result<Vec<String>, DashError> {
    let mut names: Vec<String> = st
        .store
        .list_custom_tools(&dash.org)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.extend(
        st.store
            .list_mcp_servers(&dash.org)
            .await?
            .into_iter()
            .map(|s| format!("{}{}", switchboard_domain::mcp_server::AGENT_PREFIX, s.name)),
    );
    Ok(names)
}

fn form(
    dash: &Dash,
    action: &str,
    d: &Draft,
    errors: &FieldErrors,
    read_only: bool,
    custom: &[String],
) -> Markup {
    let mut voices: Vec<&str> = VOICES.to_vec();
    if !voices.contains(&d.voice.as_str()) && !d.voice.is_empty() {
        voices.push(&d.voice);
    }
    html! {
        form.agent-form method="post" action=(action) novalidate #agent-form {
            (layout::csrf(dash))
            @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was saved. Correct the fields marked below." } }
            fieldset disabled[read_only] {
                (field("Name", "name", errors, None, html! { input #name name="name" value=(d.name) maxlength="200"; }))
                (field("Instructions", "instructions", errors, Some("The system prompt: who the agent is and what it may do."), html! {
                    textarea #instructions name="instructions" rows="8" { (d.instructions) }
                }))
                (field("Greeting", "greeting", errors, Some("Said first on a call; leave empty to let the caller speak first."), html! {
                    input #greeting name="greeting" value=(d.greeting);
                }))
                div.row {
                    (field("Voice", "voice", errors, None, html! {
                        select #voice name="voice" { @for v in &voices { option value=(v) selected[*v == d.voice] { (v) } } }
                    }))
                    (field("Voice model", "model", errors, None, html! { input #model name="model" value=(d.model); }))
                    (field("Text model", "chat_model", errors, Some("Empty: the server's default."), html! { input #chat_model name="chat_model" value=(d.chat_model); }))
                }
                div.row {
                    (field("Language", "language", errors, Some("BCP 47, e.g. en-US"), html! { input #language name="language" value=(d.language); }))
                    (field("Temperature", "temperature", errors, Some("0 to 2"), html! { input #temperature name="temperature" inputmode="decimal" value=(d.temperature); }))
                    (field("Max call duration (s)", "max_call_duration_seconds", errors, Some("30 to 14400"), html! {
                        input #max_call_duration_seconds name="max_call_duration_seconds" inputmode="numeric" value=(d.max_seconds);
                    }))
                }
                div.row {
                    (field("When a machine answers", "voicemail", errors, Some("Outbound calls."), html! {
                        select #voicemail name="voicemail" {
                            option value="hangup" selected[d.voicemail == "hangup"] { "Hang up" }
                            option value="leave_message" selected[d.voicemail == "leave_message"] { "Leave a message" }
                        }
                    }))
                    (field("Voicemail message", "voicemail_message", errors, Some("Said after the beep; {{variables}} are filled."), html! {
                        input #voicemail_message name="voicemail_message" value=(d.voicemail_message);
                    }))
                }
                label.check { input #record type="checkbox" name="record" checked[d.record]; " Record calls (both directions; tell callers where the law requires it)" }
                (field("Turn detection", "turn_detection", errors, Some("Server VAD: threshold 0-1 and silence in ms. Semantic VAD: eagerness low/medium/high/auto."), html! {
                    div.row {
                        select #vad name="vad" {
                            option value="server_vad" selected[d.vad == "server_vad"] { "Server VAD" }
                            option value="semantic_vad" selected[d.vad == "semantic_vad"] { "Semantic VAD" }
                        }
                        input name="threshold" placeholder="threshold" value=(d.threshold) aria-label="Threshold";
                        input name="silence_duration_ms" placeholder="silence ms" value=(d.silence_ms) aria-label="Silence (ms)";
                        input name="eagerness" placeholder="eagerness" value=(d.eagerness) aria-label="Eagerness";
                    }
                }))
                (field("Tools", "tools", errors, None, html! {
                    div.checks #tools {
                        @for t in BUILTIN_TOOLS {
                            label.check { input type="checkbox" name="tools" value=(t) checked[d.tools.iter().any(|x| x == t)]; " " code { (t) } }
                        }
                        @for t in custom {
                            label.check.custom-tool { input type="checkbox" name="tools" value=(t) checked[d.tools.iter().any(|x| x == t)]; " " code { (t) } " " span.muted { "(custom)" } }
                        }
                    }
                }))
                (field("Transfer number", "transfer_number", errors, Some("E.164 or a SIP URI (sip:desk@pbx.example.com); needed by transfer_call."), html! {
                    input #transfer_number name="transfer_number" value=(d.transfer_number) placeholder="+15555550100";
                }))
                (field("Analysis fields", "analysis_fields", errors, Some(r#"JSON, e.g. [{"name": "budget", "type": "number", "description": "Budget in dollars"}]"#), html! {
                    textarea #analysis_fields name="analysis_fields" rows="4" spellcheck="false" { (d.analysis_fields) }
                }))
                button.primary type="submit" #save { "Save" }
            }
        }
    }
}

/// `GET /agents/new` (admins).
pub async fn new_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    let custom = custom_tool_names(&st, &dash).await?;
    let body = form(
        &dash,
        "/agents/new",
        &Draft::empty(),
        &FieldErrors::default(),
        false,
        &custom,
    );
    Ok(
        layout::render(&st, &dash, "agents", "New agent", None, body)
            .await?
            .into_response(),
    )
}

async fn invalid(
    st: &AppState,
    dash: &Dash,
    action: &str,
    title: &str,
    d: &Draft,
    errors: &FieldErrors,
) -> Result<Response, DashError> {
    let custom = custom_tool_names(st, dash).await?;
    let page = layout::render(
        st,
        dash,
        "agents",
        title,
        None,
        form(dash, action, d, errors, false, &custom),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /agents/new`.
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    if let Some(input) = draft.parse(&mut errors) {
        match st.store.create_agent(&dash.org, input).await {
            Ok(a) => {
                tracing::info!(org_id = %dash.org, agent_id = %a.id, "agent created in the dashboard");
                return Ok(
                    Redirect::to(&format!("/agents/{}?flash=Agent+created", a.id)).into_response(),
                );
            }
            Err(StoreError::Invalid(v)) => errors.validation(&v),
            Err(e) => return Err(e.into()),
        }
    }
    invalid(&st, &dash, "/agents/new", "New agent", &draft, &errors).await
}

fn try_panel(a: &Agent) -> Markup {
    html! {
        section.card.try #try-it data-agent=(a.id) {
            h2 { "Try it" }
            p.muted { "Chat with this agent over the test (web) channel. Tools run for real inside this organization." }
            ol.timeline #try-log {}
            form #try-form {
                input #try-input name="message" placeholder="Say something…" autocomplete="off" required maxlength="2000";
                button.primary type="submit" { "Send" }
            }
            p.field-error #try-error hidden {}
        }
    }
}

async fn edit_page(
    st: &AppState,
    dash: &Dash,
    a: &Agent,
    d: &Draft,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<maud::Markup, DashError> {
    let action = format!("/agents/{}", a.id);
    let custom = custom_tool_names(st, dash).await?;
    let calls = super::agent_calls::card(st, dash, a, None, &FieldErrors::default()).await?;
    let body = html! {
        (layout::flash(flash))
        div.columns {
            section {
                (form(dash, &action, d, errors, !dash.can_manage(), &custom))
                (calls)
                @if dash.can_manage() {
                    (layout::action_button(dash, &format!("/agents/{}/delete", a.id), "Delete agent", Some("Delete this agent? Numbers routed to it will stop answering.")))
                }
            }
            @if dash.can_manage() { (try_panel(a)) }
        }
    };
    layout::render(st, dash, "agents", &a.name, None, body).await
}

/// `GET /agents/{id}`: the edit form (read-only for members) and "Try it".
pub async fn edit_form(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let a = st.store.get_agent(&dash.org, &id).await?;
    Ok(edit_page(
        &st,
        &dash,
        &a,
        &Draft::of(&a),
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /agents/{id}`: saves every field at once (all or nothing).
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let current = st.store.get_agent(&dash.org, &id).await?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    if let Some(n) = draft.parse(&mut errors) {
        let patch = AgentPatch {
            name: Some(n.name),
            instructions: Some(n.instructions),
            greeting: Some(n.greeting),
            voice: Some(n.voice.unwrap_or_else(|| DEFAULT_VOICE.into())),
            model: Some(n.model.unwrap_or_else(|| DEFAULT_MODEL.into())),
            language: Some(n.language),
            temperature: Some(n.temperature),
            turn_detection: n.turn_detection,
            tools: n.tools,
            transfer_number: Some(n.transfer_number),
            max_call_duration_seconds: Some(
                n.max_call_duration_seconds
                    .unwrap_or(DEFAULT_MAX_CALL_SECONDS),
            ),
            analysis_fields: n.analysis_fields,
            business_hours: None,
            chat_model: Some(n.chat_model),
            voicemail: n.voicemail,
            voicemail_message: Some(n.voicemail_message),
            record: n.record,
            handoffs: None,
            digits: None,
            transfer_caller_id: None,
            transfer_message: None,
        };
        match st.store.update_agent(&dash.org, &id, patch).await {
            Ok(_) => return Ok(Redirect::to(&format!("/agents/{id}?flash=Saved")).into_response()),
            Err(StoreError::Invalid(v)) => errors.validation(&v),
            Err(e) => return Err(e.into()),
        }
    }
    let page = edit_page(&st, &dash, &current, &draft, &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /agents/{id}/delete`.
pub async fn delete(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.delete_agent(&dash.org, &id).await?;
    Ok(Redirect::to("/agents?flash=Agent+deleted").into_response())
}

/// The "Try it" request (JSON, CSRF header).
#[derive(Debug, Deserialize)]
pub struct TryMessage {
    session_id: String,
    message: String,
}

/// `POST /agents/{id}/try` (admins): one turn of the web test chat. Its tools act for real
/// inside this organization, so members, who only read, cannot use it.
pub async fn try_it(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Json(body): Json<TryMessage>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    match st
        .messaging
        .web_chat(&dash.org, &id, &body.session_id, &body.message)
        .await
    {
        Ok(turn) => Ok(Json(turn).into_response()),
        // The panel's script reads the API's error body.
        Err(e) => Ok(crate::error::ApiError::from(e).into_response()),
    }
}
