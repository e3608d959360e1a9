//! iTransformer (neuralforecast/models/itransformer.py): each series of the
//! window is one token (`DataEmbedding_inverted`: a Linear over its
//! `input_size` steps, after an optional per-series normalisation), each
//! (series, futr exog) pair over `input_size + h` steps another; a
//! Transformer encoder (GELU feed-forward, final LayerNorm) mixes the tokens
//! and a linear projector maps each series token to `h * outputs`.

use super::{
    channels_first, check_series, insample_y, n_series, require_futr_exog_only, series_rows,
    BuildError, Forecaster, Layout, Model, WindowBatch,
};
use crate::forecaster::{shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::linear::Linear;
use crate::nn::transformer::{TransEncoder, TransEncoderLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, Axis, Slice};
use serde::Deserialize;

/// iTransformer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ITransformerHparams {
    pub use_norm: bool,
    pub hidden_size: usize,
    pub n_heads: usize,
    pub e_layers: usize,
    pub d_ff: usize,
}

impl Default for ITransformerHparams {
    fn default() -> Self {
        ITransformerHparams {
            use_norm: true,
            hidden_size: 512,
            n_heads: 8,
            e_layers: 2,
            d_ff: 2048,
        }
    }
}

pub struct ITransformer {
    norm: Option<InstanceNorm>,
    embedding: Linear,
    futr_embedding: Option<Linear>,
    encoder: TransEncoder,
    projector: Linear,
    n_series: usize,
    input_size: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for ITransformer {
    const CLASS: &'static str = "iTransformer";
    const NON_ARCHITECTURE: &'static [&'static str] = &["d_layers", "dropout", "factor"];
    type Hparams = ITransformerHparams;
    type Net = ITransformer;

    fn load(
        spec: &ModelSpec,
        hp: ITransformerHparams,
        store: &TensorStore,
    ) -> Result<ITransformer, BuildError> {
        require_futr_exog_only(spec)?;
        let n = n_series(spec)?;
        let hidden = hp.hidden_size;
        let heads = hp.n_heads;
        let e_layers = hp.e_layers;
        let d_ff = hp.d_ff;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let encoder = TransEncoder::load(store, "encoder", e_layers, true, |prefix| {
            TransEncoderLayer::load(store, prefix, hidden, heads, d_ff, Activation::GELU)
        })?;
        Ok(ITransformer {
            norm: InstanceNorm::use_norm(hp.use_norm),
            embedding: Linear::load(store, "enc_embedding.value_embedding", l, hidden, true)?,
            futr_embedding: (!spec.futr_exog.is_empty())
                .then(|| Linear::load(store, "futr_embedding", l + h, hidden, true))
                .transpose()?,
            encoder,
            projector: Linear::load(store, "projector", hidden, h * outputs, true)?,
            n_series: n,
            input_size: l,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for ITransformer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        // The window [time, series], normalised per series.
        let y = insample_y(batch, self.exclude_insample_y);
        let (x, stats) = normalized_window(self.norm.as_ref(), y.view())?;
        let mut tokens = self.embedding.forward(x.t())?;
        if let Some(embed) = &self.futr_embedding {
            let fx = batch
                .futr_exog
                .as_ref()
                .ok_or_else(|| shape!("iTransformer needs futr_exog"))?;
            // [F, L + h, N] -> one token per (series, channel), series-major.
            let fx = channels_first(fx, n)?;
            let (nf, t, _) = fx.dim();
            if t != self.input_size + self.h {
                return Err(shape!(
                    "futr_exog has {t} steps, not {}",
                    self.input_size + self.h
                ));
            }
            let rows = Array2::from_shape_fn((n * nf, t), |(k, s)| fx[[k % nf, s, k / nf]]);
            let futr_tokens = embed.forward(rows.view())?;
            tokens = ndarray::concatenate(Axis(0), &[tokens.view(), futr_tokens.view()])
                .map_err(|e| ForwardError::array("iTransformer tokens do not concatenate", e))?;
        }
        let encoded = self.encoder.forward(tokens.view())?;
        // Series tokens -> [h * outputs, series].
        let head = self
            .projector
            .forward(encoded.slice_axis(Axis(0), Slice::from(..n)))?;
        let y = denormalized_output(self.norm.as_ref(), stats.as_ref(), head.view())?;
        series_rows(&y, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
