//! Autoformer (neuralforecast/models/autoformer.py): the progressive
//! decomposition encoder-decoder of `nn::decomp_transformer` with
//! auto-correlation (period-based lag aggregation) in place of attention.

use super::{require_futr_exog_only, BuildError, Model};
use crate::nn::autocorrelation::AutoCorrelation;
use crate::nn::decomp_transformer::{moving_avg_window, DecompForecaster, DecompShape};
use crate::nn::seq2seq::Seq2Seq;
use crate::nn::transformer::ff_activation;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use serde::Deserialize;

/// Autoformer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AutoformerHparams {
    pub decoder_input_size_multiplier: f64,
    pub hidden_size: usize,
    pub n_head: usize,
    pub conv_hidden_size: usize,
    #[serde(rename = "MovingAvg_window")]
    pub moving_avg_window: usize,
    pub activation: String,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub factor: usize,
}

impl Default for AutoformerHparams {
    fn default() -> Self {
        AutoformerHparams {
            decoder_input_size_multiplier: 0.5,
            hidden_size: 128,
            n_head: 4,
            conv_hidden_size: 32,
            moving_avg_window: 25,
            activation: "gelu".into(),
            encoder_layers: 2,
            decoder_layers: 1,
            factor: 3,
        }
    }
}

/// The forward pass Autoformer builds.
pub type AutoformerNet = DecompForecaster<AutoCorrelation, AutoCorrelation, AutoCorrelation>;

pub struct Autoformer;

impl Model for Autoformer {
    const CLASS: &'static str = "Autoformer";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = AutoformerHparams;
    type Net = AutoformerNet;

    fn load(
        spec: &ModelSpec,
        hp: AutoformerHparams,
        store: &TensorStore,
    ) -> Result<AutoformerNet, BuildError> {
        require_futr_exog_only(spec)?;
        let seq = Seq2Seq::new(spec, hp.decoder_input_size_multiplier)?;
        let hidden = hp.hidden_size;
        let shape = DecompShape {
            hidden,
            heads: hp.n_head,
            ff_hidden: hp.conv_hidden_size,
            moving_avg: moving_avg_window(hp.moving_avg_window)?,
            activation: ff_activation(&spec.class, &hp.activation)?,
            encoder_layers: hp.encoder_layers,
            decoder_layers: hp.decoder_layers,
        };
        let ac = AutoCorrelation { factor: hp.factor };
        DecompForecaster::load(store, spec, seq, shape, |_, _| Ok(ac), |_, _| Ok((ac, ac)))
    }
}
