//! The forecaster NeuralForecast's RNN, LSTM and GRU share (models/rnn.py,
//! lstm.py, gru.py and `BaseModel`'s recurrent predict path); the model files
//! only choose the cell.
//!
//! `recurrent=False` (direct): the stacked encoder reads the `input_size`
//! window `[y | hist | stat | futr[:L]]`; its last `h` outputs (or, when
//! `h > input_size`, a Linear over time `upsample_sequence`) are joined with
//! `futr[L:]` and mapped by the MLP decoder to `[h, outputs]`.
//!
//! `recurrent=True`: the class sets `RECURRENT`, so `BaseModel` adds one step
//! to the window (`inference_input_size + 1`), shifts the exogenous inputs one
//! step ahead of y (at t the net reads y_t with x_{t+1}; future hist values
//! are zeros), and predicts one step at a time with the state kept, feeding
//! each prediction back as the next y. With several outputs (MQLoss) the
//! value fed back is their mean, and 3.3.0's `_predict_step_recurrent_single`
//! broadcasts that mean into every output column, so all quantile columns are
//! equal: reproduced here. RNN and GRU project with a Linear `proj`; LSTM
//! uses `proj_size = outputs` inside the cell.

use super::categorical::CategoricalEmbeddings;
use super::exog::{step_inputs, steps, ExogWidths, Inputs};
use super::linear::Linear;
use super::mlp_decoder::{decode_horizon, DecoderShape, MlpDecoder};
use super::recurrent::{CellKind, LayerShape, RecurrentStack};
use super::temporal::over_time;
use crate::forecaster::{shape, BuildError, Forecaster, ForwardError, WindowBatch};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3, Axis, Slice};
use serde::Deserialize;

/// The hyperparameters of RNN, LSTM and GRU (their `__init__` arguments that
/// shape the forward pass).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecurrentHparams {
    pub encoder_n_layers: usize,
    /// Unset: the class's default (`RecurrentForecaster::load`'s `hidden_default`).
    pub encoder_hidden_size: Option<usize>,
    pub encoder_bias: bool,
    pub recurrent: bool,
    /// `BaseModel`'s: the window of `recurrent=True` (input_size when unset or < 1).
    pub inference_input_size: Option<i64>,
    pub decoder_hidden_size: usize,
    pub decoder_layers: usize,
    pub decoder_activation: String,
}

impl Default for RecurrentHparams {
    fn default() -> Self {
        RecurrentHparams {
            encoder_n_layers: 2,
            encoder_hidden_size: None,
            encoder_bias: true,
            recurrent: false,
            inference_input_size: None,
            decoder_hidden_size: 128,
            decoder_layers: 2,
            decoder_activation: "ReLU".into(),
        }
    }
}

/// Their `__init__` arguments that shape training only.
pub const RECURRENT_NON_ARCHITECTURE: &[&str] =
    &["context_size", "encoder_activation", "encoder_dropout"];

#[derive(Debug)]
enum Head {
    Direct {
        decoder: MlpDecoder,
        /// Linear(input_size, h) over time, present when h > input_size.
        upsample: Option<Linear>,
    },
    /// `proj` Linear for RNN/GRU; `None` for LSTM (projected in the cell).
    Recurrent { proj: Option<Linear> },
}

#[derive(Debug)]
pub struct RecurrentForecaster {
    encoder: RecurrentStack,
    head: Head,
    h: usize,
    outputs: usize,
    /// Insample steps read: input_size, or inference_input_size + 1 when recurrent.
    window: usize,
    exog: ExogWidths,
    exclude_insample_y: bool,
    /// The hist row NeuralForecast feeds where it zeroes hist exog (past the
    /// window): zeros, except a categorical column's unseen embedding.
    hist_pad: Array1<f32>,
}

