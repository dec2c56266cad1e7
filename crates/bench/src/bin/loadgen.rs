//! Voice load generator: N concurrent simulated calls against a real `switchboard` process
//! with the fake Realtime model in echo mode. Every 20 ms caller frame carries a sequence
//! marker (call, frame, send time); the fake model reports when each frame arrived, echoes it
//! back as agent audio, and the Twilio side records when it came back. That gives the relay
//! latency Switchboard adds in each direction, lost and reordered frames, and the server's
//! CPU and memory per call (read from /proc).
//!
//! Two ways for the model to answer (`--mode`): `echo` (default) sends each 20 ms frame back
//! as its own delta at once; `deltas` sends the audio back as the real API sends agent
//! audio, in deltas of 100-200 ms released three at a time (the outbound latency is then
//! from the delta's sending to its frame reaching Twilio).
//!
//! `cargo run --release -p switchboard-bench --bin switchboard-loadgen -- --calls 100,1000 [--mode deltas]`

use base64::Engine;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bench::{pct, proc_stat, Server, ACCOUNT};
use switchboard_testkit::realtime::{Behavior, FakeRealtime};
use switchboard_testkit::realtime_burst::Burst;
use switchboard_testkit::twilio::FakeTwilioRest;
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const TOKEN: &str = "loadgen-auth-token";
const NUMBER: &str = "+15550009999";

#[derive(Parser, Debug)]
#[command(about = "Concurrent simulated calls against a switchboard server with a fake model")]
struct Args {
    /// Concurrent call counts to run, one after the other (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    calls: Vec<usize>,
    /// Seconds of audio per call (measured after all calls are connected).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
    /// How the fake model answers: `echo` (a 20 ms delta per frame, at once) or `deltas`
    /// (100-200 ms deltas in bursts, as the real API).
    #[arg(long, default_value = "echo", value_parser = ["echo", "deltas"])]
    mode: String,
}

/// Per-frame timing: (call, seq) -> an instant (sent by the caller, arrived at the model,
/// left the model); filled by the callers and the model's taps, read by the collectors.
type Times = Arc<Mutex<HashMap<(u32, u32), Instant>>>;

struct Run {
    inbound_us: Vec<u64>,
    outbound_us: Vec<u64>,
    sent: u64,
    received_model: u64,
    received_back: u64,
    reordered: u64,
    failed_calls: usize,
}

fn encode(call: u32, seq: u32) -> String {
    let mut frame = [0xFFu8; 160];
    frame[..4].copy_from_slice(&call.to_be_bytes());
    frame[4..8].copy_from_slice(&seq.to_be_bytes());
    // A marker so stray audio is not mistaken for a frame.
    frame[8..12].copy_from_slice(b"SBLG");
    B64.encode(frame)
}

fn marker(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 12 || &frame[8..12] != b"SBLG" {
        return None;
    }
    let call = u32::from_be_bytes(frame[..4].try_into().ok()?);
    let seq = u32::from_be_bytes(frame[4..8].try_into().ok()?);
    Some((call, seq))
}

fn decode(b64: &str) -> Option<(u32, u32)> {
    marker(&B64.decode(b64).ok()?)
}

