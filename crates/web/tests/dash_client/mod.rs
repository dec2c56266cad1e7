//! A dashboard client over plain HTTP (sign-in with the double-submit cookie, pages, forms)
//! and a server to point it at, for the dashboard test suites.
#![allow(dead_code)]

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::Role;
use switchboard_domain::Secret;
use switchboard_store::testing::TestDb;
use switchboard_web::{Application, WebConfig};

pub const FORM: &str = "application/x-www-form-urlencoded";

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

pub fn cookie_value(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k == name && !val.is_empty()).then(|| val.to_owned())
        })
}

pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("csrf field") + 20;
    html[at..at + html[at..].find('"').expect("end")].to_owned()
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookie: String::new(),
        }
    }

    /// Signs in; returns the status of the POST.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> u16 {
        let page = self
            .http
            .get(format!("{}/login", self.base))
            .send()
            .await
            .expect("login page");
        let login_cookie = cookie_value(&page, "sb_login").expect("double-submit cookie");
        let csrf = csrf_of(&page.text().await.expect("html"));
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("_csrf", &csrf)
            .append_pair("email", email)
            .append_pair("password", password)
            .append_pair("next", "/calls")
            .finish();
        let res = self
            .http
            .post(format!("{}/login", self.base))
            .header(COOKIE, format!("sb_login={login_cookie}"))
            .header(CONTENT_TYPE, FORM)
            .body(body)
            .send()
            .await
            .expect("login");
        if let Some(s) = cookie_value(&res, "sb_session") {
            let set = res
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("sb_session="))
                .expect("cookie")
                .to_owned();
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Lax"),
                "{set}"
            );
            self.cookie = format!("sb_session={s}");
        }
        res.status().as_u16()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("get");
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    pub async fn csrf(&self) -> String {
        let (status, html) = self.get("/settings").await;
        assert_eq!(status, 200);
        csrf_of(&html)
    }

    pub async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_body(path, FORM, body.into_bytes(), headers).await
    }

    /// Posts `body` of `content_type` (an upload's multipart form); answers the status, the
    /// `Location` and the body.
    pub async fn post_body(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("post");
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, location, res.text().await.expect("body"))
    }
}

/// A server on `db` with the dashboard's sign-in limit at 3.
pub async fn serve(db: &TestDb) -> (String, tokio::sync::oneshot::Sender<()>) {
    serve_with(db, |_| {}).await
}

/// [`serve`] with settings changed by `tweak`.
pub async fn serve_with(
    db: &TestDb,
    tweak: impl FnOnce(&mut WebConfig),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = WebConfig::default();
    config.jobs.poll_interval = None;
    config.messaging.poll_interval = None;
    config.dashboard.login_attempts = 3;
    tweak(&mut config);
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(2),
    ));
    (base, stop)
}

pub async fn org_with_users(db: &TestDb, name: &str, users: &[(&str, Role)]) -> OrgId {
    let org = db.store.create_org(name).await.expect("org");
    for (email, role) in users {
        db.store
            .create_user(
                &org.id,
                email,
                &Secret::new("a long enough password"),
                *role,
            )
            .await
            .expect("user");
    }
    org.id
}
