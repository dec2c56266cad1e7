//! Webhook load generator against a real `switchboard` process and a local receiver that
//! verifies every signature.
//!
//! Phase 1, throughput: `--events` signed incoming-call webhooks (each writes `call.started`)
//! with `--concurrency` in flight; reports how fast they were delivered.
//! Phase 2, latency: `--calls` of those calls end (signed status callbacks, a few at a time);
//! reports the time from the callback's answer (the `call.ended` transaction has committed by
//! then) to the receiver getting `call.ended`, p50/p99/max.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-webhookload --backend sqlite`

use anyhow::{bail, ensure};
use clap::Parser;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bench::{drop_postgres, fresh_postgres, pct, Server, ACCOUNT};
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::twilio::post_signed;
use switchboard_testkit::webhooks::WebhookReceiver;

const TOKEN: &str = "webhookload-auth-token";
const NUMBER: &str = "+15550007777";

#[derive(Parser, Debug)]
#[command(about = "Webhook delivery throughput and call.ended-to-delivered latency")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Events for the throughput phase.
    #[arg(long, default_value_t = 5_000)]
    events: u64,
    /// Incoming-call webhooks in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// Calls ended in the latency phase.
    #[arg(long, default_value_t = 500)]
    calls: u64,
    /// Status callbacks in flight at once in the latency phase.
    #[arg(long, default_value_t = 4)]
    call_concurrency: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

fn sid(n: u64) -> String {
    format!("CA{n:032x}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.calls <= args.events, "--calls cannot exceed --events");
    let model = FakeChatModel::start().await;
    model.stop_recording();
    let mut envs = vec![
        ("SWITCHBOARD_LLM_BASE_URL", model.url.clone()),
        ("SWITCHBOARD_LLM_API_KEY", "sk-webhookload".to_owned()),
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-webhookload".to_owned()),
        ("SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE", "true".to_owned()),
    ];
    let postgres_url = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(fresh_postgres("webhookload", std::process::id()).await?),
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    if let Some(url) = &postgres_url {
        envs.push(("SWITCHBOARD_DATABASE_URL", url.clone()));
    }
    let server = Server::start(&args.binary, &envs).await?;
    server
        .setup(
            TOKEN,
            json!({"name": "Desk", "instructions": "Answer calls."}),
            NUMBER,
            "voice",
        )
        .await?;

    // Phase 1: throughput.
    let started_rx = WebhookReceiver::start().await;
    let ep = server
        .api(
            reqwest::Method::POST,
            "/webhook-endpoints",
            json!({"url": started_rx.url, "event_types": ["call.started"]}),
        )
        .await?;
    started_rx.set_secret(ep["secret"].as_str().unwrap_or_default());
    let http = Arc::new(reqwest::Client::new());
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let http = http.clone();
            let next = next.clone();
            let base = server.base.clone();
            let total = args.events;
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        return anyhow::Ok(());
                    }
                    let res = post_signed(
                        &http,
                        &base,
                        &base,
                        "/twilio/voice",
                        TOKEN,
                        &[
                            ("AccountSid", ACCOUNT),
                            ("CallSid", &sid(n)),
                            ("CallStatus", "ringing"),
                            ("Direction", "inbound"),
                            ("From", &format!("+1444{:07}", n % 10_000_000)),
                            ("To", NUMBER),
                        ],
                    )
                    .await;
                    ensure!(
                        res.status().is_success(),
                        "voice webhook answered {}",
                        res.status()
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let produced = t0.elapsed();
    let n = usize::try_from(args.events)?;
    let got = started_rx.wait_for(n, Duration::from_secs(600)).await;
    ensure!(
        got.len() >= n,
        "only {} of {n} call.started delivered",
        got.len()
    );
    let last = got.iter().map(|r| r.at).max().unwrap_or(t0);
    let delivered = last.duration_since(t0);
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    let verified = got.iter().filter(|r| r.verified).count();
    println!(
        "throughput: {n} events written in {:.2} s ({:.0}/s); all delivered after {:.2} s: {:.0} deliveries/s; \
         {} distinct webhook-ids, {} verified, {} duplicates",
        produced.as_secs_f64(),
        n as f64 / produced.as_secs_f64(),
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64(),
        ids.len(),
        verified,
        got.len() - ids.len(),
    );

    // Phase 2: latency from call.ended committed to delivered.
    let ended_rx = WebhookReceiver::start().await;
    let ep2 = server
        .api(
            reqwest::Method::POST,
            "/webhook-endpoints",
            json!({"url": ended_rx.url, "event_types": ["call.ended"]}),
        )
        .await?;
    ended_rx.set_secret(ep2["secret"].as_str().unwrap_or_default());
    let committed = Arc::new(std::sync::Mutex::new(HashMap::<String, Instant>::new()));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..args.call_concurrency)
        .map(|_| {
            let http = http.clone();
            let next = next.clone();
            let base = server.base.clone();
            let committed = committed.clone();
            let total = args.calls;
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        return anyhow::Ok(());
                    }
                    let call_sid = sid(n);
                    let res = post_signed(
                        &http,
                        &base,
                        &base,
                        "/twilio/voice/status",
                        TOKEN,
                        &[
                            ("AccountSid", ACCOUNT),
                            ("CallSid", &call_sid),
                            ("CallStatus", "completed"),
                            ("CallDuration", "30"),
                            ("SequenceNumber", "2"),
                        ],
                    )
                    .await;
                    let at = Instant::now();
                    ensure!(
                        res.status().is_success(),
                        "status callback answered {}",
                        res.status()
                    );
                    committed
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?
                        .insert(call_sid, at);
                    // A steady trickle rather than a burst: this phase measures latency.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let m = usize::try_from(args.calls)?;
    let got = ended_rx.wait_for(m, Duration::from_secs(120)).await;
    ensure!(
        got.len() >= m,
        "only {} of {m} call.ended delivered",
        got.len()
    );
    let committed = committed
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    let mut lat: Vec<u64> = got
        .iter()
        .filter_map(|r| {
            let sid = r.json["data"]["call"]["call_sid"].as_str()?;
            let c = committed.get(sid)?;
            Some(u64::try_from(r.at.saturating_duration_since(*c).as_micros()).unwrap_or(u64::MAX))
        })
        .collect();
    println!(
        "latency call.ended committed -> delivered over {} calls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} verified",
        lat.len(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
        got.iter().filter(|r| r.verified).count(),
    );
    server.stop().await;
    if postgres_url.is_some() {
        drop_postgres("webhookload", std::process::id()).await?;
    }
    Ok(())
}
