//! TiDE (neuralforecast/models/tide.py): residual MLP blocks project the
//! exogenous inputs per step to `temporal_width`, a dense encoder/decoder maps
//! [y | hist proj | futr proj | static] to `decoder_output_dim` per horizon
//! step, a temporal decoder adds the step's future projection, and a linear
//! global skip from y is added at the end.

use super::{insample_y, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::relu_inplace;
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, Axis, Slice};
use serde::Deserialize;

/// `MLPResidual`: LayerNorm?(Linear(relu(Linear(x))) + Linear_skip(x)).
struct MlpResidual {
    lin1: Linear,
    lin2: Linear,
    skip: Linear,
    norm: Option<LayerNorm>,
}

impl MlpResidual {
    fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        hidden: usize,
        output: usize,
        layernorm: bool,
    ) -> Result<MlpResidual, BuildError> {
        let lin = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), i, o, true)
        };
        Ok(MlpResidual {
            lin1: lin("lin1", input, hidden)?,
            lin2: lin("lin2", hidden, output)?,
            skip: lin("skip", input, output)?,
            norm: if layernorm {
                Some(LayerNorm::load(
                    store,
                    &format!("{prefix}.norm"),
                    &[output],
                )?)
            } else {
                None
            },
        })
    }

    /// x [rows, input] -> [rows, output].
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = self.lin1.forward(x)?;
        relu_inplace(&mut y);
        let mut y = self.lin2.forward(y.view())? + self.skip.forward(x)?;
        if let Some(norm) = &self.norm {
            norm.forward_inplace(&mut y)?;
        }
        Ok(y)
    }
}

/// TiDE's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TideHparams {
    pub hidden_size: usize,
    pub decoder_output_dim: usize,
    pub temporal_decoder_dim: usize,
    pub temporal_width: usize,
    pub num_encoder_layers: usize,
    pub num_decoder_layers: usize,
    pub layernorm: bool,
}

impl Default for TideHparams {
    fn default() -> Self {
        TideHparams {
            hidden_size: 512,
            decoder_output_dim: 32,
            temporal_decoder_dim: 128,
            temporal_width: 4,
            num_encoder_layers: 1,
            num_decoder_layers: 1,
            layernorm: true,
        }
    }
}

pub struct Tide {
    hist_projection: Option<MlpResidual>,
    futr_projection: Option<MlpResidual>,
    encoder: Vec<MlpResidual>,
    decoder: Vec<MlpResidual>,
    temporal_decoder: MlpResidual,
    global_skip: Linear,
    input_size: usize,
    h: usize,
    outputs: usize,
    temporal_width: usize,
    decoder_output_dim: usize,
    exclude_insample_y: bool,
}

impl Model for Tide {
    const CLASS: &'static str = "TiDE";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = TideHparams;
    type Net = Tide;

