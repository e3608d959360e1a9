//! NBEATSx (neuralforecast/models/nbeatsx.py): NBEATS whose blocks also read
//! the hist/futr/static exogenous inputs (flattened after the residual), plus
//! the 'exogenous' stack, which projects theta on the futr exog and the
//! statics repeated over the window. Its forecast has one output, added to
//! every quantile of a multi-quantile loss.

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::ForwardError;
use crate::nn::block_mlp::BlockMlpConfig;
use crate::nn::residual_stack::{nbeats_stack, ResidualStack};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// NBEATSx's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NBeatsXHparams {
    pub stack_types: Vec<String>,
    pub n_blocks: Vec<usize>,
    pub mlp_units: Vec<Vec<usize>>,
    pub activation: String,
    pub dropout_prob_theta: f64,
    pub shared_weights: bool,
}

impl Default for NBeatsXHparams {
    fn default() -> Self {
        NBeatsXHparams {
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

pub struct NBeatsX {
    stack: ResidualStack,
}

impl Model for NBeatsX {
    const CLASS: &'static str = "NBEATSx";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["n_harmonics", "n_polynomials"];
    type Hparams = NBeatsXHparams;
    type Net = NBeatsX;

    fn load(
        spec: &ModelSpec,
        hp: NBeatsXHparams,
        store: &TensorStore,
    ) -> Result<NBeatsX, BuildError> {
        if hp.stack_types.iter().any(|t| t == "exogenous")
            && spec.futr_exog.is_empty()
            && spec.stat_exog.is_empty()
        {
            // NeuralForecast builds no exogenous basis then (it reuses whatever
            // the previous stack left behind, or fails).
            return Err(BuildError::Unsupported(
                "NBEATSx 'exogenous' stack without futr or static exogenous variables".into(),
            ));
        }
        Ok(NBeatsX {
            stack: nbeats_stack(
                spec,
                store,
                &BlockMlpConfig::new(&hp.mlp_units, &hp.activation, hp.dropout_prob_theta)?,
                &hp.stack_types,
                &hp.n_blocks,
                hp.shared_weights,
            )?,
        })
    }
}

impl Forecaster for NBeatsX {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.stack.forward(batch)
    }
}
