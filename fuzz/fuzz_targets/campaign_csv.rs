//! The recipients CSV of `POST /api/v1/campaigns` (and the dashboard's upload).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::campaign::recipients_from_csv;

fuzz_target!(|data: &[u8]| {
    // The API takes the CSV as a JSON string, so it is always UTF-8 by then.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rows) = recipients_from_csv(text) {
        let _ = format!("{rows:?}");
    }
});
