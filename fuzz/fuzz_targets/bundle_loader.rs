//! The bundle loader: a model file's bytes (safetensors header, tensors,
//! metadata) or configuration.json's bytes come from the input, the other
//! file from a real bundle; a bundle that loads must then forecast or refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use std::path::Path;
use std::sync::OnceLock;

struct Seed {
    config: Vec<u8>,
    model: Vec<u8>,
}

fn seed() -> &'static Seed {
    static S: OnceLock<Seed> = OnceLock::new();
    S.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bundles/mlp_d_standard");
        Seed {
            config: std::fs::read(dir.join("configuration.json")).expect("fixture config"),
            model: std::fs::read(dir.join("MLP_0.safetensors")).expect("fixture model"),
        }
    })
}

const REQUEST: &[u8] = br#"{"df": [{"unique_id": "a", "ds": "2024-01-01", "y": 1.0},
 {"unique_id": "a", "ds": "2024-01-02", "y": 2.5}, {"unique_id": "b", "ds": "2024-01-02", "y": -3.0}]}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let s = seed();
    let files = if mode % 2 == 0 {
        vec![
            ("configuration.json".to_string(), s.config.clone()),
            ("MLP_0.safetensors".to_string(), rest.to_vec()),
        ]
    } else {
        vec![
            ("configuration.json".to_string(), rest.to_vec()),
            ("MLP_0.safetensors".to_string(), s.model.clone()),
        ]
    };
    if let Ok(bundle) = Bundle::from_bytes("fuzz", Path::new("/nonexistent"), files) {
        if let Ok(req) = PredictRequest::from_slice(REQUEST) {
            let _ = pipeline::predict(&bundle, &req);
        }
    }
});
