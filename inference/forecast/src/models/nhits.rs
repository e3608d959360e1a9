//! NHITS (neuralforecast/models/nhits.py): NBEATS-style identity blocks that
//! first pool the reversed residual and the exog along time
//! (`pooling_mode`, kernel = stride = `n_pool_kernel_size`, ceil_mode), and
//! predict `h // n_freq_downsample` knots per output that are interpolated
//! to the horizon (`interpolation_mode`: linear, nearest, cubic).

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, ForwardError};
use crate::nn::basis::Basis;
use crate::nn::block_mlp::{BlockMlp, BlockMlpConfig};
use crate::nn::interpolate::{InterpMode, Resize};
use crate::nn::pooling::{Pool1d, PoolKind};
use crate::nn::residual_stack::{Block, ResidualStack};
use crate::spec::ExogWidths;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// NHITS's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NHitsHparams {
    pub stack_types: Vec<String>,
    pub n_blocks: Vec<usize>,
    pub n_pool_kernel_size: Vec<usize>,
    pub n_freq_downsample: Vec<usize>,
    pub mlp_units: Vec<Vec<usize>>,
    pub activation: String,
    pub dropout_prob_theta: f64,
    pub pooling_mode: String,
    pub interpolation_mode: String,
}

impl Default for NHitsHparams {
    fn default() -> Self {
        NHitsHparams {
            stack_types: vec!["identity".into(); 3],
            n_blocks: vec![1, 1, 1],
            n_pool_kernel_size: vec![2, 2, 1],
            n_freq_downsample: vec![4, 2, 1],
            mlp_units: vec![vec![512, 512]; 3],
            activation: "ReLU".into(),
            dropout_prob_theta: 0.0,
            pooling_mode: "MaxPool1d".into(),
            interpolation_mode: "linear".into(),
        }
    }
}

pub struct NHits {
    stack: ResidualStack,
}

impl Model for NHits {
    const CLASS: &'static str = "NHITS";
    const CATEGORICAL: bool = true;
    type Hparams = NHitsHparams;
    type Net = NHits;

    fn load(spec: &ModelSpec, hp: NHitsHparams, store: &TensorStore) -> Result<NHits, BuildError> {
        let cfg = BlockMlpConfig::new(&hp.mlp_units, &hp.activation, hp.dropout_prob_theta)?;
        let stack_types = &hp.stack_types;
        let n_blocks = &hp.n_blocks;
        let kernels = &hp.n_pool_kernel_size;
        let downsample = &hp.n_freq_downsample;
        let n = stack_types.len();
        if [n_blocks.len(), kernels.len(), downsample.len()] != [n; 3] {
            return Err(invalid!(
                "stack_types, n_blocks, n_pool_kernel_size and n_freq_downsample differ in length"
            ));
        }
        if let Some(t) = stack_types.iter().find(|t| *t != "identity") {
            return Err(invalid!("NHITS stack type '{t}' is not identity"));
        }
        let pooling = PoolKind::parse(hp.pooling_mode.as_str())?;
        let mode = InterpMode::parse(hp.interpolation_mode.as_str())?;
        let outputs = spec.n_outputs();
        if mode == InterpMode::Cubic && outputs > 1 {
            return Err(BuildError::Unsupported(
                "NHITS cubic interpolation with a multi-output loss (NeuralForecast raises too)"
                    .into(),
            ));
        }
        let (l, h) = (spec.input_size, spec.h);
        let exog = ExogWidths::of(spec);
        let mut blocks = Vec::new();
        for i in 0..n {
            if downsample[i] == 0 {
                return Err(invalid!("n_freq_downsample must be positive"));
            }
            let pool = Pool1d::new(pooling, kernels[i], kernels[i], true)?;
            let in_features = exog.block_input(pool.out_len(l)?, pool.out_len(l + h)?);
            let knots = (h / downsample[i]).max(1);
            for _ in 0..n_blocks[i] {
                let basis = Basis::Interpolated {
                    input_size: l,
                    knots,
                    outputs,
                    resize: Resize::new(mode, knots, h)?,
                };
                let mlp = BlockMlp::load(
                    store,
                    &format!("blocks.{}.layers", blocks.len()),
                    &cfg,
                    in_features,
                    basis.n_theta(),
                )?;
                blocks.push(Block {
                    pool: Some(pool),
                    mlp,
                    basis,
                });
            }
        }
        let order = (0..blocks.len()).collect();
        Ok(NHits {
            stack: ResidualStack::new(blocks, order, spec)?,
        })
    }
}

impl Forecaster for NHits {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.stack.forward(batch)
    }
}
