//! Switchboard as an MCP server, over the Streamable HTTP wire as a client speaks it: the
//! handshake and its session, credentials, `Origin`, bad JSON-RPC, every tool with its
//! schema and annotations, each tool held to the caller's organization, the audit, and the
//! call transcript and conversation resources (of a real call through the fakes).

mod voice_env;

use voice_env::outbound::values;
use voice_env::*;

const VERSION: &str = "2025-11-25";

struct Mcp {
    http: reqwest::Client,
    url: String,
    key: String,
    session: Option<String>,
    next: u64,
}

/// One HTTP answer: status, headers, and the JSON-RPC messages in it (a JSON body or the
/// `data:` events of an SSE body).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    messages: Vec<Value>,
}

impl Answer {
    fn result(&self) -> &Value {
        let m = self
            .messages
            .iter()
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .unwrap_or_else(|| panic!("no response in {:?}", self.messages));
        assert!(m.get("error").is_none(), "JSON-RPC error: {m}");
        &m["result"]
    }

    fn error(&self) -> &Value {
        self.messages
            .iter()
            .find_map(|m| m.get("error"))
            .unwrap_or_else(|| panic!("no error in {:?}", self.messages))
    }
}

fn parse_body(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("text/event-stream") {
        body.split("\n\n")
            .flat_map(|event| event.lines())
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    } else if body.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str::<Value>(body)
            .map(|v| vec![v])
            .unwrap_or_default()
    }
}

impl Mcp {
    fn new(env: &Env<'_>, key: &str) -> Mcp {
        Mcp {
            http: reqwest::Client::new(),
            url: format!("{}/mcp", env.base),
            key: key.to_owned(),
            session: None,
            next: 1,
        }
    }

    async fn raw(&self, body: String, extra: &[(&str, &str)]) -> Answer {
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .bearer_auth(&self.key)
            .body(body);
        if let Some(s) = &self.session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", VERSION);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("post");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.expect("body");
        Answer {
            status,
            headers,
            messages: parse_body(&ct, &text),
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Answer {
        let id = self.next;
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.raw(body.to_string(), &[]).await
    }

    async fn initialize(&mut self) -> Value {
        let a = self
            .request(
                "initialize",
                json!({"protocolVersion": VERSION, "capabilities": {},
                    "clientInfo": {"name": "switchboard-test", "version": "1.0.0"}}),
            )
            .await;
        assert_eq!(a.status, 200);
        self.session = a
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert!(self.session.is_some(), "a session is opened");
        let result = a.result().clone();
        let n = self
            .raw(
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
                &[],
            )
            .await;
        assert_eq!(n.status, 202);
        result
    }

    async fn call(&mut self, tool: &str, args: Value) -> Value {
        let a = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await;
        assert_eq!(a.status, 200);
        a.result().clone()
    }
}

fn ok(result: &Value) -> &Value {
    assert_ne!(result["isError"], true, "tool failed: {result}");
    &result["structuredContent"]
}

fn failed(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error: {result}");
    result["structuredContent"]["error"]["code"]
        .as_str()
        .expect("code")
        .to_owned()
}

backend_test!(mcp_handshake_credentials_origin_and_bad_json_rpc, |db| {
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let ka = env.key(&alpha).await;
    let kb = env.key(&beta).await;
    // No credentials, or a wrong key: 401 with a Bearer challenge.
    for auth in [None, Some("sk_wrong_key")] {
        let mut req = env
            .http
            .post(format!("{}/mcp", env.base))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let res = req.send().await.expect("post");
        assert_eq!(res.status(), 401);
        let challenge = res.headers()["www-authenticate"].to_str().expect("header");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    let mut a = Mcp::new(&env, &ka);
    let init = a.initialize().await;
    assert_eq!(init["protocolVersion"], VERSION);
    assert_eq!(init["serverInfo"]["name"], "switchboard");
    assert!(init["capabilities"]["tools"].is_object());
    assert!(init["capabilities"]["resources"].is_object());
    let pong = a.request("ping", json!({})).await;
    assert_eq!(pong.status, 200);
    pong.result();
    // Malformed JSON-RPC gets the JSON-RPC error codes, never a 500.
    let bad = a.raw("{not json".into(), &[]).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["code"], -32700, "{:?}", bad.messages);
    let bad = a
        .raw(json!({"id": 7, "method": "ping"}).to_string(), &[])
        .await;
    assert_eq!(bad.error()["code"], -32600, "no jsonrpc member");
    let bad = a
        .raw(
            json!([{"jsonrpc": "2.0", "id": 8, "method": "ping"}]).to_string(),
            &[],
        )
        .await;
    assert_eq!(
        bad.error()["code"],
        -32600,
        "batches are gone since 2025-06-18"
    );
    let bad = a.request("tools/call", json!({"arguments": {}})).await;
    assert_eq!(bad.error()["code"], -32602, "tools/call without a name");
    let unknown = a
        .request(
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}}),
        )
        .await;
    assert_eq!(unknown.error()["code"], -32602);
    let nomethod = a.request("no/such/method", json!({})).await;
    assert_eq!(nomethod.error()["code"], -32601);
    // A browser page of another site is refused.
    let evil = a
        .raw(
            json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}).to_string(),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(evil.status, 403);
    // A body over the limit is refused.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let big = a.raw(huge, &[]).await;
    assert_eq!(big.status, 413);
    // Alpha's session is unknown to Beta's key.
    let mut b = Mcp::new(&env, &kb);
    b.session = a.session.clone();
    let stolen = b.request("tools/list", json!({})).await;
    assert_eq!(stolen.status, 404);
    // The session ends when the client deletes it.
    let res = env
        .http
        .delete(format!("{}/mcp", env.base))
        .bearer_auth(&ka)
        .header("mcp-session-id", a.session.clone().expect("session"))
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .expect("delete");
    assert!(res.status().is_success(), "{}", res.status());
    let after = a.request("tools/list", json!({})).await;
    assert_eq!(after.status, 404, "a deleted session is unknown");
    env.shutdown();
});

