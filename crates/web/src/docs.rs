//! The API's documentation: the OpenAPI document completed with what the route annotations do
//! not say (the server's address, the errors every operation can answer, examples, the
//! Twilio-facing endpoints and the webhook payloads as OpenAPI 3.1 `webhooks`), and `/docs`,
//! a page rendered from that document by the server (no script, no CDN).

use serde_json::{json, Map, Value};
use switchboard_domain::webhooks::EVENT_TYPES;

const ERROR_REF: &str = "#/components/schemas/ErrorBody";

fn error_response(description: &str, example_code: &str, example_message: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {
            "schema": {"$ref": ERROR_REF},
            "example": {"error": {"code": example_code, "message": example_message}}
        }}
    })
}

/// The Twilio-facing endpoints: Twilio's contract, documented so operators know what is
/// exposed (form posts signed with `X-Twilio-Signature`, answered with TwiML).
fn twilio_paths() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        ("/twilio/voice", "post", "A call comes in", "Twilio's incoming-call webhook. Answers TwiML: `<Connect><Stream>` to `/twilio/media`, or a spoken refusal."),
        ("/twilio/voice/status", "post", "Call status changes", "Twilio's status callback for calls (`CallStatus`, `SequenceNumber`)."),
        ("/twilio/voice/outbound", "post", "An outbound call is answered", "The URL given when placing a call; answers TwiML."),
        ("/twilio/voice/amd", "post", "Answering-machine detection result", "Twilio's asynchronous AMD callback for outbound calls."),
        ("/twilio/voice/dial", "post", "A transfer's dial finished", "The `<Dial action>` of a cold transfer."),
        ("/twilio/voice/warm", "post", "A warm transfer's callee answered", "Answers TwiML for the person being asked to take the call."),
        ("/twilio/voice/warm/ask", "post", "The callee is asked", "Plays the agent's summary and gathers the answer."),
        ("/twilio/voice/warm/answer", "post", "The callee answered", "Connects the caller or returns them to the agent."),
        ("/twilio/voice/warm/status", "post", "A warm transfer leg's status", "Status callback of the callee's leg."),
        ("/twilio/voice/recording", "post", "A recording is ready", "Twilio's recording status callback."),
        ("/twilio/messaging", "post", "A message comes in", "Twilio's incoming SMS/WhatsApp webhook. Answers empty TwiML; the agent replies through the REST API."),
        ("/twilio/messaging/status", "post", "A message's delivery status", "Twilio's status callback for messages sent by Switchboard."),
        ("/twilio/media", "get", "Media stream (WebSocket)", "Twilio Media Streams: a WebSocket upgrade carrying `connected`, `start`, `media`, `mark`, `dtmf` and `stop` events both ways; authenticated by the per-call token in the stream's parameters."),
    ]
}

fn add_twilio(paths: &mut Map<String, Value>) {
    for (path, method, summary, description) in twilio_paths() {
        let mut op = json!({
            "tags": ["twilio"],
            "summary": summary,
            "description": format!("{description} Signed by Twilio with `X-Twilio-Signature` over the public URL; a bad signature answers 403."),
            "operationId": format!("twilio_{}", path.trim_start_matches("/twilio/").replace('/', "_")),
            "responses": {
                "200": {"description": "TwiML (`text/xml`), or an empty answer", "content": {"text/xml": {"schema": {"type": "string"}, "example": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"}}},
                "403": {"description": "The signature does not match the public URL and the organization's auth token"}
            }
        });
        if method == "post" {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/x-www-form-urlencoded": {"schema": {
                    "type": "object",
                    "description": "Twilio's parameters for this callback (AccountSid, CallSid or MessageSid, From, To, ...).",
                    "additionalProperties": {"type": "string"}
                }}}
            });
        } else {
            op["responses"] = json!({
                "101": {"description": "Switching protocols: the media stream is open"},
                "400": {"description": "Not a WebSocket upgrade"}
            });
        }
        paths
            .entry(path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(method.to_owned(), op));
    }
}

