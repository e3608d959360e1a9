//! The progressive-decomposition encoder/decoder shared by Autoformer and
//! FEDformer (`AutoCorrelationLayer`, `LayerNorm`, `EncoderLayer`,
//! `Encoder`, `DecoderLayer`, `Decoder` in neuralforecast/models/
//! autoformer.py and fedformer.py, which are line for line the same): every
//! sublayer's residual is split by a moving average into a seasonal part,
//! which goes on, and a trend, which the decoder accumulates through a
//! circular kernel-3 Conv1d to the outputs. The token mixer (`Correlation`)
//! is Autoformer's auto-correlation or FEDformer's Fourier blocks.
//!
//! Sequences are one window's [steps, hidden]; `Correlation`s get and return
//! the projected heads side by side, [steps, heads * d_head], in the memory
//! order the layer's `view(B, L, -1)` reads.

use super::activation::Activation;
use super::conv1d::{circular_pad, Conv1d, ConvShape};
use super::decomp::series_decomp;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::seq2seq::{Embeddings, Seq2Seq};
use crate::forecaster::{
    insample_y, invalid, shape, BuildError, Forecaster, ForwardError, WindowBatch,
};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, Axis};

/// What an `AutoCorrelationLayer` wraps.
pub trait Correlation {
    /// q [L, heads * e], k and v [S, heads * e] -> [L, heads * e].
    fn correlate(
        &self,
        q: ArrayView2<f32>,
        k: ArrayView2<f32>,
        v: ArrayView2<f32>,
        heads: usize,
    ) -> Result<Array2<f32>, ForwardError>;
}

/// `AutoCorrelationLayer`: q/k/v projections, the inner correlation, the output projection.
#[derive(Debug, Clone)]
pub struct CorrelationLayer<C> {
    inner: C,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl<C: Correlation> CorrelationLayer<C> {
    /// `<prefix>.{query,key,value,out}_projection` around `inner`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        inner: C,
        hidden: usize,
        heads: usize,
    ) -> Result<CorrelationLayer<C>, BuildError> {
        if heads == 0 || hidden / heads == 0 {
            return Err(invalid!(
                "{heads} heads do not fit a hidden size of {hidden}"
            ));
        }
        let inner_width = (hidden / heads) * heads;
        let proj = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}_projection"), i, o, true)
        };
        Ok(CorrelationLayer {
            inner,
            query: proj("query", hidden, inner_width)?,
            key: proj("key", hidden, inner_width)?,
            value: proj("value", hidden, inner_width)?,
            out: proj("out", inner_width, hidden)?,
            heads,
        })
    }

    /// x [L, hidden] attends to memory [S, hidden].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ForwardError> {
        let q = self.query.forward(x)?;
        let k = self.key.forward(memory)?;
        let v = self.value.forward(memory)?;
        let y = super::temporal::c_order(self.inner.correlate(
            q.view(),
            k.view(),
            v.view(),
            self.heads,
        )?);
        self.out.forward(y.view())
    }
}

/// The seasonal part of x [steps, channels]: x minus its moving average
/// (edge-replicated) along the steps; and that trend.
pub fn seasonal_trend(
    x: ArrayView2<f32>,
    kernel: usize,
) -> Result<(Array2<f32>, Array2<f32>), ForwardError> {
    if x.nrows() == 0 {
        return Err(shape!("cannot decompose an empty sequence"));
    }
    let (res, trend) = series_decomp(x.t(), kernel);
    Ok((
        res.t().as_standard_layout().into_owned(),
        trend.t().as_standard_layout().into_owned(),
    ))
}

/// The models' `LayerNorm` for the seasonal part: a LayerNorm, then each
/// channel's mean over the steps subtracted.
#[derive(Debug, Clone)]
pub struct SeasonalNorm {
    norm: LayerNorm,
}

impl SeasonalNorm {
    /// `<prefix>.layernorm`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
    ) -> Result<SeasonalNorm, BuildError> {
        Ok(SeasonalNorm {
            norm: LayerNorm::load(store, &format!("{prefix}.layernorm"), &[hidden])?,
        })
    }

    pub fn forward_inplace(&self, x: &mut Array2<f32>) -> Result<(), ForwardError> {
        self.norm.forward_inplace(x)?;
        let mean = x
            .mean_axis(Axis(0))
            .ok_or_else(|| shape!("cannot normalise an empty sequence"))?;
        *x -= &mean;
        Ok(())
    }
}

