//! Knowledge search with a large index: starts a real `switchboard` process on a fresh
//! database, adds the test corpus (a salon's handbook and directions) and `--chunks` filler
//! passages in sources of 1,000, lets the server's own index job cut and index them (timed),
//! then times `GET /api/v1/knowledge/search` `--requests` times over a mix of questions
//! (the corpus's, which must still find their passage first, and filler words that match
//! thousands of passages), reporting p50 / p99 / max.
//!
//! `cargo build --release --workspace && ./target/release/switchboard-knowledgeload --backend sqlite --chunks 100000`

use anyhow::{bail, Context};
use clap::Parser;
use std::time::{Duration, Instant};
use switchboard_bench::pct;
use switchboard_domain::knowledge::KnowledgeFormat;
use switchboard_store::corpus::{self, DIRECTIONS, HANDBOOK, QUESTIONS};

#[derive(Parser, Debug)]
#[command(about = "Knowledge search latency with a large index")]
struct Args {
    /// `sqlite` (a fresh file) or `postgres` (a fresh database next to SWITCHBOARD_TEST_POSTGRES).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Filler passages to index besides the corpus.
    #[arg(long, default_value_t = 10_000)]
    chunks: usize,
    /// Timed searches.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
}

/// Questions of filler words: frequent ones (thousands of matching passages) and rare ones.
const FILLER_QUERIES: &[&str] = &[
    "appointment booking service",
    "stylist treatment for a wedding",
    "museum theatre cinema",
    "shampoo conditioner scalp care",
    "bakery pharmacy station",
    "newsletter website review photo",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (server, store, org, pg) =
        switchboard_bench::server_with_store("knowledgeload", &args.backend, &args.binary).await?;
    corpus::add_indexed(
        &store,
        &org,
        "Handbook",
        KnowledgeFormat::Markdown,
        HANDBOOK,
    )
    .await?;
    corpus::add_indexed(
        &store,
        &org,
        "Directions",
        KnowledgeFormat::Text,
        DIRECTIONS,
    )
    .await?;
    let t = Instant::now();
    corpus::add_filler(&store, &org, args.chunks).await?;
    let added = t.elapsed();
    store.close().await;

    // The server's index job cuts and indexes the filler (it polls for other processes'
    // work every second).
    let http = reqwest::Client::new();
    let t = Instant::now();
    let passages = loop {
        let list: serde_json::Value = http
            .get(format!("{}/api/v1/knowledge/sources", server.base))
            .bearer_auth(&server.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let sources = list["data"].as_array().context("sources")?;
        if sources.iter().any(|s| s["status"] == "failed") {
            bail!("a source failed to index: {list}");
        }
        if sources.iter().all(|s| s["status"] == "ready") {
            break sources
                .iter()
                .map(|s| s["chunks"].as_i64().unwrap_or(0))
                .sum::<i64>();
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("indexing did not finish in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let indexed = t.elapsed();
    println!(
        "{}: {passages} passages; sources written in {:.1} s, indexed by the server in {:.1} s ({:.0} passages/s)",
        args.backend,
        added.as_secs_f64(),
        indexed.as_secs_f64(),
        passages as f64 / indexed.as_secs_f64().max(0.001)
    );

    let queries: Vec<(&str, Option<&str>)> = QUESTIONS
        .iter()
        .map(|(q, expected)| (*q, Some(*expected)))
        .chain(FILLER_QUERIES.iter().map(|q| (*q, None)))
        .collect();
    // Warm-up: one round, checking the corpus answers still come first.
    for (q, expected) in &queries {
        let r = search(&http, &server, q).await?;
        if let Some(e) = expected {
            let first = r["data"][0]["text"].as_str().unwrap_or_default();
            if !first.contains(e) {
                bail!("{q}: the first passage is not the expected one: {first}");
            }
        }
    }
    let mut all = Vec::with_capacity(args.requests);
    let mut questions = Vec::new();
    let mut filler = Vec::new();
    for i in 0..args.requests {
        let (q, expected) = queries[i % queries.len()];
        let t = Instant::now();
        search(&http, &server, q).await?;
        let us = t.elapsed().as_micros() as u64;
        all.push(us);
        if expected.is_some() {
            questions.push(us);
        } else {
            filler.push(us);
        }
    }
    println!(
        "{:<22} {:>8} {:>8} {:>8}",
        "searches", "p50 ms", "p99 ms", "max ms"
    );
    for (name, v) in [
        ("all", &mut all),
        ("corpus questions", &mut questions),
        ("frequent filler words", &mut filler),
    ] {
        println!(
            "{:<22} {:>8.2} {:>8.2} {:>8.2}",
            name,
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    server.stop().await;
    if pg.is_some() {
        switchboard_bench::drop_postgres("knowledgeload", 1).await?;
    }
    Ok(())
}

async fn search(
    http: &reqwest::Client,
    server: &switchboard_bench::Server,
    q: &str,
) -> anyhow::Result<serde_json::Value> {
    let res = http
        .get(format!("{}/api/v1/knowledge/search", server.base))
        .query(&[("q", q), ("limit", "5")])
        .bearer_auth(&server.key)
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("search answered {}", res.status());
    }
    Ok(res.json().await?)
}