/// Retell's endpoints, for an organization whose calls Retell runs.
fn add_retell(paths: &mut Map<String, Value>) {
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}});
    paths.insert("/retell/webhook".into(), json!({"post": {
        "tags": ["retell"],
        "summary": "Retell reports a call",
        "description": "Retell's webhook: `call_started`, `call_ended` and `call_analyzed` (`{\"event\", \"call\"}`) become a Switchboard call of the organization whose agent is connected to `call.agent_id` (or whose proven number the call used), with its transcript, recording link, end, Retell's analysis, and the usual `call.*` events, analysis and e-mail. Other events are acknowledged. Signed by Retell with `x-retell-signature: v=<ms>,d=<hex HMAC-SHA256 of body + ms>` using the organization's Retell API key (Settings); five minutes' tolerance.",
        "operationId": "retell_webhook",
        "parameters": [{"name": "x-retell-signature", "in": "header", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"},
            "example": {"event": "call_ended", "call": {"call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6", "agent_id": "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD", "call_type": "phone_call", "direction": "inbound", "from_number": "+12137771234", "to_number": "+12137771235", "start_timestamp": 1_714_608_475_945_i64, "end_timestamp": 1_714_608_491_736_i64, "disconnection_reason": "user_hangup", "transcript_object": [{"role": "agent", "content": "Hi, how can I help?"}]}}}}},
        "responses": {
            "204": {"description": "Recorded (or an event Switchboard does not keep)"},
            "400": err("`invalid_payload`: not a Retell webhook"),
            "401": err("`invalid_signature`: missing, stale or wrong signature"),
            "403": err("`retell_not_configured` (no Retell API key) or `org_disabled`"),
            "404": err("`unknown_retell_agent`: no agent is connected to the Retell agent"),
            "409": err("`conflict`: the call id belongs to another organization")
        }
    }}));
    paths.insert("/retell/llm/{call_id}".into(), json!({"get": {
        "tags": ["retell"],
        "summary": "Retell's custom-LLM socket (WebSocket)",
        "description": "Point a Retell agent's custom LLM URL at `wss://<public URL>/retell/llm` (Retell appends the call id). Switchboard answers with the connected agent's greeting, instructions and tools: streamed `response` events, `tool_call_invocation`/`tool_call_result`, `end_call` and transfers, reminders, `ping_pong` keepalive and reconnects on the same call id. A call not introduced by a signed webhook is proven with Retell's API (`GET /v2/get-call/{call_id}` with the organization's key); an unknown or unproven call is closed with 1008.",
        "operationId": "retell_llm_socket",
        "parameters": [{"name": "call_id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Retell's call id"}],
        "responses": {
            "101": {"description": "Switching protocols: the socket is open"},
            "400": {"description": "Not a WebSocket upgrade"}
        }
    }}));
}

fn add_webhooks(doc: &mut Value) {
    let mut hooks = Map::new();
    for kind in EVENT_TYPES {
        hooks.insert(
            (*kind).to_owned(),
            json!({"post": {
                "tags": ["webhooks"],
                "summary": format!("`{kind}` delivered to an endpoint"),
                "description": "POSTed to every enabled endpoint subscribed to the type, signed per Standard Webhooks: `webhook-id` (the event id, to deduplicate), `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's `whsec_` secret). Answer 2xx within 10 s; anything else is retried with backoff for three days.",
                "parameters": [
                    {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The event id (`evt_...`)"},
                    {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string"}, "description": "Unix seconds of this attempt"},
                    {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}, "description": "`v1,<signature>` (several, space-separated, during a secret rotation)"}
                ],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EventEnvelope"},
                    "example": {"id": "evt_…", "type": kind, "version": 1, "org_id": "org_…", "sequence": 42, "timestamp": "2026-12-01T09:30:00Z", "data": {}}
                }}},
                "responses": {"2XX": {"description": "Received; not sent again"}, "default": {"description": "Not received: retried later"}}
            }}),
        );
    }
    doc["webhooks"] = Value::Object(hooks);
}

