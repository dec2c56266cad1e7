//! Custom HTTP tools: a function an organization hosts itself, offered to its agents like a
//! built-in. Switchboard POSTs the model's arguments (plus the conversation's context) to the
//! endpoint, signed per Standard Webhooks, and gives the JSON answer back to the model.

use crate::agent::BUILTIN_TOOLS;
use crate::ids::CustomToolId;
use crate::values::{check_len, require_text};
use crate::{Secret, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default time the endpoint has to answer.
pub const DEFAULT_TIMEOUT_MS: i64 = 8_000;
/// Longest time an endpoint may be given (a caller waits on the line meanwhile).
pub const MAX_TIMEOUT_MS: i64 = 30_000;
/// Shortest timeout.
pub const MIN_TIMEOUT_MS: i64 = 500;
/// Names starting with this are reserved for tools of external MCP servers.
pub const RESERVED_PREFIX: &str = "mcp__";
/// What the API shows instead of a header's value; sent back unchanged it keeps the value.
pub const REDACTED: &str = "[redacted]";
/// Headers the platform sets itself (or that would break the request).
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Request headers of a custom tool. Their values are secrets (API keys of the business's
/// system): serialized, each value reads `[redacted]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolHeaders(pub Vec<(String, Secret)>);

impl Serialize for ToolHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, _) in &self.0 {
            m.serialize_entry(name, REDACTED)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ToolHeaders {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map keeps the order given (serde_json with preserve_order is not assumed: sort
        // for a stable order instead).
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(ToolHeaders(
            map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        ))
    }
}

impl ToolHeaders {
    /// Keeps the current value of every header given as `[redacted]` (a form or client that
    /// read the tool and sends it back); a header not in `current` cannot keep anything.
    pub fn merged_with(self, current: &ToolHeaders) -> Result<ToolHeaders, ValidationError> {
        self.0
            .into_iter()
            .map(|(name, value)| {
                if value.expose() != REDACTED {
                    return Ok((name, value));
                }
                current
                    .0
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| (name.clone(), v.clone()))
                    .ok_or_else(|| {
                        ValidationError::new(
                            format!("headers.{name}"),
                            "has no value yet; give the value itself",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(ToolHeaders)
    }

    /// Checks the names and values (the same rules wherever headers are secrets).
    pub fn check(&self) -> Result<(), ValidationError> {
        self.validate()
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.0.len() > 20 {
            return Err(ValidationError::new("headers", "at most 20 headers"));
        }
        for (name, value) in &self.0 {
            let field = format!("headers.{name}");
            let token = !name.is_empty()
                && name.len() <= 100
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(ValidationError::new(field, "is not a valid header name"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(ValidationError::new(
                    field,
                    "is set by Switchboard itself and cannot be overridden",
                ));
            }
            let v = value.expose();
            if v == REDACTED {
                return Err(ValidationError::new(field, "give the header's value"));
            }
            if v.len() > 4_000 || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(ValidationError::new(
                    field,
                    "must be at most 4,000 characters on one line",
                ));
            }
        }
        Ok(())
    }
}

/// The HTTP method a custom tool is called with (the arguments are always the JSON body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ToolMethod {
    /// POST (the default).
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

impl ToolMethod {
    /// As written on the wire and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolMethod::Post => "POST",
            ToolMethod::Put => "PUT",
            ToolMethod::Patch => "PATCH",
        }
    }

    /// Reads a stored value.
    pub fn parse(s: &str) -> Option<ToolMethod> {
        match s {
            "POST" => Some(ToolMethod::Post),
            "PUT" => Some(ToolMethod::Put),
            "PATCH" => Some(ToolMethod::Patch),
            _ => None,
        }
    }
}

/// A custom HTTP tool.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomTool {
    /// Id.
    pub id: CustomToolId,
    /// The function name the model sees; list it in an agent's `tools` to offer it.
    #[schema(example = "order_status")]
    pub name: String,
    /// What it does and when to use it (the model reads this).
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// The endpoint.
    pub url: String,
    /// The method.
    pub method: ToolMethod,
    /// Headers sent with every request; values are never shown (`[redacted]`).
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub headers: ToolHeaders,
    /// How long the endpoint has to answer, in milliseconds.
    pub timeout_ms: i64,
    /// On calls, the agent says something while it waits (instead of silence).
    pub speak_while_waiting: bool,
    /// What to say while waiting; without it the agent says briefly that it is checking.
    pub waiting_message: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Signing secrets: the current one, and the previous one until it expires after a
    /// rotation. Never serialized.
    #[serde(skip)]
    pub secrets: Vec<Secret>,
}

/// The body of `POST /api/v1/tools`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomTool {
    /// Function name: letters, digits, `_` and `-`, at most 64; not a built-in tool's name and
    /// not starting with `mcp__`. Unique in the organization.
    pub name: String,
    /// What it does and when the agent should use it (at most 1,000 characters).
    pub description: String,
    /// JSON Schema of the arguments; an object schema. Default: no arguments.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// `https://...` endpoint (public addresses only, unless the operator allows private ones
    /// with `SWITCHBOARD_TOOLS_ALLOW_PRIVATE`).
    pub url: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(default)]
    pub method: ToolMethod,
    /// Headers to send (e.g. `Authorization`); the values are stored as secrets.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub headers: ToolHeaders,
    /// Milliseconds the endpoint has to answer: 500 to 30,000, default 8,000.
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    /// On calls, say something while waiting. Default false.
    #[serde(default)]
    pub speak_while_waiting: bool,
    /// What to say while waiting (at most 500 characters).
    #[serde(default)]
    pub waiting_message: Option<String>,
}

/// The body of `PATCH /api/v1/tools/{id}`: only the fields given change. `headers`, when
/// given, replaces them all; a value of `[redacted]` keeps that header's current value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomToolPatch {
    /// New name (agents that list the tool follow the rename).
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New JSON Schema.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// New endpoint.
    pub url: Option<String>,
    /// New method.
    pub method: Option<ToolMethod>,
    /// New headers.
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub headers: Option<ToolHeaders>,
    /// New timeout.
    pub timeout_ms: Option<i64>,
    /// Speak while waiting.
    pub speak_while_waiting: Option<bool>,
    /// What to say; `null` removes it.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<String>)]
    pub waiting_message: Option<Option<String>>,
}

