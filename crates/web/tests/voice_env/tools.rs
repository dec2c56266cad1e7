//! Helpers of the tool suites (custom tools, MCP): an organization's API key, API calls that
//! answer the status and the JSON, and a server with a fake chat model whose tools may reach
//! loopback endpoints.

use super::*;
use switchboard_domain::values::Role;
use switchboard_testkit::browser::Browser;
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::oauth_mcp::OAuthMcp;

impl Env<'_> {
    /// A new API key of the organization.
    pub async fn key(&self, org: &Org) -> String {
        let (_, key) = self
            .db
            .store
            .create_api_key(&org.id, "tools")
            .await
            .expect("key");
        key.expose().to_owned()
    }

    /// `method path` with `key` and an optional JSON body: the status and the JSON answer
    /// (`null` when there is none).
    pub async fn call_api(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin of `org` (`email`, `password`) created and signed in in the browser `b`.
    pub async fn sign_in_admin(&self, b: &Browser, org: &Org, email: &str, password: &str) {
        self.db
            .store
            .create_user(&org.id, email, &Secret::new(password), Role::Admin)
            .await
            .expect("user");
        b.sign_in(&self.base, email, password)
            .await
            .expect("signed in");
    }

    /// The organization's agent as the API shows it to `key`.
    pub async fn agent_of(&self, key: &str, org: &Org) -> Value {
        let (status, agent) = self
            .call_api(
                reqwest::Method::GET,
                key,
                &format!("/api/v1/agents/{}", org.agent),
                None,
            )
            .await;
        assert_eq!(status, 200, "{agent}");
        agent
    }
}

/// A browser whose microphone plays `speech`, with the WAV file it plays (to remove at the
/// end); `None` where no browser is installed (the test then skips).
pub async fn browser_hearing(speech: &[u8]) -> Option<(Browser, std::path::PathBuf)> {
    let fixture = switchboard_testkit::fixtures::speech_wav(speech);
    match Browser::start_with_microphone(&fixture)
        .await
        .expect("browser")
    {
        Some(b) => Some((b, fixture)),
        None => {
            let _ = std::fs::remove_file(fixture);
            None
        }
    }
}

/// A server whose tools may call loopback endpoints, with `chat` as its chat model.
pub async fn env_with_chat<'a>(
    db: &'a TestDb,
    behavior: Behavior,
    chat: &FakeChatModel,
) -> Env<'a> {
    let url = chat.url.clone();
    env_with(db, behavior, |c| {
        c.tools_allow_private = true;
        c.llm.base_url = url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        c.llm.model = "fake-chat-1".into();
    })
    .await
}

/// A signed-in dashboard user driving pages as a browser would, redirects not followed.
pub struct DashUser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

/// A page's answer: the status, the `Location` (when redirected) and the body.
pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

/// The CSRF token a dashboard page carries (`data-csrf` on its body).
pub fn csrf_of(html: &str) -> String {
    let at = html.find("data-csrf=\"").expect("csrf") + 11;
    html[at..at + html[at..].find('"').expect("end")].to_owned()
}

pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (k, val) = v.split(';').next()?.split_once('=')?;
            (k == name && !val.is_empty()).then(|| format!("{k}={val}"))
        })
}

/// The value of the form field `name` in `html`.
pub fn form_field(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + key.len();
    html[at..at + html[at..].find('"').expect("end")].replace("&amp;", "&")
}

impl Env<'_> {
    /// A new admin of `org`, signed in to the dashboard.
    pub async fn dashboard_admin(&self, org: &Org, email: &str) -> DashUser {
        self.dashboard_user(org, email, switchboard_domain::values::Role::Admin)
            .await
    }

    /// A new user of `org` with `role`, signed in to the dashboard.
    pub async fn dashboard_user(
        &self,
        org: &Org,
        email: &str,
        role: switchboard_domain::values::Role,
    ) -> DashUser {
        const PW: &str = "dashboard password 123";
        self.db
            .store
            .create_user(&org.id, email, &Secret::new(PW), role)
            .await
            .expect("user");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = http
            .get(format!("{}/login", self.base))
            .send()
            .await
            .expect("login page");
        // Over https the cookies carry the `__Host-` prefix.
        let login = set_cookie(&page, "sb_login")
            .or_else(|| set_cookie(&page, "__Host-sb_login"))
            .expect("login cookie");
        let html = page.text().await.expect("html");
        let res = http
            .post(format!("{}/login", self.base))
            .header(reqwest::header::COOKIE, login)
            .form(&[
                ("_csrf", form_field(&html, "_csrf").as_str()),
                ("email", email),
                ("password", PW),
                ("next", "/"),
            ])
            .send()
            .await
            .expect("sign in");
        let cookie = set_cookie(&res, "sb_session")
            .or_else(|| set_cookie(&res, "__Host-sb_session"))
            .expect("session cookie");
        DashUser {
            http,
            base: self.base.clone(),
            cookie,
        }
    }
}

impl DashUser {
    async fn page(res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    /// `GET path` (a path on the server, or an absolute URL) with the session.
    pub async fn get(&self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let res = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .expect("get");
        Self::page(res).await
    }

    /// Submits a form of the page at `from` (its CSRF token) to `action` with `fields`.
    pub async fn submit(&self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let html = self.get(from).await.body;
        let csrf = form_field(&html, "_csrf");
        let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let res = self
            .http
            .post(format!("{}{action}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .form(&form)
            .send()
            .await
            .expect("post");
        Self::page(res).await
    }
}

/// Connects MCP server `id` (OAuth) as `admin` from the dashboard, following the browser's
/// redirects; answers the authorization URL and where the browser landed.
pub async fn connect_mcp_oauth(admin: &DashUser, fake: &OAuthMcp, id: &str) -> (url::Url, String) {
    let page = format!("/tools/mcp/{id}");
    let start = admin
        .submit(&page, &format!("/tools/mcp/{id}/oauth/connect"), &[])
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = url::Url::parse(&start.location).expect("authorization URL");
    assert!(
        start
            .location
            .starts_with(&format!("{}/authorize", fake.base)),
        "{}",
        start.location
    );
    // The authorization server approves and sends the browser back.
    let back = admin.get(&start.location).await;
    assert_eq!(back.status, 302, "{}", back.body);
    // The callback is on the public URL; this test's browser reaches it at the local one.
    assert!(back.location.starts_with(PUBLIC), "{}", back.location);
    let done = admin
        .get(&back.location.replacen(PUBLIC, &admin.base, 1))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    (authorize, done.location)
}