/// An example value built from a schema (placeholders by type, the first enum value, the
/// schema's own `example` when it has one), following `$ref`s a few levels deep.
fn example(schema: &Value, components: &Value, depth: usize) -> Value {
    if depth > 4 {
        return Value::Null;
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return match components.get(name) {
            Some(s) => example(s, components, depth + 1),
            None => Value::Null,
        };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|a| {
            a.iter()
                .find(|s| s.get("type").and_then(Value::as_str) != Some("null"))
        }) {
            return example(first, components, depth + 1);
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => String::new(),
    };
    match kind.as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), example(v, components, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => match schema.get("items") {
            Some(items) => json!([example(items, components, depth + 1)]),
            None => json!([]),
        },
        "integer" => json!(0),
        "number" => json!(0.5),
        "boolean" => json!(true),
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => json!("2026-12-01T09:30:00Z"),
            Some("date") => json!("2026-12-01"),
            Some("uri") => json!("https://example.com/"),
            _ => json!("string"),
        },
        _ => Value::Null,
    }
}

/// Completes the generated document (see the module comment).
pub(crate) fn enrich(doc: &mut Value, public_url: Option<&str>) {
    doc["servers"] = json!([{
        "url": public_url.map(|u| u.trim_end_matches('/')).unwrap_or(""),
        "description": if public_url.is_some() { "This server" } else { "This server (SWITCHBOARD_PUBLIC_URL is not set: paths are relative)" }
    }]);
    let components = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                let secured = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty());
                let operator = op
                    .get("security")
                    .map(|s| s.to_string().contains("operator_key"))
                    .unwrap_or(false);
                let has_input = op.contains_key("requestBody")
                    || op
                        .get("parameters")
                        .and_then(Value::as_array)
                        .is_some_and(|p| !p.is_empty());
                // Request examples from the body's schema.
                if let Some(media) = op
                    .get_mut("requestBody")
                    .and_then(|b| b.pointer_mut("/content/application~1json"))
                {
                    if media.get("example").is_none() {
                        if let Some(schema) = media.get("schema").cloned() {
                            media["example"] = example(&schema, &components, 0);
                        }
                    }
                }
                let responses = op
                    .entry("responses")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                let Some(responses) = responses else {
                    continue;
                };
                for (code, r) in responses.iter_mut() {
                    if r.get("description")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        r["description"] = json!(match code.as_str() {
                            "200" => "OK",
                            "201" => "Created",
                            "202" => "Accepted: carried out in the background",
                            "204" => "Done; no body",
                            "404" => "No such resource in this organization",
                            "409" => "Conflict with the current state (the code says which)",
                            "422" => "A field or parameter is invalid (the error names it)",
                            _ => "See the error body",
                        });
                    }
                    if code.starts_with('2') {
                        if let Some(media) = r.pointer_mut("/content/application~1json") {
                            if media.get("example").is_none() {
                                if let Some(schema) = media.get("schema").cloned() {
                                    media["example"] = example(&schema, &components, 0);
                                }
                            }
                        }
                    }
                }
                if secured {
                    responses.entry("401").or_insert_with(|| {
                        error_response(
                            "No key, or an unknown or revoked one",
                            "unauthorized",
                            "missing or invalid API key: send `Authorization: Bearer <key>`",
                        )
                    });
                    responses.entry("403").or_insert_with(|| {
                        if operator {
                            error_response("An organization key on an operator route", "operator_only", "this route needs the operator key")
                        } else {
                            error_response("An operator key on an organization route, or the organization is disabled", "organization_disabled", "this organization is disabled")
                        }
                    });
                    responses.entry("429").or_insert_with(|| {
                        error_response(
                            "Too many requests with this key; `Retry-After` says when to retry",
                            "rate_limited",
                            "too many requests with this API key; retry in 2 s",
                        )
                    });
                }
                if path.contains('{') {
                    responses.entry("404").or_insert_with(|| {
                        error_response("No such resource in this organization (another organization's ids answer the same)", "not_found", "no such resource")
                    });
                }
                if has_input && method != "get" {
                    responses.entry("422").or_insert_with(|| {
                        error_response(
                            "A field or parameter is invalid; `field` names it",
                            "invalid_field",
                            "name: must not be empty",
                        )
                    });
                } else if has_input {
                    responses.entry("422").or_insert_with(|| {
                        error_response(
                            "A query parameter is invalid; `field` names it",
                            "invalid_query",
                            "limit: must be between 1 and 200",
                        )
                    });
                }
            }
        }
        add_twilio(paths);
        add_retell(paths);
    }
    add_webhooks(doc);
}

