//! Staff-action latency: `--calls` live calls on a real `switchboard` process (Twilio Media
//! Streams from this program, the fake Realtime model), then `--actions` `instruct` actions
//! (`POST /api/v1/calls/{id}/actions`, answered once the call's own task has carried the
//! action out) spread over the calls with `--concurrency` in flight. Measured from sending
//! the request to its 200. With `--backend postgres` a second instance joins the same
//! database and the same actions are sent to it: the call's task is on the first instance,
//! so each action crosses instances through the database's notification.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-actionload`

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bench::{drop_postgres, fresh_postgres, pct, Server, ACCOUNT};
use switchboard_testkit::realtime::{Behavior, FakeRealtime};
use switchboard_testkit::twilio::{post_signed, stream_of, FakeTwilioRest, MediaCall};

const TOKEN: &str = "actionload-auth-token";
const NUMBER: &str = "+15550008888";

#[derive(Parser, Debug)]
#[command(about = "Staff action latency on live calls, on one instance and across two")]
struct Args {
    /// `sqlite` (one instance) or `postgres` (also across two instances; needs
    /// SWITCHBOARD_TEST_POSTGRES, an admin URL).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Live calls.
    #[arg(long, default_value_t = 20)]
    calls: usize,
    /// Actions per phase.
    #[arg(long, default_value_t = 1_000)]
    actions: usize,
    /// Actions in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

/// Sends the actions to `base`; answers their latencies in microseconds.
async fn phase(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    calls: &[String],
    n: usize,
    c: usize,
) -> anyhow::Result<Vec<u64>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls = Arc::new(calls.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (next, calls, http) = (next.clone(), calls.clone(), http.clone());
        let (base, key) = (base.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let call = &calls[i % calls.len()];
                let t = Instant::now();
                let res = http
                    .post(format!("{base}/api/v1/calls/{call}/actions"))
                    .bearer_auth(&key)
                    .json(&json!({"action": "instruct", "text": format!("Note {i}: the caller is a member.")}))
                    .send()
                    .await?;
                let status = res.status();
                let body: Value = res.json().await?;
                anyhow::ensure!(
                    status == 200 && body["status"] == "done",
                    "action answered {status}: {body}"
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
    Ok(all)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = FakeRealtime::start(Behavior::default()).await;
    let rest = FakeTwilioRest::start().await;
    let mut envs = vec![
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-actionload".to_owned()),
        ("SWITCHBOARD_OPENAI_REALTIME_URL", model.url.clone()),
        ("SWITCHBOARD_TWILIO_API_URL", rest.url.clone()),
    ];
    let pg = args.backend == "postgres";
    let suffix = std::process::id();
    if pg {
        envs.push((
            "SWITCHBOARD_DATABASE_URL",
            fresh_postgres("actionload", suffix).await?,
        ));
    } else if args.backend != "sqlite" {
        bail!("--backend is sqlite or postgres");
    }
    let server = Server::start(&args.binary, &envs).await?;
    server
        .setup(
            TOKEN,
            json!({"name": "Desk", "instructions": "Help callers.", "max_call_duration_seconds": 14400}),
            NUMBER,
            "voice",
        )
        .await?;
    let ws = format!(
        "{}/twilio/media",
        server.base.replacen("http://", "ws://", 1)
    );
    let mut media = Vec::new();
    for i in 0..args.calls {
        let sid = format!("CA{:032x}", 0xac7_0000 + i);
        let res = post_signed(
            &server.http,
            &server.base,
            &server.base,
            "/twilio/voice",
            TOKEN,
            &[
                ("CallSid", &sid),
                ("From", "+15551230000"),
                ("To", NUMBER),
                ("CallStatus", "ringing"),
                ("AccountSid", ACCOUNT),
            ],
        )
        .await;
        let twiml = res.text().await?;
        let (_, params) = stream_of(&twiml).context("no stream in the TwiML")?;
        let call = MediaCall::connect(&ws, &sid, &params, Duration::from_millis(20), 1.0)
            .await
            .map_err(|e| anyhow::anyhow!("media stream: {e}"))?;
        media.push(call);
    }
    // The calls' ids, once every stream is connected.
    let deadline = Instant::now() + Duration::from_secs(30);
    let calls: Vec<String> = loop {
        let page = server
            .api(
                reqwest::Method::GET,
                "/calls?status=in-progress&limit=200",
                json!(null),
            )
            .await?;
        let ids: Vec<String> = page["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() >= args.calls {
            break ids;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} calls went live",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let http = reqwest::Client::new();
    println!("| where the request lands | calls | actions | in flight | p50 (ms) | p99 (ms) | max (ms) | actions/s |");
    println!("|---|---|---|---|---|---|---|---|");
    measure(
        &http,
        &server.base,
        &server.key,
        &calls,
        &args,
        "the instance holding the calls",
    )
    .await?;
    if pg {
        let mut join_envs = envs.clone();
        join_envs.retain(|(k, _)| *k != "SWITCHBOARD_PORT");
        let second = Server::join(&args.binary, &join_envs, &server.key).await?;
        measure(
            &http,
            &second.base,
            &server.key,
            &calls,
            &args,
            "another instance (PostgreSQL)",
        )
        .await?;
        second.stop().await;
    }
    drop(media);
    server.stop().await;
    if pg {
        drop_postgres("actionload", suffix).await?;
    }
    Ok(())
}

/// A warm-up of 50 actions, then the measured phase, reported as a table row.
async fn measure(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    calls: &[String],
    args: &Args,
    label: &str,
) -> anyhow::Result<()> {
    phase(http, base, key, calls, 50, args.concurrency).await?;
    let t = Instant::now();
    let mut lat = phase(http, base, key, calls, args.actions, args.concurrency).await?;
    let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
    report(label, args, &mut lat, rate);
    Ok(())
}

fn report(label: &str, args: &Args, lat: &mut [u64], rate: f64) {
    println!(
        "| {label} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {rate:.0} |",
        args.calls,
        lat.len(),
        args.concurrency,
        pct(lat, 0.5),
        pct(lat, 0.99),
        pct(lat, 1.0),
    );
}
