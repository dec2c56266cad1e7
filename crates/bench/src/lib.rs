//! What the load generators share: starting a real `switchboard serve` process on a fresh
//! database and setting up an organization through its API.

use anyhow::Context;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The Twilio account every load generator configures.
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

/// A running server process (killed when dropped).
pub struct Server {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The first organization's API key, printed at first start.
    pub key: String,
    /// The first admin login's e-mail and password, printed at first start.
    pub admin: (String, String),
    /// The process id (for CPU and memory readings).
    pub pid: u32,
    /// Its data directory (the SQLite file), removed by [`Server::stop`].
    pub data: std::path::PathBuf,
    /// Client for the API.
    pub http: reqwest::Client,
    child: tokio::process::Child,
}

impl Server {
    /// Starts `binary serve` on a free port with `envs` added, waits until it answers, and
    /// reads the API key it prints on first start (the database must be fresh).
    pub async fn start(binary: &str, envs: &[(&str, String)]) -> anyhow::Result<Server> {
        Self::spawn(binary, envs, None).await
    }

    /// Starts another instance on the database of a running one (`envs` name it): it prints
    /// no key, so `key` (the first instance's) is used for its API.
    pub async fn join(binary: &str, envs: &[(&str, String)], key: &str) -> anyhow::Result<Server> {
        Self::spawn(binary, envs, Some(key)).await
    }

    async fn spawn(
        binary: &str,
        envs: &[(&str, String)],
        known_key: Option<&str>,
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = std::env::temp_dir().join(format!("switchboard-load-{port}"));
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("serve")
            .env("SWITCHBOARD_PORT", port.to_string())
            .env("SWITCHBOARD_HOST", "127.0.0.1")
            .env("SWITCHBOARD_DATA_DIR", &data)
            .env("SWITCHBOARD_PUBLIC_URL", &base)
            .env(
                "SWITCHBOARD_LOG",
                std::env::var("SWITCHBOARD_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Load generators measure the server, not its admission control.
            .env("SWITCHBOARD_API_RATE_PER_MINUTE", "1000000")
            .env("SWITCHBOARD_API_BURST", "100000")
            .env("SWITCHBOARD_MAX_CONCURRENT_CALLS_PER_ORG", "100000");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot start {binary} (build it with cargo build --release --workspace)")
            })?;
        let pid = child.id().context("server pid")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut key = known_key.map(str::to_owned);
        let mut admin = (String::new(), String::new());
        while key.is_none() {
            let Some(line) = lines.next_line().await? else {
                break;
            };
            if let Some(rest) = line.trim().strip_prefix("Admin login") {
                if let Some((email, pw)) = rest.trim().split_once("password:") {
                    admin = (email.trim().to_owned(), pw.trim().to_owned());
                }
            }
            if let Some(rest) = line.trim().strip_prefix("API key (org)") {
                key = Some(rest.trim().to_owned());
                break;
            }
        }
        let key = key.context("the server did not print an API key (fresh database expected)")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/readyz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Server {
            base,
            key,
            admin,
            pid,
            data,
            http,
            child,
        })
    }

    /// Calls the API with the organization's key; fails on a non-2xx answer.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let res = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(res.json().await.unwrap_or(Value::Null))
    }

    /// Sets the Twilio credentials, creates an agent and routes `number` on `channel` to it.
    pub async fn setup(
        &self,
        auth_token: &str,
        agent: Value,
        number: &str,
        channel: &str,
    ) -> anyhow::Result<()> {
        self.api(
            reqwest::Method::PUT,
            "/settings",
            json!({"twilio_account_sid": ACCOUNT, "twilio_auth_token": auth_token}),
        )
        .await?;
        let agent = self.api(reqwest::Method::POST, "/agents", agent).await?;
        self.api(
            reqwest::Method::POST,
            "/phone-numbers",
            json!({"number": number, "channel": channel, "agent_id": agent["id"]}),
        )
        .await?;
        Ok(())
    }

    /// Signs in to the dashboard as the printed admin, like a browser; answers the session
    /// cookie (`sb_session=...`). `http` must not follow redirects.
    pub async fn sign_in(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        let set_cookie = |res: &reqwest::Response, name: &str| {
            res.headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .find(|v| v.starts_with(&format!("{name}=")))
                .map(str::to_owned)
        };
        let login = http.get(format!("{}/login", self.base)).send().await?;
        let login_cookie = set_cookie(&login, "sb_login").context("no sign-in cookie")?;
        let html = login.text().await?;
        let at = html
            .find("name=\"_csrf\" value=\"")
            .context("no csrf field")?
            + 20;
        let csrf = &html[at..at + html[at..].find('"').context("csrf end")?];
        let body = format!(
            "_csrf={csrf}&email={}&password={}",
            self.admin.0.replace('@', "%40"),
            self.admin.1
        );
        let res = http
            .post(format!("{}/login", self.base))
            .header(reqwest::header::COOKIE, login_cookie)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await?;
        set_cookie(&res, "sb_session").context("sign-in failed")
    }

    /// Stops the process and removes its data directory.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Rings `to` as Twilio would (a signed `POST /twilio/voice` for `call_sid` from a fixed
