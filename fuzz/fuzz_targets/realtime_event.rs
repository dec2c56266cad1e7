//! OpenAI Realtime server events, as the model session receives them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(event) = switchboard_realtime::events::parse(text) {
        // Every field of a parsed event is usable (Debug walks them all).
        let _ = format!("{event:?}");
    }
});