backend_test!(mcp_tools_act_in_the_callers_organization_only, |db| {
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let api = env.outbound(&alpha).await;
    let ka = api.key.clone();
    let kb = env.key(&beta).await;
    let mut a = Mcp::new(&env, &ka);
    a.initialize().await;
    let mut b = Mcp::new(&env, &kb);
    b.initialize().await;

    // The catalogue: schemas, titles and annotations.
    let list = a.request("tools/list", json!({})).await;
    let tools = list.result()["tools"].as_array().expect("tools").clone();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "list_agents",
            "get_agent",
            "create_agent",
            "update_agent",
            "list_numbers",
            "search_contacts",
            "add_contact",
            "update_contact",
            "list_conversations",
            "get_conversation",
            "list_calls",
            "get_call",
            "send_sms",
            "place_call",
            "schedule_sms",
            "list_appointments",
            "book_appointment",
            "move_appointment",
            "cancel_appointment"
        ]
    );
    for t in &tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["title"].is_string(), "{t}");
        assert!(t["annotations"]["readOnlyHint"].is_boolean(), "{t}");
        assert!(t["annotations"]["destructiveHint"].is_boolean(), "{t}");
    }
    let hint = |name: &str, h: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["annotations"][h].clone())
            .expect("tool")
    };
    assert_eq!(hint("get_call", "readOnlyHint"), true);
    assert_eq!(hint("update_agent", "destructiveHint"), true);
    assert_eq!(hint("send_sms", "readOnlyHint"), false);

    // Agents: list, create, read, change the instructions.
    let listed = ok(&a.call("list_agents", json!({})).await).clone();
    assert_eq!(listed["data"].as_array().expect("agents").len(), 1);
    let created = ok(&a
        .call(
            "create_agent",
            json!({"name": "Night desk", "instructions": "You answer after hours."}),
        )
        .await)
    .clone();
    let agent_id = created["id"].as_str().expect("id").to_owned();
    let changed = ok(&a
        .call(
            "update_agent",
            json!({"agent_id": agent_id, "instructions": "You answer at night."}),
        )
        .await)
    .clone();
    assert_eq!(changed["instructions"], "You answer at night.");
    let got = ok(&a.call("get_agent", json!({"agent_id": agent_id})).await).clone();
    assert_eq!(got["name"], "Night desk");
    // Invalid arguments are a tool error naming the field, not a protocol failure.
    let bad = a
        .call("create_agent", json!({"name": "No instructions"}))
        .await;
    assert_eq!(failed(&bad), "invalid_field");
    let bad = a.call("get_agent", json!({"agent_id": "../orgs"})).await;
    assert_eq!(failed(&bad), "invalid_arguments");

    // Numbers and contacts.
    let numbers = ok(&a.call("list_numbers", json!({})).await).clone();
    assert_eq!(numbers["data"][0]["number"], "+15550001001");
    let contact = ok(&a
        .call(
            "add_contact",
            json!({"number": "+15557770100", "name": "Ada"}),
        )
        .await)
    .clone();
    let contact_id = contact["id"].as_str().expect("id").to_owned();
    let found = ok(&a.call("search_contacts", json!({"q": "Ada"})).await).clone();
    assert_eq!(found["data"][0]["id"], contact_id.as_str());
    let updated = ok(&a
        .call(
            "update_contact",
            json!({"contact_id": contact_id, "name": "Ada L."}),
        )
        .await)
    .clone();
    assert_eq!(updated["name"], "Ada L.");

    // Text now, text later, call: through the same checks as the API.
    let sms_number: Value = env
        .http
        .post(format!("{}/api/v1/phone-numbers", env.base))
        .bearer_auth(&ka)
        .json(&json!({"number": "+15550001002", "channel": "sms", "agent_id": alpha.agent}))
        .send()
        .await
        .expect("number")
        .json()
        .await
        .expect("json");
    assert!(sms_number["id"].is_string(), "{sms_number}");
    let sent = ok(&a
        .call(
            "send_sms",
            json!({"to": "+15557770100", "text": "Your table is ready."}),
        )
        .await)
    .clone();
    let conversation_id = sent["conversation"]["id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let texts = env.rest.messages();
    assert_eq!(texts.len(), 1);
    assert_eq!(values(&texts[0], "Body"), ["Your table is ready."]);
    let later = ok(&a
        .call(
            "schedule_sms",
            json!({"to": "+15557770100", "text": "Reminder", "send_at": "2099-01-01T10:00:00Z"}),
        )
        .await)
    .clone();
    assert_eq!(later["status"], "scheduled");
    let placed = ok(&a
        .call(
            "place_call",
            json!({"contact_id": contact_id, "variables": {"name": "Ada"}}),
        )
        .await)
    .clone();
    let call_id = placed["id"].as_str().expect("call id").to_owned();
    env.wait_created(1).await;

    // Conversations and calls with their messages.
    let convs = ok(&a
        .call("list_conversations", json!({"channel": "sms"}))
        .await)
    .clone();
    assert_eq!(convs["data"][0]["id"], conversation_id.as_str());
    let conv = ok(&a
        .call(
            "get_conversation",
            json!({"conversation_id": conversation_id}),
        )
        .await)
    .clone();
    assert_eq!(
        conv["messages"][0]["content"]["text"],
        "Your table is ready."
    );
    let calls = ok(&a.call("list_calls", json!({"direction": "outbound"})).await).clone();
    assert_eq!(calls["data"][0]["id"], call_id.as_str());
    let call = ok(&a.call("get_call", json!({"call_id": call_id})).await).clone();
    assert_eq!(call["call"]["id"], call_id.as_str());
    assert!(call["transcript"].is_array());

    // Beta sees none of it and can change none of it.
    for (tool, args) in [
        ("get_agent", json!({"agent_id": agent_id})),
        (
            "update_agent",
            json!({"agent_id": agent_id, "name": "Taken"}),
        ),
        (
            "update_contact",
            json!({"contact_id": contact_id, "name": "Taken"}),
        ),
        (
            "get_conversation",
            json!({"conversation_id": conversation_id}),
        ),
        ("get_call", json!({"call_id": call_id})),
        ("place_call", json!({"contact_id": contact_id})),
    ] {
        let r = b.call(tool, args).await;
        let code = failed(&r);
        assert!(
            code == "not_found" || code == "invalid_field",
            "{tool}: {r}"
        );
    }
    for (tool, args) in [
        ("list_agents", json!({})),
        ("list_numbers", json!({})),
        ("search_contacts", json!({"q": "Ada"})),
        ("list_conversations", json!({})),
        ("list_calls", json!({})),
    ] {
        let r = ok(&b.call(tool, args).await).clone();
        let text = r.to_string();
        for secret in [&agent_id, &contact_id, &conversation_id, &call_id] {
            assert!(
                !text.contains(secret.as_str()),
                "{tool} leaked {secret}: {text}"
            );
        }
    }
    let r = b
        .call("send_sms", json!({"to": "+15557770100", "text": "hi"}))
        .await;
    failed(&r);
    assert_eq!(
        env.rest.messages().len(),
        1,
        "Beta has no SMS number: nothing sent"
    );
    assert_eq!(
        ok(&a.call("get_agent", json!({"agent_id": agent_id})).await)["name"],
        "Night desk",
        "Beta changed nothing"
    );

    // Every execution is audited with its source and principal, per organization.
    let audit: Value = env
        .http
        .get(format!(
            "{}/api/v1/tool-invocations?source=mcp_server&limit=200",
            env.base
        ))
        .bearer_auth(&ka)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let rows = audit["data"].as_array().expect("rows");
    assert!(rows.len() >= 17, "{}", rows.len());
    assert!(rows.iter().all(|r| r["actor"]
        .as_str()
        .expect("actor")
        .starts_with("api_key:key_")));
    assert!(rows
        .iter()
        .any(|r| r["tool"] == "send_sms" && r["status"] == "ok"));
    assert!(rows
        .iter()
        .any(|r| r["tool"] == "create_agent" && r["status"] == "error"));
    env.shutdown();
});

