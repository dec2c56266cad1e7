//! Custom HTTP tools end to end: the API (validation, scoping, secrets never shown, rename
//! and delete rules), signed requests the endpoint verifies on its own, the limits (slow,
//! huge, private addresses), and an agent using the tool in a voice call and a text chat.

mod voice_env;

use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::tool_endpoint::{Reply, ToolEndpoint};
use voice_env::*;

fn tool_body(url: &str) -> Value {
    json!({
        "name": "order_status",
        "description": "Looks up where an order is.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        "url": url,
        "headers": {"Authorization": "Bearer s3cret-crm-key"},
    })
}

fn allow_private(c: &mut WebConfig) {
    c.tools_allow_private = true;
}

backend_test!(custom_tools_are_validated_scoped_signed_and_limited, |db| {
    let mut env = env_with(db, Behavior::default(), allow_private).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let (ka, kb) = (env.key(&alpha).await, env.key(&beta).await);
    let endpoint = ToolEndpoint::start().await;
    let post = reqwest::Method::POST;
    // Bad input names its field.
    for (patch, field) in [
        (json!({"name": "end_call"}), "name"),
        (json!({"parameters": {"type": "array"}}), "parameters"),
        (json!({"timeout_ms": 60_000}), "timeout_ms"),
        (json!({"url": "ftp://crm.example.com"}), "url"),
    ] {
        let mut body = tool_body(&endpoint.url);
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, err) = env
            .call_api(post.clone(), &ka, "/api/v1/tools", Some(body))
            .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (status, created) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/tools",
            Some(tool_body(&endpoint.url)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["headers"], json!({"Authorization": "[redacted]"}));
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, _) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/tools",
            Some(tool_body(&endpoint.url)),
        )
        .await;
    assert_eq!(status, 409, "the name is taken");
    // Nothing shows the header's value or the secret again.
    let (_, got) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/tools/{id}"),
            None,
        )
        .await;
    let (_, list) = env
        .call_api(reqwest::Method::GET, &ka, "/api/v1/tools", None)
        .await;
    for shown in [&got, &list] {
        let text = shown.to_string();
        assert!(
            !text.contains("s3cret-crm-key") && !text.contains(&secret),
            "{text}"
        );
    }
    assert_eq!(list["data"].as_array().expect("list").len(), 1);
    // Another organization neither sees it nor can give it to its agent.
    let (_, other) = env
        .call_api(reqwest::Method::GET, &kb, "/api/v1/tools", None)
        .await;
    assert_eq!(other["data"], json!([]));
    let (status, _) = env
        .call_api(
            reqwest::Method::GET,
            &kb,
            &format!("/api/v1/tools/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, err) = env
        .call_api(
            reqwest::Method::PATCH,
            &kb,
            &format!("/api/v1/agents/{}", beta.agent),
            Some(json!({"tools": ["order_status"]})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["field"], "tools[0]");
    let (status, _) = env
        .call_api(
            reqwest::Method::PATCH,
            &ka,
            &format!("/api/v1/agents/{}", alpha.agent),
            Some(json!({"tools": ["order_status", "end_call"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = env
        .call_api(
            reqwest::Method::DELETE,
            &ka,
            &format!("/api/v1/tools/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "in use");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("m")
            .contains("Reception"),
        "{err}"
    );

    // A test run: signed with the tool's secret, its headers sent, the answer as the model
    // would get it.
    endpoint.set_secret(&secret);
    endpoint.script([Reply::Json(json!({"status": "shipped", "eta": "Friday"}))]);
    let test_path = format!("/api/v1/tools/{id}/test");
    let (status, run) = env
        .call_api(
            post.clone(),
            &ka,
            &test_path,
            Some(json!({"arguments": {"order": "A1"}})),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "ok");
    assert_eq!(
        run["output"],
        json!({"ok": true, "result": {"status": "shipped", "eta": "Friday"}})
    );
    let got = endpoint.wait_for(1, WAIT).await;
    let req = &got[0];
    assert!(
        req.verified,
        "the endpoint verifies the Standard Webhooks signature"
    );
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("authorization"), Some("Bearer s3cret-crm-key"));
    assert_eq!(req.header("webhook-id"), run["invocation_id"].as_str());
    assert_eq!(req.json["tool"], "order_status");
    assert_eq!(req.json["arguments"], json!({"order": "A1"}));
    assert_eq!(req.json["context"]["test"], true);
    assert_eq!(req.json["context"]["org_id"], alpha.id.as_str());

    // An error status, a hang and a huge answer become results the agent can speak.
    endpoint.script([Reply::Status(503, "{\"error\": \"db down\"}".into())]);
    let (_, run) = env
        .call_api(
            post.clone(),
            &ka,
            &test_path,
            Some(json!({"arguments": {"order": "A1"}})),
        )
        .await;
    assert_eq!(run["status"], "error");
    assert_eq!(run["output"]["error"]["code"], "endpoint_error");
    assert_eq!(run["output"]["error"]["details"]["status"], 503);
    let (status, _) = env
        .call_api(
            reqwest::Method::PATCH,
            &ka,
            &format!("/api/v1/tools/{id}"),
            Some(json!({"timeout_ms": 500})),
        )
        .await;
    assert_eq!(status, 200);
    endpoint.script([Reply::Hang]);
    let (_, run) = env
        .call_api(post.clone(), &ka, &test_path, Some(json!({})))
        .await;
    assert_eq!(run["status"], "timeout", "{run}");
    assert_eq!(run["output"]["error"]["code"], "timeout");
    endpoint.script([Reply::Huge(4 * 1024 * 1024)]);
    let (_, run) = env
        .call_api(post.clone(), &ka, &test_path, Some(json!({})))
        .await;
    assert_eq!(run["status"], "error", "{run}");
    assert_eq!(run["output"]["error"]["code"], "response_too_large");

    // Every run is audited in Alpha only, with its source and principal.
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/tool-invocations?source=custom",
            None,
        )
        .await;
    let rows = audit["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 4, "{audit}");
    assert!(rows
        .iter()
        .all(|r| r["actor"].as_str().expect("actor").starts_with("api_key:")));
    let statuses: Vec<&str> = rows
        .iter()
        .map(|r| r["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, ["error", "timeout", "error", "ok"]);
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &kb,
            "/api/v1/tool-invocations?source=custom",
            None,
        )
        .await;
    assert_eq!(audit["data"], json!([]));

    // Rotation: the endpoint holding either secret accepts requests for a day.
    let (status, rotated) = env
        .call_api(
            post.clone(),
            &ka,
            &format!("/api/v1/tools/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    for s in [&secret, &new_secret] {
        endpoint.set_secret(s);
        let before = endpoint.received().len();
        env.call_api(post.clone(), &ka, &test_path, Some(json!({})))
            .await;
        let got = endpoint.wait_for(before + 1, WAIT).await;
        assert!(got[before].verified, "verified with {s}");
    }

    // A rename follows into the agent; the header survives a round trip of `[redacted]`.
    let (status, renamed) = env.call_api(
        reqwest::Method::PATCH,
        &ka,
        &format!("/api/v1/tools/{id}"),
        Some(json!({"name": "order_lookup", "headers": {"Authorization": "[redacted]", "X-Shop": "7"}})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    let (_, agent) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/agents/{}", alpha.agent),
            None,
        )
        .await;
    assert_eq!(agent["tools"], json!(["order_lookup", "end_call"]));
    let before = endpoint.received().len();
    env.call_api(post.clone(), &ka, &test_path, Some(json!({})))
        .await;
    let got = endpoint.wait_for(before + 1, WAIT).await;
    assert_eq!(
        got[before].header("authorization"),
        Some("Bearer s3cret-crm-key")
    );
    assert_eq!(got[before].header("x-shop"), Some("7"));
    env.shutdown();
});

backend_test!(custom_tools_cannot_reach_private_addresses, |db| {
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let endpoint = ToolEndpoint::start().await;
    // A literal private address is refused when the tool is saved...
    let (status, err) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            "/api/v1/tools",
            Some(tool_body(&endpoint.url)),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["field"], "url");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("m")
            .contains("SWITCHBOARD_TOOLS_ALLOW_PRIVATE"),
        "{err}"
    );
    // ...and a name that resolves to one is refused when it would be called.
    let by_name = endpoint.url.replace("127.0.0.1", "localhost");
    let (status, created) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            "/api/v1/tools",
            Some(tool_body(&by_name)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let (_, run) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            &format!("/api/v1/tools/{id}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(run["status"], "error", "{run}");
    assert_eq!(run["output"]["error"]["code"], "endpoint_unreachable");
    assert!(
        run["output"]["error"]["details"]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("refused:"),
        "{run}"
    );
    assert!(
        endpoint.received().is_empty(),
        "nothing reached the private address"
    );
    env.shutdown();
});

backend_test!(agents_use_custom_tools_in_calls_and_chats, |db| {
    let chat = FakeChatModel::start().await;
    let behavior = Behavior {
        steps: vec![
            Step::Call("order_status".into(), json!({"order": "A1"})),
            said(AGENT_SHORT, "One moment please."),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
        ],
        transcripts: vec!["Where is my order A1?".into()],
        ..Behavior::default()
    };
    let mut env = voice_env::tools::env_with_chat(db, behavior, &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let endpoint = ToolEndpoint::start().await;
    let mut body = tool_body(&endpoint.url);
    body["speak_while_waiting"] = json!(true);
    body["waiting_message"] = json!("One moment please.");
    let (status, created) = env
        .call_api(reqwest::Method::POST, &ka, "/api/v1/tools", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    endpoint.set_secret(created["secret"].as_str().expect("secret"));
    env.patch_agent(&alpha, json!({"tools": ["order_status"]}))
        .await;
    endpoint.always(Reply::Json(json!({"status": "shipped"})));

    // A voice call: the model sees the tool, calls it, hears a waiting line meanwhile, and
    // gets the endpoint's answer.
    let sid = "CA00000000000000000000000000000071";
    let media = env.answer(&alpha, sid, "+15557770071", 20.0).await;
    let updates = env.wait_model_event("session.update", 1).await;
    let offered: Vec<&str> = updates[0]["session"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(offered, ["order_status"]);
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let outputs = env.wait_model_event("conversation.item.create", 1).await;
    let output: Value =
        serde_json::from_str(outputs[0]["item"]["output"].as_str().expect("string")).expect("json");
    assert_eq!(output, json!({"ok": true, "result": {"status": "shipped"}}));
    let got = endpoint.wait_for(1, WAIT).await;
    assert!(got[0].verified);
    let call = env.call_of(&alpha, sid).await;
    assert_eq!(got[0].json["arguments"], json!({"order": "A1"}));
    assert_eq!(got[0].json["context"]["call_id"], call.id.as_str());
    assert_eq!(got[0].json["context"]["channel"], "voice");
    assert_eq!(got[0].json["context"]["contact_number"], "+15557770071");
    assert_eq!(got[0].json["context"]["test"], false);
    let creates = env.wait_model_event("response.create", 2).await;
    assert_eq!(
        creates[0]["response"]["tool_choice"], "none",
        "the waiting line calls no tool"
    );
    assert!(creates[0]["response"]["instructions"]
        .as_str()
        .expect("i")
        .contains("One moment please."));
    assert!(
        creates[1].get("response").is_none(),
        "then the answer: {}",
        creates[1]
    );
    media
        .wait_for("the line and the answer", WAIT, |r| {
            r.audio.len() >= 2 * AGENT_SHORT.len()
        })
        .await;

    // A text chat with the same agent: the chat model calls it too.
    chat.script([
        ChatStep::Tools(vec![("order_status".into(), json!({"order": "B2"}))]),
        ChatStep::Text("Your order B2 has shipped.".into()),
    ]);
    let (status, turn) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            &format!("/api/v1/agents/{}/chat", alpha.agent),
            Some(json!({"session_id": "web-1", "message": "Where is B2?"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    let got = endpoint.wait_for(2, WAIT).await;
    assert_eq!(got[1].json["arguments"], json!({"order": "B2"}));
    assert_eq!(got[1].json["context"]["channel"], "web");
    assert!(got[1].json["context"]["call_id"].is_null());
    let requests = chat.requests();
    let offered = requests[0]["tools"].to_string();
    assert!(offered.contains("order_status"), "{offered}");
    let answered = requests[1]["messages"].to_string();
    assert!(
        answered.contains("shipped"),
        "the tool's answer reached the model: {answered}"
    );
    // Both executions are audited as custom tool runs by the agent.
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/tool-invocations?source=custom",
            None,
        )
        .await;
    let rows = audit["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(rows
        .iter()
        .all(|r| r["actor"] == format!("agent:{}", alpha.agent) && r["status"] == "ok"));
    assert!(rows.iter().any(|r| r["call_id"] == call.id.as_str()));
    env.shutdown();
});
