//! Cascaded pipeline load: N concurrent calls against a real `switchboard` process whose
//! agent runs the cascaded pipeline against fake providers (Deepgram, ElevenLabs and a
//! streaming chat model, all in this process). Each caller speaks the booking fixture, waits
//! for the answer to play, and speaks again, for the whole window; Twilio's side echoes
//! marks in real time. The server's own cost of the pipeline (decoding, the detector,
//! streaming to and from the providers, sentence splitting, mu-law re-encoding of the
//! answers, the Realtime events inside) is its CPU over the window per call-second; the
//! fakes run in the load generator's process and are not counted.
//!
//! `cargo run --release -p switchboard-bench --bin switchboard-cascadeload -- --calls 50,150`
//!
//! With `--whisper-model` and/or `--piper-voices --voice --onnxruntime` the calls run on the
//! offline providers instead (the chat model stays the local stand-in): an offline call end to
//! end, with its latency and the server's CPU.

use clap::Parser;
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_bench::{pct, proc_stat, Server};
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::fixtures::CALLER_BOOKING;
use switchboard_testkit::speech::FakeSpeech;
use switchboard_testkit::twilio::MediaCall;

const TOKEN: &str = "cascadeload-auth-token";
const NUMBER: &str = "+15550009998";
const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";

#[derive(Parser, Debug)]
#[command(
    about = "Concurrent cascaded-pipeline calls against a switchboard server with fake providers"
)]
struct Args {
    /// Concurrent call counts to run, one after the other (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "50,150")]
    calls: Vec<usize>,
    /// Seconds measured per run (after every call is connected).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
    /// Offline speech-to-text: this whisper.cpp model instead of the fake Deepgram (the server
    /// must be built with `--features switchboard/whisper`).
    #[arg(long)]
    whisper_model: Option<String>,
    /// Offline voice: this folder of Piper voices instead of the fake ElevenLabs (with
    /// `--voice` and `--onnxruntime`).
    #[arg(long)]
    piper_voices: Option<String>,
    /// The Piper voice.
    #[arg(long, default_value = "en_US-lessac-medium")]
    voice: String,
    /// ONNX Runtime's shared library, for Piper.
    #[arg(long)]
    onnxruntime: Option<String>,
}

