//! Piper voices through ONNX Runtime, for real: the library loaded at run time, espeak-ng's
//! phonemes, the voice's id map, the model run, the audio resampled to the phone. It needs
//! ONNX Runtime and a voice; `.ci/install-offline` provides both (the voice is a stand-in
//! that speaks a tone, 256 samples per phoneme id) and prints the two settings this test
//! reads. Without them it says so and checks nothing.

use std::path::PathBuf;
use std::sync::Arc;
use switchboard_cascade::audio::ulaw_to_pcm;
use switchboard_cascade::offline::{Local, OfflineConfig};

fn local() -> Option<Arc<Local>> {
    let lib = std::env::var_os("SWITCHBOARD_TEST_ONNXRUNTIME")?;
    let voices = std::env::var_os("SWITCHBOARD_TEST_PIPER_VOICES")?;
    Some(Arc::new(Local::new(OfflineConfig {
        onnxruntime: Some(PathBuf::from(lib)),
        piper_voices: Some(PathBuf::from(voices)),
        threads: 1,
        ..OfflineConfig::default()
    })))
}

const SKIPPED: &str = "SWITCHBOARD_TEST_ONNXRUNTIME and SWITCHBOARD_TEST_PIPER_VOICES are not set (.ci/install-offline prints them): Piper not checked";

#[tokio::test]
async fn a_piper_voice_speaks_through_onnx_runtime() {
    let Some(local) = local() else {
        eprintln!("{SKIPPED}");
        return;
    };
    assert_eq!(local.has_voice("standin"), Some(true));
    let short = local
        .synthesize("standin".into(), "Hello.".into())
        .await
        .expect("speaks");
    let long = local
        .synthesize(
            "standin".into(),
            "Hello, I would like to book an appointment for Monday at ten.".into(),
        )
        .await
        .expect("speaks");
    // More phonemes, more ids, more audio: the ids reached the model.
    assert!(
        long.len() > short.len() * 4,
        "{} vs {}",
        long.len(),
        short.len()
    );
    // 256 samples at 22050 Hz per id, resampled to 8 kHz: about 93 bytes of mu-law per id,
    // and a sentence of this length has 40 to 70 phonemes (each with a pad, plus ^ _ $).
    let ids = long.len() / 93;
    assert!((80..=150).contains(&ids), "{ids} ids");
    // The tone survived resampling: a 400 Hz sine crosses zero 800 times a second.
    let pcm: Vec<i16> = long.iter().map(|u| ulaw_to_pcm(*u)).collect();
    let mid = &pcm[800..pcm.len() - 800];
    let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let per_second = crossings * 8_000 / mid.len();
    assert!(
        (760..=840).contains(&per_second),
        "{per_second} crossings a second"
    );
    // doctor's view: the voice loads and speaks.
    let checks = local.check();
    assert!(
        checks
            .iter()
            .any(|(what, r)| what == "piper voice standin" && r.is_ok()),
        "{checks:?}"
    );
}

#[tokio::test]
async fn unknown_voices_and_missing_files_are_clear_errors() {
    let Some(local) = local() else {
        eprintln!("{SKIPPED}");
        return;
    };
    assert_eq!(local.has_voice("en_US-nobody-medium"), Some(false));
    let err = local
        .synthesize("en_US-nobody-medium".into(), "Hello.".into())
        .await
        .expect_err("no such voice");
    assert!(
        err.contains("no Piper voice `en_US-nobody-medium`"),
        "{err}"
    );
    let err = local
        .synthesize("../standin".into(), "Hello.".into())
        .await
        .expect_err("not a name");
    assert!(err.contains("not a Piper voice name"), "{err}");
    let missing = Local::new(OfflineConfig::default());
    assert_eq!(missing.has_voice("standin"), None);
}
