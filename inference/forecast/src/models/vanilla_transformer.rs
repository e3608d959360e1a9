//! VanillaTransformer (neuralforecast/models/vanillatransformer.py): the
//! window and the decoder input (the window's last `label_len` values, then
//! zeros for the horizon) are embedded (circular-conv tokens + sin/cos
//! positions + a Linear over the future exog marks); a full-attention
//! encoder (final LayerNorm) and a decoder (self-attention, which 3.3.0 runs
//! unmasked, and cross-attention) map them to the outputs of the last `h` steps.

use super::{require_futr_exog_only, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::ForwardError;
use crate::nn::attention::HeadLayout;
use crate::nn::seq2seq::{Seq2Seq, TransSeq2Seq};
use crate::nn::transformer::{DecoderAttention, TransEncoder, TransEncoderLayer, TransShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// VanillaTransformer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VanillaTransformerHparams {
    pub decoder_input_size_multiplier: f64,
    pub hidden_size: usize,
    pub n_head: usize,
    pub conv_hidden_size: usize,
    pub activation: String,
    pub decoder_layers: usize,
    pub encoder_layers: usize,
}

impl Default for VanillaTransformerHparams {
    fn default() -> Self {
        VanillaTransformerHparams {
            decoder_input_size_multiplier: 0.5,
            hidden_size: 128,
            n_head: 4,
            conv_hidden_size: 32,
            activation: "gelu".into(),
            decoder_layers: 1,
            encoder_layers: 2,
        }
    }
}

pub struct VanillaTransformer {
    encoder: TransEncoder,
    seq2seq: TransSeq2Seq,
}

impl Model for VanillaTransformer {
    const CLASS: &'static str = "VanillaTransformer";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = VanillaTransformerHparams;
    type Net = VanillaTransformer;

    fn load(
        spec: &ModelSpec,
        hp: VanillaTransformerHparams,
        store: &TensorStore,
    ) -> Result<VanillaTransformer, BuildError> {
        require_futr_exog_only(spec)?;
        let seq = Seq2Seq::new(spec, hp.decoder_input_size_multiplier)?;
        let shape = TransShape::new(
            &spec.class,
            hp.hidden_size,
            hp.n_head,
            hp.conv_hidden_size,
            &hp.activation,
        )?;
        let mode = DecoderAttention {
            causal_self: false,
            layout: HeadLayout::Interleaved,
        };
        Ok(VanillaTransformer {
            encoder: TransEncoder::load(store, "encoder", hp.encoder_layers, true, |p| {
                TransEncoderLayer::load(
                    store,
                    p,
                    shape.hidden,
                    shape.heads,
                    shape.ff_hidden,
                    shape.activation,
                )
            })?,
            seq2seq: TransSeq2Seq::load(store, spec, seq, shape, mode, hp.decoder_layers)?,
        })
    }
}

impl Forecaster for VanillaTransformer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.seq2seq.forward(batch, |e| self.encoder.forward(e))
    }
}
