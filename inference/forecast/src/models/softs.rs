//! SOFTS (neuralforecast/models/softs.py): iTransformer's inverted tokens (one
//! per series: a Linear over its `input_size` steps, after an optional
//! per-series normalisation) mixed by encoder layers whose attention is STAD,
//! then a linear projector from each token to `h * outputs`.

use super::{
    check_series, insample_y, n_series, require_no_exog, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::ForwardError;
use crate::nn::activation::Activation;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::linear::Linear;
use crate::nn::stad::Stad;
use crate::nn::transformer::{TransEncoder, TransEncoderLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// SOFTS's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them; SOFTSSharp's
/// add `pe_keep_prob`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SoftsHparams {
    pub hidden_size: usize,
    pub d_core: usize,
    pub e_layers: usize,
    pub d_ff: usize,
    pub use_norm: bool,
}

impl Default for SoftsHparams {
    fn default() -> Self {
        SoftsHparams {
            hidden_size: 512,
            d_core: 512,
            e_layers: 2,
            d_ff: 2048,
            use_norm: true,
        }
    }
}

pub struct Softs {
    norm: Option<InstanceNorm>,
    embedding: Linear,
    encoder: TransEncoder<Stad>,
    projection: Linear,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for Softs {
    const CLASS: &'static str = "SOFTS";
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = SoftsHparams;
    type Net = Softs;

    fn load(spec: &ModelSpec, hp: SoftsHparams, store: &TensorStore) -> Result<Softs, BuildError> {
        Self::load_with(spec, &hp, store, |prefix, hidden, d_core, _| {
            Stad::load(store, prefix, hidden, d_core)
        })
    }
}

impl Softs {
    /// SOFTS with the STAD each encoder layer gets from `stad(prefix,
    /// hidden, d_core, n_series)` (SOFTSSharp passes its own).
    pub fn load_with(
        spec: &ModelSpec,
        hp: &SoftsHparams,
        store: &TensorStore,
        stad: impl Fn(&str, usize, usize, usize) -> Result<Stad, BuildError>,
    ) -> Result<Softs, BuildError> {
        require_no_exog(spec)?;
        let n = n_series(spec)?;
        let (hidden, d_core, e_layers, d_ff) = (hp.hidden_size, hp.d_core, hp.e_layers, hp.d_ff);
        let (h, outputs) = (spec.h, spec.n_outputs());
        let encoder = TransEncoder::load(store, "encoder", e_layers, false, |prefix| {
            let stad = stad(&format!("{prefix}.attention"), hidden, d_core, n)?;
            TransEncoderLayer::with_mixer(store, prefix, stad, hidden, d_ff, Activation::GELU)
        })?;
        Ok(Softs {
            norm: InstanceNorm::use_norm(hp.use_norm),
            embedding: Linear::load(
                store,
                "enc_embedding.value_embedding",
                spec.input_size,
                hidden,
                true,
            )?,
            encoder,
            projection: Linear::load(store, "projection", hidden, h * outputs, true)?,
            n_series: n,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for Softs {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        // The window [time, series], normalised per series.
        let y = insample_y(batch, self.exclude_insample_y);
        let (x, stats) = normalized_window(self.norm.as_ref(), y.view())?;
        let tokens = self.embedding.forward(x.t())?;
        let encoded = self.encoder.forward(tokens.view())?;
        // [series, h * outputs] -> [h * outputs, series].
        let head = self.projection.forward(encoded.view())?;
        let y = denormalized_output(self.norm.as_ref(), stats.as_ref(), head.view())?;
        series_rows(&y, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
