//! TSMixer (neuralforecast/models/tsmixer.py): one window [time, series],
//! optional RevIN per series, `n_block` time- and feature-mixing layers
//! (batch-normalised), a linear map from `input_size` to `h * outputs` per
//! series, RevIN undone.

use super::{
    check_series, insample_y, n_series, require_no_exog, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::ForwardError;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::linear::Linear;
use crate::nn::mixing::{Flavor, MixingLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// TSMixer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TsMixerHparams {
    pub n_block: usize,
    pub ff_dim: usize,
    pub revin: bool,
}

impl Default for TsMixerHparams {
    fn default() -> Self {
        TsMixerHparams {
            n_block: 2,
            ff_dim: 64,
            revin: true,
        }
    }
}

pub struct TsMixer {
    revin: Option<InstanceNorm>,
    mixing: Vec<MixingLayer>,
    out: Linear,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for TsMixer {
    const CLASS: &'static str = "TSMixer";
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = TsMixerHparams;
    type Net = TsMixer;

    fn load(
        spec: &ModelSpec,
        hp: TsMixerHparams,
        store: &TensorStore,
    ) -> Result<TsMixer, BuildError> {
        require_no_exog(spec)?;
        let n = n_series(spec)?;
        let n_block = hp.n_block;
        let ff_dim = hp.ff_dim;
        let l = spec.input_size;
        let revin = if hp.revin {
            Some(InstanceNorm::load_affine(store, "norm", n)?)
        } else {
            None
        };
        let mixing = (0..n_block)
            .map(|i| {
                MixingLayer::load(
                    store,
                    &format!("mixing_layers.{i}"),
                    Flavor::TsMixer,
                    l,
                    n,
                    ff_dim,
                    n,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = spec.n_outputs();
        Ok(TsMixer {
            revin,
            mixing,
            out: Linear::load(store, "out", l, spec.h * outputs, true)?,
            n_series: n,
            h: spec.h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for TsMixer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        check_series(batch, self.n_series)?;
        // [series, time] -> the window [time, series].
        let y = insample_y(batch, self.exclude_insample_y);
        let (mut x, stats) = normalized_window(self.revin.as_ref(), y.view())?;
        for layer in &self.mixing {
            x = layer.forward(x.view())?;
        }
        // Per series over time, then [h * outputs, series].
        let head = self.out.forward(x.t())?;
        let y = denormalized_output(self.revin.as_ref(), stats.as_ref(), head.view())?;
        series_rows(&y, self.h, self.n_series, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
