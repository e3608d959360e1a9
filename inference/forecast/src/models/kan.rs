//! KAN (neuralforecast/models/kan.py): MLP's flattened input
//! `[y | hist exog | futr exog | static]` through `n_hidden_layers + 1`
//! Kolmogorov-Arnold layers (no activation between them) to `h * outputs`.

use super::{flat_inputs, to_horizon, BuildError, Forecaster, WindowBatch};
use crate::nn::kan::KanLinear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde_json::Value;

pub struct Kan {
    layers: Vec<KanLinear>,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Kan {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<Kan, BuildError> {
        let n_hidden = spec.usize_param("n_hidden_layers", 1)?;
        // `hidden_size` is one width for every hidden layer, or a list of them.
        let hidden: Vec<usize> = match spec.hparams.get("hidden_size") {
            None | Some(Value::Null) => vec![512; n_hidden],
            Some(Value::Array(ws)) => ws
                .iter()
                .map(|w| w.as_u64().map(|w| w as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| "hidden_size must list non-negative integers".to_string())?,
            Some(_) => vec![spec.usize_param("hidden_size", 512)?; n_hidden],
        };
        if hidden.len() != n_hidden {
            return Err(BuildError::Invalid(format!(
                "hidden_size lists {} widths for {n_hidden} hidden layers",
                hidden.len()
            )));
        }
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let first = l
            + spec.exog_widths().hist * l
            + spec.exog_widths().futr * (l + h)
            + spec.exog_widths().stat;
        let widths: Vec<usize> = std::iter::once(first)
            .chain(hidden)
            .chain(std::iter::once(h * outputs))
            .collect();
        let grid_size = spec.usize_param("grid_size", 5)?;
        let order = spec.usize_param("spline_order", 3)?;
        let standalone = spec.bool_param("enable_standalone_scale_spline", true)?;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                KanLinear::load(
                    store,
                    &format!("layers.{i}"),
                    w[0],
                    w[1],
                    grid_size,
                    order,
                    standalone,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Kan {
            layers,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for Kan {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        let mut x = flat_inputs(batch, self.exclude_insample_y)?;
        for layer in &self.layers {
            x = layer.forward(x.view())?;
        }
        to_horizon(x, self.h, self.outputs)
    }
}
