//! MLPMultivariate (neuralforecast/models/mlpmultivariate.py): one window of
//! all `n_series` series flattened as torch lays it out ([y: time, series |
//! hist: channel, time, series | futr: channel, time, series | static:
//! series, channel]), `num_layers` Linear+ReLU, then a linear head to
//! [h, n_series * outputs].

use super::{
    channels_first, check_series, insample_y, n_series, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::relu_inplace;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3};
use serde::Deserialize;

/// MLPMultivariate's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MlpMultivariateHparams {
    pub num_layers: usize,
    pub hidden_size: usize,
}

impl Default for MlpMultivariateHparams {
    fn default() -> Self {
        MlpMultivariateHparams {
            num_layers: 2,
            hidden_size: 1024,
        }
    }
}

pub struct MlpMultivariate {
    layers: Vec<Linear>,
    out: Linear,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for MlpMultivariate {
    const CLASS: &'static str = "MLPMultivariate";
    const CATEGORICAL: bool = true;
    type Hparams = MlpMultivariateHparams;
    type Net = MlpMultivariate;

    fn load(
        spec: &ModelSpec,
        hp: MlpMultivariateHparams,
        store: &TensorStore,
    ) -> Result<MlpMultivariate, BuildError> {
        let n = n_series(spec)?;
        let num_layers = hp.num_layers;
        let hidden = hp.hidden_size;
        if num_layers == 0 {
            return Err(invalid!("num_layers must be at least 1"));
        }
        let (l, h) = (spec.input_size, spec.h);
        let first_in = n
            * (l + spec.exog_widths().hist * l
                + spec.exog_widths().futr * (l + h)
                + spec.exog_widths().stat);
        let layers = (0..num_layers)
            .map(|i| {
                let fan_in = if i == 0 { first_in } else { hidden };
                Linear::load(store, &format!("mlp.{i}"), fan_in, hidden, true)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = spec.n_outputs();
        Ok(MlpMultivariate {
            layers,
            out: Linear::load(store, "out", hidden, h * outputs * n, true)?,
            n_series: n,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for MlpMultivariate {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        // [series, time] -> torch's [time, series], flattened.
        let mut x: Vec<f32> = insample_y(batch, self.exclude_insample_y)
            .t()
            .iter()
            .copied()
            .collect();
        for block in [&batch.hist_exog, &batch.futr_exog].into_iter().flatten() {
            x.extend(channels_first(block, n)?.iter());
        }
        if let Some(sx) = &batch.stat_exog {
            if sx.nrows() != n {
                return Err(shape!("stat_exog holds {} series, not {n}", sx.nrows()));
            }
            x.extend(sx.as_standard_layout().iter());
        }
        let width = x.len();
        let mut x = Array2::from_shape_vec((1, width), x)
            .map_err(|e| ForwardError::array("MLPMultivariate input", e))?;
        for layer in &self.layers {
            x = layer.forward(x.view())?;
            relu_inplace(&mut x);
        }
        series_rows(&self.out.forward(x.view())?, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
