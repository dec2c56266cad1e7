//! The agent form: what it shows (the stored agent, or what was typed), how its fields are
//! read and checked into a `NewAgent`, and how it is drawn.

use super::layout::{self, field};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use maud::{html, Markup};
use switchboard_domain::agent::{
    Agent, AnalysisField, ContactScope, NewAgent, TurnDetection, VoicemailMode, BUILTIN_TOOLS,
    DEFAULT_MAX_CALL_SECONDS, DEFAULT_MODEL, DEFAULT_VOICE, VOICES,
};
use switchboard_domain::ids::KnowledgeSourceId;
use switchboard_domain::schedule::{parse_hhmm, BusinessHours, Closure, DAY_NAMES, MAX_CLOSURES};
use switchboard_domain::transfer::TransferTarget;

/// What the form shows: the stored agent, or what was typed.
pub(super) struct Draft {
    name: String,
    instructions: String,
    greeting: String,
    voice: String,
    model: String,
    chat_model: String,
    retell_agent_id: String,
    language: String,
    temperature: String,
    vad: String,
    threshold: String,
    silence_ms: String,
    eagerness: String,
    tools: Vec<String>,
    knowledge: Vec<String>,
    transfer_number: String,
    max_seconds: String,
    analysis_fields: String,
    voicemail: String,
    voicemail_message: String,
    record: bool,
    contact_scope: String,
    hours: HoursDraft,
    pub(super) pipeline: super::agent_pipeline::PipelineDraft,
}

/// The business-hours part of the form (the appointment tools and the calendar use it).
pub(super) struct HoursDraft {
    /// False for a form without the hours (a client of an older page): they stay as they are.
    present: bool,
    timezone: String,
    days: Vec<String>,
    open: String,
    close: String,
    slot_minutes: String,
    /// One closure per line: `2026-12-24`, `2026-12-24..2026-12-26 Christmas`.
    closures: String,
}

