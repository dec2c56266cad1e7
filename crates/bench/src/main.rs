//! `switchboard-bench`: seeds a fresh database with many organizations, conversations and
//! transcript items, starts the real server, and measures the conversation-list and
//! conversation-detail endpoints over HTTP (requests/s, p50, p99, max).
//!
//!   cargo run --release -p switchboard-bench -- --backend sqlite
//!   cargo run --release -p switchboard-bench -- --backend postgres \
//!       --postgres-url postgres://postgres@127.0.0.1:5432/test
//!
//! Seeding writes rows with multi-row INSERTs straight into the schema (the API would take
//! hours for a million items); everything measured goes through the public HTTP API.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use sqlx::{Arguments, Connection, Executor};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::ids::{ConversationId, MessageId};
use switchboard_store::testing::TestDb;
use switchboard_web::{Application, WebConfig};

#[derive(Clone, Copy, ValueEnum, Debug)]
enum BackendArg {
    Sqlite,
    Postgres,
}

#[derive(Parser, Debug)]
#[command(about = "Seed and measure the conversation endpoints")]
struct Args {
    /// Database engine.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendArg,
    /// PostgreSQL server (a fresh database is created there and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Organizations.
    #[arg(long, default_value_t = 100)]
    orgs: usize,
    /// Transcript items in total.
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    /// Items per conversation.
    #[arg(long, default_value_t = 10)]
    per_conversation: usize,
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

struct Org {
    key: String,
    conversations: Vec<String>,
    /// `next_cursor` of the first page of `?channel=sms&limit=50`, fetched through the API.
    sms_cursor: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = match args.backend {
        BackendArg::Sqlite => TestDb::sqlite().await?,
        BackendArg::Postgres => TestDb::postgres(&args.postgres_url).await?,
    };
    let result = run(&args, &db).await;
    db.drop_db().await;
    result
}

async fn run(args: &Args, db: &TestDb) -> anyhow::Result<()> {
    let started = Instant::now();
    let orgs = seed(args, db).await?;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        &WebConfig::default(),
    )
    .await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        app.run_until_stopped(async move { drop(stop_rx.await) }, Duration::from_secs(5)),
    );
    let mut orgs = orgs;
    let client = reqwest::Client::new();
    for org in &mut orgs {
        let page: serde_json::Value = client
            .get(format!("{base}/api/v1/conversations?limit=50&channel=sms"))
            .bearer_auth(&org.key)
            .send()
            .await?
            .json()
            .await?;
        org.sms_cursor = page["next_cursor"]
            .as_str()
            .context("page 2 needs more than 50 SMS conversations per organization: raise --items")?
            .to_owned();
    }
    let orgs = Arc::new(orgs);

    println!("| backend | endpoint | requests | req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for endpoint in [
        Endpoint::List,
        Endpoint::ListPage2,
        Endpoint::Detail,
        Endpoint::Messages,
    ] {
        let r = load(args, &base, orgs.clone(), endpoint).await?;
        println!(
            "| {:?} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            args.backend,
            endpoint.describe(),
            r.count,
            r.rps,
            r.p50,
            r.p99,
            r.max
        );
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

async fn seed(args: &Args, db: &TestDb) -> anyhow::Result<Vec<Org>> {
    let store = &db.store;
    let convs_total = args.items / args.per_conversation;
    let convs_per_org = convs_total / args.orgs;
    let mut orgs = Vec::with_capacity(args.orgs);
    let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
    let now = switchboard_domain::Timestamp::now().millis();
    let mut inserted_items = 0usize;
    for o in 0..args.orgs {
        let org = store.create_org(&format!("Bench org {o}")).await?;
        let (_, key) = store.create_api_key(&org.id, "bench").await?;
        let mut conversations = Vec::with_capacity(convs_per_org);
        let mut tx = conn.begin().await?;
        // Conversations, 100 per statement.
        for chunk_start in (0..convs_per_org).step_by(100) {
            let n = 100.min(convs_per_org - chunk_start);
            let mut sql = String::from(
                "INSERT INTO conversations (id, org_id, channel, direction, contact_number, our_number, agent_id, status, started_at, last_message_at, ended_at, variables) VALUES ",
            );
            let mut a = sqlx::any::AnyArguments::default();
            for i in 0..n {
                let c = chunk_start + i;
                let id = ConversationId::generate().to_string();
                let started = now - ((convs_per_org - c) as i64) * 60_000;
                let channel = ["sms", "voice", "whatsapp", "web"][c % 4];
                let p = i * 8;
                sql.push_str(&format!(
                    "{}(${}, ${}, ${}, 'inbound', ${}, '+15555550100', NULL, ${}, ${}, ${}, NULL, ${})",
                    if i == 0 { "" } else { ", " },
                    p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8
                ));
                a.add(id.clone()).map_err(anyhow::Error::msg)?;
                a.add(org.id.to_string()).map_err(anyhow::Error::msg)?;
                a.add(channel.to_owned()).map_err(anyhow::Error::msg)?;
                a.add(format!("+1555{:07}", c))
                    .map_err(anyhow::Error::msg)?;
                a.add(if c % 5 == 0 { "closed" } else { "active" }.to_owned())
                    .map_err(anyhow::Error::msg)?;
                a.add(started).map_err(anyhow::Error::msg)?;
                a.add(started + 30_000).map_err(anyhow::Error::msg)?;
                a.add(r#"{"customer_name":"Ada","amount_due":"42.50"}"#.to_owned())
                    .map_err(anyhow::Error::msg)?;
                conversations.push(id);
            }
            tx.execute(sqlx::query_with(&sql, a)).await?;
        }
        // Messages, 500 per statement.
        let items: Vec<(usize, usize)> = (0..conversations.len())
            .flat_map(|c| (0..args.per_conversation).map(move |m| (c, m)))
            .collect();
        for chunk in items.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO messages (id, org_id, conversation_id, role, kind, content, created_at) VALUES ",
            );
            let mut a = sqlx::any::AnyArguments::default();
            for (i, (c, m)) in chunk.iter().enumerate() {
                let p = i * 6;
                sql.push_str(&format!(
                    "{}(${}, ${}, ${}, ${}, 'message', ${}, ${})",
                    if i == 0 { "" } else { ", " },
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6
                ));
                a.add(MessageId::generate().to_string())
                    .map_err(anyhow::Error::msg)?;
                a.add(org.id.to_string()).map_err(anyhow::Error::msg)?;
                a.add(conversations[*c].clone())
                    .map_err(anyhow::Error::msg)?;
                a.add(if m % 2 == 0 { "user" } else { "assistant" }.to_owned())
                    .map_err(anyhow::Error::msg)?;
                a.add(format!(r#"{{"type":"text","text":"Message {m} of a benchmark conversation about an appointment."}}"#))
                    .map_err(anyhow::Error::msg)?;
                a.add(now - 1_000_000 + (*m as i64))
                    .map_err(anyhow::Error::msg)?;
            }
            tx.execute(sqlx::query_with(&sql, a)).await?;
            inserted_items += chunk.len();
        }
        tx.commit().await?;
        orgs.push(Org {
            key: key.expose().to_owned(),
            conversations,
            sms_cursor: String::new(),
        });
        if (o + 1) % 10 == 0 {
            eprintln!(
                "seeded {} organizations, {inserted_items} transcript items",
                o + 1
            );
        }
    }
    conn.execute("ANALYZE").await.context("ANALYZE")?;
    conn.close().await?;
    eprintln!(
        "total: {} organizations, {} conversations, {inserted_items} transcript items",
        args.orgs,
        convs_per_org * args.orgs
    );
    Ok(orgs)
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    List,
    ListPage2,
    Detail,
    Messages,
}

impl Endpoint {
    fn describe(self) -> &'static str {
        match self {
            Endpoint::List => "GET /conversations?limit=50",
            Endpoint::ListPage2 => "GET /conversations?limit=50&channel=sms (page 2)",
            Endpoint::Detail => "GET /conversations/{id}",
            Endpoint::Messages => "GET /conversations/{id}/messages?limit=50",
        }
    }
}

struct Measured {
    count: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

async fn load(
    args: &Args,
    base: &str,
    orgs: Arc<Vec<Org>>,
    endpoint: Endpoint,
) -> anyhow::Result<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let client = client.clone();
        let orgs = orgs.clone();
        let base = base.to_owned();
        workers.push(tokio::spawn(async move {
            let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ ((w as u64 + 1) * 0x9e37_79b9);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let org = &orgs[(rng % orgs.len() as u64) as usize];
                let conv =
                    &org.conversations[((rng >> 20) % org.conversations.len() as u64) as usize];
                let url = match endpoint {
                    Endpoint::List => format!("{base}/api/v1/conversations?limit=50"),
                    Endpoint::ListPage2 => format!(
                        "{base}/api/v1/conversations?limit=50&channel=sms&cursor={}",
                        org.sms_cursor
                    ),
                    Endpoint::Detail => format!("{base}/api/v1/conversations/{conv}"),
                    Endpoint::Messages => {
                        format!("{base}/api/v1/conversations/{conv}/messages?limit=50")
                    }
                };
                let t = Instant::now();
                let res = client.get(&url).bearer_auth(&org.key).send().await?;
                let status = res.status();
                let body = res.bytes().await?;
                if !status.is_success() {
                    anyhow::bail!("{url}: {status} {}", String::from_utf8_lossy(&body));
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Measured {
        count: all.len(),
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        max: all.last().copied().unwrap_or(0.0),
    })
}
