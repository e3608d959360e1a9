//! NHITS (neuralforecast/models/nhits.py): NBEATS-style identity blocks that
//! first pool the reversed residual and the exog along time
//! (`pooling_mode`, kernel = stride = `n_pool_kernel_size`, ceil_mode), and
//! predict `h // n_freq_downsample` knots per output that are interpolated
//! to the horizon (`interpolation_mode`: linear, nearest, cubic).

use super::{BuildError, Forecaster, WindowBatch};
use crate::nn::basis::Basis;
use crate::nn::block_mlp::{BlockMlp, BlockMlpConfig};
use crate::nn::interpolate::{InterpMode, Resize};
use crate::nn::pooling::{Pool1d, PoolKind};
use crate::nn::residual_stack::{str_list, usize_list, Block, ResidualStack};
use crate::spec::ExogWidths;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;

pub struct NHits {
    stack: ResidualStack,
}

impl NHits {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<NHits, BuildError> {
        let cfg = BlockMlpConfig::from_spec(spec)?;
        let stack_types = str_list(spec, "stack_types", &["identity"; 3])?;
        let n_blocks = usize_list(spec, "n_blocks", &[1, 1, 1])?;
        let kernels = usize_list(spec, "n_pool_kernel_size", &[2, 2, 1])?;
        let downsample = usize_list(spec, "n_freq_downsample", &[4, 2, 1])?;
        let n = stack_types.len();
        if [n_blocks.len(), kernels.len(), downsample.len()] != [n; 3] {
            return Err(BuildError::Invalid(
                "stack_types, n_blocks, n_pool_kernel_size and n_freq_downsample differ in length"
                    .into(),
            ));
        }
        if let Some(t) = stack_types.iter().find(|t| *t != "identity") {
            return Err(BuildError::Invalid(format!(
                "NHITS stack type '{t}' is not identity"
            )));
        }
        let pooling = PoolKind::parse(spec.str_param("pooling_mode", "MaxPool1d")?)?;
        let mode = InterpMode::parse(spec.str_param("interpolation_mode", "linear")?)?;
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
                return Err(BuildError::Invalid(
                    "n_freq_downsample must be positive".into(),
                ));
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
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        self.stack.forward(batch)
    }
}