    fn load(spec: &ModelSpec, hp: TideHparams, store: &TensorStore) -> Result<Tide, BuildError> {
        let hidden = hp.hidden_size;
        let decoder_output_dim = hp.decoder_output_dim;
        let temporal_decoder_dim = hp.temporal_decoder_dim;
        let temporal_width = hp.temporal_width;
        let n_enc = hp.num_encoder_layers;
        let n_dec = hp.num_decoder_layers;
        let layernorm = hp.layernorm;
        if n_enc == 0 || n_dec == 0 {
            return Err(invalid!(
                "TiDE needs at least one encoder and one decoder layer"
            ));
        }
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let (nh, nf, ns) = (
            spec.exog_widths().hist,
            spec.exog_widths().futr,
            spec.exog_widths().stat,
        );
        let block = |prefix: &str, input: usize, hid: usize, output: usize| {
            MlpResidual::load(store, prefix, input, hid, output, layernorm)
        };
        let hist_projection = (nh > 0)
            .then(|| block("hist_exog_projection", nh, hidden, temporal_width))
            .transpose()?;
        let futr_projection = (nf > 0)
            .then(|| block("futr_exog_projection", nf, hidden, temporal_width))
            .transpose()?;
        let encoder_in = l
            + if nh > 0 { l * temporal_width } else { 0 }
            + if nf > 0 { (l + h) * temporal_width } else { 0 }
            + ns;
        let encoder = (0..n_enc)
            .map(|i| {
                let input = if i == 0 { encoder_in } else { hidden };
                block(&format!("dense_encoder.{i}"), input, hidden, hidden)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let decoder = (0..n_dec)
            .map(|i| {
                let output = if i + 1 == n_dec {
                    decoder_output_dim * h
                } else {
                    hidden
                };
                block(&format!("dense_decoder.{i}"), hidden, hidden, output)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let temporal_in = decoder_output_dim + if nf > 0 { temporal_width } else { 0 };
        Ok(Tide {
            hist_projection,
            futr_projection,
            encoder,
            decoder,
            temporal_decoder: block(
                "temporal_decoder",
                temporal_in,
                temporal_decoder_dim,
                outputs,
            )?,
            global_skip: Linear::load(store, "global_skip", l, h * outputs, true)?,
            input_size: l,
            h,
            outputs,
            temporal_width,
            decoder_output_dim,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

/// A per-step block over x [batch, steps, channels]: [batch, steps, out].
fn per_step(block: &MlpResidual, x: &Array3<f32>) -> Result<Array3<f32>, ForwardError> {
    let (b, t, c) = x.dim();
    let rows = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * t, c))
        .map_err(|e| ForwardError::array("exogenous block does not flatten", e))?;
    let y = block.forward(rows.view())?;
    let out = y.ncols();
    y.into_shape_with_order((b, t, out))
        .map_err(|e| ForwardError::array("projection does not reshape", e))
}

fn flat_rows(x: &Array3<f32>) -> Result<Array2<f32>, ForwardError> {
    let (b, t, c) = x.dim();
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, t * c))
        .map_err(|e| ForwardError::array("projection does not flatten", e))
}

impl Forecaster for Tide {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let y = insample_y(batch, self.exclude_insample_y);
        let (b, h) = (y.nrows(), self.h);
        let skip = to_horizon(self.global_skip.forward(y.view())?, h, self.outputs)?;
        let mut parts = vec![y];
        if let Some(p) = &self.hist_projection {
            let hx = batch
                .hist_exog
                .as_ref()
                .ok_or_else(|| shape!("TiDE needs hist_exog"))?;
            parts.push(flat_rows(&per_step(p, hx)?)?);
        }
        let futr = match &self.futr_projection {
            Some(p) => {
                let fx = batch
                    .futr_exog
                    .as_ref()
                    .ok_or_else(|| shape!("TiDE needs futr_exog"))?;
                let proj = per_step(p, fx)?;
                parts.push(flat_rows(&proj)?);
                Some(proj)
            }
            None => None,
        };
        if let Some(sx) = &batch.stat_exog {
            parts.push(sx.clone());
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let mut x = ndarray::concatenate(Axis(1), &views)
            .map_err(|e| ForwardError::array("TiDE inputs do not concatenate", e))?;
        for block in self.encoder.iter().chain(&self.decoder) {
            x = block.forward(x.view())?;
        }
        // [batch, h * decoder_output_dim] -> one row per (series, step).
        let mut x = x
            .into_shape_with_order((b * h, self.decoder_output_dim))
            .map_err(|e| ForwardError::array("decoder output does not reshape", e))?;
        if let Some(proj) = futr {
            let (_, steps, _) = proj.dim();
            if steps != self.input_size + h {
                return Err(shape!(
                    "futr_exog has {steps} steps, TiDE needs {}",
                    self.input_size + h
                ));
            }
            let horizon = proj
                .slice_axis(Axis(1), Slice::from(self.input_size..))
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((b * h, self.temporal_width))
                .map_err(|e| ForwardError::array("future projection does not reshape", e))?;
            x = ndarray::concatenate(Axis(1), &[x.view(), horizon.view()]).map_err(|e| {
                ForwardError::array("temporal decoder inputs do not concatenate", e)
            })?;
        }
        let out = self.temporal_decoder.forward(x.view())?;
        let out = out
            .into_shape_with_order((b, h, self.outputs))
            .map_err(|e| ForwardError::array("temporal decoder output does not reshape", e))?;
        Ok(out + skip)
    }
}
