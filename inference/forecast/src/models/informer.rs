//! Informer (neuralforecast/models/informer.py): VanillaTransformer's
//! embeddings and encoder-decoder with ProbSparse attention, the encoder
//! optionally distilled between layers (`ConvLayer`: a circular kernel-3
//! Conv1d, BatchNorm1d, ELU, `MaxPool1d(3, 2, padding=1)` halving the steps).
//!
//! ProbSparse attention scores only the `factor * ceil(ln L_Q)` queries that
//! a random sample of keys ranks highest and gives the others a mean (or
//! cumulative sum) of the values: random at inference. When that count
//! reaches the number of queries every query is kept, the sampling has no
//! effect and the result is full attention (causal in the decoder's
//! self-attention); only such models are served. The heads come out as
//! [heads, steps, d_head] and are read as [steps, heads * d_head] without a
//! transpose (`HeadLayout::Stacked`).

use super::{require_futr_exog_only, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::attention::{HeadLayout, MultiHeadAttention};
use crate::nn::batch_norm::BatchNorm1d;
use crate::nn::conv1d::{circular_pad, Conv1d, ConvShape};
use crate::nn::layer_norm::LayerNorm;
use crate::nn::pooling::{Pool1d, PoolKind};
use crate::nn::seq2seq::{Seq2Seq, TransSeq2Seq};
use crate::nn::transformer::{DecoderAttention, TokenMixer, TransEncoderLayer, TransShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::Deserialize;

/// Whether ProbSparse attention over `queries` queries keeps all of them
/// (`u = factor * ceil(ln L_Q)` reaches `L_Q`), which makes it deterministic.
pub fn keeps_every_query(factor: usize, queries: usize) -> bool {
    queries >= 2 && factor * (queries as f64).ln().ceil() as usize >= queries
}

/// The encoder's self-attention with every query kept.
struct ProbSparse(MultiHeadAttention);

impl TokenMixer for ProbSparse {
    fn mix(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        self.0.attend_with(x, x, false, HeadLayout::Stacked)
    }
}

/// `ConvLayer`, the distilling step between encoder layers.
struct Distil {
    conv: Conv1d,
    norm: BatchNorm1d,
    pool: Pool1d,
}

impl Distil {
    fn load(store: &TensorStore, prefix: &str, hidden: usize) -> Result<Distil, BuildError> {
        let shape = ConvShape {
            in_channels: hidden,
            out_channels: hidden,
            kernel: 3,
            dilation: 1,
            pad_left: 0,
            pad_right: 0,
        };
        Ok(Distil {
            conv: Conv1d::load(store, &format!("{prefix}.downConv"), shape)?,
            norm: BatchNorm1d::load(store, &format!("{prefix}.norm"), hidden, 1e-5)?,
            pool: Pool1d::new(PoolKind::Max, 3, 2, false)?.with_padding(1)?,
        })
    }

    /// Steps out for `len` in: the conv adds 2 (padding 2 each side), the pool halves.
    fn out_len(&self, len: usize) -> Result<usize, ForwardError> {
        self.pool.out_len(len + 2)
    }

    /// x [steps, hidden] -> [out_len(steps), hidden].
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let padded = circular_pad(x.insert_axis(Axis(0)), 2)?;
        let mut y = self.conv.forward(padded.view())?;
        for mut step in y.index_axis_mut(Axis(0), 0).axis_iter_mut(Axis(0)) {
            let s = step
                .as_slice_mut()
                .ok_or_else(|| shape!("conv output is not contiguous"))?;
            self.norm.forward_inplace(s)?;
        }
        Activation::ELU.apply_inplace(&mut y);
        Ok(self
            .pool
            .forward_time_major(y.view())?
            .index_axis_move(Axis(0), 0))
    }
}

/// Informer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InformerHparams {
    pub decoder_input_size_multiplier: f64,
    pub hidden_size: usize,
    pub n_head: usize,
    pub conv_hidden_size: usize,
    pub activation: String,
    pub decoder_layers: usize,
    pub factor: usize,
    pub encoder_layers: usize,
    pub distil: bool,
}

