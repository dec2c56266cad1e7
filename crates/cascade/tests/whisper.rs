//! whisper.cpp in this process (`--features whisper`). A file that is not a model is refused
//! with a clear error; with a real model (SWITCHBOARD_TEST_WHISPER_MODEL, e.g.
//! ggml-tiny.en.bin: see the README's offline mode) the caller fixture is transcribed.
#![cfg(feature = "whisper")]

use std::sync::Arc;
use switchboard_cascade::offline::{Local, OfflineConfig};

/// The caller fixture, read from the test kit's files (this crate does not depend on it).
const CALLER: &[u8] = include_bytes!("../../testkit/fixtures/caller_booking.ulaw");

#[tokio::test]
async fn a_file_that_is_not_a_model_is_refused_clearly() {
    let path = std::env::temp_dir().join(format!("not-a-model-{}.bin", std::process::id()));
    std::fs::write(&path, b"this is not a ggml model").expect("write");
    let local = Arc::new(Local::new(OfflineConfig {
        whisper_model: Some(path.clone()),
        threads: 1,
        ..OfflineConfig::default()
    }));
    let err = local
        .transcribe(CALLER.to_vec(), Some("en".into()))
        .await
        .expect_err("not a model");
    assert!(err.contains("whisper cannot load"), "{err}");
    let checks = local.check();
    assert!(checks[0].1.is_err(), "{checks:?}");
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_real_model_transcribes_the_caller() {
    let Some(model) = std::env::var_os("SWITCHBOARD_TEST_WHISPER_MODEL") else {
        eprintln!("SWITCHBOARD_TEST_WHISPER_MODEL is not set: whisper's transcription not checked");
        return;
    };
    let local = Arc::new(Local::new(OfflineConfig {
        whisper_model: Some(model.into()),
        ..OfflineConfig::default()
    }));
    let words = local
        .transcribe(CALLER.to_vec(), Some("en".into()))
        .await
        .expect("transcribes")
        .to_lowercase();
    assert!(
        words.contains("appointment") && words.contains("monday"),
        "{words}"
    );
}
