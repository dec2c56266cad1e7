//! The MCP authorization flow against `/mcp`, driven as an MCP client drives it: the 401
//! challenge, protected-resource and authorization-server metadata, dynamic registration,
//! PKCE, an admin's consent in the dashboard, the code exchange, refresh with rotation,
//! replay detection, revocation and expiry; tokens that act in the consenting admin's
//! organization only and nowhere but `/mcp`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::values::Role;
use switchboard_domain::{Clock, Secret};
use switchboard_store::backend_test;
use switchboard_web::{Application, WebConfig};

const PW: &str = "admin password 123";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Flow {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

fn cookie_of(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (k, val) = v.split(';').next()?.split_once('=')?;
            (k == name && !val.is_empty()).then(|| format!("{k}={val}"))
        })
}

fn field(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + key.len();
    html[at..at + html[at..].find('"').expect("end")].replace("&amp;", "&")
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}-{}",
        switchboard_domain::ids::random_token(30),
        switchboard_domain::ids::random_token(30)
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Flow {
    async fn sign_in(&mut self, email: &str) {
        let page = self
            .http
            .get(format!("{}/login", self.base))
            .send()
            .await
            .expect("login");
        let login = cookie_of(&page, "sb_login").expect("login cookie");
        let html = page.text().await.expect("html");
        let res = self
            .http
            .post(format!("{}/login", self.base))
            .header(COOKIE, login)
            .form(&[
                ("_csrf", field(&html, "_csrf").as_str()),
                ("email", email),
                ("password", PW),
                ("next", "/"),
            ])
            .send()
            .await
            .expect("sign in");
        self.cookie = cookie_of(&res, "sb_session").expect("session");
    }

    fn authorize_url(&self, client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
        let mut u = url::Url::parse(&format!("{}/oauth/authorize", self.base)).expect("url");
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", "st4te"),
                ("scope", "mcp"),
                ("resource", &format!("{}/mcp", self.base)),
            ] {
                if !extra.iter().any(|(ek, _)| *ek == k) {
                    q.append_pair(k, v);
                }
            }
            for (k, v) in extra {
                if !v.is_empty() {
                    q.append_pair(k, v);
                }
            }
        }
        u.to_string()
    }

    /// Consents (or denies) as the signed-in user; answers the redirect's query.
    async fn consent(
        &self,
        url: &str,
        decision: &str,
    ) -> std::collections::HashMap<String, String> {
        let page = self
            .http
            .get(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("consent");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(
            html.contains("Test Client") && html.contains("Acme"),
            "{html}"
        );
        let mut fields: Vec<(String, String)> = vec![("decision".into(), decision.into())];
        for name in [
            "_csrf",
            "response_type",
            "client_id",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "state",
            "scope",
            "resource",
        ] {
            fields.push((name.into(), field(&html, name)));
        }
        let res = self
            .http
            .post(format!("{}/oauth/authorize", self.base))
            .header(COOKIE, &self.cookie)
            .form(&fields)
            .send()
            .await
            .expect("decide");
        assert!(res.status().is_redirection(), "{}", res.status());
        let to = res.headers()[LOCATION]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(to.starts_with(REDIRECT), "{to}");
        query_of(&to)
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .expect("token");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json"))
    }

    async fn mcp_status(&self, token: &str) -> u16 {
        self.http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "oauth-test", "version": "1"}}}),
            )
            .send()
            .await
            .expect("mcp")
            .status()
            .as_u16()
    }
}