/// A readable name for a schema: its `$ref` target, its type, or `object`.
fn type_name(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or_default().to_owned();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            return list.iter().map(type_name).collect::<Vec<_>>().join(" | ");
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => format!(
            "list of {}",
            schema.get("items").map(type_name).unwrap_or_default()
        ),
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".into(),
    }
}

fn schema_link(schema: &Value) -> maud::Markup {
    let name = type_name(schema);
    match schema.get("$ref").and_then(Value::as_str) {
        Some(_) => maud::html! { a href={ "#schema-" (name) } { code { (name) } } },
        None => maud::html! { code { (name) } },
    }
}

/// Descriptions are Markdown; their `code spans` are shown as code, the rest as text.
fn md(text: &str) -> maud::Markup {
    maud::html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

fn slug(method: &str, path: &str) -> String {
    let mut s = format!("op-{method}-");
    for c in path.chars() {
        s.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    s
}

/// One operation of the document: method, path and its object.
type Operation<'a> = (String, String, &'a Value);

/// `/docs`: the document as a page.
pub(crate) fn render(doc: &Value) -> String {
    use maud::{html, DOCTYPE};
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // Operations grouped by their first tag, in the document's order.
    let mut groups: Vec<(String, Vec<Operation<'_>>)> = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_owned();
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push((method.clone(), path.clone(), op)),
                None => groups.push((tag, vec![(method.clone(), path.clone(), op)])),
            }
        }
    }
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let webhooks = doc
        .get("webhooks")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let server = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .unwrap_or("");
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "API documentation · Switchboard" }
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/app.css";
            }
            body.bare.docs {
                nav.side.docs-nav aria-label="Sections" {
                    a href="#top" { strong { "Switchboard API" } }
                    @for (tag, _) in &groups { a href={ "#tag-" (tag) } { (tag) } }
                    a href="#webhooks" { "webhooks (outgoing)" }
                    a href="#schemas" { "schemas" }
                }
                main #top {
                    h1 { (doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API")) }
                    p { (md(doc.pointer("/info/description").and_then(Value::as_str).unwrap_or(""))) }
                    p { "Server: " code #server { @if server.is_empty() { "(this host)" } @else { (server) } }
                        " · the document itself: " a href="/api/v1/openapi.json" { code { "/api/v1/openapi.json" } } " (OpenAPI " (doc.get("openapi").and_then(Value::as_str).unwrap_or("3.1")) ")" }
                    @for (tag, ops) in &groups {
                        section.tag id={ "tag-" (tag) } {
                            h2 { (tag) }
                            @for (method, path, op) in ops {
                                article.op id=(slug(method, path)) {
                                    h3 { span class={ "method " (method) } { (method.to_uppercase()) } " " code { (path) } }
                                    @if let Some(s) = op.get("summary").and_then(Value::as_str) { p.summary { (md(s)) } }
                                    @if let Some(d) = op.get("description").and_then(Value::as_str) {
                                        @if Some(d) != op.get("summary").and_then(Value::as_str) { p { (md(d)) } }
                                    }
                                    @if let Some(params) = op.get("parameters").and_then(Value::as_array).filter(|p| !p.is_empty()) {
                                        div.table-wrap { table.list {
                                            thead { tr { th { "Parameter" } th { "In" } th { "Type" } th { "Description" } } }
                                            tbody { @for p in params {
                                                tr {
                                                    td { code { (p.get("name").and_then(Value::as_str).unwrap_or("")) } @if p.get("required") == Some(&Value::Bool(true)) { " *" } }
                                                    td { (p.get("in").and_then(Value::as_str).unwrap_or("")) }
                                                    td { (p.get("schema").map(schema_link).unwrap_or_default()) }
                                                    td.wrap { (md(p.get("description").and_then(Value::as_str).unwrap_or(""))) }
                                                }
                                            } }
                                        } }
                                    }
                                    @if let Some(content) = op.pointer("/requestBody/content").and_then(Value::as_object) {
                                        @for (ct, media) in content {
                                            p { "Body (" code { (ct) } "): " (media.get("schema").map(schema_link).unwrap_or_default()) }
                                            @if let Some(e) = media.get("example") { details { summary { "Example request" } pre.json { (pretty(e)) } } }
                                        }
                                    }
                                    @if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                                        div.table-wrap { table.list.responses {
                                            thead { tr { th { "Status" } th { "Meaning" } th { "Body" } } }
                                            tbody { @for (code, r) in responses {
                                                tr {
                                                    td { code { (code) } }
                                                    td.wrap { (md(r.get("description").and_then(Value::as_str).unwrap_or(""))) }
                                                    td { @if let Some(s) = r.pointer("/content/application~1json/schema") { (schema_link(s)) } }
                                                }
                                            } }
                                        } }
                                        @for (code, r) in responses {
                                            @if code.starts_with('2') {
                                                @if let Some(e) = r.pointer("/content/application~1json/example") {
                                                    details { summary { "Example answer (" (code) ")" } pre.json { (pretty(e)) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section #webhooks {
                        h2 { "Webhooks (what Switchboard sends)" }
                        p { "Every event is POSTed to the organization's endpoints as an " a href="#schema-EventEnvelope" { code { "EventEnvelope" } } ", signed per Standard Webhooks (" code { "webhook-id" } ", " code { "webhook-timestamp" } ", " code { "webhook-signature" } "). Answer 2xx within 10 s; anything else is retried." }
                        ul.event-types { @for (kind, _) in webhooks { li { code { (kind) } } } }
                    }
                    section #schemas {
                        h2 { "Schemas" }
                        @for (name, s) in schemas {
                            article.schema id={ "schema-" (name) } {
                                h3 { code { (name) } }
                                @if let Some(d) = s.get("description").and_then(Value::as_str) { p { (md(d)) } }
                                @if let Some(props) = s.get("properties").and_then(Value::as_object) {
                                    @let required: Vec<&str> = s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                                    div.table-wrap { table.list {
                                        thead { tr { th { "Field" } th { "Type" } th { "Description" } } }
                                        tbody { @for (field, p) in props {
                                            tr {
                                                td { code { (field) } @if required.contains(&field.as_str()) { " *" } }
                                                td { (schema_link(p)) }
                                                td.wrap { (md(p.get("description").and_then(Value::as_str).unwrap_or(""))) }
                                            }
                                        } }
                                    } }
                                } @else if let Some(values) = s.get("enum").and_then(Value::as_array) {
                                    p { "One of: " @for (i, v) in values.iter().enumerate() { @if i > 0 { ", " } code { (v.as_str().unwrap_or_default()) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_references_and_types() {
        let components = json!({
            "Thing": {"type": "object", "properties": {
                "id": {"type": "string", "example": "thg_1"},
                "at": {"type": "string", "format": "date-time"},
                "n": {"type": ["integer", "null"]},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}}
            }}
        });
        let e = example(
            &json!({"$ref": "#/components/schemas/Thing"}),
            &components,
            0,
        );
        assert_eq!(
            e,
            json!({"id": "thg_1", "at": "2026-12-01T09:30:00Z", "n": 0, "kind": "a", "tags": ["string"]})
        );
    }
}
