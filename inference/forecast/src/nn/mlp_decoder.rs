//! `neuralforecast.common._modules.MLP`, the decoder head of the RNN family
//! and TCN: `num_layers` = 1 is one Linear; otherwise Linear + activation
//! (+ dropout, off in eval) repeated, then an output Linear. Keys are the
//! `nn.Sequential` positions: `layers.0`, `layers.3`, ... `layers.{3(n-1)}`.
//! `ContextDecoder` is the head TCN and DilatedRNN put it in.

use super::activation::Activation;
use super::exog::{steps, ExogWidths, Inputs};
use super::linear::Linear;
use super::temporal::over_time;
use crate::forecaster::{invalid, BuildError, ForwardError, WindowBatch};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

#[derive(Debug, Clone)]
pub struct MlpDecoder {
    hidden: Vec<Linear>,
    out: Linear,
    activation: Activation,
}

/// The models' `mlp_decoder` hyperparameters: `decoder_hidden_size`,
/// `decoder_layers` and `decoder_activation` (as `resolve_decoder_activation`
/// reads it: unset means ReLU).
#[derive(Debug, Clone, Copy)]
pub struct DecoderShape<'a> {
    pub hidden_size: usize,
    pub layers: usize,
    pub activation: &'a str,
}

impl MlpDecoder {
    /// The models' `mlp_decoder`, sized by `decoder_hidden_size`,
    /// `decoder_layers` and `decoder_activation`.
    pub fn from_shape(
        store: &TensorStore,
        shape: DecoderShape,
        in_features: usize,
        out_features: usize,
    ) -> Result<MlpDecoder, BuildError> {
        MlpDecoder::load(
            store,
            "mlp_decoder",
            in_features,
            out_features,
            shape.hidden_size,
            shape.layers,
            Activation::parse(shape.activation)?,
        )
    }

    pub fn load(
        store: &TensorStore,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        hidden_size: usize,
        num_layers: usize,
        activation: Activation,
    ) -> Result<MlpDecoder, BuildError> {
        if num_layers == 0 {
            return Err(invalid!("{prefix}: decoder_layers must be at least 1"));
        }
        if num_layers == 1 {
            return Ok(MlpDecoder {
                hidden: Vec::new(),
                out: Linear::load(
                    store,
                    &format!("{prefix}.layers.0"),
                    in_features,
                    out_features,
                    true,
                )?,
                activation: Activation::Identity,
            });
        }
        let hidden = (0..num_layers - 1)
            .map(|i| {
                let fan_in = if i == 0 { in_features } else { hidden_size };
                Linear::load(
                    store,
                    &format!("{prefix}.layers.{}", 3 * i),
                    fan_in,
                    hidden_size,
                    true,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(MlpDecoder {
            hidden,
            out: Linear::load(
                store,
                &format!("{prefix}.layers.{}", 3 * (num_layers - 1)),
                hidden_size,
                out_features,
                true,
            )?,
            activation,
        })
    }

    pub fn in_features(&self) -> usize {
        self.hidden
            .first()
            .map_or(self.out.in_features(), Linear::in_features)
    }

    /// x [rows, in] -> [rows, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut cur: Option<Array2<f32>> = None;
        for layer in &self.hidden {
            let mut y = layer.forward(cur.as_ref().map_or(x, |a| a.view()))?;
            self.activation.apply_inplace(&mut y);
            cur = Some(y);
        }
        self.out.forward(cur.as_ref().map_or(x, |a| a.view()))
    }
}

/// [B, h, C] (+ futr [B, h, F]) -> decoder rows -> [B, h, outputs].
pub fn decode_horizon(
    hidden: Array3<f32>,
    futr_h: Option<ArrayView3<f32>>,
    decoder: &MlpDecoder,
    outputs: usize,
) -> Result<Array3<f32>, ForwardError> {
    let (b, h, _) = hidden.dim();
    let joined = match futr_h {
        Some(f) => ndarray::concatenate(Axis(2), &[hidden.view(), f])
            .map_err(|e| ForwardError::array("future exogenous block does not join", e))?,
        None => hidden,
    };
    let width = joined.dim().2;
    let rows = joined
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * h, width))
        .map_err(|e| ForwardError::array("decoder input does not reshape", e))?;
    super::temporal::c_order(decoder.forward(rows.view())?)
        .into_shape_with_order((b, h, outputs))
        .map_err(|e| ForwardError::array("decoder output does not reshape", e))
}

/// TCN's and DilatedRNN's head: `context_adapter`, a Linear over time from
/// the `input_size` window to the `h` horizon steps, then the `mlp_decoder`
/// on `[hidden | futr[L:]]` at each horizon step. It also knows the window
/// those encoders read ([`ContextDecoder::window`]).
#[derive(Debug, Clone)]
pub struct ContextDecoder {
    context_adapter: Linear,
    decoder: MlpDecoder,
    outputs: usize,
    h: usize,
    input_size: usize,
    exog: ExogWidths,
    exclude_insample_y: bool,
}

impl ContextDecoder {
    /// For an encoder of `hidden` channels.
    pub fn load(
        store: &TensorStore,
        spec: &ModelSpec,
        shape: DecoderShape,
        hidden: usize,
    ) -> Result<ContextDecoder, BuildError> {
        let outputs = spec.n_outputs();
        Ok(ContextDecoder {
            context_adapter: Linear::load(store, "context_adapter", spec.input_size, spec.h, true)?,
            decoder: MlpDecoder::from_shape(
                store,
                shape,
                hidden + spec.exog_widths().futr,
                outputs,
            )?,
            outputs,
            h: spec.h,
            input_size: spec.input_size,
            exog: ExogWidths::of(spec),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }

    /// The batch checked against the model's window, and the encoder's input
    /// over it, `[y | hist | stat | futr[:L]]` per step.
    pub fn window<'b>(
        &self,
        batch: &'b WindowBatch,
    ) -> Result<(Inputs<'b>, Array3<f32>), ForwardError> {
        let inp = Inputs::check(batch, self.input_size, self.h, self.exog)?;
        let x = inp.window_steps(self.exclude_insample_y)?;
        Ok((inp, x))
    }

    /// The encoded window x [B, L, hidden] and futr [B, L + h, F] -> [B, h, outputs].
    pub fn forward(
        &self,
        x: ArrayView3<f32>,
        futr: Option<ArrayView3<f32>>,
    ) -> Result<Array3<f32>, ForwardError> {
        let l = x.dim().1;
        let context = over_time(x, &self.context_adapter)?;
        decode_horizon(
            context,
            futr.map(|f| steps(f, l..)),
            &self.decoder,
            self.outputs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::linear::tests::from_parts;
    use ndarray::array;

    #[test]
    fn hidden_layers_use_the_activation_and_the_head_does_not() {
        let d = MlpDecoder {
            hidden: vec![from_parts(array![[1.0, -1.0], [2.0, 0.0]], None)],
            out: from_parts(array![[1.0, -1.0]], Some(array![-5.0])),
            activation: Activation::ReLU,
        };
        // hidden: [1-3, 2] -> relu [0, 2]; out: 0 - 2 - 5
        let y = d.forward(array![[1.0f32, 3.0]].view()).unwrap();
        assert_eq!(y, array![[-7.0f32]]);
        assert_eq!(d.in_features(), 2);
        assert!(d.forward(array![[1.0f32]].view()).is_err());
    }
}
