//! Messaging load generator: signed inbound SMS webhooks against a real `switchboard` process
//! with a fake chat model (instant, or with a delay) and a fake Twilio REST API. Reports
//! sustained inbound messages per second, webhook latency (p50/p99/max), inline replies, and
//! whether every message was stored exactly once (counted in the database afterwards), and
//! the CPU the server and this process (load generator, fake model, fake REST) used, in cores.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-msgload --backend sqlite`

use anyhow::bail;
use clap::Parser;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bench::{drop_postgres, fresh_postgres, pct, proc_stat, Server, ACCOUNT};
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::twilio::FakeTwilioRest;

const TOKEN: &str = "msgload-auth-token";
const NUMBER: &str = "+15550008888";

#[derive(Parser, Debug)]
#[command(about = "Inbound SMS throughput and webhook latency against a switchboard server")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Messages to send.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Webhooks in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Distinct texters (each keeps a session going).
    #[arg(long, default_value_t = 2_000)]
    contacts: u64,
    /// Fake model answer delay in milliseconds.
    #[arg(long, default_value_t = 0)]
    model_delay_ms: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = FakeChatModel::start().await;
    model.stop_recording();
    model.fixed_reply("Thanks for your message, we will get back to you shortly.");
    model.set_delay(Duration::from_millis(args.model_delay_ms));
    let rest = FakeTwilioRest::start().await;
    rest.stop_recording();
    let mut envs = vec![
        ("SWITCHBOARD_LLM_BASE_URL", model.url.clone()),
        ("SWITCHBOARD_LLM_API_KEY", "sk-msgload".to_owned()),
        ("SWITCHBOARD_TWILIO_API_URL", rest.url.clone()),
    ];
    let postgres_url = match args.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(fresh_postgres("msgload", std::process::id()).await?),
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    if let Some(url) = &postgres_url {
        envs.push(("SWITCHBOARD_DATABASE_URL", url.clone()));
    }
    let server = Server::start(&args.binary, &envs).await?;
    let db_url = postgres_url.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            server.data.join("switchboard.db").display()
        )
    });
    server
        .setup(
            TOKEN,
            json!({"name": "Texts", "instructions": "Answer briefly."}),
            NUMBER,
            "sms",
        )
        .await?;
    let (http, base) = (server.http.clone(), server.base.clone());

    let next = Arc::new(AtomicU64::new(0));
    let replies = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (server_cpu0, _) = proc_stat(server.pid)?;
    let (own_cpu0, _) = proc_stat(std::process::id())?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (http, base, next, replies, errors) = (
            http.clone(),
            base.clone(),
            next.clone(),
            replies.clone(),
            errors.clone(),
        );
        let (total, contacts) = (args.messages, args.contacts.max(1));
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return lat;
                }
                let from = format!("+1556{:07}", n % contacts);
                let sid = format!("SM{n:032x}");
                let body = format!("message {n}");
                let t = Instant::now();
                let res = switchboard_testkit::twilio::post_signed(
                    &http,
                    &base,
                    &base,
                    "/twilio/messaging",
                    TOKEN,
                    &[
                        ("MessageSid", &sid),
                        ("AccountSid", ACCOUNT),
                        ("From", &from),
                        ("To", NUMBER),
                        ("Body", &body),
                        ("NumMedia", "0"),
                    ],
                )
                .await;
                let ok = res.status().is_success();
                let text = res.text().await.unwrap_or_default();
                lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else if text.contains("<Message") {
                    replies.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Progress on stderr every 5 s: how many were sent and the rate over the last 5 s, so a
    // rate that falls during the run (longer conversations, a growing database) shows up.
    let progress = {
        let (done, total) = (next.clone(), args.messages);
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = done.load(Ordering::Relaxed).min(total);
                eprintln!(
                    "{:>6.0} s: {now} of {total} sent, {:.0} msg/s over the last 5 s",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64 / 5.0
                );
                last = now;
            }
        })
    };
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    progress.abort();
    let server_cpu = proc_stat(server.pid)?.0 - server_cpu0;
    let own_cpu = proc_stat(std::process::id())?.0 - own_cpu0;
    // Give REST-sent replies (over the budget) a moment, then count what was stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db_url).await?;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE role = 'user'")
        .fetch_one(&pool)
        .await?;
    let answered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND kind = 'message'",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let sent = args.messages;
    println!("| backend | model delay | concurrency | messages | msg/s | webhook p50 / p99 / max (ms) | inline replies | replies stored | stored inbound | errors | server CPU (cores) | load generator CPU (cores) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} ms | {} | {sent} | {:.0} | {:.2} / {:.2} / {:.2} | {} | {answered} | {stored} | {} | {:.2} | {:.2} |",
        args.backend,
        args.model_delay_ms,
        args.concurrency,
        sent as f64 / secs,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
        replies.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        server_cpu / secs,
        own_cpu / secs,
    );
    if stored != i64::try_from(sent).unwrap_or(i64::MAX) {
        eprintln!("LOST OR DUPLICATED: sent {sent}, stored {stored}");
    }
    server.stop().await;
    if args.backend == "postgres" {
        drop_postgres("msgload", std::process::id()).await?;
    }
    Ok(())
}
