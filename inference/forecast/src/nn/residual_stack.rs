//! The doubly residual stack NBEATS, NBEATSx and NHITS share: the window is
//! reversed in time, each block reads the residual (optionally pooled, NHITS)
//! with the exogenous inputs, subtracts its backcast and adds its forecast to
//! a running forecast that starts at the last observed value (Naive1).

use super::basis::Basis;
use super::block_mlp::{BlockMlp, BlockMlpConfig};
use super::pooling::Pool1d;
use crate::forecaster::{insample_y, invalid, shape, BuildError, ForwardError, WindowBatch};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Slice};

use crate::spec::ExogWidths;

impl ExogWidths {
    /// Width of a block's MLP input: the (pooled) residual and hist exog over
    /// `hist_len` steps, futr exog over `futr_len` steps, then the statics.
    pub fn block_input(&self, hist_len: usize, futr_len: usize) -> usize {
        hist_len * (1 + self.hist) + futr_len * self.futr + self.stat
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    /// NHITS pools the residual and the exog along time first.
    pub pool: Option<Pool1d>,
    pub mlp: BlockMlp,
    pub basis: Basis,
}

/// [batch, t, c] -> [batch, t * c], time-major (torch's reshape).
fn flatten(x: ArrayView3<f32>) -> Array2<f32> {
    let (b, t, c) = x.dim();
    Array2::from_shape_fn((b, t * c), |(i, j)| x[[i, j / c, j % c]])
}

impl Block {
    fn forward(
        &self,
        residuals: ArrayView2<f32>,
        batch: &WindowBatch,
        exog_basis: Option<ArrayView3<f32>>,
    ) -> Result<(Array2<f32>, Array3<f32>), ForwardError> {
        let mut parts: Vec<Array2<f32>> = Vec::with_capacity(4);
        match &self.pool {
            Some(p) => {
                parts.push(p.forward_rows(residuals)?);
                if let Some(hx) = &batch.hist_exog {
                    parts.push(flatten(p.forward_time_major(hx.view())?.view()));
                }
                if let Some(fx) = &batch.futr_exog {
                    parts.push(flatten(p.forward_time_major(fx.view())?.view()));
                }
            }
            None => {
                parts.push(residuals.to_owned());
                if let Some(hx) = &batch.hist_exog {
                    parts.push(flatten(hx.view()));
                }
                if let Some(fx) = &batch.futr_exog {
                    parts.push(flatten(fx.view()));
                }
            }
        }
        if let Some(sx) = &batch.stat_exog {
            parts.push(sx.clone());
        }
        let x = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            ndarray::concatenate(Axis(1), &views)
                .map_err(|e| ForwardError::array("block inputs do not concatenate", e))?
        };
        let theta = self.mlp.forward(x.view())?;
        self.basis.forward(theta.view(), exog_basis)
    }
}

#[derive(Debug, Clone)]
pub struct ResidualStack {
    blocks: Vec<Block>,
    /// Block run at each step: `shared_weights` runs one block several times.
    order: Vec<usize>,
    input_size: usize,
    h: usize,
    outputs: usize,
    exog: ExogWidths,
    exclude_insample_y: bool,
}

