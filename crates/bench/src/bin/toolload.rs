//! A custom tool's added latency: the same endpoint (a local HTTP server answering a small
//! JSON document after `--endpoint-delay-ms`) called directly by this program, then through a
//! real `switchboard` process (`POST /api/v1/tools/{id}/test`, which runs the tool exactly as
//! an agent's call does: audit row, Standard Webhooks signature, guarded client, bounded
//! read, audit result). The difference of the two distributions is what Switchboard adds,
//! including the extra loopback hop of the API request itself.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-toolload`

use anyhow::bail;
use axum::routing::post;
use clap::Parser;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bench::{drop_postgres, fresh_postgres, pct, Server};

#[derive(Parser, Debug)]
#[command(about = "Custom tool latency through Switchboard against the endpoint's own")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Requests per phase.
    #[arg(long, default_value_t = 2_000)]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// How long the endpoint takes to answer.
    #[arg(long, default_value_t = 0)]
    endpoint_delay_ms: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

async fn endpoint(delay: Duration) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/tool",
        post(move || async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            axum::Json(json!({"status": "shipped", "eta": "Friday", "carrier": "UPS"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/tool", listener.local_addr()?.port());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Runs `n` requests with `c` in flight; answers their latencies in microseconds.
async fn run(
    n: u64,
    c: u64,
    make: Arc<dyn Fn() -> reqwest::RequestBuilder + Send + Sync>,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let next = next.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let t = Instant::now();
                let res = make().send().await?;
                anyhow::ensure!(res.status().is_success(), "status {}", res.status());
                let body: serde_json::Value = res.json().await?;
                if let Some(status) = body.get("status").and_then(|s| s.as_str()) {
                    anyhow::ensure!(status == "ok" || status == "shipped", "tool run: {body}");
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, started.elapsed()))
}

fn report(name: &str, lat: &mut [u64], took: Duration) -> (f64, f64) {
    let (p50, p99) = (pct(lat, 0.50), pct(lat, 0.99));
    println!(
        "{name:<24} {:>6} requests in {:>6.2} s ({:>7.0}/s)  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {:>7.2} ms",
        lat.len(),
        took.as_secs_f64(),
        lat.len() as f64 / took.as_secs_f64(),
        pct(lat, 1.0)
    );
    (p50, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = endpoint(Duration::from_millis(args.endpoint_delay_ms)).await?;
    let mut envs = vec![("SWITCHBOARD_TOOLS_ALLOW_PRIVATE", "true".to_owned())];
    let postgres_url = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(fresh_postgres("toolload", std::process::id()).await?),
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    if let Some(u) = &postgres_url {
        envs.push(("SWITCHBOARD_DATABASE_URL", u.clone()));
    }
    let server = Server::start(&args.binary, &envs).await?;
    let tool = server
        .api(
            reqwest::Method::POST,
            "/tools",
            json!({"name": "order_status", "description": "Looks up an order.",
                "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
                "url": url, "headers": {"Authorization": "Bearer bench"}}),
        )
        .await?;
    let id = tool["id"].as_str().unwrap_or_default().to_owned();
    let http = reqwest::Client::new();
    let body = json!({"tool": "order_status", "invocation_id": "tin_bench",
        "arguments": {"order": "A1"}, "context": {"test": true}});
    println!(
        "backend {}, {} requests per phase, {} in flight, endpoint delay {} ms",
        args.backend, args.requests, args.concurrency, args.endpoint_delay_ms
    );
    // Warm both paths (connections, the SQLite page cache).
    let direct = {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        Arc::new(move || http.post(&url).json(&body)) as Arc<dyn Fn() -> _ + Send + Sync>
    };
    let through = {
        let (http, key) = (http.clone(), server.key.clone());
        let target = format!("{}/api/v1/tools/{id}/test", server.base);
        Arc::new(move || {
            http.post(&target)
                .bearer_auth(&key)
                .json(&json!({"arguments": {"order": "A1"}}))
        }) as Arc<dyn Fn() -> _ + Send + Sync>
    };
    run(100, args.concurrency, direct.clone()).await?;
    run(100, args.concurrency, through.clone()).await?;
    let (mut d, dt) = run(args.requests, args.concurrency, direct).await?;
    let (mut t, tt) = run(args.requests, args.concurrency, through).await?;
    let (d50, d99) = report("endpoint directly", &mut d, dt);
    let (t50, t99) = report("through Switchboard", &mut t, tt);
    println!(
        "added by Switchboard: p50 {:.2} ms, p99 {:.2} ms",
        t50 - d50,
        t99 - d99
    );
    server.stop().await;
    if postgres_url.is_some() {
        drop_postgres("toolload", std::process::id()).await?;
    }
    Ok(())
}
