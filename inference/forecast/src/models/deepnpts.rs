//! DeepNPTS (neuralforecast/models/deepnpts.py): an MLP (Linear, ReLU, eval
//! BatchNorm per layer) reads `[y | futr exog | hist exog]` per insample step
//! (flattened time-major), the static features and the future part of futr
//! exog, and outputs `input_size` weights per horizon step; the forecast is
//! the softmax(over the window)-weighted mean of the scaled insample y. In
//! NeuralForecast 3.3.0 this is deterministic (no sampling) and point losses
//! only.

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::relu_inplace;
use crate::nn::attention::softmax_inplace;
use crate::nn::batch_norm::BatchNorm1d;
use crate::nn::exog::{ExogWidths, Inputs};
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3};
use serde::Deserialize;

/// DeepNPTS's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DeepNptsHparams {
    pub dropout: f64,
    pub hidden_size: usize,
    pub n_layers: usize,
    pub batch_norm: bool,
}

impl Default for DeepNptsHparams {
    fn default() -> Self {
        DeepNptsHparams {
            dropout: 0.1,
            hidden_size: 32,
            n_layers: 2,
            batch_norm: true,
        }
    }
}

pub struct DeepNpts {
    layers: Vec<(Linear, Option<BatchNorm1d>)>,
    out: Linear,
    widths: ExogWidths,
    input_size: usize,
    h: usize,
}

impl Model for DeepNpts {
    const CLASS: &'static str = "DeepNPTS";
    const CATEGORICAL: bool = true;
    type Hparams = DeepNptsHparams;
    type Net = DeepNpts;

    fn load(
        spec: &ModelSpec,
        hp: DeepNptsHparams,
        store: &TensorStore,
    ) -> Result<DeepNpts, BuildError> {
        if spec.n_outputs() != 1 || spec.exclude_insample_y {
            return Err(invalid!(
                "DeepNPTS takes point losses and the insample y only"
            ));
        }
        let (l, h) = (spec.input_size, spec.h);
        let widths = ExogWidths::of(spec);
        let hidden = hp.hidden_size;
        let n_layers = hp.n_layers;
        let batch_norm = hp.batch_norm;
        let dropout = hp.dropout;
        if n_layers == 0 {
            return Err(invalid!("n_layers must be at least 1"));
        }
        // nn.Sequential positions: Linear, ReLU, [BatchNorm1d], [Dropout] per layer.
        let stride = 2 + usize::from(batch_norm) + usize::from(dropout > 0.0);
        let first = l * (1 + widths.futr + widths.hist) + widths.stat + h * widths.futr;
        let layers = (0..n_layers)
            .map(|i| {
                let lin = Linear::load(
                    store,
                    &format!("deepnptsnetwork.{}", i * stride),
                    if i == 0 { first } else { hidden },
                    hidden,
                    true,
                )?;
                let bn = batch_norm
                    .then(|| {
                        BatchNorm1d::load(
                            store,
                            &format!("deepnptsnetwork.{}", i * stride + 2),
                            hidden,
                            1e-5,
                        )
                    })
                    .transpose()?;
                Ok((lin, bn))
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(DeepNpts {
            layers,
            out: Linear::load(
                store,
                &format!("deepnptsnetwork.{}", n_layers * stride),
                hidden,
                l * h,
                true,
            )?,
            widths,
            input_size: l,
            h,
        })
    }
}

impl Forecaster for DeepNpts {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (l, h) = (self.input_size, self.h);
        let x = Inputs::check(batch, l, h, self.widths)?;
        let b = x.y.nrows();
        let (nf, nh) = (self.widths.futr, self.widths.hist);
        let per_step = 1 + nf + nh;
        let width = l * per_step + self.widths.stat + h * nf;
        let mut input = Array2::<f32>::zeros((b, width));
        for (i, mut row) in input.outer_iter_mut().enumerate() {
            for t in 0..l {
                let base = t * per_step;
                row[base] = x.y[[i, t]];
                for c in 0..nf {
                    row[base + 1 + c] = x.futr.map_or(0.0, |f| f[[i, t, c]]);
                }
                for c in 0..nh {
                    row[base + 1 + nf + c] = x.hist.map_or(0.0, |f| f[[i, t, c]]);
                }
            }
            let mut k = l * per_step;
            for c in 0..self.widths.stat {
                row[k] = x.stat.map_or(0.0, |s| s[[i, c]]);
                k += 1;
            }
            for t in 0..h {
                for c in 0..nf {
                    row[k] = x.futr.map_or(0.0, |f| f[[i, l + t, c]]);
                    k += 1;
                }
            }
        }
        for (lin, bn) in &self.layers {
            input = lin.forward(input.view())?;
            relu_inplace(&mut input);
            if let Some(bn) = bn {
                for mut row in input.rows_mut() {
                    bn.forward_inplace(
                        row.as_slice_mut()
                            .ok_or_else(|| shape!("activations are not contiguous"))?,
                    )?;
                }
            }
        }
        // Weights [batch, L * h] read as [L, h]; softmax over the window per step.
        let weights = self.out.forward(input.view())?;
        let mut y = Array3::<f32>::zeros((b, h, 1));
        let mut col = vec![0f32; l];
        for i in 0..b {
            for j in 0..h {
                for (t, c) in col.iter_mut().enumerate() {
                    *c = weights[[i, t * h + j]];
                }
                softmax_inplace(&mut col);
                y[[i, j, 0]] = col
                    .iter()
                    .enumerate()
                    .fold(0f32, |s, (t, w)| s + w * x.y[[i, t]]);
            }
        }
        Ok(y)
    }
}