impl HoursDraft {
    fn of(h: &BusinessHours) -> HoursDraft {
        HoursDraft {
            present: true,
            timezone: h.timezone.clone(),
            days: h.days.clone(),
            open: h.open.clone(),
            close: h.close.clone(),
            slot_minutes: h.slot_minutes.to_string(),
            closures: h
                .closures
                .iter()
                .map(Closure::describe)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn from_form(f: &Fields) -> HoursDraft {
        HoursDraft {
            present: f.0.contains_key("hours_timezone"),
            timezone: f.raw("hours_timezone").trim().to_owned(),
            days: f.all("hours_days"),
            open: f.raw("hours_open").trim().to_owned(),
            close: f.raw("hours_close").trim().to_owned(),
            slot_minutes: f.raw("slot_minutes").trim().to_owned(),
            closures: f.raw("closures").to_owned(),
        }
    }

    /// Every problem beside its own input.
    fn parse(&self, errors: &mut FieldErrors) -> Option<BusinessHours> {
        if !self.present {
            return None;
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            errors.add("hours_timezone", "an IANA time zone such as Europe/Paris");
        }
        if self.days.is_empty() {
            errors.add("hours_days", "choose at least one open day");
        }
        let open = parse_hhmm(&self.open);
        let close = parse_hhmm(&self.close);
        if open.is_none() {
            errors.add("hours_open", "a time like 09:00");
        }
        if close.is_none() {
            errors.add("hours_close", "a time like 17:00");
        }
        if let (Some(o), Some(c)) = (open, close) {
            if c <= o {
                errors.add("hours_close", "must be later than the opening time");
            }
        }
        let slot = match self.slot_minutes.parse::<i64>() {
            Ok(m) if (5..=480).contains(&m) => Some(m),
            _ => {
                errors.add("slot_minutes", "a whole number of minutes, 5 to 480");
                None
            }
        };
        let mut closures = Vec::new();
        let mut bad = Vec::new();
        for line in self.closures.lines().filter(|l| !l.trim().is_empty()) {
            match Closure::parse_line(line) {
                Ok(c) => closures.push(c),
                Err(m) => bad.push(m),
            }
        }
        if !bad.is_empty() {
            errors.add("closures", bad.join("; "));
        } else if closures.len() > MAX_CLOSURES {
            errors.add("closures", format!("at most {MAX_CLOSURES} closures"));
        }
        let h = BusinessHours {
            timezone: self.timezone.clone(),
            days: self.days.clone(),
            open: self.open.clone(),
            close: self.close.clone(),
            slot_minutes: slot?,
            closures,
        };
        if let Err(v) = h.validate() {
            // Anything the checks above missed, beside the hours as a whole.
            errors.add("business_hours", format!("{}: {}", v.field, v.message));
        }
        Some(h)
    }
}

impl Draft {
    pub(super) fn empty() -> Draft {
        Draft {
            name: String::new(),
            instructions: String::new(),
            greeting: String::new(),
            voice: DEFAULT_VOICE.into(),
            model: DEFAULT_MODEL.into(),
            chat_model: String::new(),
            retell_agent_id: String::new(),
            language: String::new(),
            temperature: String::new(),
            vad: "server_vad".into(),
            threshold: String::new(),
            silence_ms: String::new(),
            eagerness: String::new(),
            tools: vec![],
            knowledge: vec![],
            transfer_number: String::new(),
            max_seconds: DEFAULT_MAX_CALL_SECONDS.to_string(),
            analysis_fields: "[]".into(),
            voicemail: VoicemailMode::Hangup.as_str().into(),
            voicemail_message: String::new(),
            record: false,
            contact_scope: ContactScope::Caller.as_str().into(),
            hours: HoursDraft::of(&BusinessHours::default()),
            pipeline: super::agent_pipeline::PipelineDraft::empty(),
        }
    }

    pub(super) fn of(a: &Agent) -> Draft {
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
            retell_agent_id: a.retell_agent_id.clone().unwrap_or_default(),
            language: a.language.clone().unwrap_or_default(),
            temperature: a.temperature.map(|t| t.to_string()).unwrap_or_default(),
            vad: vad.into(),
            threshold,
            silence_ms,
            eagerness,
            tools: a.tools.clone(),
            knowledge: a.knowledge.iter().map(|k| k.to_string()).collect(),
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
            contact_scope: a.contact_scope.as_str().into(),
            hours: HoursDraft::of(&a.business_hours),
            pipeline: super::agent_pipeline::PipelineDraft::of(a),
        }
    }

    /// Whether the form left the pipeline out (it is then kept as stored).
    pub(super) fn parse_keeps_pipeline(&self) -> bool {
        !self.pipeline.present()
    }

    pub(super) fn from_form(f: &Fields) -> Draft {
        Draft {
            name: f.raw("name").to_owned(),
            instructions: f.raw("instructions").to_owned(),
            greeting: f.raw("greeting").to_owned(),
            voice: f.raw("voice").trim().to_owned(),
            model: f.raw("model").trim().to_owned(),
            chat_model: f.raw("chat_model").trim().to_owned(),
            retell_agent_id: f.raw("retell_agent_id").trim().to_owned(),
            language: f.raw("language").trim().to_owned(),
            temperature: f.raw("temperature").trim().to_owned(),
            vad: f.raw("vad").trim().to_owned(),
            threshold: f.raw("threshold").trim().to_owned(),
            silence_ms: f.raw("silence_duration_ms").trim().to_owned(),
            eagerness: f.raw("eagerness").trim().to_owned(),
            tools: f.all("tools"),
            knowledge: f.all("knowledge"),
            transfer_number: f.raw("transfer_number").trim().to_owned(),
            max_seconds: f.raw("max_call_duration_seconds").trim().to_owned(),
            analysis_fields: f.raw("analysis_fields").to_owned(),
            voicemail: f.raw("voicemail").trim().to_owned(),
            voicemail_message: f.raw("voicemail_message").to_owned(),
            record: f.checked("record"),
            contact_scope: f.raw("contact_scope").trim().to_owned(),
            hours: HoursDraft::from_form(f),
            pipeline: super::agent_pipeline::PipelineDraft::from_form(f),
        }
    }

    /// Parses the typed values; every problem found is recorded beside its field. `current`
    /// is the stored agent an update changes (what the form does not show is kept).
    pub(super) fn parse(
        &self,
        current: Option<&Agent>,
        errors: &mut FieldErrors,
    ) -> Option<NewAgent> {
        let pipeline = self.pipeline.parse(current, errors);
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
        // A form without the field (an older page) keeps the safe default.
        let scope = match self.contact_scope.as_str() {
            "" => ContactScope::Caller.as_str(),
            s => s,
        };
        let contact_scope = ContactScope::parse(scope).unwrap_or_else(|| {
            errors.add("contact_scope", "choose the caller only or every contact");
            ContactScope::Caller
        });
        let business_hours = self.hours.parse(errors);
        let knowledge: Vec<KnowledgeSourceId> = self
            .knowledge
            .iter()
            .filter_map(|k| {
                let id = KnowledgeSourceId::parse(k);
                if id.is_none() {
                    errors.add("knowledge", "choose among the organization's sources");
                }
                id
            })
            .collect();
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
            knowledge: Some(knowledge),
            transfer_number,
            max_call_duration_seconds: max_seconds,
            analysis_fields,
            business_hours,
            chat_model: opt(&self.chat_model),
            retell_agent_id: opt(&self.retell_agent_id),
            voicemail: Some(voicemail),
            voicemail_message: opt(&self.voicemail_message),
            record: Some(self.record),
            contact_scope: Some(contact_scope),
            // Edited on the agent page's call control card.
            handoffs: None,
            digits: None,
            transfer_caller_id: None,
            transfer_message: None,
            transfer_mode: None,
            voice_pipeline: pipeline.as_ref().map(|p| p.voice_pipeline),
            stt: pipeline.as_ref().and_then(|p| p.stt.clone()),
            llm: pipeline.as_ref().and_then(|p| p.llm.clone()),
            tts: pipeline.and_then(|p| p.tts),
        })
    }
}

