//! VanillaTransformer (neuralforecast/models/vanillatransformer.py): the
//! window and the decoder input (the window's last `label_len` values, then
//! zeros for the horizon) are embedded (circular-conv tokens + sin/cos
//! positions + a Linear over the future exog marks); a full-attention
//! encoder (final LayerNorm) and a decoder (self-attention, which 3.3.0 runs
//! unmasked, and cross-attention) map them to the outputs of the last `h` steps.

use super::{require_futr_exog_only, BuildError, Forecaster, WindowBatch};
use crate::nn::attention::HeadLayout;
use crate::nn::seq2seq::{Seq2Seq, TransSeq2Seq};
use crate::nn::transformer::{DecoderAttention, TransEncoder, TransEncoderLayer, TransShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;

pub struct VanillaTransformer {
    encoder: TransEncoder,
    seq2seq: TransSeq2Seq,
}

impl VanillaTransformer {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<VanillaTransformer, BuildError> {
        require_futr_exog_only(spec)?;
        let seq = Seq2Seq::from_spec(spec)?;
        let shape = TransShape::from_spec(spec)?;
        let mode = DecoderAttention {
            causal_self: false,
            layout: HeadLayout::Interleaved,
        };
        Ok(VanillaTransformer {
            encoder: TransEncoder::load(
                store,
                "encoder",
                spec.usize_param("encoder_layers", 2)?,
                true,
                |p| {
                    TransEncoderLayer::load(
                        store,
                        p,
                        shape.hidden,
                        shape.heads,
                        shape.ff_hidden,
                        shape.activation,
                    )
                },
            )?,
            seq2seq: TransSeq2Seq::load(store, spec, seq, shape, mode)?,
        })
    }
}

impl Forecaster for VanillaTransformer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        self.seq2seq.forward(batch, |e| self.encoder.forward(e))
    }
}
