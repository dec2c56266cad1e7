//! The custom tools pages in a real browser (headless Chromium over WebDriver): a tool created
//! with an error beside the field first, its signing secret shown once, its header value never
//! on the page, "Test this tool" answered by an endpoint that verifies the signature, and the
//! tool offered in the agent form. Screenshots go to `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::values::Role;
use switchboard_domain::Secret;
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;
use switchboard_testkit::tool_endpoint::{Reply, ToolEndpoint};
use switchboard_web::{Application, WebConfig};

const WAIT: Duration = Duration::from_secs(20);
const PW: &str = "admin password 123";
const HEADER_VALUE: &str = "Bearer crm-key-never-shown";

async fn shot(b: &Browser, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_tools_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let store = &db.store;
    let org = store.create_org("Acme Shop").await.expect("org");
    let agent: NewAgent =
        serde_json::from_value(json!({"name": "Orders", "instructions": "You track orders."}))
            .expect("agent");
    let agent = store.create_agent(&org.id, agent).await.expect("agent");
    store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");
    let endpoint = ToolEndpoint::start().await;
    endpoint.always(Reply::Json(json!({"status": "shipped", "eta": "Friday"})));
    let config = WebConfig {
        tools_allow_private: true,
        ..WebConfig::default()
    };
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));

    b.sign_in(&base, "admin@acme.test", PW)
        .await
        .expect("signed in");

    b.goto(&format!("{base}/tools")).await.expect("tools");
    b.wait_for("#custom-tools", WAIT)
        .await
        .expect("custom tools card");
    b.click_css("#new-custom-tool").await.expect("new");
    b.wait_for("#tool-form", WAIT).await.expect("form");
    // A built-in's name is refused beside the field; nothing is saved.
    b.fill("#name", "end_call").await.expect("name");
    b.fill("#description", "Looks up where an order is.")
        .await
        .expect("description");
    b.fill("#url", &endpoint.url).await.expect("url");
    b.fill(
        "#parameters",
        r#"{"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}"#,
    )
    .await
    .expect("parameters");
    b.fill("#headers", &format!("Authorization: {HEADER_VALUE}"))
        .await
        .expect("headers");
    b.click_css("#save").await.expect("save");
    let err = b.wait_for("#error-name", WAIT).await.expect("name error");
    assert!(b.text(&err).await.expect("text").contains("built-in tool"));
    shot(&b, "30-custom-tool-error").await;
    assert!(store
        .list_custom_tools(&org.id)
        .await
        .expect("list")
        .is_empty());
    // Fixed: saved, and the secret shown this once.
    b.fill("#name", "order_status").await.expect("name");
    b.fill("#headers", &format!("Authorization: {HEADER_VALUE}"))
        .await
        .expect("headers");
    b.click_css("#save").await.expect("save");
    let secret = b
        .wait_for("#new-secret-value", WAIT)
        .await
        .expect("secret shown");
    let secret = b.text(&secret).await.expect("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    shot(&b, "31-custom-tool-created").await;
    let page = b
        .execute("return document.documentElement.outerHTML", vec![])
        .await
        .expect("html");
    let page = page.as_str().expect("html text");
    assert!(
        !page.contains(HEADER_VALUE),
        "the header value is not on the page"
    );
    assert!(page.contains("Authorization: [redacted]"));

    // Test this tool: the endpoint verifies the signature with the secret just shown.
    endpoint.set_secret(&secret);
    b.fill("#arguments", r#"{"order": "A1"}"#)
        .await
        .expect("arguments");
    b.click_css("#run-test").await.expect("run");
    b.wait_text("#test-result", "shipped", WAIT)
        .await
        .expect("result shown");
    let got = endpoint.wait_for(1, WAIT).await;
    assert!(got[0].verified);
    assert_eq!(got[0].header("authorization"), Some(HEADER_VALUE));
    assert_eq!(got[0].json["arguments"], json!({"order": "A1"}));
    assert!(b.find("#custom-tool-invocations").await.is_ok());
    shot(&b, "32-custom-tool-tested").await;
    // Saving the form again keeps the header (the page only ever had `[redacted]`).
    b.fill("#timeout_ms", "3000").await.expect("timeout");
    b.click_css("#save").await.expect("save");
    b.wait_text(".flash", "Tool saved", WAIT)
        .await
        .expect("saved");
    let tool = store
        .list_custom_tools(&org.id)
        .await
        .expect("list")
        .remove(0);
    assert_eq!(tool.timeout_ms, 3000);
    assert_eq!(tool.headers.0[0].1.expose(), HEADER_VALUE);

    // The agent form offers it beside the built-ins.
    b.goto(&format!("{base}/agents/{}", agent.id))
        .await
        .expect("agent");
    b.wait_for("#tools input[value=order_status]", WAIT)
        .await
        .expect("offered");
    b.resize(390, 844).await.expect("phone");
    b.goto(&format!("{base}/tools/custom/{}", tool.id))
        .await
        .expect("tool page");
    b.wait_for("#tool-form", WAIT).await.expect("form");
    shot(&b, "33-custom-tool-phone").await;

    // An MCP server registered from the tools page: its header value never on the page, and
    // what it offers now checked live with the allow-list applied.
    let bad = switchboard_testkit::bad_mcp::BadMcp::start().await;
    b.goto(&format!("{base}/tools")).await.expect("tools");
    b.click_css("#new-mcp-server").await.expect("add");
    b.wait_for("#mcp-form", WAIT).await.expect("form");
    b.fill("#name", "crm").await.expect("name");
    b.fill("#url", &format!("{}/slow/mcp", bad.base))
        .await
        .expect("url");
    b.fill("#header_name", "Authorization")
        .await
        .expect("header");
    b.fill("#header_value", HEADER_VALUE).await.expect("value");
    b.fill("#allowed_tools", "slow").await.expect("allowed");
    // A header filled in while "None" is chosen is refused, not dropped.
    b.click_css("#save").await.expect("save");
    let err = b
        .wait_for("#error-header", WAIT)
        .await
        .expect("header error");
    assert!(b.text(&err).await.expect("text").contains("A header"));
    choose(&b, "#auth_type", "header").await;
    b.fill("#header_value", HEADER_VALUE).await.expect("value");
    b.click_css("#save").await.expect("save");
    b.wait_text("#mcp-tools", "mcp__crm__slow", WAIT)
        .await
        .expect("the live check");
    let page = b
        .execute("return document.documentElement.outerHTML", vec![])
        .await
        .expect("html");
    assert!(!page.as_str().expect("html").contains(HEADER_VALUE));
    shot(&b, "35-mcp-server").await;

    // An OAuth server: saved unconnected, then "Connect" takes the browser through its
    // authorization server and back, connected; its tools are checked live.
    let crm = switchboard_testkit::oauth_mcp::OAuthMcp::start().await;
    b.goto(&format!("{base}/tools/mcp/new")).await.expect("new");
    b.wait_for("#mcp-form", WAIT).await.expect("form");
    b.fill("#name", "billing").await.expect("name");
    b.fill("#url", &crm.mcp_url).await.expect("url");
    choose(&b, "#auth_type", "oauth").await;
    b.fill("#allowed_tools", "*").await.expect("allowed");
    b.click_css("#save").await.expect("save");
    b.wait_text("#oauth-state", "not connected", WAIT)
        .await
        .expect("unconnected");
    b.wait_for("#mcp-unavailable", WAIT)
        .await
        .expect("no tools before connecting");
    b.click_css("#oauth-connect").await.expect("connect");
    b.wait_text(".flash", "Connected", WAIT)
        .await
        .expect("back, connected");
    b.wait_text("#mcp-tools", "mcp__billing__whoami", WAIT)
        .await
        .expect("the live check with the token");
    assert_eq!(crm.registrations(), 1);
    shot(&b, "36-mcp-oauth-connected").await;

    // An MCP client asks to connect: the admin sees the consent page and allows it; the
    // browser is sent back to the client's redirect URI with a code and the state.
    let redirect = "http://127.0.0.1:9/callback";
    let client: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth/register"))
        .json(&json!({"redirect_uris": [redirect], "client_name": "Claude"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let client_id = client["client_id"].as_str().expect("client id");
    b.resize(1280, 800).await.expect("laptop");
    b.goto(&format!(
        "{base}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s1",
        url_encode(redirect)
    ))
    .await
    .expect("authorize");
    b.wait_text("#oauth-client", "Claude", WAIT)
        .await
        .expect("consent page");
    b.wait_text("#oauth-org", "Acme Shop", WAIT)
        .await
        .expect("the organization named");
    shot(&b, "34-mcp-consent").await;
    b.click_css("#oauth-allow").await.expect("allow");
    let landed = switchboard_testkit::eventually("the redirect", WAIT, || async {
        let u = b.url().await.ok()?;
        u.starts_with(redirect).then_some(u)
    })
    .await;
    assert!(
        landed.contains("code=sbac_") && landed.contains("state=s1"),
        "{landed}"
    );

    b.quit().await;
    let _ = stop.send(());
    done.await.expect("join").expect("server");
}

/// Picks `value` in the `<select>` at `css`.
async fn choose(b: &Browser, css: &str, value: &str) {
    b.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![json!(css), json!(value)],
    )
    .await
    .expect("choose");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
