//! MLP (neuralforecast/models/mlp.py): [y | hist exog | futr exog | static]
//! flattened, `num_layers` Linear+ReLU, then a linear head to the horizon.

use super::{flat_inputs, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, ForwardError};
use crate::nn::activation::relu_inplace;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// MLP's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MlpHparams {
    pub num_layers: usize,
    pub hidden_size: usize,
}

impl Default for MlpHparams {
    fn default() -> Self {
        MlpHparams {
            num_layers: 2,
            hidden_size: 1024,
        }
    }
}

pub struct Mlp {
    layers: Vec<Linear>,
    out: Linear,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for Mlp {
    const CLASS: &'static str = "MLP";
    const CATEGORICAL: bool = true;
    type Hparams = MlpHparams;
    type Net = Mlp;

    fn load(spec: &ModelSpec, hp: MlpHparams, store: &TensorStore) -> Result<Mlp, BuildError> {
        let num_layers = hp.num_layers;
        let hidden = hp.hidden_size;
        if num_layers == 0 {
            return Err(invalid!("num_layers must be at least 1"));
        }
        let l = spec.input_size;
        let first_in = l
            + spec.exog_widths().hist * l
            + spec.exog_widths().futr * (l + spec.h)
            + spec.exog_widths().stat;
        let mut layers = Vec::with_capacity(num_layers);
        for i in 0..num_layers {
            let fan_in = if i == 0 { first_in } else { hidden };
            layers.push(Linear::load(
                store,
                &format!("mlp.{i}"),
                fan_in,
                hidden,
                true,
            )?);
        }
        let outputs = spec.n_outputs();
        Ok(Mlp {
            layers,
            out: Linear::load(store, "out", hidden, spec.h * outputs, true)?,
            h: spec.h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for Mlp {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let mut x = flat_inputs(batch, self.exclude_insample_y)?;
        for layer in &self.layers {
            x = layer.forward(x.view())?;
            relu_inplace(&mut x);
        }
        to_horizon(self.out.forward(x.view())?, self.h, self.outputs)
    }
}
