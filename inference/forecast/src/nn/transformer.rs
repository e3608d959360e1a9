//! NeuralForecast's `TransEncoderLayer` / `TransEncoder` (common/_modules.py):
//! post-norm self-attention, then a position-wise feed-forward of two
//! kernel-1 `Conv1d`s (a linear map over channels per token), each with a
//! residual and a LayerNorm; optionally a final LayerNorm. The token mixer is
//! multi-head self-attention, or any other `TokenMixer` (SOFTS's STAD).
//! `TransDecoderLayer` / `TransDecoder` add cross-attention to the encoder
//! output (VanillaTransformer, Informer).

use crate::forecaster::{invalid, BuildError, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::attention::{HeadLayout, MultiHeadAttention};
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2};

/// `activation` of NeuralForecast's transformer layers: "relu" or "gelu".
pub fn ff_activation(class: &str, activation: &str) -> Result<Activation, BuildError> {
    match activation {
        "relu" => Ok(Activation::ReLU),
        "gelu" => Ok(Activation::GELU),
        other => Err(invalid!("{class} activation '{other}' is not relu or gelu")),
    }
}

/// The layer sizes and feed-forward activation of VanillaTransformer and
/// Informer: `hidden_size`, `n_head`, `conv_hidden_size`, `activation`.
#[derive(Debug, Clone, Copy)]
pub struct TransShape {
    pub hidden: usize,
    pub heads: usize,
    pub ff_hidden: usize,
    pub activation: Activation,
}

impl TransShape {
    pub fn new(
        class: &str,
        hidden: usize,
        heads: usize,
        ff_hidden: usize,
        activation: &str,
    ) -> Result<TransShape, BuildError> {
        Ok(TransShape {
            hidden,
            heads,
            ff_hidden,
            activation: ff_activation(class, activation)?,
        })
    }
}

/// What mixes the tokens of an encoder layer (its `attention` module).
pub trait TokenMixer {
    /// x [tokens, hidden] -> [tokens, hidden].
    fn mix(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError>;
}

impl TokenMixer for MultiHeadAttention {
    fn mix(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        self.forward(x)
    }
}

/// The position-wise feed-forward sublayer of NeuralForecast's transformer
/// layers: `norm(x + conv2(act(conv1(x))))`, the kernel-1 `Conv1d`s
/// `<prefix>.conv1` / `.conv2` being linear maps over each token's channels.
#[derive(Debug, Clone)]
pub struct PositionwiseFeedForward {
    conv1: Linear,
    conv2: Linear,
    norm: LayerNorm,
    /// ReLU or GELU (`activation` of the layer).
    activation: Activation,
}

impl PositionwiseFeedForward {
    /// `<prefix>.conv1`, `<prefix>.conv2` and the LayerNorm `<prefix>.<norm>`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        norm: &str,
        hidden: usize,
        ff_hidden: usize,
        activation: Activation,
    ) -> Result<PositionwiseFeedForward, BuildError> {
        Ok(PositionwiseFeedForward {
            conv1: Linear::load_conv1x1(store, &format!("{prefix}.conv1"), hidden, ff_hidden)?,
            conv2: Linear::load_conv1x1(store, &format!("{prefix}.conv2"), ff_hidden, hidden)?,
            norm: LayerNorm::load(store, &format!("{prefix}.{norm}"), &[hidden])?,
            activation,
        })
    }

    /// x [tokens, hidden] -> [tokens, hidden].
    pub fn forward(&self, x: Array2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = self.conv1.forward(x.view())?;
        self.activation.apply_inplace(&mut y);
        let mut out = x + self.conv2.forward(y.view())?;
        self.norm.forward_inplace(&mut out)?;
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct TransEncoderLayer<M = MultiHeadAttention> {
    attention: M,
    norm1: LayerNorm,
    ffn: PositionwiseFeedForward,
}

impl TransEncoderLayer {
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
        ff_hidden: usize,
        activation: Activation,
    ) -> Result<TransEncoderLayer, BuildError> {
        let attention =
            MultiHeadAttention::load(store, &format!("{prefix}.attention"), hidden, heads)?;
        TransEncoderLayer::with_mixer(store, prefix, attention, hidden, ff_hidden, activation)
    }
}

impl<M: TokenMixer> TransEncoderLayer<M> {
    /// A layer whose `<prefix>.attention` is `mixer`, already loaded.
    pub fn with_mixer(
        store: &TensorStore,
        prefix: &str,
        mixer: M,
        hidden: usize,
        ff_hidden: usize,
        activation: Activation,
    ) -> Result<TransEncoderLayer<M>, BuildError> {
        Ok(TransEncoderLayer {
            attention: mixer,
            norm1: LayerNorm::load(store, &format!("{prefix}.norm1"), &[hidden])?,
            ffn: PositionwiseFeedForward::load(
                store, prefix, "norm2", hidden, ff_hidden, activation,
            )?,
        })
    }

    /// x [tokens, hidden] -> [tokens, hidden].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut x = &x + &self.attention.mix(x)?;
        self.norm1.forward_inplace(&mut x)?;
        self.ffn.forward(x)
    }
}

