//! Date and frequency parsing and the future grid (pandas offsets).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nd_forecast::dates::{Freq, Stamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (freq, ds) = text.split_once('|').unwrap_or(("D", text));
    let stamp = Stamp::parse_str(ds);
    // Output ds are written %Y-%m-%dT%H:%M:%S (docs/contract.md), as the
    // Python service's strftime does: sub-second parts are not printed.
    if let (Ok(s), false) = (&stamp, ds.contains('.')) {
        let printed = s.to_string();
        assert_eq!(
            Stamp::parse_str(&printed).ok(),
            Some(*s),
            "{ds:?} printed as {printed:?}"
        );
    }
    let json = serde_json::Value::String(freq.to_string());
    let Ok(f) = Freq::from_json(&json) else {
        return;
    };
    let int_stamp = Stamp::Int(data.len() as i64 * 7919 - 1_000_000);
    let _ = f.horizon(int_stamp, 1 + data.len() % 48);
    if let Ok(s) = stamp {
        let _ = f.horizon(s, 1 + data.len() % 48);
    }
});