/// The marked frames of a media payload (one per 20 ms; several in a longer delta).
fn decode_all(b64: &str) -> Vec<(u32, u32)> {
    B64.decode(b64)
        .map(|bytes| bytes.chunks(160).filter_map(marker).collect())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let deltas = args.mode == "deltas";
    let model = FakeRealtime::start(Behavior {
        echo: true,
        burst: deltas.then(Burst::default),
        ..Behavior::default()
    })
    .await;
    let (tap_tx, tap_rx) = tokio::sync::mpsc::unbounded_channel();
    *model.echo_rx.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(tap_tx);
    // Deltas mode: when each frame left the model (echo mode: when it arrived there).
    let (sent_tx, sent_rx) = tokio::sync::mpsc::unbounded_channel();
    *model.sent_rx.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(sent_tx);
    let rest = FakeTwilioRest::start().await;
    let server = Server::start(
        &args.binary,
        &[
            ("SWITCHBOARD_OPENAI_API_KEY", "sk-loadgen".to_owned()),
            ("SWITCHBOARD_OPENAI_REALTIME_URL", model.url.clone()),
            ("SWITCHBOARD_TWILIO_API_URL", rest.url.clone()),
        ],
    )
    .await?;
    server
        .setup(
            TOKEN,
            json!({"name": "Echo", "instructions": "Echo.", "max_call_duration_seconds": 14400}),
            NUMBER,
            "voice",
        )
        .await?;
    let (http, base, pid) = (server.http.clone(), server.base.clone(), server.pid);

    // Frames arriving at the model: (call, seq) -> arrival.
    let sent: Times = Arc::new(Mutex::new(HashMap::new()));
    let at_model: Times = Arc::new(Mutex::new(HashMap::new()));
    let from_model: Times = Arc::new(Mutex::new(HashMap::new()));
    record(tap_rx, at_model.clone());
    record(sent_rx, from_model.clone());
    println!("Model answers: {}", args.mode);
    println!("| calls | frames sent | lost to model | lost back | reordered | inbound p50 / p99 / max (ms) | outbound p50 / p99 / max (ms) | server CPU (% of one core) | CPU per call | RSS idle → loaded | RSS per call | load generator and fake model CPU |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut call_base = 0u32;
    for n in args.calls.clone() {
        let run = run_calls(
            &http,
            &base,
            n,
            call_base,
            args.seconds,
            &sent,
            &at_model,
            deltas.then_some(&from_model),
            pid,
        )
        .await?;
        call_base += n as u32;
        let Run {
            mut inbound_us,
            mut outbound_us,
            sent: s,
            received_model,
            received_back,
            reordered,
            failed_calls,
        } = run.0;
        let (cpu, rss0, rss1, own) = run.1;
        println!(
            "| {n} | {s} | {} | {} | {reordered} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {:.0}% | {:.3}% | {} → {} MiB | {:.0} KiB | {:.0}% |{}",
            s.saturating_sub(received_model),
            s.saturating_sub(received_back),
            pct(&mut inbound_us, 0.5), pct(&mut inbound_us, 0.99), pct(&mut inbound_us, 1.0),
            pct(&mut outbound_us, 0.5), pct(&mut outbound_us, 0.99), pct(&mut outbound_us, 1.0),
            cpu * 100.0, cpu * 100.0 / n as f64,
            rss0 / 1024, rss1 / 1024,
            rss1.saturating_sub(rss0) as f64 / n as f64,
            own * 100.0,
            if failed_calls > 0 { format!(" {failed_calls} calls failed to connect") } else { String::new() },
        );
        sent.lock().map_err(|_| anyhow::anyhow!("lock"))?.clear();
        at_model
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .clear();
        from_model
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .clear();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    server.stop().await;
    Ok(())
}

/// Files each frame a model tap reports under its (call, seq) marker, with the instant.
fn record(mut rx: tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>, times: Times) {
    tokio::spawn(async move {
        while let Some((b64, at)) = rx.recv().await {
            if let Some(k) = decode(&b64) {
                if let Ok(mut m) = times.lock() {
                    m.insert(k, at);
                }
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn run_calls(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    call_base: u32,
    seconds: u64,
    sent: &Times,
    at_model: &Times,
    from_model: Option<&Times>,
    pid: u32,
) -> anyhow::Result<(Run, (f64, u64, u64, f64))> {
    let (_, rss_idle) = proc_stat(pid)?;
    let ws_base = base.replacen("http://", "ws://", 1);
    // Every call starts sending at the same instant, after all are connected.
    let go = Instant::now() + Duration::from_secs(3) + Duration::from_millis(5 * n as u64);
    let measure_from = go + Duration::from_secs(1);
    let stop_at = go + Duration::from_secs(seconds + 1);
    let mut tasks = Vec::new();
    for i in 0..n {
        let call = call_base + i as u32;
        let http = http.clone();
        let (base, ws_base, sent) = (base.to_owned(), ws_base.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            one_call(
                &http,
                &base,
                &ws_base,
                call,
                go,
                measure_from,
                stop_at,
                &sent,
            )
            .await
        }));
        // Twilio does not deliver a thousand webhooks in the same millisecond either.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
    let (cpu0, _) = proc_stat(pid)?;
    // The load generator's own CPU (callers and fake model): on two cores it competes with
    // the server, and when it needs more than its share the latencies measure the queue.
    let me = std::process::id();
    let (own0, _) = proc_stat(me)?;
    let t0 = Instant::now();
    tokio::time::sleep_until(tokio::time::Instant::from_std(
        stop_at - Duration::from_millis(500),
    ))
    .await;
    let (cpu1, rss_loaded) = proc_stat(pid)?;
    let (own1, _) = proc_stat(me)?;
    let cpu = (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    let own = (own1 - own0) / t0.elapsed().as_secs_f64();
    let mut run = Run {
        inbound_us: Vec::new(),
        outbound_us: Vec::new(),
        sent: 0,
        received_model: 0,
        received_back: 0,
        reordered: 0,
        failed_calls: 0,
    };
    let mut backs = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(r) => backs.push(r),
            Err(e) => {
                run.failed_calls += 1;
                eprintln!("call failed: {e:#}");
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = sent.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let at_model = at_model
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    let left_model = match from_model {
        Some(m) => m.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone(),
        None => at_model.clone(),
    };
    run.sent = sent.len() as u64;
    for (k, t_sent) in &sent {
        if let Some(t_model) = at_model.get(k) {
            run.received_model += 1;
            run.inbound_us
                .push(t_model.saturating_duration_since(*t_sent).as_micros() as u64);
        }
    }
    for (back, reordered) in backs {
        run.reordered += reordered;
        for (k, t_back) in back {
            let (Some(_), Some(t_model)) = (sent.get(&k), left_model.get(&k)) else {
                continue;
            };
            run.received_back += 1;
            // From the model's sending (echo mode: at once on arrival) to Twilio.
            run.outbound_us
                .push(t_back.saturating_duration_since(*t_model).as_micros() as u64);
        }
    }
    Ok((run, (cpu, rss_idle, rss_loaded, own)))
}

type Back = (Vec<((u32, u32), Instant)>, u64);

#[allow(clippy::too_many_arguments)]
async fn one_call(
    http: &reqwest::Client,
    base: &str,
    ws_base: &str,
    call: u32,
    go: Instant,
    measure_from: Instant,
    stop_at: Instant,
    sent: &Times,
) -> anyhow::Result<Back> {
    let call_sid = format!("CA{call:032x}");
    let params = switchboard_bench::ring(http, base, TOKEN, &call_sid, NUMBER).await?;
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("{ws_base}/twilio/media"), None, true)
            .await?;
    let (mut sink, mut source) = ws.split();
    let stream_sid = format!("MZ{call:032x}");
    let custom: serde_json::Map<String, Value> =
        params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    sink.send(Message::Text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            .to_string()
            .into(),
    ))
    .await?;
    sink.send(Message::Text(json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {"streamSid": stream_sid, "callSid": call_sid, "accountSid": ACCOUNT, "customParameters": custom, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}).to_string().into())).await?;
    let (mark_tx, mut mark_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        let mut back = Vec::new();
        let mut last: HashMap<u32, u32> = HashMap::new();
        let mut reordered = 0u64;
        while let Some(Ok(msg)) = source.next().await {
            let Message::Text(t) = msg else { continue };
            let now = Instant::now();
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            match v["event"].as_str() {
                Some("media") => {
                    for k in decode_all(v["media"]["payload"].as_str().unwrap_or_default()) {
                        let prev = last.insert(k.0, k.1);
                        if prev.is_some_and(|p| p >= k.1) {
                            reordered += 1;
                        }
                        back.push((k, now));
                    }
                }
                Some("mark") => {
                    // Twilio echoes marks once played; echo at once to keep the load honest.
                    let _ = mark_tx.send(v["mark"]["name"].as_str().unwrap_or_default().to_owned());
                }
                _ => {}
            }
        }
        (back, reordered)
    });
    tokio::time::sleep_until(tokio::time::Instant::from_std(go)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut seq = 0u32;
    while Instant::now() < stop_at {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                let now = Instant::now();
                let payload = encode(call, seq);
                let msg = json!({"event": "media", "sequenceNumber": (seq + 1).to_string(), "streamSid": stream_sid, "media": {"track": "inbound", "chunk": seq.to_string(), "timestamp": (seq * 20).to_string(), "payload": payload}});
                if now >= measure_from && now < stop_at - Duration::from_millis(500) {
                    if let Ok(mut s) = sent.lock() {
                        s.insert((call, seq), now);
                    }
                }
                sink.send(Message::Text(msg.to_string().into())).await?;
            }
            Some(name) = mark_rx.recv() => {
                sink.send(Message::Text(json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).to_string().into())).await?;
            }
        }
    }
    sink.send(Message::Text(json!({"event": "stop", "streamSid": stream_sid, "stop": {"callSid": call_sid, "accountSid": ACCOUNT}}).to_string().into())).await?;
    let back = tokio::time::timeout(Duration::from_secs(10), reader).await??;
    Ok(back)
}