impl Default for InformerHparams {
    fn default() -> Self {
        InformerHparams {
            decoder_input_size_multiplier: 0.5,
            hidden_size: 128,
            n_head: 4,
            conv_hidden_size: 32,
            activation: "gelu".into(),
            decoder_layers: 1,
            factor: 3,
            encoder_layers: 2,
            distil: true,
        }
    }
}

pub struct Informer {
    layers: Vec<TransEncoderLayer<ProbSparse>>,
    distil: Vec<Distil>,
    norm: LayerNorm,
    seq2seq: TransSeq2Seq,
}

impl Model for Informer {
    const CLASS: &'static str = "Informer";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = InformerHparams;
    type Net = Informer;

    fn load(
        spec: &ModelSpec,
        hp: InformerHparams,
        store: &TensorStore,
    ) -> Result<Informer, BuildError> {
        require_futr_exog_only(spec)?;
        let seq = Seq2Seq::new(spec, hp.decoder_input_size_multiplier)?;
        let shape = TransShape::new(
            &spec.class,
            hp.hidden_size,
            hp.n_head,
            hp.conv_hidden_size,
            &hp.activation,
        )?;
        let TransShape {
            hidden,
            heads,
            ff_hidden: ff,
            activation: act,
        } = shape;
        let factor = hp.factor;
        let n_enc = hp.encoder_layers;
        if n_enc == 0 {
            return Err(invalid!("Informer needs encoder_layers >= 1"));
        }
        let distil = if hp.distil {
            (0..n_enc - 1)
                .map(|i| Distil::load(store, &format!("encoder.conv_layers.{i}"), hidden))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        // Every attention must keep all its queries: the encoder's at each
        // layer's length, the decoder's self- and cross-attention at its own.
        let mut len = seq.input_size;
        let mut lengths = vec![len];
        for d in &distil {
            len = d.out_len(len)?;
            lengths.push(len);
        }
        lengths.push(seq.decoder_len());
        if let Some(q) = lengths.iter().find(|q| !keeps_every_query(factor, **q)) {
            return Err(BuildError::Unsupported(format!(
                "Informer's ProbSparse attention over {q} queries with factor {factor} keeps only \
                 {} of them, chosen from randomly sampled keys: its forecasts are random at \
                 inference (served when factor * ceil(ln(queries)) >= queries)",
                factor * (*q as f64).ln().ceil() as usize
            )));
        }
        let layers = (0..n_enc)
            .map(|i| {
                let prefix = format!("encoder.attn_layers.{i}");
                let attention =
                    MultiHeadAttention::load(store, &format!("{prefix}.attention"), hidden, heads)?;
                TransEncoderLayer::with_mixer(
                    store,
                    &prefix,
                    ProbSparse(attention),
                    hidden,
                    ff,
                    act,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mode = DecoderAttention {
            causal_self: true,
            layout: HeadLayout::Stacked,
        };
        Ok(Informer {
            layers,
            distil,
            norm: LayerNorm::load(store, "encoder.norm", &[hidden])?,
            seq2seq: TransSeq2Seq::load(store, spec, seq, shape, mode, hp.decoder_layers)?,
        })
    }
}

impl Informer {
    /// `TransEncoder` with conv layers: attention layer, distil, ..., last attention layer, norm.
    fn encode(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut x = x.to_owned();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x.view())?;
            if let Some(d) = self.distil.get(i) {
                x = d.forward(x.view())?;
            }
        }
        self.norm.forward_inplace(&mut x)?;
        Ok(x)
    }
}

impl Forecaster for Informer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.seq2seq.forward(batch, |e| self.encode(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prob_sparse_is_deterministic_only_when_it_keeps_every_query() {
        // factor 5: 12 queries -> 5 * ceil(2.48) = 15 kept; 16 -> 15 < 16.
        assert!(keeps_every_query(5, 12));
        assert!(!keeps_every_query(5, 16));
        assert!(keeps_every_query(6, 16));
        // NeuralForecast's default factor 3 over 24 steps: 12 of 24.
        assert!(!keeps_every_query(3, 24));
        assert!(!keeps_every_query(5, 1));
    }
}
