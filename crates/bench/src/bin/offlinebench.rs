//! Real-time factors of the offline providers on this machine's CPU: whisper.cpp
//! transcribing the caller fixture (5 s of speech, 8 kHz mu-law as a call delivers it), and a
//! Piper voice speaking a typical answer sentence (resampled to 8 kHz mu-law as a call sends
//! it). RTF = compute time / audio time; under 1 is faster than real time.
//!
//! `cargo run --release -p switchboard-bench --features whisper --bin switchboard-offlinebench --
//!  --whisper-model ggml-base.en.bin --piper-voices voices/ --voice en_US-lessac-medium
//!  --onnxruntime .../libonnxruntime.so.1.32.0`

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use switchboard_cascade::offline::{Local, OfflineConfig};
use switchboard_testkit::fixtures::CALLER_BOOKING;

#[derive(Parser, Debug)]
#[command(about = "Real-time factors of whisper.cpp and a Piper voice on this machine")]
struct Args {
    /// A whisper.cpp model (needs a build with `--features whisper`).
    #[arg(long)]
    whisper_model: Option<PathBuf>,
    /// A folder of Piper voices.
    #[arg(long)]
    piper_voices: Option<PathBuf>,
    /// The voice to time.
    #[arg(long, default_value = "en_US-lessac-medium")]
    voice: String,
    /// ONNX Runtime's shared library.
    #[arg(long)]
    onnxruntime: Option<PathBuf>,
    /// Threads per inference (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Timed runs of each (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const SENTENCE: &str =
    "Of course. Our opening hours are nine to five on weekdays, and I can book you in for Monday at ten.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let local = Arc::new(Local::new(OfflineConfig {
        whisper_model: args.whisper_model.clone(),
        piper_voices: args.piper_voices.clone(),
        onnxruntime: args.onnxruntime.clone(),
        espeak: None,
        threads: args.threads,
    }));
    println!("| what | audio (s) | compute p50 (s) | real-time factor |");
    println!("|---|---|---|---|");
    if args.whisper_model.is_some() {
        let audio_s = CALLER_BOOKING.len() as f64 / 8_000.0;
        let words = local
            .transcribe(CALLER_BOOKING.to_vec(), Some("en".into()))
            .await
            .map_err(anyhow::Error::msg)?;
        eprintln!("whisper heard: {words}");
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            local
                .transcribe(CALLER_BOOKING.to_vec(), Some("en".into()))
                .await
                .map_err(anyhow::Error::msg)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let p50 = median(times);
        println!(
            "| whisper.cpp, the caller fixture | {audio_s:.2} | {p50:.3} | {:.3} |",
            p50 / audio_s
        );
    }
    if args.piper_voices.is_some() {
        let first = local
            .synthesize(args.voice.clone(), SENTENCE.into())
            .await
            .map_err(anyhow::Error::msg)?;
        let audio_s = first.len() as f64 / 8_000.0;
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            local
                .synthesize(args.voice.clone(), SENTENCE.into())
                .await
                .map_err(anyhow::Error::msg)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let p50 = median(times);
        println!(
            "| Piper voice `{}`, a {}-character sentence | {audio_s:.2} | {p50:.3} | {:.3} |",
            args.voice,
            SENTENCE.len(),
            p50 / audio_s
        );
    }
    Ok(())
}