#[derive(Debug, Clone)]
pub struct TransEncoder<M = MultiHeadAttention> {
    layers: Vec<TransEncoderLayer<M>>,
    norm: Option<LayerNorm>,
}

impl<M: TokenMixer> TransEncoder<M> {
    /// `<prefix>.attn_layers.{i}` for i < n_layers, and `<prefix>.norm` when `final_norm`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        final_norm: bool,
        layer: impl Fn(&str) -> Result<TransEncoderLayer<M>, BuildError>,
    ) -> Result<TransEncoder<M>, BuildError> {
        let layers = (0..n_layers)
            .map(|i| layer(&format!("{prefix}.attn_layers.{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let hidden = match layers.first() {
            Some(l) => l.norm1.len(),
            None => return Err(invalid!("an encoder needs at least one layer")),
        };
        let norm = if final_norm {
            Some(LayerNorm::load(
                store,
                &format!("{prefix}.norm"),
                &[hidden],
            )?)
        } else {
            None
        };
        Ok(TransEncoder { layers, norm })
    }

    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut x = x.to_owned();
        for layer in &self.layers {
            x = layer.forward(x.view())?;
        }
        if let Some(norm) = &self.norm {
            norm.forward_inplace(&mut x)?;
        }
        Ok(x)
    }
}

/// How the attentions of a decoder layer run: VanillaTransformer's are
/// unmasked (3.3.0 passes no mask), Informer's self-attention is causal and
/// its heads are `Stacked`.
#[derive(Debug, Clone, Copy)]
pub struct DecoderAttention {
    pub causal_self: bool,
    pub layout: HeadLayout,
}

/// `TransDecoderLayer`: self-attention, cross-attention to the encoder
/// output, then the feed-forward; each with a residual and a LayerNorm
/// (`norm1`, `norm2`, `norm3`).
#[derive(Debug, Clone)]
pub struct TransDecoderLayer {
    self_attention: MultiHeadAttention,
    cross_attention: MultiHeadAttention,
    norm1: LayerNorm,
    norm2: LayerNorm,
    ffn: PositionwiseFeedForward,
    mode: DecoderAttention,
}

impl TransDecoderLayer {
    /// `<prefix>.{self_attention,cross_attention,norm1,norm2,conv1,conv2,norm3}`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
        ff_hidden: usize,
        activation: Activation,
        mode: DecoderAttention,
    ) -> Result<TransDecoderLayer, BuildError> {
        let attn = |name: &str| {
            MultiHeadAttention::load(store, &format!("{prefix}.{name}"), hidden, heads)
        };
        let ln = |name: &str| LayerNorm::load(store, &format!("{prefix}.{name}"), &[hidden]);
        Ok(TransDecoderLayer {
            self_attention: attn("self_attention")?,
            cross_attention: attn("cross_attention")?,
            norm1: ln("norm1")?,
            norm2: ln("norm2")?,
            ffn: PositionwiseFeedForward::load(
                store, prefix, "norm3", hidden, ff_hidden, activation,
            )?,
            mode,
        })
    }

    /// x [tokens, hidden], memory [keys, hidden] -> [tokens, hidden].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ForwardError> {
        let DecoderAttention {
            causal_self,
            layout,
        } = self.mode;
        let mut x = &x + &self.self_attention.attend_with(x, x, causal_self, layout)?;
        self.norm1.forward_inplace(&mut x)?;
        x = &x
            + &self
                .cross_attention
                .attend_with(x.view(), memory, false, layout)?;
        self.norm2.forward_inplace(&mut x)?;
        self.ffn.forward(x)
    }
}

/// `TransDecoder`: `<prefix>.layers.{i}`, then `<prefix>.norm` and the
/// `<prefix>.projection` Linear to the outputs.
#[derive(Debug, Clone)]
pub struct TransDecoder {
    layers: Vec<TransDecoderLayer>,
    norm: LayerNorm,
    projection: Linear,
}

impl TransDecoder {
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        hidden: usize,
        outputs: usize,
        layer: impl Fn(&str) -> Result<TransDecoderLayer, BuildError>,
    ) -> Result<TransDecoder, BuildError> {
        if n_layers == 0 {
            return Err(invalid!("a decoder needs at least one layer"));
        }
        Ok(TransDecoder {
            layers: (0..n_layers)
                .map(|i| layer(&format!("{prefix}.layers.{i}")))
                .collect::<Result<_, _>>()?,
            norm: LayerNorm::load(store, &format!("{prefix}.norm"), &[hidden])?,
            projection: Linear::load(
                store,
                &format!("{prefix}.projection"),
                hidden,
                outputs,
                true,
            )?,
        })
    }

    /// x [tokens, hidden], memory [keys, hidden] -> [tokens, outputs].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
    ) -> Result<Array2<f32>, ForwardError> {
        let mut x = x.to_owned();
        for layer in &self.layers {
            x = layer.forward(x.view(), memory)?;
        }
        self.norm.forward_inplace(&mut x)?;
        self.projection.forward(x.view())
    }
}
