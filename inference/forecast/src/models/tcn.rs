//! TCN (neuralforecast/models/tcn.py): `TemporalConvolutionEncoder` (causal
//! dilated Conv1d + `encoder_activation` per dilation) over
//! `[y | hist | stat | futr[:L]]`, a Linear over time from the window to the
//! horizon (`context_adapter`), then the MLP decoder on `[hidden | futr[L:]]`.

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::conv1d::{Conv1d, ConvShape};
use crate::nn::exog::ExogWidths;
use crate::nn::mlp_decoder::{ContextDecoder, DecoderShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// TCN's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TcnHparams {
    pub dilations: Vec<usize>,
    pub decoder_hidden_size: usize,
    pub decoder_layers: usize,
    pub decoder_activation: String,
    pub kernel_size: usize,
    pub encoder_hidden_size: usize,
    pub encoder_activation: String,
}

impl Default for TcnHparams {
    fn default() -> Self {
        TcnHparams {
            dilations: vec![1, 2, 4, 8, 16],
            decoder_hidden_size: 128,
            decoder_layers: 2,
            decoder_activation: "ReLU".into(),
            kernel_size: 2,
            encoder_hidden_size: 128,
            encoder_activation: "ReLU".into(),
        }
    }
}

pub struct Tcn {
    convs: Vec<Conv1d>,
    activation: Activation,
    head: ContextDecoder,
}

impl Model for Tcn {
    const CLASS: &'static str = "TCN";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["context_size"];
    type Hparams = TcnHparams;
    type Net = Tcn;

    fn load(spec: &ModelSpec, hp: TcnHparams, store: &TensorStore) -> Result<Tcn, BuildError> {
        let kernel = hp.kernel_size;
        if kernel < 2 {
            // Chomp1d(0) would cut the whole sequence: such a model cannot run in torch either.
            return Err(invalid!("TCN kernel_size must be at least 2"));
        }
        let dilations = hp.dilations.clone();
        if dilations.contains(&0) {
            return Err(invalid!("dilations must be positive integers"));
        }
        let hidden = hp.encoder_hidden_size;
        let exog = ExogWidths::of(spec);
        let mut convs = Vec::with_capacity(dilations.len());
        let mut cin = exog.channels();
        for (i, d) in dilations.iter().enumerate() {
            let shape = ConvShape::causal(cin, hidden, kernel, *d);
            convs.push(Conv1d::load(
                store,
                &format!("hist_encoder.tcn.{i}.conv"),
                shape,
            )?);
            cin = hidden;
        }
        Ok(Tcn {
            convs,
            activation: Activation::parse(hp.encoder_activation.as_str())?,
            head: ContextDecoder::load(
                store,
                spec,
                DecoderShape {
                    hidden_size: hp.decoder_hidden_size,
                    layers: hp.decoder_layers,
                    activation: &hp.decoder_activation,
                },
                hidden,
            )?,
        })
    }
}

impl Forecaster for Tcn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (inp, mut x) = self.head.window(batch)?;
        for conv in &self.convs {
            x = conv.forward(x.view())?;
            self.activation.apply_inplace(&mut x);
        }
        self.head.forward(x.view(), inp.futr)
    }
}
