//! How an MCP tool call becomes the REST API request it stands for: ids into the path (only
//! an id's own characters), the rest into the query or the JSON body, made in-process as the
//! caller; the API's answer or error is what the client gets.

use super::catalog::{Failure, Route, Spec};
use super::{ApiBackend, McpPrincipal};
use http::Method;
use serde_json::{json, Map, Value};

/// Ids go into paths: only an id's own characters are accepted (no `/`, `..` or `?`).
fn path_value(args: &mut Map<String, Value>, key: &str) -> Result<String, Failure> {
    let v = args
        .remove(key)
        .ok_or_else(|| Failure::new("invalid_arguments", format!("`{key}` is required")))?;
    match v.as_str() {
        Some(s)
            if !s.is_empty()
                && s.len() <= 100
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(Failure::new(
            "invalid_arguments",
            format!("`{key}` must be an id such as agt_..."),
        )),
    }
}

fn fill(template: &str, args: &mut Map<String, Value>) -> Result<String, Failure> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len());
        let key = &rest[start + 1..end];
        out.push_str(&path_value(args, key)?);
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

fn query(args: &Map<String, Value>) -> Result<String, Failure> {
    let mut q = url_form(args.iter().map(|(k, v)| {
        let v = match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(Failure::new(
                "invalid_arguments",
                format!("`{k}` must be a string, number or boolean"),
            )),
        };
        v.map(|v| (k.clone(), v))
    }))?;
    if !q.is_empty() {
        q.insert(0, '?');
    }
    Ok(q)
}

fn url_form(
    pairs: impl Iterator<Item = Result<(String, String), Failure>>,
) -> Result<String, Failure> {
    let mut out = Vec::new();
    for p in pairs {
        let (k, v) = p?;
        out.push(format!("{}={}", encode(&k), encode(&v)));
    }
    Ok(out.join("&"))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn api(
    backend: &dyn ApiBackend,
    who: &McpPrincipal,
    method: Method,
    path: String,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let answer = backend
        .request(who, method, format!("/api/v1{path}"), body)
        .await;
    if (200..300).contains(&answer.status) {
        return Ok(answer.body);
    }
    let err = &answer.body["error"];
    Err(Failure {
        code: err["code"].as_str().unwrap_or("error").to_owned(),
        message: err["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the request failed with HTTP {}", answer.status)),
    })
}

fn take_str(args: &mut Map<String, Value>, key: &str) -> Option<Value> {
    args.remove(key)
}

/// Runs a tool with the caller's credential; answers the JSON object the client is given.
pub(crate) async fn run(
    spec: &Spec,
    mut args: Map<String, Value>,
    backend: &dyn ApiBackend,
    who: &McpPrincipal,
) -> Result<Value, Failure> {
    match &spec.route {
        Route::Get(t) => {
            let path = fill(t, &mut args)?;
            let q = query(&args)?;
            api(backend, who, Method::GET, format!("{path}{q}"), None).await
        }
        Route::Post(t) => {
            let path = fill(t, &mut args)?;
            api(backend, who, Method::POST, path, Some(Value::Object(args))).await
        }
        Route::Patch(t) => {
            let path = fill(t, &mut args)?;
            api(backend, who, Method::PATCH, path, Some(Value::Object(args))).await
        }
        Route::Delete(t) => {
            let path = fill(t, &mut args)?;
            api(backend, who, Method::DELETE, path, None).await
        }
        Route::CallWithTranscript => {
            let id = path_value(&mut args, "call_id")?;
            let call = api(backend, who, Method::GET, format!("/calls/{id}"), None).await?;
            let conv = call["conversation_id"].as_str().unwrap_or_default();
            let transcript = api(
                backend,
                who,
                Method::GET,
                format!("/conversations/{}/messages?limit=200", encode(conv)),
                None,
            )
            .await?;
            Ok(json!({"call": call, "transcript": transcript["data"]}))
        }
        Route::ConversationWithMessages => {
            let id = path_value(&mut args, "conversation_id")?;
            let conversation = api(
                backend,
                who,
                Method::GET,
                format!("/conversations/{id}"),
                None,
            )
            .await?;
            let messages = api(
                backend,
                who,
                Method::GET,
                format!("/conversations/{id}/messages?limit=200"),
                None,
            )
            .await?;
            Ok(json!({"conversation": conversation, "messages": messages["data"]}))
        }
        Route::SendSms => {
            let body = sms_body(&mut args)?;
            api(
                backend,
                who,
                Method::POST,
                "/conversations".into(),
                Some(body),
            )
            .await
        }
        Route::ScheduleSms => {
            let send_at = take_str(&mut args, "send_at")
                .ok_or_else(|| Failure::new("invalid_arguments", "`send_at` is required"))?;
            let conversation = sms_body(&mut args)?;
            api(
                backend,
                who,
                Method::POST,
                "/scheduled-messages".into(),
                Some(json!({"send_at": send_at, "conversation": conversation})),
            )
            .await
        }
    }
}

/// The body of `POST /conversations` for an SMS from the tool's `to` and `text`.
fn sms_body(args: &mut Map<String, Value>) -> Result<Value, Failure> {
    let to = take_str(args, "to")
        .ok_or_else(|| Failure::new("invalid_arguments", "`to` is required"))?;
    let text = take_str(args, "text")
        .ok_or_else(|| Failure::new("invalid_arguments", "`text` is required"))?;
    let mut body = json!({"channel": "sms", "contact_number": to, "first_message": text});
    for (k, v) in std::mem::take(args) {
        body[k] = v;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fill_paths_and_nothing_else_does() {
        let mut args = json!({"agent_id": "agt_abc123", "name": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            fill("/agents/{agent_id}", &mut args).expect("filled"),
            "/agents/agt_abc123"
        );
        assert!(!args.contains_key("agent_id"));
        for bad in ["../orgs", "agt_1/x", "agt?x=1", ""] {
            let mut args = json!({"agent_id": bad})
                .as_object()
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                fill("/agents/{agent_id}", &mut args)
                    .expect_err("refused")
                    .code,
                "invalid_arguments"
            );
        }
        let args = json!({"q": "+1 555", "limit": 5})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(query(&args).expect("query"), "?limit=5&q=%2B1%20555");
    }
}