/// The bias-free kernel-1 convolutions of the feed-forward, `act(conv1) -> conv2`.
#[derive(Debug, Clone)]
struct ConvFeedForward {
    conv1: Linear,
    conv2: Linear,
    activation: Activation,
}

fn conv1x1(store: &TensorStore, name: &str, i: usize, o: usize) -> Result<Linear, BuildError> {
    let w = store.array_dyn(name, &[o, i, 1])?;
    let w = w
        .into_shape_with_order((o, i))
        .map_err(|e| invalid!("{name}: {e}"))?;
    Linear::from_weight(w, None)
}

impl ConvFeedForward {
    fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        ff_hidden: usize,
        activation: Activation,
    ) -> Result<ConvFeedForward, BuildError> {
        Ok(ConvFeedForward {
            conv1: conv1x1(store, &format!("{prefix}.conv1.weight"), hidden, ff_hidden)?,
            conv2: conv1x1(store, &format!("{prefix}.conv2.weight"), ff_hidden, hidden)?,
            activation,
        })
    }

    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = self.conv1.forward(x)?;
        self.activation.apply_inplace(&mut y);
        self.conv2.forward(y.view())
    }
}

/// Widths and the decomposition window of every layer.
#[derive(Debug, Clone, Copy)]
pub struct DecompShape {
    pub hidden: usize,
    pub heads: usize,
    pub ff_hidden: usize,
    pub moving_avg: usize,
    pub activation: Activation,
    /// `encoder_layers` and `decoder_layers`.
    pub encoder_layers: usize,
    pub decoder_layers: usize,
}

/// `EncoderLayer`: correlation, decompose; feed-forward, decompose.
#[derive(Debug, Clone)]
pub struct DecompEncoderLayer<C> {
    attention: CorrelationLayer<C>,
    ff: ConvFeedForward,
    moving_avg: usize,
}

impl<C: Correlation> DecompEncoderLayer<C> {
    /// `<prefix>.attention` around `inner`, `<prefix>.conv1` / `.conv2`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        inner: C,
        s: DecompShape,
    ) -> Result<DecompEncoderLayer<C>, BuildError> {
        Ok(DecompEncoderLayer {
            attention: CorrelationLayer::load(
                store,
                &format!("{prefix}.attention"),
                inner,
                s.hidden,
                s.heads,
            )?,
            ff: ConvFeedForward::load(store, prefix, s.hidden, s.ff_hidden, s.activation)?,
            moving_avg: s.moving_avg,
        })
    }

    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let x = &x + &self.attention.forward(x, x)?;
        let (x, _) = seasonal_trend(x.view(), self.moving_avg)?;
        let y = &x + &self.ff.forward(x.view())?;
        Ok(seasonal_trend(y.view(), self.moving_avg)?.0)
    }
}

/// `Encoder`: the layers, then the seasonal norm.
#[derive(Debug, Clone)]
pub struct DecompEncoder<C> {
    layers: Vec<DecompEncoderLayer<C>>,
    norm: SeasonalNorm,
}

impl<C: Correlation> DecompEncoder<C> {
    /// `<prefix>.attn_layers.{i}` and `<prefix>.norm`; `inner(i)` builds layer i's correlation.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        s: DecompShape,
        inner: impl Fn(usize, &str) -> Result<C, BuildError>,
    ) -> Result<DecompEncoder<C>, BuildError> {
        if n_layers == 0 {
            return Err(invalid!("an encoder needs at least one layer"));
        }
        let layers = (0..n_layers)
            .map(|i| {
                let p = format!("{prefix}.attn_layers.{i}");
                DecompEncoderLayer::load(store, &p, inner(i, &format!("{p}.attention"))?, s)
            })
            .collect::<Result<_, _>>()?;
        Ok(DecompEncoder {
            layers,
            norm: SeasonalNorm::load(store, &format!("{prefix}.norm"), s.hidden)?,
        })
    }

    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut x = x.to_owned();
        for layer in &self.layers {
            x = layer.forward(x.view())?;
        }
        self.norm.forward_inplace(&mut x)?;
        Ok(x)
    }
}

