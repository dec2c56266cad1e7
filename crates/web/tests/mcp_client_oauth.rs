//! Agents using an MCP server protected by OAuth (the testkit's fake server with its own
//! authorization server): an admin connects it from the dashboard (discovery from the 401,
//! dynamic registration, PKCE, the callback), the agent's tool calls carry the token, a token
//! the server stops accepting is refreshed once and the call retried, a token due to expire is
//! refreshed before use, a refused refresh disconnects the server with a reason, and the
//! server's `notifications/tools/list_changed` reaches the next conversation at once.

mod voice_env;

use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::oauth_mcp::{whoami_tool, OAuthMcp};
use voice_env::tools::connect_mcp_oauth;
use voice_env::*;

/// Runs the chat turn `message` with the model calling `mcp__crm__whoami`; answers what the
/// tool gave the model.
async fn whoami(env: &Env<'_>, chat: &FakeChatModel, key: &str, org: &Org) -> Value {
    chat.script([
        ChatStep::Tools(vec![("mcp__crm__whoami".into(), json!({}))]),
        ChatStep::Text("Done.".into()),
    ]);
    let (status, turn) = env
        .call_api(
            reqwest::Method::POST,
            key,
            &format!("/api/v1/agents/{}/chat", org.agent),
            Some(json!({"session_id": "w1", "message": "who am I?"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    turn["tool_calls"][0]["output"].clone()
}

backend_test!(agents_use_an_oauth_protected_mcp_server, |db| {
    let fake = OAuthMcp::start().await;
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let ka = env.key(&alpha).await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // Registration: a client secret needs its client id; OAuth servers start unconnected.
    let (status, err) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/mcp-servers",
            Some(json!({"name": "crm", "url": fake.mcp_url,
                "auth": {"type": "oauth", "client_secret": "s"}, "allowed_tools": ["*"]})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("auth.client_secret")),
        "{err}"
    );
    let (status, created) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/mcp-servers",
            Some(
                json!({"name": "crm", "url": fake.mcp_url, "auth": {"type": "oauth"},
                "allowed_tools": ["*"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["oauth"]["state"], "not_connected", "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, err) = env
        .call_api(
            get.clone(),
            &ka,
            &format!("/api/v1/mcp-servers/{id}/tools"),
            None,
        )
        .await;
    assert_eq!(status, 502, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not connected")),
        "{err}"
    );

    // The admin connects it from the dashboard.
    let admin = env.dashboard_admin(&alpha, "admin@alpha.test").await;
    let page = admin.get(&format!("/tools/mcp/{id}")).await;
    assert!(page.body.contains("oauth-connect"), "{}", page.body);
    let (authorize, landed) = connect_mcp_oauth(&admin, &fake, &id).await;
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["resource"], fake.mcp_url);
    assert_eq!(
        q["redirect_uri"],
        format!("{PUBLIC}/tools/mcp/oauth/callback")
    );
    assert!(q["scope"].split(' ').any(|s| s == "crm.read"), "{q:?}");
    assert!(
        q["scope"].split(' ').any(|s| s == "offline_access"),
        "{q:?}"
    );
    assert_eq!(fake.registrations(), 1);
    assert_eq!(landed, format!("/tools/mcp/{id}?flash=Connected"));
    let exchange = &fake.token_requests()[0];
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["resource"], fake.mcp_url);
    assert!(exchange.contains_key("code_verifier"));
    let (_, shown) = env
        .call_api(get.clone(), &ka, &format!("/api/v1/mcp-servers/{id}"), None)
        .await;
    assert_eq!(shown["oauth"]["state"], "connected", "{shown}");
    assert!(shown["oauth"]["access_expires_at"].is_string(), "{shown}");
    assert!(
        !shown.to_string().contains("at_") && !shown.to_string().contains("rt_"),
        "tokens are never shown: {shown}"
    );
    let page = admin.get(&format!("/tools/mcp/{id}")).await;
    assert!(page.body.contains("Reconnect") && page.body.contains("whoami"));

    // A callback replayed, or brought to another organization's admin, connects nothing.
    let replay = admin
        .get(&format!(
            "/tools/mcp/oauth/callback?code=x&state={}",
            q["state"]
        ))
        .await;
    assert!(
        replay.location.starts_with("/tools?flash=This"),
        "{}",
        replay.location
    );
    let other = env.dashboard_admin(&beta, "admin@beta.test").await;
    let start = admin
        .submit(
            &format!("/tools/mcp/{id}"),
            &format!("/tools/mcp/{id}/oauth/connect"),
            &[],
        )
        .await;
    let back = admin.get(&start.location).await;
    let stolen = other
        .get(&back.location.replacen(PUBLIC, &other.base, 1))
        .await;
    assert!(
        stolen.location.starts_with("/tools?flash=This"),
        "{}",
        stolen.location
    );

    // The agent's call carries the token.
    env.patch_agent(&alpha, json!({"tools": ["mcp:crm"]})).await;
    let out = whoami(&env, &chat, &ka, &alpha).await;
    assert_eq!(out, json!({"ok": true, "result": "account acme, token #1"}));
    assert!(chat.requests()[1]["messages"]
        .to_string()
        .contains("account acme, token #1"));

    // The server stops accepting the token: one refresh, the call retried, no error.
    fake.expire_access_tokens();
    let out = whoami(&env, &chat, &ka, &alpha).await;
    assert_eq!(out, json!({"ok": true, "result": "account acme, token #2"}));
    assert_eq!(fake.refreshes(), 1);
    let refresh = fake
        .token_requests()
        .into_iter()
        .find(|r| r["grant_type"] == "refresh_token")
        .expect("a refresh");
    assert_eq!(refresh["resource"], fake.mcp_url);

    // A token due to expire is refreshed before it is used: no 401 on the way.
    fake.set_access_ttl(0);
    fake.expire_access_tokens();
    whoami(&env, &chat, &ka, &alpha).await;
    let refused = fake.unauthorized();
    let refreshes = fake.refreshes();
    fake.set_access_ttl(3600);
    let out = whoami(&env, &chat, &ka, &alpha).await;
    assert_eq!(out["ok"], true, "{out}");
    assert!(fake.refreshes() > refreshes);
    assert_eq!(
        fake.unauthorized(),
        refused,
        "refreshed before use, not after a 401"
    );

    // The server's tools change: it says so on the open session, and the next conversation
    // sees the new tool at once (well within the list's one-minute cache).
    eventually("the session's event stream", WAIT, || async {
        (fake.listeners() > 0).then_some(())
    })
    .await;
    let lists = fake.list_requests();
    fake.set_tools(vec![
        whoami_tool(),
        json!({"name": "find_customer", "description": "Find a customer",
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}),
    ]);
    eventually("the changed list fetched", WAIT, || async {
        (fake.list_requests() > lists).then_some(())
    })
    .await;
    chat.script([ChatStep::Text("Hello.".into())]);
    let before = chat.requests().len();
    let (status, _) = env
        .call_api(
            post.clone(),
            &ka,
            &format!("/api/v1/agents/{}/chat", alpha.agent),
            Some(json!({"session_id": "w2", "message": "hi"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        chat.requests()[before]["tools"]
            .to_string()
            .contains("mcp__crm__find_customer"),
        "{}",
        chat.requests()[before]["tools"]
    );

    // The authorization server refuses to refresh: the call is an error the agent can
    // speak, and the server is shown disconnected with the reason.
    fake.revoke_refresh_tokens();
    fake.expire_access_tokens();
    let out = whoami(&env, &chat, &ka, &alpha).await;
    assert_eq!(out["error"]["code"], "server_unavailable", "{out}");
    let (_, shown) = env
        .call_api(get.clone(), &ka, &format!("/api/v1/mcp-servers/{id}"), None)
        .await;
    assert_eq!(shown["oauth"]["state"], "not_connected", "{shown}");
    assert!(
        shown["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused to refresh")),
        "{shown}"
    );

    // Connected again, then disconnected by the API; a header server has no OAuth to drop.
    let (_, landed) = connect_mcp_oauth(&admin, &fake, &id).await;
    assert_eq!(landed, format!("/tools/mcp/{id}?flash=Connected"));
    let out = whoami(&env, &chat, &ka, &alpha).await;
    assert_eq!(out["ok"], true, "{out}");
    let (status, shown) = env
        .call_api(
            reqwest::Method::DELETE,
            &ka,
            &format!("/api/v1/mcp-servers/{id}/oauth"),
            None,
        )
        .await;
    assert_eq!(
        (status, shown["oauth"]["state"].as_str()),
        (200, Some("not_connected"))
    );
    let (status, plain) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/mcp-servers",
            Some(json!({"name": "plain", "url": fake.mcp_url, "allowed_tools": ["*"]})),
        )
        .await;
    assert_eq!(status, 201, "{plain}");
    let (status, err) = env
        .call_api(
            reqwest::Method::DELETE,
            &ka,
            &format!(
                "/api/v1/mcp-servers/{}/oauth",
                plain["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("not_oauth"))
    );

    // Another URL drops the tokens: they were for the old resource.
    connect_mcp_oauth(&admin, &fake, &id).await;
    let (status, shown) = env
        .call_api(
            reqwest::Method::PATCH,
            &ka,
            &format!("/api/v1/mcp-servers/{id}"),
            Some(json!({"url": format!("{}/mcp?v=2", fake.base)})),
        )
        .await;
    assert_eq!(
        (status, shown["oauth"]["state"].as_str()),
        (200, Some("not_connected")),
        "{shown}"
    );
    env.shutdown();
});

backend_test!(an_oauth_mcp_server_is_shared_by_two_instances, |db| {
    // Two servers on one database, as behind a load balancer: the authorization started on
    // the first completes on the second, and when the token stops working both refresh it
    // at the same moment without spending the rotated refresh token twice (which the
    // authorization server would punish with invalid_grant, disconnecting the server).
    let fake = OAuthMcp::start().await;
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let second = SecondInstance::start(
        db,
        WebConfig {
            public_url: Some(PUBLIC.into()),
            tools_allow_private: true,
            ..WebConfig::default()
        },
    )
    .await;
    let second_base = second.base.clone();
    let (_, created) = env
        .call_api(
            reqwest::Method::POST,
            &ka,
            "/api/v1/mcp-servers",
            Some(
                json!({"name": "crm", "url": fake.mcp_url, "auth": {"type": "oauth"},
                "allowed_tools": ["*"]}),
            ),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let admin = env.dashboard_admin(&alpha, "admin@alpha.test").await;
    let start = admin
        .submit(
            &format!("/tools/mcp/{id}"),
            &format!("/tools/mcp/{id}/oauth/connect"),
            &[],
        )
        .await;
    let back = admin.get(&start.location).await;
    let done_on_second = admin
        .get(&back.location.replacen(PUBLIC, &second_base, 1))
        .await;
    assert_eq!(
        done_on_second.location,
        format!("/tools/mcp/{id}?flash=Connected")
    );

    let tools_path = format!("/api/v1/mcp-servers/{id}/tools");
    let list = |base: String| {
        let (http, key, path) = (env.http.clone(), ka.clone(), tools_path.clone());
        async move {
            http.get(format!("{base}{path}"))
                .bearer_auth(key)
                .send()
                .await
                .expect("tools")
                .status()
                .as_u16()
        }
    };
    assert_eq!(list(env.base.clone()).await, 200);
    assert_eq!(list(second_base.clone()).await, 200);
    if db.store.backend() != switchboard_store::Backend::Postgres {
        // Several instances share one database on PostgreSQL only; SQLite is one instance.
        second.stop().await;
        env.shutdown();
        return;
    }
    // Each refresh is held until a second one arrives (or 1.5 s pass): without the lock
    // across instances both would spend the same refresh token and one be refused.
    fake.hold_refreshes(Duration::from_millis(1500));
    fake.expire_access_tokens();
    let (a, b) = tokio::join!(list(env.base.clone()), list(second_base.clone()));
    assert_eq!((a, b), (200, 200));
    assert!(fake.refreshes() >= 1);
    let (_, shown) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{id}"),
            None,
        )
        .await;
    assert_eq!(shown["oauth"]["state"], "connected", "{shown}");
    assert!(shown["last_error"].is_null(), "{shown}");
    second.stop().await;
    env.shutdown();
});
