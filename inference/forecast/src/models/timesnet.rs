//! TimesNet (neuralforecast/models/timesnet.py): the window embedded per step
//! (`DataEmbedding`: token convolution, positional table, the insample futr
//! exog), extended from `input_size` to `input_size + h` steps by a Linear
//! over time, then `encoder_layers` TimesBlocks, each followed by the shared
//! LayerNorm, and a per-step projection whose last `h` steps are the forecast.
//!
//! A TimesBlock picks its `top_k` periods from the rfft amplitudes averaged
//! over the WHOLE batch of windows (and the channels), folds the sequence
//! into a [T / period, period] image per period, runs the inception
//! convolutions on it, and mixes the results with a softmax of each window's
//! own amplitudes. Because the periods depend on the batch, the windows are
//! split into the batches `predict` forms: `valid_batch_size` (else
//! `batch_size`) series per batch, each cut into
//! `inference_windows_batch_size` windows; `topk` keeps torch's tie order.

use super::{require_futr_exog_only, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::attention::softmax_inplace;
use crate::nn::conv2d::Conv2d;
use crate::nn::embedding::DataEmbedding;
use crate::nn::exog::{steps, ExogWidths, Inputs};
use crate::nn::fft::rfft;
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::temporal::{over_time, per_step};
use crate::nn::topk::topk_indices;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView3, Axis, Slice};
use serde::Deserialize;
use std::ops::Range;

/// `TimesBlock`: two inception blocks (each the mean of its convolutions) with a GELU between.
struct TimesBlock {
    inception1: Conv2d,
    inception2: Conv2d,
    top_k: usize,
}

impl TimesBlock {
    fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        conv_hidden: usize,
        kernels: usize,
        top_k: usize,
    ) -> Result<TimesBlock, BuildError> {
        let inception = |pos: usize, cin: usize, cout: usize| {
            let convs = (0..kernels)
                .map(|i| {
                    Conv2d::load(
                        store,
                        &format!("{prefix}.conv.{pos}.kernels.{i}"),
                        cin,
                        cout,
                        2 * i + 1,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            Conv2d::mean(&convs)
        };
        Ok(TimesBlock {
            inception1: inception(0, hidden, conv_hidden)?,
            inception2: inception(2, conv_hidden, hidden)?,
            top_k,
        })
    }

    /// x [batch, T, d] -> [batch, T, d].
    fn forward(&self, x: &Array3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, d) = x.dim();
        // |rfft| over time per (window, channel): amp[w][f * d + c].
        let bins = t / 2 + 1;
        let mut amp = vec![vec![0f32; bins * d]; b];
        for (w, seq) in x.outer_iter().enumerate() {
            for c in 0..d {
                let col: Vec<f32> = seq.column(c).to_vec();
                for (f, v) in rfft(&col).into_iter().enumerate() {
                    amp[w][f * d + c] = v.abs();
                }
            }
        }
        // abs(xf).mean(0).mean(-1), bin 0 cleared.
        let mut freq: Vec<f32> = (0..bins)
            .map(|f| {
                let per_channel =
                    (0..d).map(|c| amp.iter().fold(0f32, |s, a| s + a[f * d + c]) / b as f32);
                per_channel.fold(0f32, |s, v| s + v) / d as f32
            })
            .collect();
        freq[0] = 0.0;
        let top = topk_indices(&freq, self.top_k)?;
        let mut out = x.clone();
        // Each window's weights over the periods: softmax of its mean amplitudes.
        let weights: Vec<Vec<f32>> = amp
            .iter()
            .map(|a| {
                let mut w: Vec<f32> = top
                    .iter()
                    .map(|&f| (0..d).fold(0f32, |s, c| s + a[f * d + c]) / d as f32)
                    .collect();
                softmax_inplace(&mut w);
                w
            })
            .collect();
        let mut acc = Array3::<f32>::zeros((b, t, d));
        for (i, &f) in top.iter().enumerate() {
            if f == 0 {
                return Err(shape!(
                    "TimesNet picked frequency 0: top_k exceeds the spectrum"
                ));
            }
            let period = t / f;
            let length = t.div_ceil(period) * period;
            for (w, seq) in x.outer_iter().enumerate() {
                let mut img = Array3::<f32>::zeros((length / period, period, d));
                for (k, row) in seq.outer_iter().enumerate() {
                    img.index_axis_mut(Axis(0), k / period)
                        .index_axis_mut(Axis(0), k % period)
                        .assign(&row);
                }
                let mut y = self.inception1.forward(img.view())?;
                Activation::GELU.apply_inplace(&mut y);
                let y = self.inception2.forward(y.view())?;
                let y = y
                    .into_shape_with_order((length, d))
                    .map_err(|e| ForwardError::array("period image does not unfold", e))?;
                let wi = weights[w][i];
                let mut dst = acc.index_axis_mut(Axis(0), w);
                dst.zip_mut_with(&y.slice_axis(Axis(0), Slice::from(..t)), |a, v| {
                    *a += v * wi
                });
            }
        }
        out += &acc;
        Ok(out)
    }
}

/// TimesNet's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TimesNetHparams {
    pub inference_windows_batch_size: Option<i64>,
    pub hidden_size: usize,
    pub conv_hidden_size: usize,
    pub top_k: usize,
    pub num_kernels: usize,
    pub encoder_layers: usize,
    pub valid_batch_size: usize,
    pub batch_size: usize,
}

