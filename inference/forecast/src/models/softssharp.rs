//! SOFTSSharp (neuralforecast/models/softssharp.py, "SOFTS#"): SOFTS whose
//! STAD modules add a sinusoidal variable-position encoding to the series
//! tokens. Training adds it with probability `pe_keep_prob`; prediction (what
//! is served) always adds it scaled by `pe_keep_prob * pe_scale`, the
//! learned scale. Its extra dropouts are identities at prediction.

use super::softs::Softs;
use super::BuildError;
use crate::nn::stad::Stad;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<Softs, BuildError> {
    let keep = spec.f64_param("pe_keep_prob", 0.5)? as f32;
    Softs::load_with(spec, store, |prefix, hidden, d_core, n_series| {
        Stad::load_sharp(store, prefix, hidden, d_core, n_series, keep)
    })
}