backend_test!(mcp_resources_are_call_transcripts_and_conversations, |db| {
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
        transcripts: vec!["I would like a table for two.".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let sid = "CA00000000000000000000000000000091";
    let media = env.answer(&alpha, sid, "+15557770091", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    media
        .wait_for("the answer", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;
    let call = env.call_of(&alpha, sid).await;
    eventually("the transcript", WAIT, || async {
        let t = env.transcript(&alpha, sid).await;
        (t.len() >= 2).then_some(())
    })
    .await;
    let ka = env.key(&alpha).await;
    let kb = env.key(&beta).await;
    let mut a = Mcp::new(&env, &ka);
    a.initialize().await;
    let listed = a.request("resources/list", json!({})).await;
    let uri = format!("switchboard://calls/{}/transcript", call.id);
    let resources = listed.result()["resources"]
        .as_array()
        .expect("resources")
        .clone();
    assert!(
        resources.iter().any(|r| r["uri"] == uri.as_str()),
        "{resources:?}"
    );
    let templates = a.request("resources/templates/list", json!({})).await;
    assert_eq!(
        templates.result()["resourceTemplates"][0]["uriTemplate"],
        "switchboard://calls/{call_id}/transcript"
    );
    let read = a.request("resources/read", json!({"uri": uri})).await;
    let text = read.result()["contents"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(
        text.contains("caller: I would like a table for two."),
        "{text}"
    );
    assert!(
        text.contains(&format!("agent: {AGENT_SHORT_TEXT}")),
        "{text}"
    );
    let conv_uri = format!("switchboard://conversations/{}", call.conversation_id);
    let read = a.request("resources/read", json!({"uri": conv_uri})).await;
    let doc: Value =
        serde_json::from_str(read.result()["contents"][0]["text"].as_str().expect("text"))
            .expect("json");
    assert_eq!(doc["conversation"]["id"], call.conversation_id.as_str());
    // Another organization cannot read them; a made-up URI is not found.
    let mut b = Mcp::new(&env, &kb);
    b.initialize().await;
    let stolen = b.request("resources/read", json!({"uri": uri})).await;
    assert_eq!(stolen.error()["code"], -32002, "{:?}", stolen.messages);
    let listed = b.request("resources/list", json!({})).await;
    assert_eq!(listed.result()["resources"], json!([]));
    let unknown = a
        .request("resources/read", json!({"uri": "switchboard://nothing"}))
        .await;
    assert_eq!(unknown.error()["code"], -32002);
    drop(media);
    env.shutdown();
});

backend_test!(an_mcp_session_continues_on_another_instance, |db| {
    // Two servers on one database, as behind a load balancer without sticky sessions: the
    // session opened on the first continues on the second (restored from the database),
    // and stays bound to its organization there.
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let ka = env.key(&alpha).await;
    let kb = env.key(&beta).await;
    let second = SecondInstance::start(db, WebConfig::default()).await;
    let second_url = format!("{}/mcp", second.base);
    let mut a = Mcp::new(&env, &ka);
    a.initialize().await;
    a.url = second_url.clone();
    let listed = ok(&a.call("list_agents", json!({})).await).clone();
    assert_eq!(listed["data"][0]["name"], "Reception");
    let mut b = Mcp::new(&env, &kb);
    b.url = second_url;
    b.session = a.session.clone();
    let stolen = b.request("tools/list", json!({})).await;
    assert_eq!(
        stolen.status, 404,
        "still Alpha's session on the second instance"
    );
    second.stop().await;
    env.shutdown();
});
