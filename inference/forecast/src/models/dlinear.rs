//! DLinear (neuralforecast/models/dlinear.py): moving-average decomposition,
//! one linear map for the trend and one for the remainder, summed.

use super::{require_no_exog, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, ForwardError};
use crate::nn::decomp::series_decomp;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// DLinear's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DLinearHparams {
    pub moving_avg_window: usize,
}

impl Default for DLinearHparams {
    fn default() -> Self {
        DLinearHparams {
            moving_avg_window: 25,
        }
    }
}

pub struct DLinear {
    trend: Linear,
    season: Linear,
    kernel: usize,
    h: usize,
    outputs: usize,
}

impl Model for DLinear {
    const CLASS: &'static str = "DLinear";
    type Hparams = DLinearHparams;
    type Net = DLinear;

    fn load(
        spec: &ModelSpec,
        hp: DLinearHparams,
        store: &TensorStore,
    ) -> Result<DLinear, BuildError> {
        require_no_exog(spec)?;
        let kernel = hp.moving_avg_window;
        if kernel.is_multiple_of(2) || kernel == 0 {
            return Err(invalid!("moving_avg_window {kernel} must be odd"));
        }
        let outputs = spec.n_outputs();
        let n_out = spec.h * outputs;
        Ok(DLinear {
            trend: Linear::load(store, "linear_trend", spec.input_size, n_out, true)?,
            season: Linear::load(store, "linear_season", spec.input_size, n_out, true)?,
            kernel,
            h: spec.h,
            outputs,
        })
    }
}

impl Forecaster for DLinear {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (season, trend) = series_decomp(batch.insample_y.view(), self.kernel);
        let y = self.trend.forward(trend.view())? + self.season.forward(season.view())?;
        to_horizon(y, self.h, self.outputs)
    }
}