impl CustomTool {
    /// A new tool from validated input.
    pub fn create(
        input: NewCustomTool,
        secret: Secret,
        allow_private: bool,
        now: Timestamp,
    ) -> Result<CustomTool, ValidationError> {
        let tool = CustomTool {
            id: CustomToolId::generate(),
            name: input.name,
            description: input.description,
            parameters: input.parameters.unwrap_or_else(empty_schema),
            url: input.url,
            method: input.method,
            headers: input.headers,
            timeout_ms: input.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            speak_while_waiting: input.speak_while_waiting,
            waiting_message: input.waiting_message.filter(|m| !m.trim().is_empty()),
            created_at: now,
            updated_at: now,
            secrets: vec![secret],
        };
        tool.validate(allow_private)?;
        Ok(tool)
    }

    /// This tool with `patch` applied, validated as a whole.
    pub fn apply(
        mut self,
        patch: CustomToolPatch,
        allow_private: bool,
        now: Timestamp,
    ) -> Result<CustomTool, ValidationError> {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.description {
            self.description = v;
        }
        if let Some(v) = patch.parameters {
            self.parameters = v;
        }
        if let Some(v) = patch.url {
            self.url = v;
        }
        if let Some(v) = patch.method {
            self.method = v;
        }
        if let Some(v) = patch.headers {
            self.headers = v.merged_with(&self.headers)?;
        }
        if let Some(v) = patch.timeout_ms {
            self.timeout_ms = v;
        }
        if let Some(v) = patch.speak_while_waiting {
            self.speak_while_waiting = v;
        }
        if let Some(v) = patch.waiting_message {
            self.waiting_message = v.filter(|m| !m.trim().is_empty());
        }
        self.updated_at = now;
        self.validate(allow_private)?;
        Ok(self)
    }

    /// Checks every field; the error names the first at fault.
    pub fn validate(&self, allow_private: bool) -> Result<(), ValidationError> {
        validate_name(&self.name)?;
        require_text("description", &self.description, 1_000)?;
        validate_parameters(&self.parameters)?;
        crate::webhooks::validate_target_url(
            &self.url,
            allow_private,
            "tools",
            "SWITCHBOARD_TOOLS_ALLOW_PRIVATE",
        )?;
        self.headers.validate()?;
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(ValidationError::new(
                "timeout_ms",
                format!("must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}"),
            ));
        }
        if let Some(m) = &self.waiting_message {
            check_len("waiting_message", m, 500)?;
        }
        Ok(())
    }
}

/// The schema of a tool without arguments.
pub fn empty_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// Whether `name` has the shape of a custom tool's name (not whether it exists).
pub fn is_custom_name(name: &str) -> bool {
    validate_name(name).is_ok()
}

