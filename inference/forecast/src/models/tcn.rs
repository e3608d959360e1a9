//! TCN (neuralforecast/models/tcn.py): `TemporalConvolutionEncoder` (causal
//! dilated Conv1d + `encoder_activation` per dilation) over
//! `[y | hist | stat | futr[:L]]`, a Linear over time from the window to the
//! horizon (`context_adapter`), then the MLP decoder on `[hidden | futr[L:]]`.

use super::{BuildError, Forecaster, WindowBatch};
use crate::nn::activation::Activation;
use crate::nn::conv1d::{Conv1d, ConvShape};
use crate::nn::exog::{ExogWidths, Inputs};
use crate::nn::mlp_decoder::ContextDecoder;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde_json::Value;

pub struct Tcn {
    convs: Vec<Conv1d>,
    activation: Activation,
    head: ContextDecoder,
    h: usize,
    input_size: usize,
    exog: ExogWidths,
    exclude_insample_y: bool,
}

impl Tcn {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<Tcn, BuildError> {
        let kernel = spec.usize_param("kernel_size", 2)?;
        if kernel < 2 {
            // Chomp1d(0) would cut the whole sequence: such a model cannot run in torch either.
            return Err(BuildError::Invalid(
                "TCN kernel_size must be at least 2".into(),
            ));
        }
        let dilations: Vec<usize> = match spec.hparams.get("dilations") {
            None | Some(Value::Null) => vec![1, 2, 4, 8, 16],
            Some(Value::Array(d)) => d
                .iter()
                .map(|v| v.as_u64().filter(|v| *v > 0).map(|v| v as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| BuildError::Invalid("dilations must be positive integers".into()))?,
            Some(_) => return Err(BuildError::Invalid("dilations must be a list".into())),
        };
        let hidden = spec.usize_param("encoder_hidden_size", 128)?;
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
            activation: Activation::parse(spec.str_param("encoder_activation", "ReLU")?)
                .map_err(BuildError::Unsupported)?,
            head: ContextDecoder::load(store, spec, hidden)?,
            h: spec.h,
            input_size: spec.input_size,
            exog,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for Tcn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        let inp = Inputs::check(batch, self.input_size, self.h, self.exog)?;
        let mut x = inp.window_steps(self.exclude_insample_y)?;
        for conv in &self.convs {
            x = conv.forward(x.view())?;
            self.activation.apply_inplace(&mut x);
        }
        self.head.forward(x.view(), inp.futr)
    }
}