impl RecurrentForecaster {
    /// `hidden_default` is the class's `encoder_hidden_size` default.
    pub fn load(
        spec: &ModelSpec,
        hp: &RecurrentHparams,
        store: &TensorStore,
        kind: CellKind,
        hidden_default: usize,
    ) -> Result<RecurrentForecaster, BuildError> {
        let n_layers = hp.encoder_n_layers;
        let hidden = hp.encoder_hidden_size.unwrap_or(hidden_default);
        let bias = hp.encoder_bias;
        let recurrent = hp.recurrent;
        let outputs = spec.n_outputs();
        let exog = ExogWidths::of(spec);
        let proj_in_cell = recurrent && kind == CellKind::Lstm;
        let first = LayerShape {
            input: exog.channels(),
            hidden,
            proj: if proj_in_cell { outputs } else { 0 },
            bias,
        };
        let encoder = RecurrentStack::load(store, "hist_encoder", kind, first, n_layers)?;
        let (head, window) = if recurrent {
            let proj = if proj_in_cell {
                None
            } else {
                Some(Linear::load(store, "proj", hidden, outputs, true)?)
            };
            // BaseModel: inference_input_size defaults to input_size (also when < 1), then + 1.
            let inference = match hp.inference_input_size {
                Some(n) if n >= 1 => n as usize,
                _ => spec.input_size,
            };
            (Head::Recurrent { proj }, inference + 1)
        } else {
            let shape = DecoderShape {
                hidden_size: hp.decoder_hidden_size,
                layers: hp.decoder_layers,
                activation: &hp.decoder_activation,
            };
            let decoder = MlpDecoder::from_shape(store, shape, hidden + exog.futr, outputs)?;
            let upsample = (spec.h > spec.input_size)
                .then(|| Linear::load(store, "upsample_sequence", spec.input_size, spec.h, true))
                .transpose()?;
            (Head::Direct { decoder, upsample }, spec.input_size)
        };
        let hist_pad = CategoricalEmbeddings::load(spec, store)?
            .and_then(|e| e.hist_pad())
            .unwrap_or_else(|| Array1::zeros(exog.hist));
        Ok(RecurrentForecaster {
            hist_pad,
            encoder,
            head,
            h: spec.h,
            outputs,
            window,
            exog,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }

    fn direct(
        &self,
        x: &Array3<f32>,
        futr: Option<ArrayView3<f32>>,
        decoder: &MlpDecoder,
        upsample: Option<&Linear>,
    ) -> Result<Array3<f32>, ForwardError> {
        let (b, l, _) = x.dim();
        let h = self.h;
        let mut state = self.encoder.zero_state(b);
        let enc = self.encoder.run(x.view(), &mut state)?;
        let hidden = match upsample {
            Some(up) => over_time(enc.view(), up)?,
            None if l >= h => steps(enc.view(), l - h..).to_owned(),
            None => return Err(shape!("window of {l} steps is shorter than h = {h}")),
        };
        decode_horizon(hidden, futr.map(|f| steps(f, l..)), decoder, self.outputs)
    }

    fn recurrent(
        &self,
        y: ArrayView2<f32>,
        hist: Option<ArrayView3<f32>>,
        stat: Option<ArrayView2<f32>>,
        futr: Option<ArrayView3<f32>>,
        proj: Option<&Linear>,
        horizon: usize,
    ) -> Result<Array3<f32>, ForwardError> {
        let (b, l) = y.dim();
        // hist at t is the value of t + 1; the step after the window is a
        // zero (NeuralForecast zeroes hist exog past the window before it
        // embeds categories: `hist_pad`).
        let hist_shifted = hist.map(|hx| {
            let mut sh = Array3::<f32>::zeros(hx.raw_dim());
            sh.slice_axis_mut(Axis(1), Slice::from(..l - 1))
                .assign(&steps(hx, 1..));
            sh.index_axis_mut(Axis(1), l - 1)
                .assign(&self.hist_pad.broadcast((b, self.hist_pad.len()))?);
            Some(sh)
        });
        let hist_shifted = match hist_shifted {
            Some(None) => return Err(shape!("hist padding does not fit the hist block")),
            Some(Some(sh)) => Some(sh),
            None => None,
        };
        let futr_shifted = futr.map(|fx| steps(fx, 1..l + 1));
        let x = step_inputs(
            y,
            hist_shifted.as_ref().map(|a| a.view()),
            stat,
            futr_shifted,
        )?;
        let mut state = self.encoder.zero_state(b);
        let mut enc = self.encoder.run(x.view(), &mut state)?;
        let mut out = Array3::<f32>::zeros((b, horizon, self.outputs));
        let zeros_hist = self
            .hist_pad
            .broadcast((b, 1, self.exog.hist))
            .ok_or_else(|| shape!("hist padding does not fit the hist block"))?
            .to_owned();
        for tau in 0..horizon {
            let last = enc.index_axis(Axis(1), enc.dim().1 - 1);
            let pred = match proj {
                Some(p) => p.forward(last)?,
                None => last.to_owned(),
            };
            if pred.ncols() != self.outputs {
                return Err(shape!(
                    "recurrent head gives {} outputs, the loss has {}",
                    pred.ncols(),
                    self.outputs
                ));
            }
            let fed: Array2<f32> = if self.outputs == 1 {
                pred
            } else {
                pred.mean_axis(Axis(1))
                    .ok_or_else(|| shape!("empty output row"))?
                    .insert_axis(Axis(1))
            };
            out.index_axis_mut(Axis(1), tau).assign(
                &fed.broadcast((b, self.outputs))
                    .ok_or_else(|| shape!("output does not broadcast"))?,
            );
            if tau + 1 == horizon {
                break;
            }
            let next = l + tau + 1;
            let step = step_inputs(
                fed.view(),
                hist.map(|_| zeros_hist.view()),
                stat,
                futr.map(|fx| steps(fx, next..next + 1)),
            )?;
            enc = self.encoder.run(step.view(), &mut state)?;
        }
        Ok(out)
    }
}

impl Forecaster for RecurrentForecaster {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.forward_steps(batch, self.h)
    }

    fn insample_steps(&self) -> Option<usize> {
        Some(self.window)
    }

    fn rolls_out(&self) -> bool {
        matches!(self.head, Head::Recurrent { .. })
    }

    fn forward_rollout(&self, batch: &WindowBatch, h: usize) -> Result<Array3<f32>, ForwardError> {
        if !self.rolls_out() {
            return Err(shape!(
                "the MLP decoder forecasts its trained horizon only, not {h} steps"
            ));
        }
        self.forward_steps(batch, h)
    }
}

impl RecurrentForecaster {
    fn forward_steps(&self, batch: &WindowBatch, h: usize) -> Result<Array3<f32>, ForwardError> {
        let inp = Inputs::check(batch, self.window, h, self.exog)?;
        let zeros;
        let y = if self.exclude_insample_y {
            zeros = Array2::<f32>::zeros(inp.y.raw_dim());
            zeros.view()
        } else {
            inp.y
        };
        match &self.head {
            Head::Direct { decoder, upsample } => {
                let l = self.window;
                let x = step_inputs(y, inp.hist, inp.stat, inp.futr.map(|f| steps(f, ..l)))?;
                self.direct(&x, inp.futr, decoder, upsample.as_ref())
            }
            Head::Recurrent { proj } => {
                self.recurrent(y, inp.hist, inp.stat, inp.futr, proj.as_ref(), h)
            }
        }
    }
}
