//! TCN (neuralforecast/models/tcn.py): `TemporalConvolutionEncoder` (causal
//! dilated Conv1d + `encoder_activation` per dilation) over
//! `[y | hist | stat | futr[:L]]`, a Linear over time from the window to the
//! horizon (`context_adapter`), then the MLP decoder on `[hidden | futr[L:]]`.

use super::{BuildError, Forecaster, WindowBatch};
use crate::bundle::spec::ModelSpec;
use crate::bundle::tensors::TensorStore;
use crate::nn::activation::Activation;
use crate::nn::conv1d::{Conv1d, ConvShape};
use crate::nn::exog::{step_inputs, steps, ExogWidths, Inputs};
use crate::nn::linear::Linear;
use crate::nn::mlp_decoder::{decode_horizon, decoder_activation, MlpDecoder};
use crate::nn::temporal::over_time;
use ndarray::{Array2, Array3};
use serde_json::Value;

pub struct Tcn {
    convs: Vec<Conv1d>,
    activation: Activation,
    context_adapter: Linear,
    decoder: MlpDecoder,
    h: usize,
    outputs: usize,
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
        let outputs = spec.n_outputs();
        Ok(Tcn {
            convs,
            activation: Activation::parse(spec.str_param("encoder_activation", "ReLU")?)
                .map_err(BuildError::Unsupported)?,
            context_adapter: Linear::load(store, "context_adapter", spec.input_size, spec.h, true)?,
            decoder: MlpDecoder::load(
                store,
                "mlp_decoder",
                hidden + exog.futr,
                outputs,
                spec.usize_param("decoder_hidden_size", 128)?,
                spec.usize_param("decoder_layers", 2)?,
                decoder_activation(spec).map_err(BuildError::Unsupported)?,
            )?,
            h: spec.h,
            outputs,
            input_size: spec.input_size,
            exog,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for Tcn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        let l = self.input_size;
        let inp = Inputs::check(batch, l, self.h, self.exog)?;
        let zeros = Array2::<f32>::zeros(inp.y.raw_dim());
        let y = if self.exclude_insample_y {
            zeros.view()
        } else {
            inp.y
        };
        let mut x = step_inputs(y, inp.hist, inp.stat, inp.futr.map(|f| steps(f, ..l)))?;
        for conv in &self.convs {
            x = conv.forward(x.view())?;
            self.activation.apply_inplace(&mut x);
        }
        let context = over_time(x.view(), &self.context_adapter)?;
        decode_horizon(
            context,
            inp.futr.map(|f| steps(f, l..)),
            &self.decoder,
            self.outputs,
        )
    }
}
