//! NeuralForecast's `TransEncoderLayer` / `TransEncoder` (common/_modules.py):
//! post-norm self-attention, then a position-wise feed-forward of two
//! kernel-1 `Conv1d`s (a linear map over channels per token), each with a
//! residual and a LayerNorm; optionally a final LayerNorm.

use crate::bundle::tensors::TensorStore;
use crate::nn::activation::Activation;
use crate::nn::attention::MultiHeadAttention;
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use ndarray::{Array2, ArrayView2};

#[derive(Debug, Clone)]
pub struct TransEncoderLayer {
    attention: MultiHeadAttention,
    conv1: Linear,
    conv2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    /// ReLU or GELU (`activation` of the layer).
    activation: Activation,
}

impl TransEncoderLayer {
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
        ff_hidden: usize,
        activation: Activation,
    ) -> Result<TransEncoderLayer, String> {
        Ok(TransEncoderLayer {
            attention: MultiHeadAttention::load(
                store,
                &format!("{prefix}.attention"),
                hidden,
                heads,
            )?,
            conv1: Linear::load_conv1x1(store, &format!("{prefix}.conv1"), hidden, ff_hidden)?,
            conv2: Linear::load_conv1x1(store, &format!("{prefix}.conv2"), ff_hidden, hidden)?,
            norm1: LayerNorm::load(store, &format!("{prefix}.norm1"), &[hidden])?,
            norm2: LayerNorm::load(store, &format!("{prefix}.norm2"), &[hidden])?,
            activation,
        })
    }

    /// x [tokens, hidden] -> [tokens, hidden].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, String> {
        let mut x = &x + &self.attention.forward(x)?;
        self.norm1.forward_inplace(&mut x)?;
        let mut y = self.conv1.forward(x.view())?;
        self.activation.apply_inplace(&mut y);
        let mut out = x + self.conv2.forward(y.view())?;
        self.norm2.forward_inplace(&mut out)?;
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct TransEncoder {
    layers: Vec<TransEncoderLayer>,
    norm: Option<LayerNorm>,
}

impl TransEncoder {
    /// `<prefix>.attn_layers.{i}` for i < n_layers, and `<prefix>.norm` when `final_norm`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        final_norm: bool,
        layer: impl Fn(&str) -> Result<TransEncoderLayer, String>,
    ) -> Result<TransEncoder, String> {
        let layers = (0..n_layers)
            .map(|i| layer(&format!("{prefix}.attn_layers.{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let hidden = match layers.first() {
            Some(l) => l.norm1.len(),
            None => return Err("an encoder needs at least one layer".into()),
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

    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, String> {
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
