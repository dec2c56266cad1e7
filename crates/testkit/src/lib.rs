//! Test doubles that speak the real wire protocols, for the voice tests and the load
//! generator: a scriptable chat-completions server, a scriptable OpenAI Realtime server, a Twilio Media Streams client that plays
//! speech fixtures and paces playback like Twilio, and a Twilio REST API that records calls.
#![allow(clippy::unwrap_used)]

pub mod bad_mcp;
pub mod browser;
pub mod chat;
pub mod fixtures;
pub mod multipart;
pub mod oauth_mcp;
pub mod pdf;
pub mod process;
pub mod realtime;
pub mod realtime_burst;
mod realtime_script;
pub mod recorder;
pub mod retell;
pub mod smtp;
pub mod speech;
pub mod tool_endpoint;
pub mod twilio;
mod twilio_calls;
mod twilio_dial;
mod twilio_numbers;
mod twilio_recordings;
mod twilio_rest;
pub mod webhooks;

/// Sends the server's logs to the test's captured output when `RUST_LOG` is set (for
/// example `RUST_LOG=switchboard_voice=debug`), so a failing test shows what the server did.
/// Safe to call from every test; only the first call installs the subscriber.
pub fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Polls `check` until it yields a value and returns it, or panics after `limit` naming
/// `what`: the one way tests wait for observable state (never a sleep as synchronization).
pub async fn eventually<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Decodes one G.711 mu-law byte to 16-bit linear PCM.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Whether a 20 ms mu-law frame holds speech (mean absolute amplitude above a threshold).
pub fn is_speech(frame: &[u8]) -> bool {
    if frame.is_empty() {
        return false;
    }
    let sum: i64 = frame
        .iter()
        .map(|b| i64::from(ulaw_to_linear(*b)).abs())
        .sum();
    sum / frame.len() as i64 > 400
}

/// A fixed-offset zone (`Etc/GMT...`, no daylight saving) where the local hour is now `hour`,
/// so a calling window can be made open or closed whatever time the test runs.
pub fn zone_where_it_is(hour: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let utc = i64::try_from(secs / 3600 % 24).unwrap_or(0);
    let mut offset = hour - utc;
    if offset > 14 {
        offset -= 24;
    }
    if offset < -12 {
        offset += 24;
    }
    // POSIX-style names: Etc/GMT-10 is ten hours ahead of UTC.
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
