//! Agents using an external MCP server's tools: the reference server
//! `@modelcontextprotocol/server-everything` (npm, installed by `.ci/install-npm-tools`) is
//! started over Streamable HTTP and registered by one organization with an allow-list; its
//! agent calls `echo` in a voice call (fake Realtime model) and in a web chat (fake chat
//! model), the answers reach the models, the executions are audited, another organization
//! cannot see or use the server, and a server that went away is a tool error the agent can
//! speak, not a failed conversation.
//!
//! Without the npm tools the test says it skipped, except under `CI=true`, where it fails.

mod voice_env;

use std::path::PathBuf;
use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use voice_env::*;

fn everything() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testkit/npm/node_modules");
    let node = dir.join(".bin/node");
    let server = dir.join("@modelcontextprotocol/server-everything/dist/index.js");
    (node.exists() && server.exists()).then_some((node, server))
}

async fn start_everything(node: &PathBuf, server: &PathBuf) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = tokio::process::Command::new(node)
        .arg(server)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything");
    eventually("server-everything to listen", WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    (child, port)
}

backend_test!(agents_use_an_external_mcp_servers_tools, |db| {
    let Some((node, server)) = everything() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "server-everything is not installed (run .ci/install-npm-tools)"
        );
        eprintln!("skipped: server-everything is not installed (.ci/install-npm-tools)");
        return;
    };
    let (mut child, port) = start_everything(&node, &server).await;
    let chat = FakeChatModel::start().await;
    let behavior = Behavior {
        steps: vec![
            Step::Call(
                "mcp__everything__echo".into(),
                json!({"message": "hello from the call"}),
            ),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
        ],
        transcripts: vec!["Please echo something.".into()],
        ..Behavior::default()
    };
    let mut env = voice_env::tools::env_with_chat(db, behavior, &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let ka = env.key(&alpha).await;
    let kb = env.key(&beta).await;
    let post = reqwest::Method::POST;

    // Registration: validated, the header value never shown again.
    let (status, err) = env.call_api( post.clone(), &ka, "/api/v1/mcp-servers",
        Some(json!({"name": "Every Thing", "url": format!("http://127.0.0.1:{port}/mcp"), "allowed_tools": ["echo"]}))).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("name"))
    );
    let (status, created) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/mcp-servers",
            Some(
                json!({"name": "everything", "url": format!("http://127.0.0.1:{port}/mcp"),
            "auth": {"type": "header", "name": "X-Api-Key", "value": "s3cret-value"},
            "allowed_tools": ["echo"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["auth"]["value"], "[redacted]");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, listed) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{id}/tools"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let tools = listed["tools"].as_array().expect("tools");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo listed");
    assert_eq!(echo["allowed"], true);
    assert_eq!(echo["model_name"], "mcp__everything__echo");
    assert!(tools
        .iter()
        .any(|t| t["name"] == "get-sum" && t["allowed"] == false));
    // Beta neither sees it nor can give it to its agent.
    let (status, _) = env
        .call_api(
            reqwest::Method::GET,
            &kb,
            &format!("/api/v1/mcp-servers/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, err) = env
        .call_api(
            reqwest::Method::PATCH,
            &kb,
            &format!("/api/v1/agents/{}", beta.agent),
            Some(json!({"tools": ["mcp:everything"]})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("tools[0]"))
    );
    env.patch_agent(&alpha, json!({"tools": ["mcp:everything"]}))
        .await;
    let (status, _) = env
        .call_api(
            reqwest::Method::DELETE,
            &ka,
            &format!("/api/v1/mcp-servers/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "in use by an agent");

    // A call: the model is offered the allowed tool only, calls it, gets the answer.
    let sid = "CA00000000000000000000000000000081";
    let media = env.answer(&alpha, sid, "+15557770081", 20.0).await;
    let updates = env.wait_model_event("session.update", 1).await;
    let offered: Vec<&str> = updates[0]["session"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(offered, ["mcp__everything__echo"]);
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let outputs = env.wait_model_event("conversation.item.create", 1).await;
    let output: Value =
        serde_json::from_str(outputs[0]["item"]["output"].as_str().expect("output")).expect("json");
    assert_eq!(
        output,
        json!({"ok": true, "result": "Echo: hello from the call"})
    );
    media
        .wait_for("the answer", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;

    // A web chat: the chat model calls it too.
    chat.script([
        ChatStep::Tools(vec![(
            "mcp__everything__echo".into(),
            json!({"message": "hi by text"}),
        )]),
        ChatStep::Text("It said hi.".into()),
    ]);
    let chat_path = format!("/api/v1/agents/{}/chat", alpha.agent);
    let (status, turn) = env
        .call_api(
            post.clone(),
            &ka,
            &chat_path,
            Some(json!({"session_id": "w1", "message": "echo please"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    let requests = chat.requests();
    assert!(requests[0]["tools"]
        .to_string()
        .contains("mcp__everything__echo"));
    assert!(
        requests[1]["messages"]
            .to_string()
            .contains("Echo: hi by text"),
        "{}",
        requests[1]["messages"]
    );
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/tool-invocations?source=mcp_client",
            None,
        )
        .await;
    let rows = audit["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(rows
        .iter()
        .all(|r| r["status"] == "ok" && r["tool"] == "mcp__everything__echo"));
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &kb,
            "/api/v1/tool-invocations?source=mcp_client",
            None,
        )
        .await;
    assert_eq!(audit["data"], json!([]));

    // The server goes away: the tool answers an error the agent can speak; the chat goes on.
    child.kill().await.expect("stop server-everything");
    chat.script([
        ChatStep::Tools(vec![(
            "mcp__everything__echo".into(),
            json!({"message": "anyone?"}),
        )]),
        ChatStep::Text("The system is down.".into()),
    ]);
    let (status, turn) = env
        .call_api(
            post.clone(),
            &ka,
            &chat_path,
            Some(json!({"session_id": "w1", "message": "again"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(
        turn["tool_calls"][0]["output"]["error"]["code"], "server_unavailable",
        "{turn}"
    );
    let (status, err) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{id}/tools"),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (502, Some("mcp_server_unavailable"))
    );
    drop(media);
    env.shutdown();
});

backend_test!(misbehaving_mcp_servers_are_cut_off, |db| {
    // Garbage, a peer that never answers, a tool list of megabytes, a call that never ends:
    // each is cut off by the size and time limits and reported, never a failed conversation.
    let bad = switchboard_testkit::bad_mcp::BadMcp::start().await;
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let mut ids = Vec::new();
    for mode in ["garbage", "hang", "huge", "slow"] {
        let (status, s) = env.call_api( reqwest::Method::POST, &ka, "/api/v1/mcp-servers",
            Some(json!({"name": mode, "url": format!("{}/{mode}/mcp", bad.base), "allowed_tools": ["*"]}))).await;
        assert_eq!(status, 201, "{s}");
        ids.push(s["id"].as_str().expect("id").to_owned());
    }
    for (mode, id) in ["garbage", "hang", "huge"].iter().zip(&ids) {
        let (status, err) = env
            .call_api(
                reqwest::Method::GET,
                &ka,
                &format!("/api/v1/mcp-servers/{id}/tools"),
                None,
            )
            .await;
        assert_eq!(status, 502, "{mode}: {err}");
        assert_eq!(err["error"]["code"], "mcp_server_unavailable", "{mode}");
    }
    // In a chat, the broken servers' tools are left out; the slow one's call times out.
    env.patch_agent(
        &alpha,
        json!({"tools": ["mcp:garbage", "mcp:huge", "mcp:slow"]}),
    )
    .await;
    chat.script([
        ChatStep::Tools(vec![("mcp__slow__slow".into(), json!({}))]),
        ChatStep::Text("That system is slow today.".into()),
    ]);
    let (status, turn) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            &format!("/api/v1/agents/{}/chat", alpha.agent),
            Some(json!({"session_id": "w1", "message": "try it"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    let offered: Vec<String> = chat.requests()[0]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["function"]["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        offered,
        ["mcp__slow__slow"],
        "the broken servers' tools are left out"
    );
    assert_eq!(turn["tool_calls"][0]["status"], "timeout", "{turn}");
    assert_eq!(turn["reply"], "That system is slow today.");
    // The failures are recorded on the servers for the dashboard and the API.
    let (_, garbage) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{}", ids[0]),
            None,
        )
        .await;
    assert!(garbage["last_error"].is_string(), "{garbage}");
    assert!(garbage["last_error_at"].is_string(), "{garbage}");
    let (_, slow) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{}", ids[3]),
            None,
        )
        .await;
    assert!(slow["last_error"].is_null(), "{slow}");
    env.shutdown();
});