backend_test!(mcp_clients_connect_with_the_oauth_flow, |db| {
    let store = &db.store;
    let org = store.create_org("Acme").await.expect("org");
    let other = store.create_org("Other").await.expect("org");
    for (o, name) in [(&org.id, "Desk"), (&other.id, "Elsewhere")] {
        let a: NewAgent =
            serde_json::from_value(json!({"name": name, "instructions": "Hi."})).expect("agent");
        store.create_agent(o, a).await.expect("agent");
    }
    store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("admin");
    store
        .create_user(&org.id, "member@acme.test", &Secret::new(PW), Role::Member)
        .await
        .expect("member");
    let clock = Clock::adjustable();
    let config = WebConfig {
        clock: clock.clone(),
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
    let mut flow = Flow {
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
        base: base.clone(),
        cookie: String::new(),
    };

    // Discovery, from nothing but the URL.
    let res = flow
        .http
        .post(format!("{base}/mcp"))
        .json(&json!({}))
        .send()
        .await
        .expect("mcp");
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .expect("h")
        .to_owned();
    let meta_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("resource_metadata")
        .to_owned();
    let meta: Value = flow
        .http
        .get(&meta_url)
        .send()
        .await
        .expect("meta")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["resource"], format!("{base}/mcp"));
    let issuer = meta["authorization_servers"][0]
        .as_str()
        .expect("as")
        .to_owned();
    let asm: Value = flow
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("as meta")
        .json()
        .await
        .expect("json");
    assert_eq!(asm["issuer"], issuer);
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    let preflight = flow
        .http
        .request(
            reqwest::Method::OPTIONS,
            asm["token_endpoint"].as_str().expect("t"),
        )
        .header("origin", "https://inspector.example")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // Registration: a bad redirect URI is refused, a good one gets a client id.
    let reg = asm["registration_endpoint"]
        .as_str()
        .expect("reg")
        .to_owned();
    let bad: Value = flow
        .http
        .post(&reg)
        .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .expect("reg")
        .json()
        .await
        .expect("json");
    assert_eq!(bad["error"], "invalid_redirect_uri");
    let res = flow
        .http
        .post(&reg)
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Test Client",
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await
        .expect("reg");
    assert_eq!(res.status(), 201);
    let client: Value = res.json().await.expect("json");
    let client_id = client["client_id"].as_str().expect("id").to_owned();
    assert!(client.get("client_secret").is_none(), "a public client");

    // Consent needs a signed-in admin; bad requests are refused without redirecting.
    let (verifier, challenge) = pkce();
    let url = flow.authorize_url(&client_id, &challenge, &[]);
    let res = flow.http.get(&url).send().await.expect("authorize");
    assert!(res.headers()[LOCATION]
        .to_str()
        .expect("l")
        .starts_with("/login?next="));
    flow.sign_in("member@acme.test").await;
    let res = flow
        .http
        .get(&url)
        .header(COOKIE, &flow.cookie)
        .send()
        .await
        .expect("member");
    assert_eq!(res.status(), 403, "members cannot connect applications");
    flow.sign_in("admin@acme.test").await;
    let res = flow
        .http
        .get(flow.authorize_url("mcpc_unknown", &challenge, &[]))
        .header(COOKIE, &flow.cookie)
        .send()
        .await
        .expect("unknown");
    assert_eq!(res.status(), 400);
    let res = flow
        .http
        .get(flow.authorize_url(
            &client_id,
            &challenge,
            &[("redirect_uri", "https://evil.example/cb")],
        ))
        .header(COOKIE, &flow.cookie)
        .send()
        .await
        .expect("foreign redirect");
    assert_eq!(res.status(), 400, "never redirected to an unregistered URI");
    let res = flow
        .http
        .get(flow.authorize_url(&client_id, "", &[("code_challenge", "")]))
        .header(COOKIE, &flow.cookie)
        .send()
        .await
        .expect("no pkce");
    let q = query_of(res.headers()[LOCATION].to_str().expect("l"));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st4te");
    let denied = flow.consent(&url, "deny").await;
    assert_eq!(denied["error"], "access_denied");

    // A code with the wrong verifier fails and is spent.
    let q = flow.consent(&url, "allow").await;
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["iss"], issuer);
    let wrong = pkce().0;
    let (status, err) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &wrong),
        ])
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, err) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(err["error"], "invalid_grant", "a code works once");

    // The exchange: tokens that work on /mcp, in Acme only, and nowhere else.
    let q = flow.consent(&url, "allow").await;
    let (status, tokens) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(flow.mcp_status(&access).await, 200);
    let res = flow
        .http
        .get(format!("{base}/api/v1/agents"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("api");
    assert_eq!(res.status(), 401, "an MCP token is not a REST API key");
    let listed = mcp_call(&flow, &access, "list_agents").await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["name"].as_str().expect("n"))
        .collect();
    assert_eq!(names, ["Desk"], "Acme's agents only");
    let (_, key) = store.create_api_key(&org.id, "audit").await.expect("key");
    let audit: Value = flow
        .http
        .get(format!("{base}/api/v1/tool-invocations?source=mcp_server"))
        .bearer_auth(key.expose())
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert_eq!(audit["data"][0]["actor"], format!("oauth:{client_id}"));

    // Refresh rotates; a replayed refresh token revokes the family.
    let (status, next) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, 200, "{next}");
    let access2 = next["access_token"].as_str().expect("access").to_owned();
    assert_ne!(access2, access);
    assert_eq!(flow.mcp_status(&access2).await, 200);
    let (_, err) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        flow.mcp_status(&access2).await,
        401,
        "the replay revoked the family"
    );

    // Expiry, then revocation.
    let q = flow.consent(&url, "allow").await;
    let (_, tokens) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ])
        .await;
    let access3 = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh3 = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(flow.mcp_status(&access3).await, 200);
    clock.advance(Duration::from_secs(3601));
    assert_eq!(flow.mcp_status(&access3).await, 401, "expired");
    let (status, tokens) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh3),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, 200);
    let access4 = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh4 = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(flow.mcp_status(&access4).await, 200);
    let res = flow
        .http
        .post(asm["revocation_endpoint"].as_str().expect("revoke"))
        .form(&[
            ("token", refresh4.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
    assert_eq!(
        flow.mcp_status(&access4).await,
        401,
        "revoked with its refresh token"
    );
    let (_, err) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh4),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(err["error"], "invalid_grant");

    // The admin sees a connected application on the API keys page and disconnects it.
    let q = flow.consent(&url, "allow").await;
    let (_, tokens) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &client_id),
            ("code_verifier", &verifier),
        ])
        .await;
    let access5 = tokens["access_token"].as_str().expect("access").to_owned();
    assert_eq!(flow.mcp_status(&access5).await, 200);
    let page = flow
        .http
        .get(format!("{base}/api-keys"))
        .header(COOKIE, &flow.cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let at = page.find("id=\"connected-apps\"").expect("the card");
    let card = &page[at..];
    assert!(card.contains("Test Client"), "{card}");
    assert_eq!(
        card.matches("/disconnect").count(),
        1,
        "only the live consent is listed"
    );
    let action = card
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("disconnect action")
        .to_owned();
    let res = flow
        .http
        .post(format!("{base}{action}"))
        .header(COOKIE, &flow.cookie)
        .form(&[("_csrf", field(&page, "_csrf").as_str())])
        .send()
        .await
        .expect("disconnect");
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(flow.mcp_status(&access5).await, 401, "disconnected");

    let _ = stop.send(());
    done.await.expect("join").expect("server");
});

/// One MCP session: initialize, then a `tools/call` with no arguments; the structured result.
async fn mcp_call(flow: &Flow, token: &str, tool: &str) -> Value {
    let res = flow
        .http
        .post(format!("{}/mcp", flow.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "oauth-test", "version": "1"}}}),
        )
        .send()
        .await
        .expect("init");
    let session = res.headers()["mcp-session-id"]
        .to_str()
        .expect("session")
        .to_owned();
    let post = |body: Value| {
        flow.http
            .post(format!("{}/mcp", flow.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
    };
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .expect("initialized");
    let text = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": {}}}))
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    let msg: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .find(|m: &Value| m["id"] == 2)
        .unwrap_or_else(|| panic!("no answer in {text}"));
    assert_ne!(msg["result"]["isError"], true, "{msg}");
    msg["result"]["structuredContent"].clone()
}
