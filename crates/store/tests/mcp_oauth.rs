//! The store's side of OAuth to external MCP servers, on both backends: tokens saved onto
//! the grant they belong to only, flows consumed once and within their organization, tokens
//! dropped when the server's URL or credentials change, and the refresh lock held across
//! connections (PostgreSQL).

use serde_json::json;
use switchboard_domain::mcp_server::{McpServer, McpServerPatch, NewMcpServer};
use switchboard_domain::values::Role;
use switchboard_domain::{Secret, Timestamp};
use switchboard_store::backend_test;

fn server() -> McpServer {
    let input: NewMcpServer = serde_json::from_value(json!({"name": "crm",
        "url": "https://crm.example.com/mcp", "auth": {"type": "oauth"}, "allowed_tools": ["*"]}))
    .expect("input");
    McpServer::create(input, false, Timestamp::now()).expect("valid")
}

backend_test!(mcp_oauth_tokens_flows_and_locks, |db| {
    let store = &db.store;
    let org = store.create_org("Acme").await.expect("org");
    let other = store.create_org("Other").await.expect("org");
    let user = store
        .create_user(
            &org.id,
            "a@acme.test",
            &Secret::new("password 1234"),
            Role::Admin,
        )
        .await
        .expect("user");
    let s = server();
    store.create_mcp_server(&org.id, &s).await.expect("create");
    let shown = store.get_mcp_server(&org.id, &s.id).await.expect("get");
    assert_eq!(shown.oauth.expect("oauth").state, "not_connected");

    // A flow is found by its state's hash, in its organization only, once, until it expires.
    let now = Timestamp::from_millis(1_000_000);
    let later = Timestamp::from_millis(now.millis() + 600_000);
    store
        .create_mcp_oauth_flow(&org.id, &s.id, &user.id, "h1", "{}", now, later)
        .await
        .expect("flow");
    assert!(store
        .take_mcp_oauth_flow(&other.id, "h1", now)
        .await
        .expect("take")
        .is_none());
    let flow = store
        .take_mcp_oauth_flow(&org.id, "h1", now)
        .await
        .expect("take")
        .expect("found");
    assert_eq!(
        (flow.server_id, flow.user_id),
        (s.id.clone(), user.id.clone())
    );
    assert!(store
        .take_mcp_oauth_flow(&org.id, "h1", now)
        .await
        .expect("take")
        .is_none());
    store
        .create_mcp_oauth_flow(&org.id, &s.id, &user.id, "h2", "{}", now, later)
        .await
        .expect("flow");
    assert!(store
        .take_mcp_oauth_flow(&org.id, "h2", later)
        .await
        .expect("take")
        .is_none());

    // Connected: the status shows it; a refresh saves onto that grant only.
    let t1 = Timestamp::from_millis(2_000_000);
    let exp = Timestamp::from_millis(5_600_000);
    store
        .connect_mcp_oauth(&org.id, &s.id, "{\"c\":1}", "{\"t\":1}", Some(exp), t1)
        .await
        .expect("connect");
    let o = store
        .get_mcp_server(&org.id, &s.id)
        .await
        .expect("get")
        .oauth
        .expect("oauth");
    assert_eq!(
        (o.state.as_str(), o.connected_at, o.access_expires_at),
        ("connected", Some(t1), Some(exp))
    );
    assert!(store
        .refresh_mcp_oauth(&org.id, &s.id, t1, "{\"t\":2}", None)
        .await
        .expect("refresh"));
    assert!(!store
        .refresh_mcp_oauth(&org.id, &s.id, Timestamp::from_millis(1), "{\"t\":3}", None)
        .await
        .expect("stale refresh"));
    let held = store.mcp_oauth_held(&org.id, &s.id).await.expect("held");
    assert_eq!(held.tokens.as_ref().map(|t| t.expose()), Some("{\"t\":2}"));
    assert!(store.mcp_oauth_held(&other.id, &s.id).await.is_err());
    // A refused refresh of an older grant does not drop a newer one.
    assert!(!store
        .disconnect_mcp_oauth(
            &org.id,
            &s.id,
            Some(Timestamp::from_millis(1)),
            Some("x"),
            t1
        )
        .await
        .expect("disconnect"));
    assert!(store
        .disconnect_mcp_oauth(&org.id, &s.id, Some(t1), Some("refused"), t1)
        .await
        .expect("disconnect"));
    let after = store.get_mcp_server(&org.id, &s.id).await.expect("get");
    assert_eq!(after.oauth.expect("oauth").state, "not_connected");
    assert_eq!(after.last_error.as_deref(), Some("refused"));
    let held = store.mcp_oauth_held(&org.id, &s.id).await.expect("held");
    assert_eq!(
        (
            held.client.as_ref().map(|c| c.expose()),
            held.tokens.is_none()
        ),
        (Some("{\"c\":1}"), true),
        "the registration stays for the next connection"
    );

    // Another URL forgets the client, the tokens and the flows; the name alone does not.
    store
        .connect_mcp_oauth(&org.id, &s.id, "{\"c\":1}", "{\"t\":1}", None, t1)
        .await
        .expect("connect");
    let renamed = store
        .update_mcp_server(&org.id, &s.id, |v| {
            v.apply(
                McpServerPatch {
                    name: Some("crm2".into()),
                    ..McpServerPatch::default()
                },
                false,
                Timestamp::now(),
            )
        })
        .await
        .expect("rename");
    assert_eq!(renamed.oauth.expect("oauth").state, "connected");
    store
        .create_mcp_oauth_flow(&org.id, &s.id, &user.id, "h3", "{}", now, later)
        .await
        .expect("flow");
    let moved = store
        .update_mcp_server(&org.id, &s.id, |v| {
            v.apply(
                McpServerPatch {
                    url: Some("https://crm2.example.com/mcp".into()),
                    ..McpServerPatch::default()
                },
                false,
                Timestamp::now(),
            )
        })
        .await
        .expect("move");
    assert_eq!(moved.oauth.expect("oauth").state, "not_connected");
    let held = store.mcp_oauth_held(&org.id, &s.id).await.expect("held");
    assert!(held.client.is_none() && held.tokens.is_none());
    assert!(store
        .take_mcp_oauth_flow(&org.id, "h3", now)
        .await
        .expect("take")
        .is_none());

    // The refresh lock: while one connection holds it, no other gets it.
    let held = store.lock_mcp_oauth_refresh(&s.id).await.expect("lock");
    let second = store.try_lock_mcp_oauth_refresh(&s.id).await.expect("try");
    if store.backend() == switchboard_store::Backend::Postgres {
        assert!(second.is_none(), "held by the first");
    }
    drop(second);
    held.release().await;
    assert!(
        store
            .try_lock_mcp_oauth_refresh(&s.id)
            .await
            .expect("try")
            .is_some(),
        "free again once released"
    );
});
