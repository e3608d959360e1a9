//! TSMixerx (neuralforecast/models/tsmixerx.py): TSMixer with exogenous
//! inputs. y (RevIN-normalised per series), hist exog and the insample part
//! of futr exog are projected from `input_size` to `h` steps per channel and
//! series, feature-mixed to `ff_dim`; the future part of futr exog and the
//! static features (repeated over the horizon) are feature-mixed alongside;
//! then layer-normalised mixing layers (re-joining the static features when
//! there are some) and a linear head to `outputs * n_series` per step.

use super::{
    channels_first, check_series, insample_y, n_series, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{shape, ForwardError};
use crate::nn::instance_norm::InstanceNorm;
use crate::nn::linear::Linear;
use crate::nn::mixing::{ExogMixingLayer, FeatureMixing, Flavor, MixingLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, Axis, Slice};
use serde::Deserialize;

/// TSMixerx's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TsMixerxHparams {
    pub n_block: usize,
    pub ff_dim: usize,
    pub revin: bool,
}

impl Default for TsMixerxHparams {
    fn default() -> Self {
        TsMixerxHparams {
            n_block: 2,
            ff_dim: 64,
            revin: true,
        }
    }
}

pub struct TsMixerx {
    revin: Option<InstanceNorm>,
    temporal_projection: Linear,
    mixer_hist: FeatureMixing,
    mixer_futr: Option<FeatureMixing>,
    mixer_stat: Option<FeatureMixing>,
    first_mixing: MixingLayer,
    blocks: Vec<ExogMixingLayer>,
    out: Linear,
    n_series: usize,
    input_size: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for TsMixerx {
    const CLASS: &'static str = "TSMixerx";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout"];
    type Hparams = TsMixerxHparams;
    type Net = TsMixerx;

    fn load(
        spec: &ModelSpec,
        hp: TsMixerxHparams,
        store: &TensorStore,
    ) -> Result<TsMixerx, BuildError> {
        let n = n_series(spec)?;
        let n_block = hp.n_block;
        let ff = hp.ff_dim;
        let (l, h) = (spec.input_size, spec.h);
        let (nh, nf, ns) = (
            spec.exog_widths().hist,
            spec.exog_widths().futr,
            spec.exog_widths().stat,
        );
        let revin = if hp.revin {
            Some(InstanceNorm::load_affine(store, "norm", n)?)
        } else {
            None
        };
        let mixer = |prefix: &str, width: usize| {
            FeatureMixing::load(store, prefix, Flavor::TsMixerx, h, width, ff, ff)
        };
        let mixer_futr = (nf > 0)
            .then(|| mixer("feature_mixer_futr", n * nf))
            .transpose()?;
        let mixer_stat = (ns > 0)
            .then(|| mixer("feature_mixer_stat", n * ns))
            .transpose()?;
        let joined = ff * (1 + usize::from(nf > 0) + usize::from(ns > 0));
        let blocks = (0..n_block)
            .map(|i| ExogMixingLayer::load(store, &format!("mixing_block.{i}"), h, n * ns, ff))
            .collect::<Result<Vec<_>, BuildError>>()?;
        let outputs = spec.n_outputs();
        Ok(TsMixerx {
            revin,
            temporal_projection: Linear::load(store, "temporal_projection", l, h, true)?,
            mixer_hist: mixer("feature_mixer_hist", n * (1 + nh + nf))?,
            mixer_futr,
            mixer_stat,
            first_mixing: MixingLayer::load(
                store,
                "first_mixing",
                Flavor::TsMixerx,
                h,
                joined,
                ff,
                ff,
            )?,
            blocks,
            out: Linear::load(store, "out", ff, outputs * n, true)?,
            n_series: n,
            input_size: l,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for TsMixerx {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (n, l, h) = (self.n_series, self.input_size, self.h);
        check_series(batch, n)?;
        let mut y = insample_y(batch, self.exclude_insample_y);
        let stats = match &self.revin {
            Some(norm) => {
                // RevIN runs on the window [time, series].
                let mut w = y.t().as_standard_layout().into_owned();
                let st = norm.normalize(&mut w)?;
                y = w.t().as_standard_layout().into_owned();
                Some(st)
            }
            None => None,
        };
        // One row per (channel, series), channels [y | hist | futr insample],
        // each `input_size` long: torch's [1 + X + F, N, L].
        let hist = batch
            .hist_exog
            .as_ref()
            .map(|x| channels_first(x, n))
            .transpose()?;
        let futr = batch
            .futr_exog
            .as_ref()
            .map(|x| channels_first(x, n))
            .transpose()?;
        let mut rows: Vec<f32> = y.iter().copied().collect();
        for block in hist.iter().chain(&futr) {
            let (c, t, _) = block.dim();
            if t < l {
                return Err(shape!("an exogenous block has {t} steps, not {l}"));
            }
            for ci in 0..c {
                rows.extend(
                    block
                        .index_axis(Axis(0), ci)
                        .slice_axis(Axis(0), Slice::from(..l))
                        .t()
                        .iter(),
                );
            }
        }
        let channels = rows.len() / (n * l).max(1);
        let rows = Array2::from_shape_vec((channels * n, l), rows)
            .map_err(|e| ForwardError::array("TSMixerx window does not reshape", e))?;
        // [C * N, h] -> [h, C * N].
        let projected = self.temporal_projection.forward(rows.view())?;
        let mut parts = vec![self.mixer_hist.forward(projected.t())?];
        if let Some(mixer) = &self.mixer_futr {
            let fx = futr
                .as_ref()
                .ok_or_else(|| shape!("TSMixerx needs futr_exog"))?;
            let (nf, t, _) = fx.dim();
            if t != l + h {
                return Err(shape!("futr_exog has {t} steps, not {}", l + h));
            }
            // [F, h, N] -> [h, F * N].
            let horizon = Array2::from_shape_fn((h, nf * n), |(s, k)| fx[[k / n, l + s, k % n]]);
            parts.push(mixer.forward(horizon.view())?);
        }
        let stat = match &self.mixer_stat {
            Some(mixer) => {
                let sx = batch
                    .stat_exog
                    .as_ref()
                    .ok_or_else(|| shape!("TSMixerx needs stat_exog"))?;
                if sx.nrows() != n {
                    return Err(shape!("stat_exog holds {} series, not {n}", sx.nrows()));
                }
                // [N, S] flattened, repeated for every horizon step.
                let flat: Vec<f32> = sx.as_standard_layout().iter().copied().collect();
                let width = flat.len();
                let stat = Array2::from_shape_fn((h, width), |(_, k)| flat[k]);
                parts.push(mixer.forward(stat.view())?);
                Some(stat)
            }
            None => None,
        };
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let x = ndarray::concatenate(Axis(1), &views)
            .map_err(|e| ForwardError::array("TSMixerx features do not concatenate", e))?;
        let mut x = self.first_mixing.forward(x.view())?;
        for block in &self.blocks {
            x = block.forward(x.view(), stat.as_ref().map(|s| s.view()))?;
        }
        // [h, outputs * N]; RevIN sees the same values as [h * outputs, N].
        let mut y = self.out.forward(x.view())?;
        if let (Some(norm), Some(stats)) = (&self.revin, &stats) {
            let mut steps = y
                .into_shape_with_order((h * self.outputs, n))
                .map_err(|e| ForwardError::array("TSMixerx output does not reshape", e))?;
            norm.denormalize(&mut steps, stats)?;
            y = steps;
        }
        series_rows(&y, h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
