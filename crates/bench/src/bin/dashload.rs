//! Dashboard list-page latency with a large history: starts a real `switchboard` process on a
//! fresh database, bulk-writes `--conversations` conversations (a quarter of them calls) and
//! `--contacts` contacts into its organization, signs in like a browser, and times each list
//! page (full response, server-rendered HTML) `--requests` times, one at a time.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-dashload --backend sqlite`

use anyhow::{bail, Context};
use clap::Parser;
use std::time::Instant;
use switchboard_bench::{drop_postgres, pct};
use switchboard_domain::Timestamp;

#[derive(Parser, Debug)]
#[command(about = "Dashboard list pages with a large history")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Conversations to write.
    #[arg(long, default_value_t = 100_000)]
    conversations: u64,
    /// Contacts to write.
    #[arg(long, default_value_t = 20_000)]
    contacts: u64,
    /// Timed requests per page.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (server, store, org_id, pg) =
        switchboard_bench::server_with_store("dashload", &args.backend, &args.binary).await?;
    let t = Instant::now();
    let seeded = switchboard_store::testing::seed_history(
        &store,
        &org_id,
        args.conversations,
        args.contacts,
        Timestamp::now(),
        90,
    )
    .await?;
    println!(
        "seeded {} conversations, {} calls, {} contacts in {:.1} s ({})",
        seeded.conversations,
        seeded.calls,
        seeded.contacts,
        t.elapsed().as_secs_f64(),
        args.backend
    );
    store.close().await;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = server.sign_in(&http).await?;

    // Page 2 of the conversations list, from its own "next" link.
    let first = http
        .get(format!("{}/conversations", server.base))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await?
        .text()
        .await?;
    let next = first
        .find("id=\"next-page\" href=\"")
        .map(|at| {
            let rest = &first[at + 21..];
            rest[..rest.find('"').unwrap_or(0)].replace("&amp;", "&")
        })
        .context("no next page link")?;
    let day = Timestamp::from_millis(Timestamp::now().millis() - 30 * 86_400_000)
        .to_rfc3339()
        .get(..10)
        .unwrap_or("")
        .to_owned();
    let pages = vec![
        "/".to_owned(),
        "/conversations".to_owned(),
        next,
        "/conversations?channel=sms".to_owned(),
        "/conversations?status=closed".to_owned(),
        "/conversations?contact=%2B15550000077".to_owned(),
        format!("/conversations?date={day}"),
        "/calls".to_owned(),
        "/calls?status=completed".to_owned(),
        "/calls?number=%2B15550000079".to_owned(),
        format!("/calls?date={day}"),
        "/contacts".to_owned(),
        "/contacts?q=Contact%201234".to_owned(),
    ];
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "page", "p50 ms", "p95 ms", "max ms", "KiB"
    );
    let mut worst: f64 = 0.0;
    for page in &pages {
        let mut samples = Vec::with_capacity(args.requests);
        let mut size = 0;
        for _ in 0..args.requests {
            let t = Instant::now();
            let res = http
                .get(format!("{}{page}", server.base))
                .header(reqwest::header::COOKIE, &session)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("{page} answered {}", res.status());
            }
            size = res.bytes().await?.len();
            samples.push(t.elapsed().as_micros() as u64);
        }
        let p95 = pct(&mut samples, 0.95);
        worst = worst.max(p95);
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>8.1} {:>8}",
            page,
            pct(&mut samples, 0.5),
            p95,
            pct(&mut samples, 1.0),
            size / 1024
        );
    }
    println!("worst p95: {worst:.1} ms (target: under 100 ms)");
    server.stop().await;
    if pg.is_some() {
        drop_postgres("dashload", 1).await?;
    }
    Ok(())
}
