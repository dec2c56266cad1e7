//! `switchboard drain`: asks a running server to drain through its operator API, and
//! optionally follows it until the process has gone.

use crate::config::Config;
use anyhow::{bail, Context};
use std::time::Duration;

/// Posts `/api/v1/instance/drain` and prints the instance's state; with `wait`, polls until the
/// server stops answering.
pub async fn run(config: &Config, url: Option<String>, wait: bool) -> anyhow::Result<()> {
    let base = url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", config.port))
        .trim_end_matches('/')
        .to_owned();
    let Some(key) = &config.operator_key else {
        bail!("set SWITCHBOARD_OPERATOR_KEY to an operator key (the one printed at first start, or `operator_key` in switchboard.toml)");
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let res = http
        .post(format!("{base}/api/v1/instance/drain"))
        .bearer_auth(key.expose())
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base} (is it running? set --url)"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("the server refused the drain ({status}): {message}");
    }
    println!(
        "{} is draining: {} live call(s), {} connecting",
        body["id"].as_str().unwrap_or("the instance"),
        body["live_calls"],
        body["connecting_calls"]
    );
    if !wait {
        return Ok(());
    }
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let res = http
            .get(format!("{base}/api/v1/instance"))
            .bearer_auth(key.expose())
            .send()
            .await;
        let Ok(res) = res else {
            println!("the server has stopped");
            return Ok(());
        };
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let live = body["live_calls"].as_i64();
        if live != last {
            println!("{} live call(s) left", live.unwrap_or(0));
            last = live;
        }
    }
}
