//! Outbound dialling against a real `switchboard` process and the fake Twilio, which answers
//! every Calls request and plays a busy line (initiated, ringing, busy: the slot frees again).
//!
//! Phase 1, rate: `--calls` calls placed through the API at once with a concurrency cap of
//! `--cap`; reports Calls requests per second from the first to the last.
//! Phase 2, punctuality: `--scheduled` calls placed with `send_at` a few seconds ahead (cap
//! raised so it does not limit them); reports the time from `send_at` to the Calls request,
//! p50/p99/max.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-dialload --backend sqlite`

use anyhow::{bail, ensure, Context};
use clap::Parser;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_bench::{drop_postgres, fresh_postgres, pct, Server};
use switchboard_testkit::twilio::{CallScript, FakeTwilioRest};

const TOKEN: &str = "dialload-auth-token";
const NUMBER: &str = "+15550008888";

#[derive(Parser, Debug)]
#[command(about = "Outbound dial rate and send_at punctuality")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Calls in the rate phase.
    #[arg(long, default_value_t = 2_000)]
    calls: usize,
    /// The organization's `max_concurrent_outbound_calls` in the rate phase.
    #[arg(long, default_value_t = 100)]
    cap: i64,
    /// Calls in the punctuality phase.
    #[arg(long, default_value_t = 200)]
    scheduled: usize,
    /// API requests in flight while placing calls.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

/// Places `n` calls to distinct callees, `concurrency` requests at a time.
async fn place(
    server: &Server,
    n: usize,
    offset: usize,
    concurrency: usize,
    send_at: Option<String>,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let results: Vec<anyhow::Result<serde_json::Value>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let mut body = json!({"to": format!("+1555{:07}", offset + i)});
            if let Some(at) = &send_at {
                body["send_at"] = json!(at);
            }
            server.api(reqwest::Method::POST, "/calls", body)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

async fn wait_created(fake: &FakeTwilioRest, n: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while fake.created_calls().len() < n {
        ensure!(
            Instant::now() < deadline,
            "only {} of {n} calls were dialled in {limit:?}",
            fake.created_calls().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = FakeTwilioRest::start().await;
    fake.stop_recording();
    let mut envs = vec![
        ("SWITCHBOARD_TWILIO_API_URL", fake.url.clone()),
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-dialload".to_owned()),
    ];
    let postgres_url = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(fresh_postgres("dialload", std::process::id()).await?),
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    if let Some(url) = &postgres_url {
        envs.push(("SWITCHBOARD_DATABASE_URL", url.clone()));
    }
    let server = Server::start(&args.binary, &envs).await?;
    server
        .setup(
            TOKEN,
            json!({"name": "Caller", "instructions": "Call people."}),
            NUMBER,
            "voice",
        )
        .await?;
    let ws = server.base.replacen("http://", "ws://", 1);
    fake.connect_server(&server.base, &server.base, &ws, TOKEN);
    fake.script_calls(std::iter::repeat_n(
        CallScript::Busy,
        args.calls + args.scheduled,
    ));

    // Phase 1: dial rate at the cap.
    server
        .api(
            reqwest::Method::PUT,
            "/settings",
            json!({"max_concurrent_outbound_calls": args.cap}),
        )
        .await?;
    let placing = Instant::now();
    place(&server, args.calls, 0, args.concurrency, None).await?;
    let placed_in = placing.elapsed();
    wait_created(&fake, args.calls, Duration::from_secs(600)).await?;
    let created = fake.created_calls();
    let first = created
        .iter()
        .map(|(_, r)| r.received_at)
        .min()
        .context("no call")?;
    let last = created
        .iter()
        .map(|(_, r)| r.received_at)
        .max()
        .context("no call")?;
    let span = last.duration_since(first).as_secs_f64().max(1e-6);
    println!(
        "rate: {} calls placed through the API in {:.2} s; dialled at {:.0} calls/s (cap {})",
        args.calls,
        placed_in.as_secs_f64(),
        (args.calls as f64 - 1.0) / span,
        args.cap
    );

    // Phase 2: punctuality of send_at.
    server
        .api(
            reqwest::Method::PUT,
            "/settings",
            json!({"max_concurrent_outbound_calls": 1000}),
        )
        .await?;
    let lead = Duration::from_secs(5);
    let send_at_sys = SystemTime::now() + lead;
    let send_at_instant = Instant::now() + lead;
    let millis = send_at_sys.duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let send_at = switchboard_domain::Timestamp::from_millis(millis).to_rfc3339();
    place(
        &server,
        args.scheduled,
        args.calls,
        args.concurrency,
        Some(send_at),
    )
    .await?;
    ensure!(
        Instant::now() < send_at_instant,
        "placing took longer than the lead time; lower --scheduled"
    );
    wait_created(&fake, args.calls + args.scheduled, Duration::from_secs(120)).await?;
    let mut late: Vec<u64> = fake
        .created_calls()
        .iter()
        .skip(args.calls)
        .map(|(_, r)| {
            r.received_at
                .saturating_duration_since(send_at_instant)
                .as_micros() as u64
        })
        .collect();
    println!(
        "send_at to Calls request ({} calls): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.scheduled,
        pct(&mut late, 0.5),
        pct(&mut late, 0.99),
        pct(&mut late, 1.0)
    );
    server.stop().await;
    if postgres_url.is_some() {
        drop_postgres("dialload", std::process::id()).await?;
    }
    Ok(())
}
