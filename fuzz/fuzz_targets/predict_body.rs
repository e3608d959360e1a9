//! The /predict body: parse, validate and forecast, as the service does,
//! against a plain bundle and one with every kind of exogenous input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use std::path::Path;
use std::sync::OnceLock;

fn bundles() -> &'static Vec<Bundle> {
    static B: OnceLock<Vec<Bundle>> = OnceLock::new();
    B.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bundles");
        [
            "mlp_d_standard",
            "mlp_exog",
            "mlp_int_robust",
            "tsmixer_h_revin",
            "lstm_w_rec_mq",
        ]
        .iter()
        .map(|n| Bundle::load(&root.join(n)).expect("fixture bundle loads"))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = PredictRequest::from_slice(data) else {
        return;
    };
    for b in bundles() {
        // Bounded like the service: at most 1000 series per request.
        if let Ok(forecast) = pipeline::predict_with_limit(b, &request, 1000) {
            let _ = forecast.to_json(&b.name);
        }
    }
});
