//! A small W3C WebDriver client driving headless Chromium through ChromeDriver, for the
//! dashboard's browser tests. Speaks the standard protocol (JSON over HTTP) directly, so it
//! needs nothing beyond reqwest.
//!
//! Chromium and ChromeDriver come from Debian (`.ci/install-browser`). Without them the tests
//! skip with a message, except under `CI=true`, where a missing browser is a failure.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// W3C's key for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A failure talking to the browser.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

/// A running ChromeDriver with one headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    driver: Child,
    profile: PathBuf,
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session, or `None` (with the reason printed)
    /// when they are not installed and this is not CI.
    pub async fn start() -> Result<Option<Browser>, Error> {
        Self::start_with(&[]).await
    }

    /// [`Browser::start`] with the microphone fed from `wav` (see
    /// [`crate::fixtures::speech_wav`]), played once, and autoplay allowed.
    pub async fn start_with_microphone(wav: &std::path::Path) -> Result<Option<Browser>, Error> {
        Self::start_with(&[
            "--use-fake-device-for-media-stream".into(),
            "--use-fake-ui-for-media-stream".into(),
            format!("--use-file-for-fake-audio-capture={}%noloop", wav.display()),
            "--autoplay-policy=no-user-gesture-required".into(),
        ])
        .await
    }

    /// [`Browser::start`] with more Chromium flags (e.g. a fake microphone fed from a file).
    pub async fn start_with(extra: &[String]) -> Result<Option<Browser>, Error> {
        let driver = find_binary(&["chromedriver"]);
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                return Err(
                    "chromium and chromedriver are required in CI: run .ci/install-browser".into(),
                );
            }
            eprintln!(
                "browser tests SKIPPED: chromium/chromedriver not found (run .ci/install-browser)"
            );
            return Ok(None);
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let profile = std::env::temp_dir().join(format!(
            "switchboard-chromium-{}-{}",
            std::process::id(),
            port
        ));
        let mut b = Browser {
            http,
            base,
            driver: child,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = b
                .http
                .get(format!("{}/status", b.base))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not start within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The flags keep Chromium off the network (this machine has none) and out of the
        // sandbox, which needs privileges a test runner may not have.
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(format!("--user-data-dir={}", b.profile.display()));
        args.extend(extra.iter().cloned());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": args
            }
        }}});
        let res: Value = b
            .http
            .post(format!("{}/session", b.base))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let id = res
            .pointer("/value/sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("chromedriver refused the session: {res}"))?
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        Ok(Some(b))
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req.send().await?.json().await?;
        if let Some(err) = res.pointer("/value/error").and_then(Value::as_str) {
            let msg = res
                .pointer("/value/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(format!(
                "webdriver {path}: {err}: {}",
                msg.lines().next().unwrap_or("")
            )
            .into());
        }
        Ok(res.get("value").cloned().unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Error> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value, Error> {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.post("/url", json!({ "url": url })).await.map(|_| ())
    }

    /// Signs in to the dashboard at `base` and waits until the signed-in page shows.
    pub async fn sign_in(&self, base: &str, email: &str, password: &str) -> Result<(), Error> {
        self.goto(&format!("{base}/login")).await?;
        self.fill("#email", email).await?;
        self.fill("#password", password).await?;
        self.click_css("form.login button").await?;
        self.wait_for("#sign-out", std::time::Duration::from_secs(20))
            .await
            .map(|_| ())
    }

    /// The address now shown.
    pub async fn url(&self) -> Result<String, Error> {
        Ok(self.get("/url").await?.as_str().unwrap_or("").to_owned())
    }

    /// Resizes the window (a phone is about 390×844).
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), Error> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(|_| ())
    }

    /// The first element matching `css`, or an error.
    pub async fn find(&self, css: &str) -> Result<Element, Error> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v.get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(|s| Element(s.to_owned()))
            .ok_or_else(|| format!("no element {css}").into())
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, Error> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get(ELEMENT_KEY).and_then(Value::as_str))
                    .map(|s| Element(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits up to `timeout` for `css` to exist.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("waited {timeout:?} for {css}: {e}").into())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits up to `timeout` until the text of `css` contains `needle`; returns that text.
    pub async fn wait_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, Error> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.find(css).await {
                if let Ok(t) = self.text(&e).await {
                    if t.contains(needle) {
                        return Ok(t);
                    }
                    last = t;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "waited {timeout:?} for {css} to contain {needle:?}; it says {last:?}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks.
    pub async fn click(&self, e: &Element) -> Result<(), Error> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await
            .map(|_| ())
    }

    /// Clicks the first element matching `css`.
    pub async fn click_css(&self, css: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.click(&e).await
    }

    /// Empties an input.
    pub async fn clear(&self, e: &Element) -> Result<(), Error> {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await
            .map(|_| ())
    }

    /// Types into an element.
    pub async fn type_into(&self, e: &Element, text: &str) -> Result<(), Error> {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await
            .map(|_| ())
    }

    /// Replaces the value of the input matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.clear(&e).await?;
        self.type_into(&e, text).await
    }

    /// The rendered text of an element.
    pub async fn text(&self, e: &Element) -> Result<String, Error> {
        Ok(self
            .get(&format!("/element/{}/text", e.0))
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> Result<String, Error> {
        let e = self.find(css).await?;
        self.text(&e).await
    }

    /// Runs `script` in the page (`return ...` gives a value back).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Saves a PNG of the viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) -> Result<(), Error> {
        use base64::Engine;
        let v = self.get("/screenshot").await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().ok_or("screenshot: no data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session and stops ChromeDriver.
    pub async fn quit(mut self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that fails midway still stops its ChromeDriver (which ends its Chromium).
        let _ = self.driver.kill();
    }
}