impl Default for TimesNetHparams {
    fn default() -> Self {
        TimesNetHparams {
            inference_windows_batch_size: None,
            hidden_size: 64,
            conv_hidden_size: 64,
            top_k: 5,
            num_kernels: 6,
            encoder_layers: 2,
            valid_batch_size: 0,
            batch_size: 32,
        }
    }
}

pub struct TimesNet {
    embedding: DataEmbedding,
    predict_linear: Linear,
    blocks: Vec<TimesBlock>,
    layer_norm: LayerNorm,
    projection: Linear,
    widths: ExogWidths,
    input_size: usize,
    h: usize,
    /// Series per `predict` batch, and windows per forward within it.
    batch_series: usize,
    batch_windows: Option<usize>,
    exclude_insample_y: bool,
}

impl Model for TimesNet {
    const CLASS: &'static str = "TimesNet";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = TimesNetHparams;
    type Net = TimesNet;

    fn load(
        spec: &ModelSpec,
        hp: TimesNetHparams,
        store: &TensorStore,
    ) -> Result<TimesNet, BuildError> {
        require_futr_exog_only(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let hidden = hp.hidden_size;
        let conv_hidden = hp.conv_hidden_size;
        let top_k = hp.top_k;
        let kernels = hp.num_kernels;
        let layers = hp.encoder_layers;
        if top_k == 0 || top_k > 17 || top_k > (l + h) / 2 || kernels == 0 {
            return Err(BuildError::Unsupported(format!(
                "TimesNet with top_k={top_k} over {} steps and num_kernels={kernels} is not served",
                l + h
            )));
        }
        let batch_series = match hp.valid_batch_size {
            0 => hp.batch_size,
            v => v,
        };
        let batch_windows = match hp.inference_windows_batch_size {
            Some(w) if w > 0 => Some(w as usize),
            _ => None,
        };
        if batch_series == 0 {
            return Err(invalid!("batch_size must be positive"));
        }
        let widths = ExogWidths::of(spec);
        Ok(TimesNet {
            embedding: DataEmbedding::load(
                store,
                "enc_embedding",
                1,
                widths.futr,
                hidden,
                Some(l + h),
            )?,
            predict_linear: Linear::load(store, "predict_linear", l, l + h, true)?,
            blocks: (0..layers)
                .map(|i| {
                    TimesBlock::load(
                        store,
                        &format!("model.{i}"),
                        hidden,
                        conv_hidden,
                        kernels,
                        top_k,
                    )
                })
                .collect::<Result<_, _>>()?,
            layer_norm: LayerNorm::load(store, "layer_norm", &[hidden])?,
            projection: Linear::load(store, "projection", hidden, outputs, true)?,
            widths,
            input_size: l,
            h,
            batch_series,
            batch_windows,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl TimesNet {
    /// The row ranges torch runs together.
    fn chunks(&self, n: usize) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        for start in (0..n).step_by(self.batch_series) {
            let end = n.min(start + self.batch_series);
            let w = self.batch_windows.unwrap_or(end - start).max(1);
            for s in (start..end).step_by(w) {
                out.push(s..end.min(s + w));
            }
        }
        out
    }

    /// One batch: y [b, L], marks [b, L, futr] -> [b, h, outputs].
    fn run(
        &self,
        y: Array3<f32>,
        marks: Option<ArrayView3<f32>>,
    ) -> Result<Array3<f32>, ForwardError> {
        let emb = self.embedding.forward(y.view(), marks)?;
        let mut enc = over_time(emb.view(), &self.predict_linear)?
            .as_standard_layout()
            .into_owned();
        for block in &self.blocks {
            enc = block.forward(&enc)?;
            self.layer_norm.forward_inplace(&mut enc)?;
        }
        let out = per_step(enc.view(), &self.projection)?;
        let t = out.dim().1;
        Ok(steps(out.view(), t - self.h..).to_owned())
    }
}

impl Forecaster for TimesNet {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (l, h) = (self.input_size, self.h);
        let inputs = Inputs::check(batch, l, h, self.widths)?;
        let y = if self.exclude_insample_y {
            Array2::zeros(inputs.y.raw_dim())
        } else {
            inputs.y.to_owned()
        };
        let n = y.nrows();
        let mut parts = Vec::new();
        for r in self.chunks(n) {
            let rows = Slice::from(r.clone());
            let yb = y.slice_axis(Axis(0), rows).to_owned().insert_axis(Axis(2));
            let marks = inputs
                .futr
                .map(|f| steps(f.slice_axis_move(Axis(0), rows), ..l));
            parts.push(self.run(yb, marks)?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map_err(|e| ForwardError::array("TimesNet batches do not concatenate", e))
    }
}