fn validate_name(name: &str) -> Result<(), ValidationError> {
    let shape = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !shape {
        return Err(ValidationError::new(
            "name",
            "must be 1 to 64 letters, digits, `_` or `-` (the model calls the tool by it)",
        ));
    }
    if BUILTIN_TOOLS.contains(&name) {
        return Err(ValidationError::new(
            "name",
            format!("`{name}` is a built-in tool; choose another name"),
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(ValidationError::new(
            "name",
            format!("names starting with `{RESERVED_PREFIX}` are reserved for MCP server tools"),
        ));
    }
    Ok(())
}

/// An object schema: `type` is `object`, `properties` (if any) an object of schemas, and
/// `required` (if any) names of those properties. At most 20,000 characters.
fn validate_parameters(p: &Value) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(ValidationError::new("parameters", m));
    if p.to_string().len() > 20_000 {
        return bad("at most 20,000 characters of JSON Schema");
    }
    let Some(obj) = p.as_object() else {
        return bad(
            "must be a JSON Schema object such as {\"type\": \"object\", \"properties\": {...}}",
        );
    };
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return bad("must have \"type\": \"object\" (the arguments are one JSON object)");
    }
    let props = match obj.get("properties") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return bad("`properties` must be an object of schemas"),
    };
    if let Some(props) = props {
        if let Some((k, _)) = props.iter().find(|(_, v)| !v.is_object()) {
            return Err(ValidationError::new(
                format!("parameters.properties.{k}"),
                "must be a schema object",
            ));
        }
    }
    match obj.get("required") {
        None => Ok(()),
        Some(Value::Array(names)) => {
            for n in names {
                let known = n
                    .as_str()
                    .is_some_and(|n| props.is_some_and(|p| p.contains_key(n)));
                if !known {
                    return Err(ValidationError::new(
                        "parameters.required",
                        format!("{n} is not one of the `properties`"),
                    ));
                }
            }
            Ok(())
        }
        Some(_) => bad("`required` must be an array of property names"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> NewCustomTool {
        let mut base = json!({"name": "order_status", "description": "Looks up an order",
            "url": "https://crm.example.com/tools/order"});
        for (k, val) in v.as_object().expect("object") {
            base[k] = val.clone();
        }
        serde_json::from_value(base).expect("input")
    }

    fn field_of(v: Value) -> String {
        CustomTool::create(input(v), Secret::new("whsec_x"), false, Timestamp::now())
            .expect_err("invalid")
            .field
    }

    #[test]
    fn defaults_and_redacted_headers() {
        let t = CustomTool::create(
            input(json!({"headers": {"Authorization": "Bearer s3cret"}})),
            Secret::new("whsec_x"),
            false,
            Timestamp::now(),
        )
        .expect("valid");
        assert_eq!(t.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(t.method, ToolMethod::Post);
        assert_eq!(t.parameters, empty_schema());
        let shown = serde_json::to_value(&t).expect("json");
        assert_eq!(shown["headers"], json!({"Authorization": "[redacted]"}));
        assert!(!shown.to_string().contains("s3cret"));
        assert!(!shown.to_string().contains("whsec_x"));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(field_of(json!({"name": "end_call"})), "name");
        assert_eq!(field_of(json!({"name": "mcp__x"})), "name");
        assert_eq!(field_of(json!({"name": "has space"})), "name");
        assert_eq!(field_of(json!({"description": " "})), "description");
        assert_eq!(
            field_of(json!({"parameters": {"type": "string"}})),
            "parameters"
        );
        assert_eq!(
            field_of(
                json!({"parameters": {"type": "object", "properties": {"a": {}}, "required": ["b"]}})
            ),
            "parameters.required"
        );
        assert_eq!(field_of(json!({"url": "ftp://x.example"})), "url");
        assert_eq!(field_of(json!({"url": "http://10.0.0.5/x"})), "url");
        assert_eq!(field_of(json!({"timeout_ms": 60_000})), "timeout_ms");
        assert_eq!(
            field_of(json!({"headers": {"Webhook-Signature": "x"}})),
            "headers.Webhook-Signature"
        );
        assert_eq!(
            field_of(json!({"headers": {"X-Key": "a\r\nb"}})),
            "headers.X-Key"
        );
    }

    #[test]
    fn redacted_header_values_keep_the_current_value() {
        let t = CustomTool::create(
            input(json!({"headers": {"Authorization": "Bearer s3cret", "X-Old": "1"}})),
            Secret::new("whsec_x"),
            false,
            Timestamp::now(),
        )
        .expect("valid");
        let patch: CustomToolPatch = serde_json::from_value(
            json!({"headers": {"authorization": "[redacted]", "X-New": "2"}}),
        )
        .expect("patch");
        let t = t.apply(patch, false, Timestamp::now()).expect("applied");
        let values: Vec<(&str, &str)> = t
            .headers
            .0
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()))
            .collect();
        assert_eq!(values, [("X-New", "2"), ("authorization", "Bearer s3cret")]);
        let patch: CustomToolPatch =
            serde_json::from_value(json!({"headers": {"X-Other": "[redacted]"}})).expect("patch");
        assert_eq!(
            t.apply(patch, false, Timestamp::now())
                .expect_err("no value")
                .field,
            "headers.X-Other"
        );
    }
}
