//! Secrets at rest: every credential an organization gives Switchboard, or that Switchboard
//! obtains for it, is stored encrypted. A dump of the database (the SQLite file and its log,
//! every PostgreSQL row) contains none of them in clear, and they still work.

mod voice_env;

use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::oauth_mcp::OAuthMcp;
use voice_env::tools::connect_mcp_oauth;
use voice_env::*;

backend_test!(a_database_dump_holds_no_credential_in_clear, |db| {
    let fake = OAuthMcp::start().await;
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let post = reqwest::Method::POST;
    let mut secrets = vec![alpha.token.clone()];

    // A Twilio token set through the API.
    let token = "twilio-token-set-by-the-api-0123456789";
    let (status, body) = env
        .call_api(
            reqwest::Method::PUT,
            &ka,
            "/api/v1/settings",
            Some(json!({"twilio_auth_token": token})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["twilio_auth_token_set"], true, "{body}");
    secrets.push(token.into());

    // A webhook endpoint's secret, and after a rotation the previous one too.
    let (status, ep) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": "https://hooks.example.test/in"})),
        )
        .await;
    assert_eq!(status, 201, "{ep}");
    secrets.push(ep["secret"].as_str().expect("secret").into());
    let id = ep["id"].as_str().expect("id");
    let (status, rotated) = env
        .call_api(
            post.clone(),
            &ka,
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    secrets.push(rotated["secret"].as_str().expect("secret").into());

    // A custom tool's header and signing secret.
    let header = "Bearer custom-tool-header-secret-42";
    let (status, tool) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/tools",
            Some(json!({
                "name": "order_status",
                "description": "Looks up where an order is.",
                "parameters": {"type": "object", "properties": {}},
                "url": "https://crm.example.test/orders",
                "headers": {"Authorization": header},
            })),
        )
        .await;
    assert_eq!(status, 201, "{tool}");
    secrets.push(header.into());
    secrets.push(tool["secret"].as_str().expect("secret").into());

    // An MCP server's header credential, and another's OAuth client and tokens.
    let mcp_value = "mcp-header-credential-77";
    let (status, body) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/mcp-servers",
            Some(
                json!({"name": "docs", "url": "https://docs.example.test/mcp",
                "auth": {"type": "header", "name": "X-Api-Key", "value": mcp_value},
                "allowed_tools": ["*"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    secrets.push(mcp_value.into());
    let (status, crm) = env
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
    assert_eq!(status, 201, "{crm}");
    let admin = env.dashboard_admin(&alpha, "admin@alpha.test").await;
    let crm_id = crm["id"].as_str().expect("id");
    connect_mcp_oauth(&admin, &fake, crm_id).await;
    let issued = fake.issued_secrets();
    assert!(
        issued.len() >= 2,
        "an access and a refresh token: {issued:?}"
    );
    secrets.extend(issued);

    // They all still work: the OAuth server's tools list with the stored token.
    let (status, tools) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/mcp-servers/{crm_id}/tools"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{tools}");

    let dump = db.dump_text().await;
    assert!(dump.contains("enc:v1:"), "the dump sees the sealed columns");
    assert!(dump.contains("+15550001001"), "the dump sees ordinary data");
    for s in &secrets {
        assert!(!dump.contains(s.as_str()), "`{s}` is stored in clear");
    }
    env.shutdown();
});
