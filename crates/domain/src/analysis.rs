//! Post-conversation analysis: the JSON schema the model is asked to fill, and the check of
//! what it returned against that schema and the agent's extraction fields.

use crate::agent::{AnalysisField, AnalysisFieldType};
use serde_json::{json, Map, Value};

/// Sentiments the analysis may report.
pub const SENTIMENTS: &[&str] = &["positive", "neutral", "negative", "mixed"];

/// The JSON schema of the analysis for `fields` (strict structured-output shape: every
/// property required, no extra properties; an extraction field the conversation did not
/// reveal is `null`).
pub fn response_schema(fields: &[AnalysisField]) -> Value {
    let mut props = Map::new();
    for f in fields {
        let ty = match f.field_type {
            AnalysisFieldType::String | AnalysisFieldType::Enum => "string",
            AnalysisFieldType::Number => "number",
            AnalysisFieldType::Boolean => "boolean",
        };
        let mut p = json!({"type": [ty, "null"], "description": f.description});
        if f.field_type == AnalysisFieldType::Enum {
            let mut options: Vec<Value> = f.options.iter().map(|o| json!(o)).collect();
            options.push(Value::Null);
            p["enum"] = Value::Array(options);
        }
        props.insert(f.name.clone(), p);
    }
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "intent", "outcome", "sentiment", "fields"],
        "properties": {
            "summary": {"type": "string", "description": "Two to four sentences on what happened."},
            "intent": {"type": "string", "description": "What the caller wanted, in a few words."},
            "outcome": {
                "type": "object",
                "additionalProperties": false,
                "required": ["success", "reason"],
                "properties": {
                    "success": {"type": "boolean", "description": "Whether the caller's need was met."},
                    "reason": {"type": "string", "description": "Why, in one sentence."}
                }
            },
            "sentiment": {"type": "string", "enum": SENTIMENTS},
            "fields": {
                "type": "object",
                "additionalProperties": false,
                "required": names,
                "properties": props
            }
        }
    })
}

/// Checks the model's text against the schema and returns the normalized analysis (without
/// the bookkeeping fields the caller adds). The error says what is wrong, for the retry and
/// the stored error.
pub fn parse_output(text: &str, fields: &[AnalysisField]) -> Result<Value, String> {
    // Some servers wrap JSON in a Markdown fence despite being asked not to.
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(trimmed);
    let v: Value =
        serde_json::from_str(body.trim()).map_err(|e| format!("output is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("output is not a JSON object")?;
    let text_of = |k: &str| -> Result<String, String> {
        match obj.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(format!("`{k}` must be a non-empty string")),
        }
    };
    let summary = text_of("summary")?;
    let intent = text_of("intent")?;
    let outcome = obj
        .get("outcome")
        .and_then(Value::as_object)
        .ok_or("`outcome` must be an object")?;
    let success = outcome
        .get("success")
        .and_then(Value::as_bool)
        .ok_or("`outcome.success` must be true or false")?;
    let reason = outcome
        .get("reason")
        .and_then(Value::as_str)
        .ok_or("`outcome.reason` must be a string")?;
    let sentiment = obj
        .get("sentiment")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|s| SENTIMENTS.contains(&s.as_str()))
        .ok_or_else(|| format!("`sentiment` must be one of {}", SENTIMENTS.join(", ")))?;
    let given = match obj.get("fields") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) if fields.is_empty() => Map::new(),
        _ => return Err("`fields` must be an object".into()),
    };
    let mut out = Map::new();
    for f in fields {
        let v = given.get(&f.name).cloned().unwrap_or(Value::Null);
        let ok = match (&v, f.field_type) {
            (Value::Null, _) => true,
            (Value::String(_), AnalysisFieldType::String) => true,
            (Value::Number(_), AnalysisFieldType::Number) => true,
            (Value::Bool(_), AnalysisFieldType::Boolean) => true,
            (Value::String(s), AnalysisFieldType::Enum) => f.options.contains(s),
            _ => false,
        };
        if !ok {
            let expected = match f.field_type {
                AnalysisFieldType::String => "a string".to_owned(),
                AnalysisFieldType::Number => "a number".to_owned(),
                AnalysisFieldType::Boolean => "true or false".to_owned(),
                AnalysisFieldType::Enum => format!("one of {}", f.options.join(", ")),
            };
            return Err(format!(
                "field `{}` must be {expected} or null, got {v}",
                f.name
            ));
        }
        out.insert(f.name.clone(), v);
    }
    Ok(json!({
        "summary": summary,
        "intent": intent,
        "outcome": {"success": success, "reason": reason},
        "sentiment": sentiment,
        "fields": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<AnalysisField> {
        serde_json::from_value(json!([
            {"name": "budget", "type": "number", "description": "Budget"},
            {"name": "plan", "type": "enum", "description": "Plan", "options": ["basic", "pro"]}
        ]))
        .expect("fields")
    }

    #[test]
    fn valid_output_is_normalized() {
        let text = r#"```json
        {"summary": "Asked about plans.", "intent": "pricing", "outcome": {"success": true, "reason": "answered"},
         "sentiment": "Positive", "fields": {"budget": 120, "plan": "pro"}}
        ```"#;
        let v = parse_output(text, &fields()).expect("valid");
        assert_eq!(v["sentiment"], "positive");
        assert_eq!(v["fields"]["plan"], "pro");
        assert_eq!(v["outcome"]["success"], true);
    }

    #[test]
    fn invalid_output_says_what_is_wrong() {
        let base = json!({"summary": "s", "intent": "i", "outcome": {"success": true, "reason": "r"},
            "sentiment": "neutral", "fields": {"budget": "lots", "plan": null}});
        let e = parse_output(&base.to_string(), &fields()).expect_err("budget");
        assert!(e.contains("budget"), "{e}");
        let mut bad_enum = base.clone();
        bad_enum["fields"] = json!({"budget": 1, "plan": "gold"});
        assert!(parse_output(&bad_enum.to_string(), &fields()).is_err());
        assert!(parse_output("not json", &fields()).is_err());
        let mut no_summary = base;
        no_summary["summary"] = json!("");
        assert!(parse_output(&no_summary.to_string(), &fields()).is_err());
    }

    #[test]
    fn schema_requires_every_declared_field() {
        let s = response_schema(&fields());
        assert_eq!(
            s["properties"]["fields"]["required"],
            json!(["budget", "plan"])
        );
        assert_eq!(
            s["properties"]["fields"]["properties"]["plan"]["enum"],
            json!(["basic", "pro", null])
        );
    }
}