/// `DecoderLayer`: self-correlation, cross-correlation and feed-forward, each
/// decomposed; the three trends summed and projected to the outputs.
#[derive(Debug, Clone)]
pub struct DecompDecoderLayer<S, X> {
    self_attention: CorrelationLayer<S>,
    cross_attention: CorrelationLayer<X>,
    ff: ConvFeedForward,
    /// Conv1d(hidden, outputs, 3, circular padding 1, no bias).
    projection: Conv1d,
    moving_avg: usize,
}

impl<S: Correlation, X: Correlation> DecompDecoderLayer<S, X> {
    /// Returns the seasonal part [steps, hidden] and the residual trend [steps, outputs].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
    ) -> Result<(Array2<f32>, Array2<f32>), ForwardError> {
        let x = &x + &self.self_attention.forward(x, x)?;
        let (x, trend1) = seasonal_trend(x.view(), self.moving_avg)?;
        let x = &x + &self.cross_attention.forward(x.view(), memory)?;
        let (x, trend2) = seasonal_trend(x.view(), self.moving_avg)?;
        let y = &x + &self.ff.forward(x.view())?;
        let (x, trend3) = seasonal_trend(y.view(), self.moving_avg)?;
        let trend = trend1 + trend2 + trend3;
        let padded = circular_pad(trend.view().insert_axis(Axis(0)), 1)?;
        let trend = self
            .projection
            .forward(padded.view())?
            .index_axis_move(Axis(0), 0);
        Ok((x, trend))
    }
}

/// `Decoder`: the layers (trend accumulated), the seasonal norm and a Linear to the outputs.
#[derive(Debug, Clone)]
pub struct DecompDecoder<S, X> {
    layers: Vec<DecompDecoderLayer<S, X>>,
    norm: SeasonalNorm,
    projection: Linear,
}

