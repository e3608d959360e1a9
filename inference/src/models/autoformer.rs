//! Autoformer (neuralforecast/models/autoformer.py): the progressive
//! decomposition encoder-decoder of `nn::decomp_transformer` with
//! auto-correlation (period-based lag aggregation) in place of attention.

use super::vanilla_transformer::ff_activation;
use super::{BuildError, Forecaster};
use crate::bundle::spec::ModelSpec;
use crate::bundle::tensors::TensorStore;
use crate::nn::autocorrelation::AutoCorrelation;
use crate::nn::decomp_transformer::{
    moving_avg_window, DecompDecoder, DecompEncoder, DecompForecaster, DecompShape,
};
use crate::nn::embedding::DataEmbedding;
use crate::nn::seq2seq::Seq2Seq;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<impl Forecaster, BuildError> {
    if !(spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(BuildError::Invalid(
            "Autoformer takes future exogenous variables only".into(),
        ));
    }
    let seq = Seq2Seq::from_spec(spec)?;
    let hidden = spec.usize_param("hidden_size", 128)?;
    let shape = DecompShape {
        hidden,
        heads: spec.usize_param("n_head", 4)?,
        ff_hidden: spec.usize_param("conv_hidden_size", 32)?,
        moving_avg: moving_avg_window(spec.usize_param("MovingAvg_window", 25)?)?,
        activation: ff_activation(spec)?,
    };
    let ac = AutoCorrelation {
        factor: spec.usize_param("factor", 3)?,
    };
    let emb = |p: &str| DataEmbedding::load(store, p, 1, seq.n_futr, hidden, false);
    Ok(DecompForecaster {
        enc_embedding: emb("enc_embedding")?,
        dec_embedding: emb("dec_embedding")?,
        encoder: DecompEncoder::load(
            store,
            "encoder",
            spec.usize_param("encoder_layers", 2)?,
            shape,
            |_, _| Ok(ac),
        )?,
        decoder: DecompDecoder::load(
            store,
            "decoder",
            spec.usize_param("decoder_layers", 1)?,
            spec.n_outputs(),
            shape,
            |_, _| Ok((ac, ac)),
        )?,
        seq,
        moving_avg: shape.moving_avg,
        outputs: spec.n_outputs(),
        exclude_insample_y: spec.exclude_insample_y,
    })
}
