//! DLinear (neuralforecast/models/dlinear.py): moving-average decomposition,
//! one linear map for the trend and one for the remainder, summed.

use super::{require_no_exog, to_horizon, BuildError, Forecaster, WindowBatch};
use crate::nn::decomp::series_decomp;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;

pub struct DLinear {
    trend: Linear,
    season: Linear,
    kernel: usize,
    h: usize,
    outputs: usize,
}

impl DLinear {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<DLinear, BuildError> {
        require_no_exog(spec)?;
        let kernel = spec.usize_param("moving_avg_window", 25)?;
        if kernel % 2 == 0 || kernel == 0 {
            return Err(BuildError::Invalid(format!(
                "moving_avg_window {kernel} must be odd"
            )));
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
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        let (season, trend) = series_decomp(batch.insample_y.view(), self.kernel);
        let y = self.trend.forward(trend.view())? + self.season.forward(season.view())?;
        to_horizon(y, self.h, self.outputs)
    }
}
