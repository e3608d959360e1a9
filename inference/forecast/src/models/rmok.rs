//! RMoK (neuralforecast/models/rmok.py): the window RevIN-normalised per
//! series, then each series' `input_size` steps go through four experts
//! (Taylor, Jacobi and wavelet KAN layers, a Linear) whose `h * outputs`
//! forecasts are mixed by a softmax gate; RevIN undone.

use super::{
    check_series, insample_y, n_series, require_no_exog, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{shape, ForwardError};
use crate::nn::attention::softmax_inplace;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::kan::{JacobiKan, TaylorKan, WaveKan, Wavelet};
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// RMoK's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RMoKHparams {
    pub wavelet_function: String,
    pub revin_affine: bool,
    pub taylor_order: usize,
    pub jacobi_degree: usize,
}

impl Default for RMoKHparams {
    fn default() -> Self {
        RMoKHparams {
            wavelet_function: "mexican_hat".into(),
            revin_affine: true,
            taylor_order: 3,
            jacobi_degree: 6,
        }
    }
}

pub struct RMoK {
    rev: InstanceNorm,
    taylor: TaylorKan,
    jacobi: JacobiKan,
    wave: WaveKan,
    linear: Linear,
    gate: Linear,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for RMoK {
    const CLASS: &'static str = "RMoK";
    /// `revine_affine`: 1.x's and 2.x's spelling of `revin_affine`, which the
    /// legacy reader copies over (`bundle::format_v1`).
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout", "revine_affine"];
    type Hparams = RMoKHparams;
    type Net = RMoK;

    fn load(spec: &ModelSpec, hp: RMoKHparams, store: &TensorStore) -> Result<RMoK, BuildError> {
        require_no_exog(spec)?;
        let n = n_series(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let out = h * outputs;
        let wavelet = Wavelet::parse(hp.wavelet_function.as_str())?;
        Ok(RMoK {
            rev: if hp.revin_affine {
                InstanceNorm::load_affine(store, "rev", n)?
            } else {
                InstanceNorm::plain()
            },
            taylor: TaylorKan::load(store, "experts.0", l, out, hp.taylor_order, true)?,
            jacobi: JacobiKan::load(store, "experts.1", l, out, hp.jacobi_degree)?,
            wave: WaveKan::load(store, "experts.2", l, out, wavelet, true)?,
            linear: Linear::load(store, "experts.3", l, out, true)?,
            gate: Linear::load(store, "gate", l, 4, true)?,
            n_series: n,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for RMoK {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        // RevIN on the window [time, series]; the experts read each series' row.
        let y = insample_y(batch, self.exclude_insample_y);
        let (w, stats) = normalized_window(Some(&self.rev), y.view())?;
        let x = w.t();
        let mut score = self.gate.forward(x)?;
        for mut row in score.rows_mut() {
            softmax_inplace(
                row.as_slice_mut()
                    .ok_or_else(|| shape!("gate scores are not contiguous"))?,
            );
        }
        let experts = [
            self.taylor.forward(x)?,
            self.jacobi.forward(x)?,
            self.wave.forward(x)?,
            self.linear.forward(x)?,
        ];
        // [series, h * outputs] = Σ_e expert_e · score_e, then [h * outputs, series].
        let mut y = experts[0].clone();
        for ((s, j), v) in y.indexed_iter_mut() {
            *v = experts
                .iter()
                .enumerate()
                .fold(0f32, |acc, (e, out)| acc + out[[s, j]] * score[[s, e]]);
        }
        let y = denormalized_output(Some(&self.rev), stats.as_ref(), y.view())?;
        series_rows(&y, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
