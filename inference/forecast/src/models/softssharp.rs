use super::softs::{Softs, SoftsHparams};
use super::{BuildError, Model};
use crate::nn::stad::Stad;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use serde::Deserialize;

/// SOFTSSharp's hyperparameters: SOFTS's plus `pe_keep_prob`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SoftsSharpHparams {
    pub hidden_size: usize,
    pub d_core: usize,
    pub e_layers: usize,
    pub d_ff: usize,
    pub use_norm: bool,
    pub pe_keep_prob: f64,
}

impl Default for SoftsSharpHparams {
    fn default() -> Self {
        let s = SoftsHparams::default();
        SoftsSharpHparams {
            hidden_size: s.hidden_size,
            d_core: s.d_core,
            e_layers: s.e_layers,
            d_ff: s.d_ff,
            use_norm: s.use_norm,
            pe_keep_prob: 0.5,
        }
    }
}

pub struct SoftsSharp;

impl Model for SoftsSharp {
    const CLASS: &'static str = "SOFTSSharp";
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = SoftsSharpHparams;
    type Net = Softs;

    fn load(
        spec: &ModelSpec,
        hp: SoftsSharpHparams,
        store: &TensorStore,
    ) -> Result<Softs, BuildError> {
        let keep = hp.pe_keep_prob as f32;
        let softs = SoftsHparams {
            hidden_size: hp.hidden_size,
            d_core: hp.d_core,
            e_layers: hp.e_layers,
            d_ff: hp.d_ff,
            use_norm: hp.use_norm,
        };
        Softs::load_with(spec, &softs, store, |prefix, hidden, d_core, n_series| {
            Stad::load_sharp(store, prefix, hidden, d_core, n_series, keep)
        })
    }
}
