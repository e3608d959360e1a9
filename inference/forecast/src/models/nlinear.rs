//! NLinear (neuralforecast/models/nlinear.py): subtract the last value, one
//! linear map to the horizon, add it back.

use super::{require_no_exog, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::ForwardError;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array3, Axis};
use serde::Deserialize;

/// NLinear takes no hyperparameters of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NLinearHparams {}

pub struct NLinear {
    linear: Linear,
    h: usize,
    outputs: usize,
}

impl Model for NLinear {
    const CLASS: &'static str = "NLinear";
    type Hparams = NLinearHparams;
    type Net = NLinear;

    fn load(
        spec: &ModelSpec,
        _hp: NLinearHparams,
        store: &TensorStore,
    ) -> Result<NLinear, BuildError> {
        require_no_exog(spec)?;
        let outputs = spec.n_outputs();
        Ok(NLinear {
            linear: Linear::load(store, "linear", spec.input_size, spec.h * outputs, true)?,
            h: spec.h,
            outputs,
        })
    }
}

impl Forecaster for NLinear {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let x = &batch.insample_y;
        let last = x.column(x.ncols() - 1).to_owned().insert_axis(Axis(1));
        let norm = x - &last;
        let y = self.linear.forward(norm.view())? + &last;
        to_horizon(y, self.h, self.outputs)
    }
}
