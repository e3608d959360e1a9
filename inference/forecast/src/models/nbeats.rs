//! NBEATS (neuralforecast/models/nbeats.py): identity, trend and seasonality
//! stacks of MLP blocks in a doubly residual stack over the reversed window.
//! Trend and seasonality bases are read from the file, so every `basis` type
//! and any `n_basis`/`n_harmonics` is served as trained. NeuralForecast 3.3.0
//! refuses `dropout_prob_theta > 0` for NBEATS (NotImplementedError).

use super::{require_no_exog, BuildError, Forecaster, WindowBatch};
use crate::nn::residual_stack::{nbeats_stack, ResidualStack};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;

pub struct NBeats {
    stack: ResidualStack,
}

impl NBeats {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<NBeats, BuildError> {
        require_no_exog(spec)?;
        Ok(NBeats {
            stack: nbeats_stack(spec, store)?,
        })
    }
}

impl Forecaster for NBeats {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        self.stack.forward(batch)
    }
}