/// What the form offers besides the built-in tools.
pub(super) struct Choices {
    /// The organization's custom tools and MCP servers (`mcp:<name>`).
    pub tools: Vec<String>,
    /// Its knowledge sources: id and name.
    pub knowledge: Vec<(String, String)>,
}

/// The organization's custom tools, MCP servers and knowledge sources.
pub(super) async fn choices(st: &AppState, dash: &Dash) -> Result<Choices, DashError> {
    let knowledge = st
        .store
        .list_knowledge_sources(&dash.org)
        .await?
        .into_iter()
        .map(|k| (k.id.to_string(), k.name))
        .collect();
    Ok(Choices {
        tools: custom_tool_names(st, dash).await?,
        knowledge,
    })
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

pub(super) fn form(
    dash: &Dash,
    action: &str,
    d: &Draft,
    errors: &FieldErrors,
    read_only: bool,
    choices: &Choices,
) -> Markup {
    let custom = &choices.tools;
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
                    (field("Retell agent id", "retell_agent_id", errors, Some("When Retell runs the calls: its agent id. Point that agent's custom LLM at wss://<this server>/retell/llm and its webhook at /retell/webhook."), html! { input #retell_agent_id name="retell_agent_id" value=(d.retell_agent_id); }))
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
                (field("Contact data its tools may use", "contact_scope", errors, Some("The caller only: the contact, appointments, texts and calls of the person on the line (recommended for every agent the public can reach). Every contact: anyone who reaches this agent can ask about any contact and have them texted or called; use it only for internal, staff-facing agents."), html! {
                    select #contact_scope name="contact_scope" {
                        option value="caller" selected[d.contact_scope == "caller"] { "The caller only" }
                        option value="organization" selected[d.contact_scope == "organization"] { "Every contact (staff-facing agents only)" }
                    }
                }))
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
                (field("Knowledge", "knowledge", errors, Some("Documents it answers from with the search_knowledge tool, on calls and in texts."), html! {
                    div.checks #knowledge {
                        @for (id, name) in &choices.knowledge {
                            label.check { input type="checkbox" name="knowledge" value=(id) checked[d.knowledge.iter().any(|x| x == id)]; " " (name) }
                        }
                        @if choices.knowledge.is_empty() {
                            span.muted { "No sources yet: add documents under " a href="/knowledge" { "Knowledge" } "." }
                        }
                    }
                }))
                (field("Transfer number", "transfer_number", errors, Some("E.164 or a SIP URI (sip:desk@pbx.example.com); needed by transfer_call."), html! {
                    input #transfer_number name="transfer_number" value=(d.transfer_number) placeholder="+15555550100";
                }))
                (super::agent_pipeline::fields(&d.pipeline, errors))
                (hours_fields(&d.hours, errors))
                (field("Analysis fields", "analysis_fields", errors, Some(r#"JSON, e.g. [{"name": "budget", "type": "number", "description": "Budget in dollars"}]"#), html! {
                    textarea #analysis_fields name="analysis_fields" rows="4" spellcheck="false" { (d.analysis_fields) }
                }))
                button.primary type="submit" #save { "Save" }
            }
        }
    }
}

/// Business hours: when the appointment tools may book, and the calendar's free times.
fn hours_fields(h: &HoursDraft, errors: &FieldErrors) -> Markup {
    html! {
        fieldset.card #business-hours {
            legend { "Business hours (appointments)" }
            @if let Some(e) = errors.get("business_hours") { p.field-error #error-business_hours role="alert" { (e) } }
            div.row {
                (field("Time zone", "hours_timezone", errors, None, html! {
                    input #hours_timezone name="hours_timezone" list="timezones" autocomplete="off" value=(h.timezone);
                    (layout::timezone_list())
                }))
                (field("Opens", "hours_open", errors, None, html! { input #hours_open type="time" name="hours_open" value=(h.open); }))
                (field("Closes", "hours_close", errors, None, html! { input #hours_close type="time" name="hours_close" value=(h.close); }))
                (field("Slot length (minutes)", "slot_minutes", errors, Some("5 to 480"), html! {
                    input #slot_minutes name="slot_minutes" inputmode="numeric" value=(h.slot_minutes);
                }))
            }
            (field("Open days", "hours_days", errors, None, html! {
                div.checks #hours_days {
                    @for d in DAY_NAMES {
                        label.check { input type="checkbox" name="hours_days" value=(d) checked[h.days.iter().any(|x| x == d)]; " " (d) }
                    }
                }
            }))
            (field("Closures", "closures", errors, Some("Holidays and closed days, one per line: 2026-12-25, or a range with a reason: 2026-12-24..2026-12-26 Christmas."), html! {
                textarea #closures name="closures" rows="3" spellcheck="false" placeholder="2026-12-24..2026-12-26 Christmas" { (h.closures) }
            }))
        }
    }
}
