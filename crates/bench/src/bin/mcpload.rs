//! MCP server load: `--clients` MCP clients, each with its own session (initialize, then
//! `notifications/initialized`), call a read tool (`get_agent`) against a real `switchboard`
//! process over Streamable HTTP; reports the `tools/call` round trip (request sent to the
//! JSON-RPC result read from the SSE answer), p50/p99/max, and the rate.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-mcpload`

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use std::time::Instant;
use switchboard_bench::{drop_postgres, fresh_postgres, pct, Server};

#[derive(Parser, Debug)]
#[command(about = "MCP tools/call round trip at many concurrent clients")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Concurrent clients (one session each).
    #[arg(long, default_value_t = 50)]
    clients: u64,
    /// Calls per client.
    #[arg(long, default_value_t = 100)]
    calls: u64,
    /// The tool called (a read tool).
    #[arg(long, default_value = "get_agent")]
    tool: String,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

const VERSION: &str = "2025-11-25";

/// The JSON-RPC message with `id` in a JSON or SSE body.
fn response_of(body: &str, id: u64) -> Option<Value> {
    let try_one = |s: &str| {
        serde_json::from_str::<Value>(s.trim())
            .ok()
            .filter(|v| v["id"] == id)
    };
    try_one(body).or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(try_one)
    })
}

struct Client {
    http: reqwest::Client,
    url: String,
    key: String,
    session: String,
}

impl Client {
    async fn open(http: reqwest::Client, url: String, key: String) -> anyhow::Result<Client> {
        let res = http
            .post(&url)
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "mcpload", "version": "1"}}}),
            )
            .send()
            .await?;
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .context("no session id")?
            .to_owned();
        res.text().await?;
        let c = Client {
            http,
            url,
            key,
            session,
        };
        c.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(c)
    }

    async fn post(&self, body: Value) -> anyhow::Result<String> {
        let res = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", VERSION)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "HTTP {}", res.status());
        Ok(res.text().await?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut envs = Vec::new();
    let postgres_url = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(fresh_postgres("mcpload", std::process::id()).await?),
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    if let Some(u) = &postgres_url {
        envs.push(("SWITCHBOARD_DATABASE_URL", u.clone()));
    }
    let server = Server::start(&args.binary, &envs).await?;
    let agent = server
        .api(
            reqwest::Method::POST,
            "/agents",
            json!({"name": "Desk", "instructions": "Answer calls."}),
        )
        .await?;
    let agent_id = agent["id"].as_str().unwrap_or_default().to_owned();
    let url = format!("{}/mcp", server.base);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients as usize)
        .build()?;
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(Client::open(http.clone(), url.clone(), server.key.clone()).await?);
    }
    println!(
        "backend {}, {} clients with a session each, {} `{}` calls each",
        args.backend, args.clients, args.calls, args.tool
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let (tool, agent_id, calls) = (args.tool.clone(), agent_id.clone(), args.calls);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 1..=calls {
                let t = Instant::now();
                let body = c
                    .post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                        "params": {"name": tool, "arguments": {"agent_id": agent_id}}}))
                    .await?;
                let r = response_of(&body, i).context("no response")?;
                anyhow::ensure!(
                    r["result"]["isError"] != true && r.get("error").is_none(),
                    "failed: {r}"
                );
                lat.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let took = started.elapsed();
    println!(
        "tools/call round trip: {} calls in {:.2} s ({:.0}/s)  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        all.len(),
        took.as_secs_f64(),
        all.len() as f64 / took.as_secs_f64().max(f64::EPSILON),
        pct(&mut all, 0.50),
        pct(&mut all, 0.99),
        pct(&mut all, 1.0)
    );
    server.stop().await;
    if postgres_url.is_some() {
        drop_postgres("mcpload", std::process::id()).await?;
    }
    Ok(())
}
