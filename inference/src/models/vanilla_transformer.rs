//! VanillaTransformer (neuralforecast/models/vanillatransformer.py): the
//! window and the decoder input (the window's last `label_len` values, then
//! zeros for the horizon) are embedded (circular-conv tokens + sin/cos
//! positions + a Linear over the future exog marks); a full-attention
//! encoder (final LayerNorm) and a decoder (self-attention, which 3.3.0 runs
//! unmasked, and cross-attention) map them to the outputs of the last `h` steps.

use super::{insample_y, BuildError, Forecaster, WindowBatch};
use crate::bundle::spec::ModelSpec;
use crate::bundle::tensors::TensorStore;
use crate::nn::activation::Activation;
use crate::nn::attention::HeadLayout;
use crate::nn::embedding::DataEmbedding;
use crate::nn::seq2seq::Seq2Seq;
use crate::nn::transformer::{
    DecoderAttention, TransDecoder, TransDecoderLayer, TransEncoder, TransEncoderLayer,
};
use ndarray::Array3;

pub struct VanillaTransformer {
    enc_embedding: DataEmbedding,
    dec_embedding: DataEmbedding,
    encoder: TransEncoder,
    decoder: TransDecoder,
    seq: Seq2Seq,
    outputs: usize,
    exclude_insample_y: bool,
}

/// `activation` of NeuralForecast's transformer layers: "relu" or "gelu".
pub(crate) fn ff_activation(spec: &ModelSpec) -> Result<Activation, BuildError> {
    match spec.str_param("activation", "gelu")? {
        "relu" => Ok(Activation::ReLU),
        "gelu" => Ok(Activation::GELU),
        other => Err(BuildError::Invalid(format!(
            "{} activation '{other}' is not relu or gelu",
            spec.class
        ))),
    }
}

impl VanillaTransformer {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<VanillaTransformer, BuildError> {
        if !(spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
            return Err(BuildError::Invalid(
                "VanillaTransformer takes future exogenous variables only".into(),
            ));
        }
        let seq = Seq2Seq::from_spec(spec)?;
        let hidden = spec.usize_param("hidden_size", 128)?;
        let heads = spec.usize_param("n_head", 4)?;
        let ff = spec.usize_param("conv_hidden_size", 32)?;
        let act = ff_activation(spec)?;
        let emb = |p: &str| DataEmbedding::load(store, p, 1, seq.n_futr, hidden, true);
        Ok(VanillaTransformer {
            enc_embedding: emb("enc_embedding")?,
            dec_embedding: emb("dec_embedding")?,
            encoder: TransEncoder::load(
                store,
                "encoder",
                spec.usize_param("encoder_layers", 2)?,
                true,
                |p| TransEncoderLayer::load(store, p, hidden, heads, ff, act),
            )?,
            decoder: TransDecoder::load(
                store,
                "decoder",
                spec.usize_param("decoder_layers", 1)?,
                hidden,
                spec.n_outputs(),
                |p| {
                    let mode = DecoderAttention {
                        causal_self: false,
                        layout: HeadLayout::Interleaved,
                    };
                    TransDecoderLayer::load(store, p, hidden, heads, ff, act, mode)
                },
            )?,
            seq,
            outputs: spec.n_outputs(),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for VanillaTransformer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        self.seq.insample(batch)?;
        let y = insample_y(batch, self.exclude_insample_y);
        let dec = self.seq.label_then(y.view(), |_| 0.0);
        let (enc, dec) = self
            .seq
            .embed(batch, y, dec, &self.enc_embedding, &self.dec_embedding)?;
        self.seq.per_window(&enc, &dec, self.outputs, |_, e, d| {
            let memory = self.encoder.forward(e)?;
            self.decoder.forward(d, memory.view())
        })
    }
}
