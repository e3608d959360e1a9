//! BiTCN (neuralforecast/models/bitcn.py): a backward (causal) TCN over the
//! window `[y | hist | stat | futr[:L]]` and, with future exogenous, a
//! forward (anti-causal) TCN over `futr` for the whole window + horizon.
//! Each `TCNCell`: GELU(dilated Conv1d k=2) -> 1x1 Conv1d to 2*hidden, split
//! into a residual update and a skip output; the net's result is the sum of
//! the skip outputs. Then Linear(L -> hidden), GELU, Linear(hidden -> h) over
//! time, the forward TCN's horizon part joined, and a Linear per step.

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{shape, ForwardError};
use crate::nn::activation::gelu;
use crate::nn::conv1d::{Conv1d, ConvShape};
use crate::nn::exog::{steps, ExogWidths, Inputs};
use crate::nn::linear::Linear;
use crate::nn::temporal::{over_time, per_step};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array3, ArrayView3, Axis, Slice};
use serde::Deserialize;

const KERNEL: usize = 2;

struct TcnCell {
    conv1: Conv1d,
    conv2: Conv1d,
}

/// `nn.Sequential` of TCNCells, padded on the left (backward) or right (forward).
struct TcnStack(Vec<TcnCell>);

impl TcnStack {
    fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        layers: usize,
        backward: bool,
    ) -> Result<TcnStack, BuildError> {
        (0..layers)
            .map(|i| {
                let dilation = 1usize << i;
                let pad = (KERNEL - 1) * dilation;
                let conv1 = ConvShape {
                    in_channels: hidden,
                    out_channels: hidden,
                    kernel: KERNEL,
                    dilation,
                    pad_left: if backward { pad } else { 0 },
                    pad_right: if backward { 0 } else { pad },
                };
                Ok(TcnCell {
                    conv1: Conv1d::load(store, &format!("{prefix}.{i}.conv1"), conv1)?,
                    conv2: Conv1d::load(
                        store,
                        &format!("{prefix}.{i}.conv2"),
                        ConvShape::causal(hidden, 2 * hidden, 1, 1),
                    )?,
                })
            })
            .collect::<Result<_, _>>()
            .map(TcnStack)
    }

    /// x [B, T, hidden] -> sum of the cells' skip outputs [B, T, hidden].
    fn forward(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let c = x.dim().2;
        let mut h = x.to_owned();
        let mut out = Array3::<f32>::zeros(x.raw_dim());
        for cell in &self.0 {
            let mut a = cell.conv1.forward(h.view())?;
            a.mapv_inplace(gelu);
            let both = cell.conv2.forward(a.view())?;
            h += &both.slice_axis(Axis(2), Slice::from(..c));
            out += &both.slice_axis(Axis(2), Slice::from(c..));
        }
        Ok(out)
    }
}

/// ceil(log2((n - 1) / (k - 1) + 1)) for k = 2: the fewest doubling dilations covering n steps.
fn layers_for(n: usize) -> usize {
    let mut layers = 0;
    while (1usize << layers) < n {
        layers += 1;
    }
    layers
}

/// BiTCN's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BiTcnHparams {
    pub hidden_size: usize,
}

impl Default for BiTcnHparams {
    fn default() -> Self {
        BiTcnHparams { hidden_size: 16 }
    }
}

pub struct BiTcn {
    lin_hist: Linear,
    bwd: TcnStack,
    futr: Option<(Linear, TcnStack)>,
    temporal_lin1: Linear,
    temporal_lin2: Linear,
    output_lin: Linear,
    h: usize,
    input_size: usize,
    exog: ExogWidths,
    exclude_insample_y: bool,
}

impl Model for BiTcn {
    const CLASS: &'static str = "BiTCN";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = BiTcnHparams;
    type Net = BiTcn;

    fn load(spec: &ModelSpec, hp: BiTcnHparams, store: &TensorStore) -> Result<BiTcn, BuildError> {
        let hidden = hp.hidden_size;
        let (l, h) = (spec.input_size, spec.h);
        let exog = ExogWidths::of(spec);
        let futr = if exog.futr > 0 {
            Some((
                Linear::load(store, "lin_futr", exog.futr, hidden, true)?,
                TcnStack::load(store, "net_fwd", hidden, layers_for(l + h), false)?,
            ))
        } else {
            None
        };
        let mult = if futr.is_some() { 3 } else { 1 };
        Ok(BiTcn {
            lin_hist: Linear::load(store, "lin_hist", exog.channels(), hidden, true)?,
            bwd: TcnStack::load(store, "net_bwd", hidden, layers_for(l), true)?,
            futr,
            temporal_lin1: Linear::load(store, "temporal_lin1", l, hidden, true)?,
            temporal_lin2: Linear::load(store, "temporal_lin2", hidden, h, true)?,
            output_lin: Linear::load(store, "output_lin", mult * hidden, spec.n_outputs(), true)?,
            h,
            input_size: l,
            exog,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for BiTcn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let l = self.input_size;
        let inp = Inputs::check(batch, l, self.h, self.exog)?;
        let x = inp.window_steps(self.exclude_insample_y)?;
        let fwd = match (&self.futr, inp.futr) {
            (Some((lin, net)), Some(f)) => Some(net.forward(per_step(f, lin)?.view())?),
            (None, None) => None,
            _ => return Err(shape!("future exogenous block and model disagree")),
        };
        let mut x = self
            .bwd
            .forward(per_step(x.view(), &self.lin_hist)?.view())?;
        if let Some(f) = &fwd {
            x = ndarray::concatenate(Axis(2), &[x.view(), steps(f.view(), ..l)])
                .map_err(|e| ForwardError::array("forward TCN does not join", e))?;
        }
        let mut t = over_time(x.view(), &self.temporal_lin1)?;
        t.mapv_inplace(gelu);
        let mut t = over_time(t.view(), &self.temporal_lin2)?;
        if let Some(f) = &fwd {
            t = ndarray::concatenate(Axis(2), &[t.view(), steps(f.view(), l..)])
                .map_err(|e| ForwardError::array("forward TCN does not join", e))?;
        }
        per_step(t.view(), &self.output_lin)
    }
}