impl Args {
    /// The server's settings and the agent's `stt` and `tts`: the fakes, or the offline
    /// providers asked for.
    fn providers(
        &self,
        speech: &FakeSpeech,
        chat: &FakeChatModel,
    ) -> (
        Vec<(&'static str, String)>,
        serde_json::Value,
        serde_json::Value,
    ) {
        let mut env = vec![
            ("SWITCHBOARD_LLM_BASE_URL", chat.url.clone()),
            ("SWITCHBOARD_LLM_API_KEY", "sk-load".into()),
            ("SWITCHBOARD_DEEPGRAM_API_URL", speech.url.clone()),
            ("SWITCHBOARD_DEEPGRAM_API_KEY", "dg-load".into()),
            ("SWITCHBOARD_ELEVENLABS_API_URL", speech.url.clone()),
            ("SWITCHBOARD_ELEVENLABS_API_KEY", "el-load".into()),
            ("SWITCHBOARD_TWILIO_API_URL", "http://127.0.0.1:9".into()),
        ];
        let stt = match &self.whisper_model {
            Some(model) => {
                env.push(("SWITCHBOARD_WHISPER_MODEL", model.clone()));
                json!({"provider": "whisper"})
            }
            None => json!({"provider": "deepgram"}),
        };
        let tts = match (&self.piper_voices, &self.onnxruntime) {
            (Some(dir), Some(lib)) => {
                env.push(("SWITCHBOARD_PIPER_VOICES_DIR", dir.clone()));
                env.push(("SWITCHBOARD_ONNXRUNTIME_LIB", lib.clone()));
                json!({"provider": "piper", "voice": self.voice})
            }
            _ => json!({"provider": "elevenlabs", "voice": VOICE}),
        };
        (env, stt, tts)
    }
}

/// One caller's turns: when its speech ended and when the answer's first audio arrived.
struct Turns {
    latencies_us: Vec<u64>,
    answered: usize,
    spoken: usize,
}

async fn one_call(server: &Server, ws: &str, n: usize, until: Instant) -> anyhow::Result<Turns> {
    let call_sid = format!("CA{n:032x}");
    let params =
        switchboard_bench::ring(&server.http, &server.base, TOKEN, &call_sid, NUMBER).await?;
    let media = MediaCall::connect(
        &format!("{ws}/twilio/media"),
        &call_sid,
        &params,
        Duration::from_millis(20),
        1.0,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let (speech, heard_until) = speech_span();
    let mut turns = Turns {
        latencies_us: Vec::new(),
        answered: 0,
        spoken: 0,
    };
    // Let the greeting play, then speak, wait for the answer to end, and speak again.
    let quiet = |media: &MediaCall| {
        let r = media.snapshot();
        !r.media.is_empty() && r.echoed == r.marks.len()
    };
    while Instant::now() < until {
        let start = Instant::now();
        while !quiet(&media) && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if Instant::now() + speech + Duration::from_secs(2) > until {
            break;
        }
        let before = media.snapshot().media.len();
        media.play(CALLER_BOOKING);
        turns.spoken += 1;
        // The caller's last loud frame (the fixture ends in silence).
        let ended = Instant::now() + heard_until;
        // The answer: the first media after the caller stopped.
        let wait_until = ended + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let r = media.snapshot();
            if let Some((at, _)) = r.media[before..].iter().find(|(at, _)| *at > ended) {
                turns.answered += 1;
                turns
                    .latencies_us
                    .push(at.saturating_duration_since(ended).as_micros() as u64);
                break;
            }
            if Instant::now() > wait_until {
                break;
            }
        }
    }
    media.stop();
    let _ = media.finished(Duration::from_secs(10)).await;
    Ok(turns)
}

/// How long the fixture plays, and where its last loud 20 ms frame ends (the end of speech
/// a listener would hear; the detector's silence counts from there).
fn speech_span() -> (Duration, Duration) {
    let level = |frame: &[u8]| {
        let e: f64 = frame
            .iter()
            .map(|u| f64::from(switchboard_cascade::audio::ulaw_to_pcm(*u)).powi(2))
            .sum();
        (e / frame.len().max(1) as f64).sqrt()
    };
    let last_loud = CALLER_BOOKING
        .chunks(160)
        .rposition(|f| level(f) > 330.0)
        .map_or(0, |i| i + 1);
    (
        Duration::from_millis(CALLER_BOOKING.len() as u64 / 8),
        Duration::from_millis(last_loud as u64 * 20),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let speech = FakeSpeech::start().await;
    speech.add_deepgram_key("dg-load");
    speech.add_elevenlabs_key("el-load", &[VOICE]);
    speech.hear_always("Hello, I would like to book an appointment for Monday at ten.");
    let chat = FakeChatModel::start().await;
    chat.stop_recording();
    println!("| calls | turns spoken / answered | end of speech → first audio p50 / p95 (ms) | server CPU (% of one core) | CPU per call | CPU ms per call-second | RSS before → loaded |");
    println!("|---|---|---|---|---|---|---|");
    for &calls in &args.calls {
        let (env, stt, tts) = args.providers(&speech, &chat);
        let server = Server::start(&args.binary, &env).await?;
        server
            .setup(
                TOKEN,
                json!({"name": "Load", "instructions": "Answer briefly.",
                    "greeting": "Hello, how can I help?",
                    "voice_pipeline": "cascaded", "stt": stt, "tts": tts,
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}),
                NUMBER,
                "voice",
            )
            .await?;
        let ws = server.base.replacen("http", "ws", 1);
        let (_, rss_before) = proc_stat(server.pid)?;
        let warmup = Duration::from_secs(5);
        let until = Instant::now() + warmup + Duration::from_secs(args.seconds);
        let server = std::sync::Arc::new(server);
        let mut tasks = Vec::new();
        for n in 0..calls {
            let (server, ws) = (server.clone(), ws.clone());
            tasks.push(tokio::spawn(async move {
                one_call(&server, &ws, n, until).await
            }));
        }
        tokio::time::sleep(warmup).await;
        let (cpu0, _) = proc_stat(server.pid)?;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let (cpu1, rss_loaded) = proc_stat(server.pid)?;
        let window = t0.elapsed().as_secs_f64();
        let (mut lat, mut spoken, mut answered, mut failed) = (Vec::new(), 0, 0, 0);
        for t in tasks {
            match t.await? {
                Ok(turns) => {
                    lat.extend(turns.latencies_us);
                    spoken += turns.spoken;
                    answered += turns.answered;
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("call failed: {e}");
                }
            }
        }
        let cpu = (cpu1 - cpu0) / window;
        println!(
            "| {calls} | {spoken} / {answered}{} | {:.0} / {:.0} | {:.0}% | {:.2}% | {:.2} | {} → {} MiB |",
            if failed > 0 { format!(" ({failed} calls failed)") } else { String::new() },
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.95),
            cpu * 100.0,
            cpu * 100.0 / calls as f64,
            cpu * 1000.0 / calls as f64,
            rss_before / 1024,
            rss_loaded / 1024,
        );
        if let Ok(server) = std::sync::Arc::try_unwrap(server) {
            server.stop().await;
        }
    }
    Ok(())
}
