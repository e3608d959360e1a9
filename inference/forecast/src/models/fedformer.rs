//! FEDformer (neuralforecast/models/fedformer.py, `version="Fourier"`): the
//! progressive decomposition encoder-decoder of `nn::decomp_transformer`
//! with Fourier blocks as self-attention and Fourier cross-attention (8
//! heads, as 3.3.0 requires). The frequency modes are rebuilt from the
//! hyperparameters: the lowest `modes`, or with `mode_select="random"` a
//! random draw the saved model does not record, refused unless it is every mode.

use super::{require_futr_exog_only, BuildError, Forecaster};
use crate::nn::decomp_transformer::{moving_avg_window, DecompForecaster, DecompShape};
use crate::nn::fourier_attention::{frequency_modes, FourierBlock, FourierCrossAttention};
use crate::nn::seq2seq::Seq2Seq;
use crate::nn::transformer::ff_activation;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<impl Forecaster, BuildError> {
    require_futr_exog_only(spec)?;
    let version = spec.str_param("version", "Fourier")?;
    if version != "Fourier" {
        return Err(BuildError::Invalid(format!(
            "FEDformer version '{version}': 3.3.0 only builds 'Fourier'"
        )));
    }
    let heads = spec.usize_param("n_head", 8)?;
    let hidden = spec.usize_param("hidden_size", 128)?;
    if heads != 8 || hidden % 8 != 0 {
        return Err(BuildError::Invalid(format!(
            "FEDformer needs 8 heads and a hidden size divisible by 8, got {heads} and {hidden}"
        )));
    }
    let seq = Seq2Seq::from_spec(spec)?;
    let shape = DecompShape {
        hidden,
        heads,
        ff_hidden: spec.usize_param("conv_hidden_size", 32)?,
        moving_avg: moving_avg_window(spec.usize_param("MovingAvg_window", 25)?)?,
        activation: ff_activation(spec)?,
    };
    let (modes, select) = (
        spec.usize_param("modes", 64)?,
        spec.str_param("mode_select", "random")?,
    );
    let modes_of = |len| frequency_modes(len, modes, select).map_err(BuildError::Unsupported);
    let enc_modes = modes_of(seq.input_size)?;
    let dec_modes = modes_of(seq.input_size / 2 + seq.h)?;
    let e = hidden / heads;
    Ok(DecompForecaster::load(
        store,
        spec,
        seq,
        shape,
        |_, p| {
            FourierBlock::load(
                store,
                &format!("{p}.inner_correlation"),
                heads,
                e,
                enc_modes.clone(),
            )
        },
        |_, p| {
            Ok((
                FourierBlock::load(
                    store,
                    &format!("{p}.self_attention.inner_correlation"),
                    heads,
                    e,
                    dec_modes.clone(),
                )?,
                FourierCrossAttention::load(
                    store,
                    &format!("{p}.cross_attention.inner_correlation"),
                    heads,
                    e,
                    dec_modes.clone(),
                    enc_modes.clone(),
                )?,
            ))
        },
    )?)
}
