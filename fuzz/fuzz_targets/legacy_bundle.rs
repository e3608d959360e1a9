//! Bundles written before NeuralForecast 3.3: the non-executing pickle
//! reader on raw bytes, then a whole bundle whose `configuration.pkl` or
//! `.ckpt` (zip + data.pkl + storages) comes from the input, the other file
//! from a real legacy fixture; a bundle that loads must forecast or refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nd_forecast::bundle::{pickle, Bundle};
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use std::path::Path;
use std::sync::OnceLock;

/// A fixture bundle written by NeuralForecast 3.2 (tests/fixtures/legacy).
const BUNDLE: &str = "v32_mlp";
const CKPT: &str = "MLP_0.ckpt";

struct Seed {
    config: Vec<u8>,
    aliases: Vec<u8>,
    model: Vec<u8>,
}

fn seed() -> &'static Seed {
    static S: OnceLock<Seed> = OnceLock::new();
    S.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/legacy/bundles")
            .join(BUNDLE);
        let read = |f: &str| std::fs::read(dir.join(f)).expect("legacy fixture file");
        Seed {
            config: read("configuration.pkl"),
            aliases: read("alias_to_model.pkl"),
            model: read(CKPT),
        }
    })
}

const REQUEST: &[u8] = br#"{"df": [{"unique_id": "a", "ds": "2024-01-31", "y": 1.0},
 {"unique_id": "a", "ds": "2024-02-29", "y": 2.5}, {"unique_id": "b", "ds": "2024-02-29", "y": -3.0}]}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 3 == 0 {
        let _ = pickle::read(rest, mode & 0x80 != 0);
        return;
    }
    let s = seed();
    let (config, model) = if mode % 3 == 1 {
        (rest.to_vec(), s.model.clone())
    } else {
        (s.config.clone(), rest.to_vec())
    };
    let files = vec![
        ("configuration.pkl".to_string(), config),
        ("alias_to_model.pkl".to_string(), s.aliases.clone()),
        (CKPT.to_string(), model),
    ];
    if let Ok(bundle) = Bundle::from_bytes("fuzz", Path::new("/nonexistent"), files) {
        if let Ok(req) = PredictRequest::from_slice(REQUEST) {
            let _ = pipeline::predict(&bundle, &req);
        }
    }
});
