//! NBEATS (neuralforecast/models/nbeats.py): identity, trend and seasonality
//! stacks of MLP blocks in a doubly residual stack over the reversed window.
//! Trend and seasonality bases are read from the file, so every `basis` type
//! and any `n_basis`/`n_harmonics` is served as trained. NeuralForecast 3.3.0
//! refuses `dropout_prob_theta > 0` for NBEATS (NotImplementedError).

use super::{require_no_exog, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::ForwardError;
use crate::nn::block_mlp::BlockMlpConfig;
use crate::nn::residual_stack::{nbeats_stack, ResidualStack};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// NBEATS's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NBeatsHparams {
    pub stack_types: Vec<String>,
    pub n_blocks: Vec<usize>,
    pub mlp_units: Vec<Vec<usize>>,
    pub activation: String,
    pub dropout_prob_theta: f64,
    pub shared_weights: bool,
}

impl Default for NBeatsHparams {
    fn default() -> Self {
        NBeatsHparams {
            stack_types: ["identity", "trend", "seasonality"]
                .map(String::from)
                .to_vec(),
            n_blocks: vec![1, 1, 1],
            mlp_units: vec![vec![512, 512]; 3],
            activation: "ReLU".into(),
            dropout_prob_theta: 0.0,
            shared_weights: false,
        }
    }
}

impl NBeatsHparams {
    /// The doubly residual stack these hyperparameters describe, read from
    /// the file (NBEATS's, and NBEATSx's with its exogenous inputs).
    pub(super) fn stack(
        &self,
        spec: &ModelSpec,
        store: &TensorStore,
    ) -> Result<NBeats, BuildError> {
        Ok(NBeats {
            stack: nbeats_stack(
                spec,
                store,
                &BlockMlpConfig::new(&self.mlp_units, &self.activation, self.dropout_prob_theta)?,
                &self.stack_types,
                &self.n_blocks,
                self.shared_weights,
            )?,
        })
    }
}

/// The forward pass of NBEATS and NBEATSx: the stack over the window.
pub struct NBeats {
    stack: ResidualStack,
}

impl Model for NBeats {
    const CLASS: &'static str = "NBEATS";
    const NON_ARCHITECTURE: &'static [&'static str] =
        &["basis", "n_basis", "n_harmonics", "n_polynomials"];
    type Hparams = NBeatsHparams;
    type Net = NBeats;

    fn load(
        spec: &ModelSpec,
        hp: NBeatsHparams,
        store: &TensorStore,
    ) -> Result<NBeats, BuildError> {
        require_no_exog(spec)?;
        hp.stack(spec, store)
    }
}

impl Forecaster for NBeats {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.stack.forward(batch)
    }
}