impl ResidualStack {
    pub fn new(
        blocks: Vec<Block>,
        order: Vec<usize>,
        spec: &ModelSpec,
    ) -> Result<ResidualStack, BuildError> {
        if order.is_empty() || order.iter().any(|&i| i >= blocks.len()) {
            return Err(invalid!("the model has no blocks (n_blocks)"));
        }
        Ok(ResidualStack {
            blocks,
            order,
            input_size: spec.input_size,
            h: spec.h,
            outputs: spec.n_outputs(),
            exog: ExogWidths::of(spec),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }

    /// The batch has the shapes the blocks were built for.
    fn check(&self, batch: &WindowBatch) -> Result<usize, ForwardError> {
        let (b, l) = batch.insample_y.dim();
        let ExogWidths { hist, futr, stat } = self.exog;
        let want = |name: &str, got: Option<Vec<usize>>, shape: Vec<usize>, used: bool| match (
            got, used,
        ) {
            (None, false) => Ok(()),
            (Some(g), true) if g == shape => Ok(()),
            (g, _) => Err(shape!("{name} has shape {g:?}, the model needs {shape:?}")),
        };
        want(
            "insample_y",
            Some(vec![b, l]),
            vec![b, self.input_size],
            true,
        )?;
        want(
            "insample_mask",
            Some(batch.insample_mask.shape().to_vec()),
            vec![b, l],
            true,
        )?;
        let shape = |x: Option<&[usize]>| x.map(<[usize]>::to_vec);
        want(
            "hist_exog",
            shape(batch.hist_exog.as_ref().map(|x| x.shape())),
            vec![b, l, hist],
            hist > 0,
        )?;
        want(
            "futr_exog",
            shape(batch.futr_exog.as_ref().map(|x| x.shape())),
            vec![b, l + self.h, futr],
            futr > 0,
        )?;
        want(
            "stat_exog",
            shape(batch.stat_exog.as_ref().map(|x| x.shape())),
            vec![b, stat],
            stat > 0,
        )?;
        Ok(b)
    }

    /// NBEATSx' exogenous basis: futr exog, the statics repeated over the
    /// window, or both side by side ([batch, L + h, futr + stat]).
    fn exog_basis(&self, batch: &WindowBatch) -> Option<Array3<f32>> {
        let uses = self
            .blocks
            .iter()
            .any(|b| matches!(b.basis, Basis::Exogenous { .. }));
        if !uses {
            return None;
        }
        let t = self.input_size + self.h;
        let (nf, ns) = (self.exog.futr, self.exog.stat);
        let b = batch.insample_y.nrows();
        Some(Array3::from_shape_fn((b, t, nf + ns), |(i, k, c)| {
            match (&batch.futr_exog, &batch.stat_exog) {
                (Some(f), _) if c < nf => f[[i, k, c]],
                (_, Some(s)) => s[[i, c - nf]],
                _ => 0.0,
            }
        }))
    }

    /// [batch, h, outputs] in the scaled space.
    pub fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let b = self.check(batch)?;
        let l = self.input_size;
        let y = insample_y(batch, self.exclude_insample_y);
        let reversed = Slice::new(0, None, -1);
        let mut residuals = y.slice_axis(Axis(1), reversed).to_owned();
        let mask = batch.insample_mask.slice_axis(Axis(1), reversed);
        let mut forecast = Array3::<f32>::zeros((b, self.h, self.outputs));
        for (mut f, level) in forecast.outer_iter_mut().zip(y.column(l - 1)) {
            f.fill(*level);
        }
        let exog_basis = self.exog_basis(batch);
        for &i in &self.order {
            let (backcast, block_forecast) = self.blocks[i].forward(
                residuals.view(),
                batch,
                exog_basis.as_ref().map(|x| x.view()),
            )?;
            if backcast.dim() != residuals.dim() {
                return Err(shape!(
                    "block backcast {:?} does not match the window {:?}",
                    backcast.dim(),
                    residuals.dim()
                ));
            }
            residuals = (&residuals - &backcast) * mask;
            // An exogenous block has one output, broadcast over the others.
            let bf = block_forecast
                .broadcast(forecast.raw_dim())
                .ok_or_else(|| {
                    shape!(
                        "block forecast {:?} does not fit {:?}",
                        block_forecast.dim(),
                        forecast.dim()
                    )
                })?;
            forecast += &bf;
        }
        Ok(forecast)
    }
}

/// NBEATS / NBEATSx stacks: `stack_types` x `n_blocks`, each block the same
/// MLP over the window (and exog) with its stack's basis. With
/// `shared_weights` a stack's later blocks rerun its first block.
pub fn nbeats_stack(
    spec: &ModelSpec,
    store: &TensorStore,
    cfg: &BlockMlpConfig,
    stack_types: &[String],
    n_blocks: &[usize],
    shared: bool,
) -> Result<ResidualStack, BuildError> {
    if n_blocks.len() != stack_types.len() {
        return Err(invalid!(
            "n_blocks has {} entries for {} stack types",
            n_blocks.len(),
            stack_types.len()
        ));
    }
    let (l, h) = (spec.input_size, spec.h);
    let exog = ExogWidths::of(spec);
    let in_features = exog.block_input(l, l + h);
    let mut blocks = Vec::new();
    let mut order = Vec::new();
    for (stack_type, &n) in stack_types.iter().zip(n_blocks) {
        for block_id in 0..n {
            if shared && block_id > 0 {
                order.push(blocks.len() - 1);
                continue;
            }
            let prefix = format!("blocks.{}", order.len());
            let basis = Basis::nbeats(
                stack_type,
                store,
                &prefix,
                l,
                h,
                spec.n_outputs(),
                exog.futr + exog.stat,
            )?;
            let mlp = BlockMlp::load(
                store,
                &format!("{prefix}.layers"),
                cfg,
                in_features,
                basis.n_theta(),
            )?;
            order.push(blocks.len());
            blocks.push(Block {
                pool: None,
                mlp,
                basis,
            });
        }
    }
    ResidualStack::new(blocks, order, spec)
}
