//! A real `switchboard serve` process for tests that need one: signals, exit codes, logs,
//! restarts on the same database, several instances on one PostgreSQL.

use serde_json::Value;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running server process (killed when dropped).
pub struct ServerProcess {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `ws://127.0.0.1:port`.
    pub ws: String,
    /// Process id.
    pub pid: u32,
    /// What it printed on stdout (first-start credentials).
    pub stdout: Arc<Mutex<String>>,
    /// What it logged on stderr.
    pub stderr: Arc<Mutex<String>>,
    child: tokio::process::Child,
}

impl ServerProcess {
    /// Starts `binary serve` on a free loopback port with `envs` (and nothing else from the
    /// environment's `SWITCHBOARD_*`), and waits until `/healthz` answers.
    pub async fn start(binary: &str, envs: &[(&str, String)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("serve");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
            cmd.env_remove(k);
        }
        cmd.env("SWITCHBOARD_PORT", port.to_string())
            .env("SWITCHBOARD_HOST", "127.0.0.1")
            .env("SWITCHBOARD_LOG_FORMAT", "json");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), stdout.clone(), false);
        collect(child.stderr.take().unwrap(), stderr.clone(), true);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the server exited at start ({status}):\n{}",
                    stderr.lock().unwrap()
                );
            }
            assert!(Instant::now() < deadline, "the server never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServerProcess {
            ws: format!("ws://127.0.0.1:{port}"),
            base,
            pid,
            stdout,
            stderr,
            child,
        }
    }

    /// The value printed after `label` at first start (e.g. `API key (org)`), waiting for it.
    pub async fn printed(&self, label: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if let Some(line) = out.lines().find(|l| l.trim_start().starts_with(label)) {
                return line.trim_start()[label.len()..].trim().to_owned();
            }
            assert!(Instant::now() < deadline, "`{label}` was never printed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {} failed", self.pid);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the server did not exit in time")
            .unwrap()
    }

    /// The JSON log lines at `level` (`ERROR`, `WARN`, ...).
    pub fn log_lines(&self, level: &str) -> Vec<Value> {
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["level"] == level)
            .collect()
    }
}

fn collect<R>(pipe: R, into: Arc<Mutex<String>>, echo: bool)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo && std::env::var_os("RUST_LOG").is_some() {
                eprintln!("[server] {line}");
            }
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}
