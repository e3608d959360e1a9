//! The filter's plugin configuration (JSON from the WasmPlugin / ECDS).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = wasm_filter::config::parse(data) {
        // A configuration that parses is usable: every weight in range.
        assert!(cfg.rust_weight_bp <= 10_000);
        assert!(cfg.shadow.share_bp <= 10_000);
    }
});
