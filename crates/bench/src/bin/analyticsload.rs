//! The analytics page and the CSV export with a large history: starts a real `switchboard`
//! process on a fresh database, bulk-writes `--calls` calls (dispositions, analyses, per-turn
//! latencies) spread over the `--days` before now, signs in like a browser, times the
//! analytics page for the last 30 days, 90 days and the whole history `--requests` times each,
//! then downloads the calls CSV for the last 30 days and for the whole history, reporting
//! rows per second and the server's resident memory at its peak during each download (sampled
//! every 20 ms) against before it.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-analyticsload --backend sqlite`

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bench::{drop_postgres, pct, proc_memory};
use switchboard_domain::ids::AgentId;
use switchboard_domain::Timestamp;
use switchboard_store::seed::{seed_calls, SeedCall};

#[derive(Parser, Debug)]
#[command(about = "Analytics page and CSV export with a large history")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Calls to write.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Days of history they are spread over (at most 366, the longest range).
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Timed requests per page.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

const DISPOSITIONS: [&str; 6] = [
    "completed",
    "completed",
    "completed",
    "no-answer",
    "voicemail",
    "busy",
];

fn day(t: Timestamp) -> String {
    t.to_rfc3339().get(..10).unwrap_or("").to_owned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(1..=366).contains(&args.days) {
        bail!("--days must be 1 to 366");
    }
    let (server, store, org_id, pg) =
        switchboard_bench::server_with_store("analyticsload", &args.backend, &args.binary).await?;
    let mut agents = Vec::new();
    for name in ["Reception", "Sales", "After hours"] {
        let a = server
            .api(
                reqwest::Method::POST,
                "/agents",
                json!({"name": name, "instructions": "x"}),
            )
            .await?;
        agents.push(AgentId::parse(a["id"].as_str().unwrap_or_default()).context("agent id")?);
    }

    // The history, oldest first, evenly over the days before now.
    let now = Timestamp::now();
    let span = args.days * 86_400_000;
    let step = (span as u64 / args.calls.max(1)).max(1) as i64;
    let t = Instant::now();
    let batch = 20_000u64;
    let mut written = 0u64;
    while written < args.calls {
        let n = batch.min(args.calls - written);
        let calls: Vec<SeedCall> = (written..written + n)
            .map(|i| {
                let d = DISPOSITIONS[(i % 6) as usize];
                SeedCall {
                    started_at: Timestamp::from_millis(now.millis() - span + i as i64 * step),
                    direction: if i % 5 == 0 { "outbound" } else { "inbound" },
                    our_number: ["+15550001000", "+15550001001"][(i % 2) as usize].into(),
                    contact: format!("+1555{:07}", i % 9_000_000),
                    agent_id: Some(agents[(i % 3) as usize].clone()),
                    disposition: Some(d),
                    duration_seconds: Some(30 + (i % 300) as i64),
                    analysis: (d == "completed").then(|| {
                        json!({"summary": "The caller asked about opening hours and booked.",
                               "outcome": {"success": i % 4 != 0, "reason": "booked"},
                               "fields": {"intent": "booking"}})
                    }),
                    turn_latencies_ms: if d == "completed" {
                        vec![
                            180 + (i % 90) as i64,
                            240 + (i % 170) as i64,
                            320 + (i % 400) as i64,
                        ]
                    } else {
                        vec![]
                    },
                }
            })
            .collect();
        seed_calls(&store, &org_id, &calls).await?;
        written += n;
        if written.is_multiple_of(200_000) || written == args.calls {
            println!(
                "seeded {written} calls in {:.0} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    switchboard_store::seed::analyze(&store, &org_id).await?;
    store.close().await;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = server.sign_in(&http).await?;
    let today = day(now);
    let ago = |d: i64| day(Timestamp::from_millis(now.millis() - (d - 1) * 86_400_000));
    let ranges = [
        ("last 30 days", ago(30)),
        ("last 90 days", ago(90)),
        ("whole history", ago(args.days)),
    ];
    println!(
        "\nanalytics page ({}, {} calls over {} days)",
        args.backend, args.calls, args.days
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>8}",
        "range", "p50 ms", "p99 ms", "max ms", "KiB"
    );
    for (name, from) in &ranges {
        let path = format!("/analytics?from={from}&to={today}");
        let mut samples = Vec::with_capacity(args.requests);
        let mut size = 0;
        for _ in 0..args.requests {
            let t = Instant::now();
            let res = http
                .get(format!("{}{path}", server.base))
                .header(reqwest::header::COOKIE, &session)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("{path} answered {}", res.status());
            }
            size = res.bytes().await?.len();
            samples.push(t.elapsed().as_micros() as u64);
        }
        println!(
            "{:<16} {:>9.1} {:>9.1} {:>9.1} {:>8}",
            name,
            pct(&mut samples, 0.5),
            pct(&mut samples, 0.99),
            pct(&mut samples, 1.0),
            size / 1024
        );
    }

    println!("\ncalls CSV export (server memory in KiB: all resident / anonymous only)");
    println!(
        "{:<16} {:>9} {:>9} {:>10} {:>20} {:>20}",
        "range", "rows", "seconds", "rows/s", "before", "peak"
    );
    for (name, from) in [&ranges[0], &ranges[2]] {
        let (rss_before, anon_before) = proc_memory(server.pid)?;
        let peak_rss = Arc::new(AtomicU64::new(rss_before));
        let peak_anon = Arc::new(AtomicU64::new(anon_before));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak_rss, peak_anon, stop, pid) = (
                peak_rss.clone(),
                peak_anon.clone(),
                stop.clone(),
                server.pid,
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((rss, anon)) = proc_memory(pid) {
                        peak_rss.fetch_max(rss, Ordering::Relaxed);
                        peak_anon.fetch_max(anon, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let t = Instant::now();
        let mut res = http
            .get(format!(
                "{}/analytics/export/calls.csv?from={from}&to={today}",
                server.base
            ))
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("export answered {}", res.status());
        }
        let mut lines = 0u64;
        while let Some(chunk) = res.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        sampler.await?;
        let rows = lines.saturating_sub(1);
        println!(
            "{:<16} {:>9} {:>9.1} {:>10.0} {:>20} {:>20}",
            name,
            rows,
            secs,
            rows as f64 / secs,
            format!("{rss_before} / {anon_before}"),
            format!(
                "{} / {}",
                peak_rss.load(Ordering::Relaxed),
                peak_anon.load(Ordering::Relaxed)
            )
        );
    }
    server.stop().await;
    if pg.is_some() {
        drop_postgres("analyticsload", 1).await?;
    }
    Ok(())
}
