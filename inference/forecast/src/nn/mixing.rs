//! The time- and feature-mixing MLPs of TSMixer and TSMixerx, on one window
//! x [time, channels]. The two models differ only in the normalisation:
//! TSMixer batch-normalises the block input (`Norm::Before`, eval-mode
//! running statistics over the flattened window) and adds the raw input back;
//! TSMixerx layer-normalises the residual sum over the whole window
//! (`Norm::After`) and may project the residual to a new width.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::nn::activation::relu_inplace;
use crate::nn::batch_norm::BatchNorm1d;
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2};

/// TSMixer's BatchNorm1d epsilon.
pub const BATCH_NORM_EPS: f32 = 1e-3;

#[derive(Debug, Clone)]
pub enum Norm {
    /// BatchNorm1d of the input (TSMixer); the residual is the raw input.
    Before(BatchNorm1d),
    /// LayerNorm((time, channels)) of the residual sum (TSMixerx).
    After(LayerNorm),
}

impl Norm {
    /// The block's output from its residual sum: layer-normalised (TSMixerx)
    /// or as it is (TSMixer).
    fn finish(&self, mut sum: Array2<f32>) -> Result<Array2<f32>, ForwardError> {
        if let Norm::After(ln) = self {
            ln.forward_inplace(&mut sum)?;
        }
        Ok(sum)
    }
}

/// Where the weights sit and which normalisation a mixing block has.
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    TsMixer,
    TsMixerx,
}

impl Flavor {
    fn norm(
        self,
        store: &TensorStore,
        prefix: &str,
        time: usize,
        channels: usize,
    ) -> Result<Norm, BuildError> {
        Ok(match self {
            Flavor::TsMixer => Norm::Before(BatchNorm1d::load(
                store,
                prefix,
                time * channels,
                BATCH_NORM_EPS,
            )?),
            Flavor::TsMixerx => Norm::After(LayerNorm::load(store, prefix, &[time, channels])?),
        })
    }
}

/// Batch-normalises a copy of x, whose row-major flattening is torch's feature order.
fn batch_normed(bn: &BatchNorm1d, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
    let mut y = x.as_standard_layout().into_owned();
    let flat = y
        .as_slice_mut()
        .ok_or_else(|| shape!("mixing input is not contiguous"))?;
    bn.forward_inplace(flat)?;
    Ok(y)
}

/// An MLP along time, shared by every channel: x + relu(Linear_time(x)).
#[derive(Debug, Clone)]
pub struct TemporalMixing {
    norm: Norm,
    lin: Linear,
}

impl TemporalMixing {
    /// `<prefix>.temporal_norm` and `<prefix>.temporal_lin`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        flavor: Flavor,
        time: usize,
        channels: usize,
    ) -> Result<TemporalMixing, BuildError> {
        Ok(TemporalMixing {
            norm: flavor.norm(store, &format!("{prefix}.temporal_norm"), time, channels)?,
            lin: Linear::load(store, &format!("{prefix}.temporal_lin"), time, time, true)?,
        })
    }

    /// x [time, channels] -> [time, channels].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        // The linear map runs over each channel's time series: rows of xᵀ.
        let series = match &self.norm {
            // TSMixer flattens [channels, time], so the statistics follow xᵀ.
            Norm::Before(bn) => batch_normed(bn, x.t())?,
            Norm::After(_) => x.t().as_standard_layout().into_owned(),
        };
        let mut y = self.lin.forward(series.view())?;
        relu_inplace(&mut y);
        self.norm
            .finish(y.t().as_standard_layout().into_owned() + x)
    }
}

/// An MLP across channels at each step: x + Linear(relu(Linear(x))).
#[derive(Debug, Clone)]
pub struct FeatureMixing {
    norm: Norm,
    lin1: Linear,
    lin2: Linear,
    /// TSMixerx's `project_residual` when the width changes.
    project: Option<Linear>,
}

impl FeatureMixing {
    /// `<prefix>.feature_norm`, `.feature_lin_1`, `.feature_lin_2` and, for
    /// TSMixerx when `channels != out_channels`, `.project_residual`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        flavor: Flavor,
        time: usize,
        channels: usize,
        ff_dim: usize,
        out_channels: usize,
    ) -> Result<FeatureMixing, BuildError> {
        let lin = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), i, o, true)
        };
        let (norm, project) = match flavor {
            Flavor::TsMixer => {
                if channels != out_channels {
                    return Err(invalid!("TSMixer's feature mixing keeps its width"));
                }
                (
                    flavor.norm(store, &format!("{prefix}.feature_norm"), time, channels)?,
                    None,
                )
            }
            Flavor::TsMixerx => (
                flavor.norm(store, &format!("{prefix}.feature_norm"), time, out_channels)?,
                (channels != out_channels)
                    .then(|| lin("project_residual", channels, out_channels))
                    .transpose()?,
            ),
        };
        Ok(FeatureMixing {
            norm,
            lin1: lin("feature_lin_1", channels, ff_dim)?,
            lin2: lin("feature_lin_2", ff_dim, out_channels)?,
            project,
        })
    }

    /// x [time, channels] -> [time, out_channels].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = match &self.norm {
            // TSMixer flattens [time, channels]: x's own order.
            Norm::Before(bn) => self.lin1.forward(batch_normed(bn, x)?.view())?,
            Norm::After(_) => self.lin1.forward(x)?,
        };
        relu_inplace(&mut y);
        let y = self.lin2.forward(y.view())?;
        self.norm.finish(match &self.project {
            Some(p) => y + p.forward(x)?,
            None => y + x,
        })
    }
}