/// caller) on the server at `base`; answers the media stream's parameters from the TwiML.
pub async fn ring(
    http: &reqwest::Client,
    base: &str,
    auth_token: &str,
    call_sid: &str,
    to: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let res = switchboard_testkit::twilio::post_signed(
        http,
        base,
        base,
        "/twilio/voice",
        auth_token,
        &[
            ("CallSid", call_sid),
            ("From", "+15551230000"),
            ("To", to),
            ("CallStatus", "ringing"),
            ("AccountSid", ACCOUNT),
        ],
    )
    .await;
    let twiml = res.text().await?;
    match switchboard_testkit::twilio::stream_of(&twiml) {
        Some((_, params)) => Ok(params),
        None => anyhow::bail!("no stream in TwiML: {twiml}"),
    }
}

/// The `p` quantile of microsecond samples, in milliseconds (sorts `v`).
pub fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// Creates a fresh database `switchboard_{tool}_{suffix}` next to the admin URL in
/// SWITCHBOARD_TEST_POSTGRES and returns its URL.
pub async fn fresh_postgres(tool: &str, suffix: u32) -> anyhow::Result<String> {
    use sqlx::Connection;
    let admin = std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .context("--backend postgres needs SWITCHBOARD_TEST_POSTGRES (an admin URL)")?;
    let name = format!("switchboard_{tool}_{suffix}");
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::Executor::execute(
        &mut conn,
        format!("DROP DATABASE IF EXISTS {name}").as_str(),
    )
    .await?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
    Ok(switchboard_store::testing::replace_database(&admin, &name))
}

/// Drops the database [`fresh_postgres`] created.
pub async fn drop_postgres(tool: &str, suffix: u32) -> anyhow::Result<()> {
    use sqlx::Connection;
    let admin = std::env::var("SWITCHBOARD_TEST_POSTGRES")?;
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    let sql = format!("DROP DATABASE IF EXISTS switchboard_{tool}_{suffix} WITH (FORCE)");
    sqlx::Executor::execute(&mut conn, sql.as_str()).await?;
    Ok(())
}

/// A server on a fresh database of `backend` (`sqlite`, or `postgres` next to
/// SWITCHBOARD_TEST_POSTGRES, named after `tool`), and a second connection to that database
/// with the server's own master key, to write a history into its first organization (WAL lets
/// SQLite share the file). Answers the PostgreSQL URL too, to drop the database afterwards.
pub async fn server_with_store(
    tool: &str,
    backend: &str,
    binary: &str,
) -> anyhow::Result<(
    Server,
    switchboard_store::Store,
    switchboard_domain::ids::OrgId,
    Option<String>,
)> {
    let mut envs = vec![];
    let pg = match backend {
        "sqlite" => None,
        "postgres" => {
            let url = fresh_postgres(tool, 1).await?;
            envs.push(("SWITCHBOARD_DATABASE_URL", url.clone()));
            Some(url)
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    let server = Server::start(binary, &envs).await?;
    let keyring = switchboard_store::Keyring::from_file(&server.data.join("master.key"), &[])?;
    let store = switchboard_store::Store::open(&switchboard_store::StoreOptions {
        url: pg.clone(),
        data_dir: server.data.clone(),
        ..switchboard_store::StoreOptions::new(std::sync::Arc::new(keyring))
    })
    .await?;
    let org = store
        .list_orgs(Some(1), None)
        .await?
        .data
        .into_iter()
        .next()
        .context("no organization")?;
    Ok((server, store, org.id, pg))
}

/// A process's resident memory in KiB: all of it, and the anonymous part alone (heap and
/// stacks, without file pages such as SQLite's memory-mapped database, which the kernel can
/// drop at will).
pub fn proc_memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("RssAnon:")))
}

/// CPU seconds (user + system) a process has used so far, and its resident memory in KiB.
pub fn proc_stat(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the comm.
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks / 100.0, rss_kb))
}
