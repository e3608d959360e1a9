//! FEDformer (neuralforecast/models/fedformer.py, `version="Fourier"`): the
//! progressive decomposition encoder-decoder of `nn::decomp_transformer`
//! with Fourier blocks as self-attention and Fourier cross-attention (8
//! heads, as 3.3.0 requires). The frequency modes are rebuilt from the
//! hyperparameters: the lowest `modes`, or with `mode_select="random"` a
//! random draw the saved model does not record, refused unless it is every mode.

use super::{require_futr_exog_only, BuildError, Model};
use crate::forecaster::invalid;
use crate::nn::decomp_transformer::{moving_avg_window, DecompForecaster, DecompShape};
use crate::nn::fourier_attention::{frequency_modes, FourierBlock, FourierCrossAttention};
use crate::nn::seq2seq::Seq2Seq;
use crate::nn::transformer::ff_activation;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use serde::Deserialize;

/// FEDformer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FedFormerHparams {
    pub decoder_input_size_multiplier: f64,
    pub hidden_size: usize,
    pub n_head: usize,
    pub conv_hidden_size: usize,
    #[serde(rename = "MovingAvg_window")]
    pub moving_avg_window: usize,
    pub activation: String,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub version: String,
    pub modes: usize,
    pub mode_select: String,
}

impl Default for FedFormerHparams {
    fn default() -> Self {
        FedFormerHparams {
            decoder_input_size_multiplier: 0.5,
            hidden_size: 128,
            n_head: 8,
            conv_hidden_size: 32,
            moving_avg_window: 25,
            activation: "gelu".into(),
            encoder_layers: 2,
            decoder_layers: 1,
            version: "Fourier".into(),
            modes: 64,
            mode_select: "random".into(),
        }
    }
}

/// The forward pass FEDformer builds.
pub type FedFormerNet = DecompForecaster<FourierBlock, FourierBlock, FourierCrossAttention>;

pub struct FedFormer;

impl Model for FedFormer {
    const CLASS: &'static str = "FEDformer";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = FedFormerHparams;
    type Net = FedFormerNet;

    fn load(
        spec: &ModelSpec,
        hp: FedFormerHparams,
        store: &TensorStore,
    ) -> Result<FedFormerNet, BuildError> {
        require_futr_exog_only(spec)?;
        let version = hp.version.as_str();
        if version != "Fourier" {
            return Err(invalid!(
                "FEDformer version '{version}': 3.3.0 only builds 'Fourier'"
            ));
        }
        let heads = hp.n_head;
        let hidden = hp.hidden_size;
        if heads != 8 || !hidden.is_multiple_of(8) {
            return Err(invalid!(
                "FEDformer needs 8 heads and a hidden size divisible by 8, got {heads} and {hidden}"
            ));
        }
        let seq = Seq2Seq::new(spec, hp.decoder_input_size_multiplier)?;
        let shape = DecompShape {
            hidden,
            heads,
            ff_hidden: hp.conv_hidden_size,
            moving_avg: moving_avg_window(hp.moving_avg_window)?,
            activation: ff_activation(&spec.class, &hp.activation)?,
            encoder_layers: hp.encoder_layers,
            decoder_layers: hp.decoder_layers,
        };
        let (modes, select) = (hp.modes, hp.mode_select.as_str());
        let modes_of = |len| frequency_modes(len, modes, select);
        let enc_modes = modes_of(seq.input_size)?;
        let dec_modes = modes_of(seq.input_size / 2 + seq.h)?;
        let e = hidden / heads;
        DecompForecaster::load(
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
        )
    }
}