/// A temporal then a feature mixer (`MixingLayer` of both models).
#[derive(Debug, Clone)]
pub struct MixingLayer {
    temporal: TemporalMixing,
    feature: FeatureMixing,
}

impl MixingLayer {
    /// `<prefix>.temporal_mixer` and `<prefix>.feature_mixer`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        flavor: Flavor,
        time: usize,
        channels: usize,
        ff_dim: usize,
        out_channels: usize,
    ) -> Result<MixingLayer, BuildError> {
        Ok(MixingLayer {
            temporal: TemporalMixing::load(
                store,
                &format!("{prefix}.temporal_mixer"),
                flavor,
                time,
                channels,
            )?,
            feature: FeatureMixing::load(
                store,
                &format!("{prefix}.feature_mixer"),
                flavor,
                time,
                channels,
                ff_dim,
                out_channels,
            )?,
        })
    }

    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let x = self.temporal.forward(x)?;
        self.feature.forward(x.view())
    }
}

/// A mixing block of TSMixerx: `MixingLayerWithStaticExogenous` when the model
/// has static features (they are feature-mixed to `ff_dim`, joined to x, and
/// the pair mixed back to `ff_dim`), a plain `MixingLayer` otherwise.
#[derive(Debug, Clone)]
pub struct ExogMixingLayer {
    stat: Option<FeatureMixing>,
    mix: MixingLayer,
}

impl ExogMixingLayer {
    /// `<prefix>.temporal_mixer`, `.feature_mixer` and, when `stat_width > 0`,
    /// `.feature_mixer_stat`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        time: usize,
        stat_width: usize,
        ff_dim: usize,
    ) -> Result<ExogMixingLayer, BuildError> {
        let flavor = Flavor::TsMixerx;
        let stat = (stat_width > 0)
            .then(|| {
                FeatureMixing::load(
                    store,
                    &format!("{prefix}.feature_mixer_stat"),
                    flavor,
                    time,
                    stat_width,
                    ff_dim,
                    ff_dim,
                )
            })
            .transpose()?;
        let width = if stat.is_some() { 2 * ff_dim } else { ff_dim };
        Ok(ExogMixingLayer {
            stat,
            mix: MixingLayer::load(store, prefix, flavor, time, width, ff_dim, ff_dim)?,
        })
    }

    /// x [time, ff_dim], stat [time, stat_width] -> [time, ff_dim].
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        stat: Option<ArrayView2<f32>>,
    ) -> Result<Array2<f32>, ForwardError> {
        match (&self.stat, stat) {
            (None, _) => self.mix.forward(x),
            (Some(mixer), Some(stat)) => {
                let s = mixer.forward(stat)?;
                let joined =
                    ndarray::concatenate(ndarray::Axis(1), &[x, s.view()]).map_err(|e| {
                        ForwardError::array("static mixing inputs do not concatenate", e)
                    })?;
                self.mix.forward(joined.view())
            }
            (Some(_), None) => Err(shape!("this mixing layer needs the static features")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layer_norm::tests::from_parts as ln;
    use crate::nn::linear::tests::from_parts as lin;
    use ndarray::array;

    #[test]
    fn temporal_mixing_runs_along_time_per_channel() {
        // time 2, channels 2; Linear over time swaps the two steps.
        let swap = lin(array![[0.0, 1.0], [1.0, 0.0]], None);
        let tm = TemporalMixing {
            norm: Norm::After(ln(vec![1.0; 4], vec![0.0; 4])),
            lin: swap,
        };
        let x = array![[1.0f32, -3.0], [2.0, 4.0]];
        // relu(swapped) + x = [[2+1, 4-3], [1+2, 0+4]] = [[3, 1], [3, 4]], then layer norm.
        let got = tm.forward(x.view()).unwrap();
        let mut want = array![[3.0f32, 1.0], [3.0, 4.0]];
        ln(vec![1.0; 4], vec![0.0; 4])
            .forward_inplace(&mut want)
            .unwrap();
        assert_eq!(got, want);
    }
}
