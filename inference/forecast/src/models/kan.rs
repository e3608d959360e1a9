//! KAN (neuralforecast/models/kan.py): MLP's flattened input
//! `[y | hist exog | futr exog | static]` through `n_hidden_layers + 1`
//! Kolmogorov-Arnold layers (no activation between them) to `h * outputs`.

use super::{flat_inputs, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, ForwardError};
use crate::nn::kan::KanLinear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::Deserialize;

/// KAN's `hidden_size`: one width for every hidden layer, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Widths {
    One(usize),
    Each(Vec<usize>),
}

/// KAN's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KanHparams {
    pub n_hidden_layers: usize,
    pub hidden_size: Widths,
    pub grid_size: usize,
    pub spline_order: usize,
    pub enable_standalone_scale_spline: bool,
}

impl Default for KanHparams {
    fn default() -> Self {
        KanHparams {
            n_hidden_layers: 1,
            hidden_size: Widths::One(512),
            grid_size: 5,
            spline_order: 3,
            enable_standalone_scale_spline: true,
        }
    }
}

pub struct Kan {
    layers: Vec<KanLinear>,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for Kan {
    const CLASS: &'static str = "KAN";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &[
        "grid_eps",
        "grid_range",
        "scale_base",
        "scale_noise",
        "scale_spline",
    ];
    type Hparams = KanHparams;
    type Net = Kan;

    fn load(spec: &ModelSpec, hp: KanHparams, store: &TensorStore) -> Result<Kan, BuildError> {
        let n_hidden = hp.n_hidden_layers;
        // `hidden_size` is one width for every hidden layer, or a list of them.
        let hidden: Vec<usize> = match &hp.hidden_size {
            Widths::One(w) => vec![*w; n_hidden],
            Widths::Each(ws) => ws.clone(),
        };
        if hidden.len() != n_hidden {
            return Err(invalid!(
                "hidden_size lists {} widths for {n_hidden} hidden layers",
                hidden.len()
            ));
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
        let grid_size = hp.grid_size;
        let order = hp.spline_order;
        let standalone = hp.enable_standalone_scale_spline;
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
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let mut x = flat_inputs(batch, self.exclude_insample_y)?;
        for layer in &self.layers {
            x = layer.forward(x.view())?;
        }
        to_horizon(x, self.h, self.outputs)
    }
}