impl<S: Correlation, X: Correlation> DecompDecoder<S, X> {
    /// `<prefix>.layers.{i}` (with `self_attention`, `cross_attention` from
    /// `inner(i, prefix)`), `<prefix>.norm`, `<prefix>.projection`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        outputs: usize,
        s: DecompShape,
        inner: impl Fn(usize, &str) -> Result<(S, X), BuildError>,
    ) -> Result<DecompDecoder<S, X>, BuildError> {
        if n_layers == 0 {
            return Err(invalid!("a decoder needs at least one layer"));
        }
        let layers = (0..n_layers)
            .map(|i| -> Result<DecompDecoderLayer<S, X>, BuildError> {
                let p = format!("{prefix}.layers.{i}");
                let (self_inner, cross_inner) = inner(i, &p)?;
                let shape = ConvShape {
                    in_channels: s.hidden,
                    out_channels: outputs,
                    kernel: 3,
                    dilation: 1,
                    pad_left: 0,
                    pad_right: 0,
                };
                Ok(DecompDecoderLayer {
                    self_attention: CorrelationLayer::load(
                        store,
                        &format!("{p}.self_attention"),
                        self_inner,
                        s.hidden,
                        s.heads,
                    )?,
                    cross_attention: CorrelationLayer::load(
                        store,
                        &format!("{p}.cross_attention"),
                        cross_inner,
                        s.hidden,
                        s.heads,
                    )?,
                    ff: ConvFeedForward::load(store, &p, s.hidden, s.ff_hidden, s.activation)?,
                    projection: Conv1d::load_unbiased(store, &format!("{p}.projection"), shape)?,
                    moving_avg: s.moving_avg,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(DecompDecoder {
            layers,
            norm: SeasonalNorm::load(store, &format!("{prefix}.norm"), s.hidden)?,
            projection: Linear::load(
                store,
                &format!("{prefix}.projection"),
                s.hidden,
                outputs,
                true,
            )?,
        })
    }

    /// x [steps, hidden], memory [keys, hidden], the initial trend [steps]
    /// -> trend + seasonal [steps, outputs].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
        trend_init: &[f32],
    ) -> Result<Array2<f32>, ForwardError> {
        let mut x = x.to_owned();
        let mut trend: Option<Array2<f32>> = None;
        for layer in &self.layers {
            let (seasonal, residual) = layer.forward(x.view(), memory)?;
            x = seasonal;
            // trend_init [steps, 1] broadcasts over the outputs on the first sum.
            trend = Some(match trend {
                None => {
                    if trend_init.len() != residual.nrows() {
                        return Err(shape!("the initial trend does not cover the decoder steps"));
                    }
                    let mut t = residual;
                    for (mut row, t0) in t.axis_iter_mut(Axis(0)).zip(trend_init) {
                        row.mapv_inplace(|r| t0 + r);
                    }
                    t
                }
                Some(t) => t + residual,
            });
        }
        self.norm.forward_inplace(&mut x)?;
        let seasonal = self.projection.forward(x.view())?;
        let trend = trend.ok_or_else(|| shape!("a decoder needs at least one layer"))?;
        Ok(trend + seasonal)
    }
}

/// The whole Autoformer / FEDformer forward pass: the window is decomposed;
/// the decoder starts from the seasonal part of the window's last
/// `label_len` steps (then zeros) and from their trend (then the window
/// mean); both sides are embedded without positions.
pub struct DecompForecaster<E, S, X> {
    embeddings: Embeddings,
    encoder: DecompEncoder<E>,
    decoder: DecompDecoder<S, X>,
    seq: Seq2Seq,
    moving_avg: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl<E: Correlation, S: Correlation, X: Correlation> DecompForecaster<E, S, X> {
    /// `enc_embedding`, `dec_embedding`, the `encoder` of `encoder_layers`
    /// layers (correlations from `enc_inner`) and the `decoder` of
    /// `decoder_layers` (self- and cross-correlations from `dec_inner`).
    pub fn load(
        store: &TensorStore,
        spec: &ModelSpec,
        seq: Seq2Seq,
        shape: DecompShape,
        enc_inner: impl Fn(usize, &str) -> Result<E, BuildError>,
        dec_inner: impl Fn(usize, &str) -> Result<(S, X), BuildError>,
    ) -> Result<DecompForecaster<E, S, X>, BuildError> {
        Ok(DecompForecaster {
            embeddings: seq.embeddings(store, shape.hidden, false)?,
            encoder: DecompEncoder::load(store, "encoder", shape.encoder_layers, shape, enc_inner)?,
            decoder: DecompDecoder::load(
                store,
                "decoder",
                shape.decoder_layers,
                spec.n_outputs(),
                shape,
                dec_inner,
            )?,
            seq,
            moving_avg: shape.moving_avg,
            outputs: spec.n_outputs(),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

/// The decomposition window: odd, as torch's shapes only agree then.
pub fn moving_avg_window(kernel: usize) -> Result<usize, ForwardError> {
    if kernel.is_multiple_of(2) {
        return Err(shape!(
            "MovingAvg_window {kernel} is even: the trend would be one step short"
        ));
    }
    Ok(kernel)
}

impl<E, S, X> Forecaster for DecompForecaster<E, S, X>
where
    E: Correlation + Send + Sync,
    S: Correlation + Send + Sync,
    X: Correlation + Send + Sync,
{
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.seq.insample(batch)?;
        let y = insample_y(batch, self.exclude_insample_y);
        let (season, trend) = series_decomp(y.view(), self.moving_avg);
        let mean: Vec<f32> = y
            .rows()
            .into_iter()
            .map(|r| (r.iter().map(|v| f64::from(*v)).sum::<f64>() / r.len().max(1) as f64) as f32)
            .collect();
        let trend_init = self.seq.label_then(trend.view(), |i| mean[i]);
        let seasonal_init = self.seq.label_then(season.view(), |_| 0.0);
        let (enc, dec) = self.seq.embed(batch, y, seasonal_init, &self.embeddings)?;
        self.seq.per_window(&enc, &dec, self.outputs, |i, e, d| {
            let memory = self.encoder.forward(e)?;
            let t0 = trend_init.row(i).to_vec();
            self.decoder.forward(d, memory.view(), &t0)
        })
    }
}
