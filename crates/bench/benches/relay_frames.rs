//! The per-frame work of a call's relay, without the sockets: what the call actor does for
//! each Twilio media frame (parse, align to 20 ms, build `input_audio_buffer.append`), for
//! each model audio delta (parse, account for playback, build the Twilio `media` and its
//! `mark`), and for each mark Twilio echoes. The same functions the call actor calls
//! (`switchboard_twilio::media`, `switchboard_realtime::events`, `switchboard_voice::playback`).
//!
//! `cargo bench -p switchboard-bench --bench relay_frames`

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_twilio::media::{self, Inbound};
use switchboard_voice::playback::{Aligner, Playback};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const STREAM: &str = "MZ0123456789abcdef0123456789abcdef";

/// A Twilio `media` frame as Twilio sends it: 20 ms of mu-law.
fn twilio_frame(seq: u32) -> String {
    let audio: Vec<u8> = (0..160u32).map(|i| (i * 7 + seq) as u8).collect();
    serde_json::json!({"event": "media", "sequenceNumber": seq.to_string(), "streamSid": STREAM,
        "media": {"track": "inbound", "chunk": seq.to_string(), "timestamp": (seq * 20).to_string(),
        "payload": B64.encode(audio)}})
    .to_string()
}

/// A GA `response.output_audio.delta` with `ms` of audio.
fn model_delta(ms: usize) -> String {
    let audio: Vec<u8> = (0..ms * 8).map(|i| (i * 13) as u8).collect();
    serde_json::json!({"type": "response.output_audio.delta", "event_id": "event_abc123",
        "response_id": "resp_001", "item_id": "item_agent1", "output_index": 0, "content_index": 0,
        "delta": B64.encode(audio)})
    .to_string()
}

fn inbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("twilio media in -> model append out");
    g.throughput(Throughput::Elements(1));
    let frame = twilio_frame(42);
    let mut aligner = Aligner::default();
    g.bench_function("20 ms frame", |b| {
        b.iter(|| {
            let Ok(Inbound::Media { payload, .. }) = media::parse(black_box(&frame)) else {
                unreachable!("a media frame")
            };
            let Ok(Some((chunk, _))) = aligner.push(&payload) else {
                unreachable!("a whole frame")
            };
            black_box(rt::append_audio(&chunk))
        })
    });
    g.finish();
}

fn outbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("model delta out -> twilio media + mark");
    g.throughput(Throughput::Elements(1));
    for ms in [20usize, 150] {
        let delta = model_delta(ms);
        // One item's audio, delta after delta, as in a call.
        let mut playback = Playback::default();
        g.bench_function(format!("{ms} ms delta"), |b| {
            b.iter(|| {
                let Ok(ServerEvent::AudioDelta { item_id, delta }) = rt::parse(black_box(&delta))
                else {
                    unreachable!("an audio delta")
                };
                let Ok((Some(chunk), _)) = playback.audio(&item_id, &delta) else {
                    unreachable!("whole frames")
                };
                black_box((
                    media::media(STREAM, &chunk.payload),
                    media::mark(STREAM, &chunk.mark),
                ))
            })
        });
    }
    // The echo of each mark: parsed and accounted.
    let mut playback = Playback::default();
    let delta = B64.encode([0x7Fu8; 160]);
    let Ok((Some(chunk), _)) = playback.audio("item_agent1", &delta) else {
        unreachable!("a whole frame")
    };
    let echo = serde_json::json!({"event": "mark", "sequenceNumber": "9", "streamSid": STREAM,
        "mark": {"name": chunk.mark}})
    .to_string();
    g.bench_function("mark echo", |b| {
        b.iter(|| {
            let Ok(Inbound::Mark { name }) = media::parse(black_box(&echo)) else {
                unreachable!("a mark")
            };
            playback.mark(&name);
        })
    });
    g.finish();
}

criterion_group!(benches, inbound, outbound);
criterion_main!(benches);
