//! TimeMixer (neuralforecast/models/timemixer.py) for one multivariate window.
//! The window is pooled into `down_sampling_layers + 1` scales, each
//! RevIN-normalised per series; with `channel_independence = 0` each scale is
//! split into season and trend (moving average), the season embedded across
//! series; with 1 every series is its own sequence. Past-decomposable-mixing
//! blocks decompose every scale (moving average, or `dft_decomp`), mix the
//! seasons bottom-up and the trends top-down; each scale is mapped to the
//! horizon, projected, summed over scales and RevIN-undone; MQLoss adds a
//! Linear across series.
//!
//! `dft_decomp` keeps torch's indexing: the rfft runs over the hidden axis and
//! `freq[0] = 0` clears the first sequence of the batch, not the DC bin.
//! `down_sampling_method='conv'` builds a fresh, randomly initialised Conv1d
//! on every forward pass in PyTorch, so it is refused.

use super::{
    check_series, insample_y, n_series, require_no_exog, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::decomp::series_decomp;
use crate::nn::embedding::TokenEmbedding;
use crate::nn::feed_forward::FeedForward;
use crate::nn::fft::{irfft, rfft};
use crate::nn::instance_norm::{InstanceNorm, InstanceStats};
use crate::nn::linear::Linear;
use crate::nn::pooling::{Pool1d, PoolKind};
use crate::nn::temporal::{over_time, per_step};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView3, Axis};
use serde::Deserialize;

/// How a past-decomposable-mixing block splits a sequence.
#[derive(Debug, Clone, Copy)]
enum Decomp {
    /// `SeriesDecomp(kernel)` along time.
    MovingAvg(usize),
    /// `DFT_series_decomp(top_k)` along the last axis.
    Dft(usize),
}

impl Decomp {
    /// x [batch, time, d] -> (season, trend).
    fn split(self, x: &Array3<f32>) -> Result<(Array3<f32>, Array3<f32>), ForwardError> {
        match self {
            Decomp::MovingAvg(kernel) => {
                let mut season = Array3::zeros(x.raw_dim());
                let mut trend = Array3::zeros(x.raw_dim());
                for (b, seq) in x.outer_iter().enumerate() {
                    let (res, avg) = series_decomp(seq.t(), kernel);
                    season.index_axis_mut(Axis(0), b).assign(&res.t());
                    trend.index_axis_mut(Axis(0), b).assign(&avg.t());
                }
                Ok((season, trend))
            }
            Decomp::Dft(top_k) => dft_split(x, top_k),
        }
    }
}

/// `DFT_series_decomp`: rfft of every [d] row; amplitudes of batch 0 set to 0;
/// bins at or below the smallest top-k amplitude over the whole batch cleared;
/// the season is the irfft of what is left.
fn dft_split(x: &Array3<f32>, top_k: usize) -> Result<(Array3<f32>, Array3<f32>), ForwardError> {
    let (b, t, d) = x.dim();
    let bins = d / 2 + 1;
    if top_k == 0 || top_k > bins {
        return Err(shape!("top_k {top_k} does not fit {bins} frequency bins"));
    }
    let rows = x.as_standard_layout();
    let rows = rows
        .as_slice()
        .ok_or_else(|| shape!("decomposition input is not contiguous"))?;
    let mut spectra: Vec<_> = rows.chunks_exact(d.max(1)).map(rfft).collect();
    let amp = |i: usize, k: usize, s: &[crate::nn::fft::Complex]| {
        if i / t.max(1) == 0 {
            0.0
        } else {
            s[k].abs()
        }
    };
    let mut threshold = f32::INFINITY;
    for (i, s) in spectra.iter().enumerate() {
        let mut a: Vec<f32> = (0..bins).map(|k| amp(i, k, s)).collect();
        a.sort_by(|p, q| q.total_cmp(p));
        threshold = threshold.min(a[top_k - 1]);
    }
    let mut season = Vec::with_capacity(b * t * d);
    for (i, s) in spectra.iter_mut().enumerate() {
        for k in 0..bins {
            if amp(i, k, s) <= threshold {
                s[k] = Default::default();
            }
        }
        season.extend(irfft(s, d));
    }
    let season = Array3::from_shape_vec((b, t, d), season)
        .map_err(|e| ForwardError::array("season does not reshape", e))?;
    let trend = x - &season;
    Ok((season, trend))
}

/// A Linear or feed-forward over the time axis of x [batch, time, d].
fn time_ff(ff: &FeedForward, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
    let y = ff.forward3(x.permuted_axes([0, 2, 1]))?;
    Ok(y.permuted_axes([0, 2, 1]).as_standard_layout().into_owned())
}

/// `PastDecomposableMixing`.
struct MixingBlock {
    decomp: Decomp,
    /// `cross_layer` (channel_independence = 0).
    cross: Option<FeedForward>,
    /// Season: scale i -> i + 1.
    down: Vec<FeedForward>,
    /// Trend: `up[k]` maps scale L - k to L - k - 1.
    up: Vec<FeedForward>,
    /// `out_cross_layer` (channel_independence = 1).
    out_cross: Option<FeedForward>,
}

impl MixingBlock {
    fn forward(&self, xs: &[Array3<f32>]) -> Result<Vec<Array3<f32>>, ForwardError> {
        let mut seasons = Vec::with_capacity(xs.len());
        let mut trends = Vec::with_capacity(xs.len());
        for x in xs {
            let (mut s, mut t) = self.decomp.split(x)?;
            if let Some(cross) = &self.cross {
                s = cross.forward3(s.view())?;
                t = cross.forward3(t.view())?;
            }
            seasons.push(s);
            trends.push(t);
        }
        // Seasons bottom-up: out[i + 1] = s[i + 1] + down[i](out[i]).
        for (i, ff) in self.down.iter().enumerate() {
            let res = time_ff(ff, seasons[i].view())?;
            seasons[i + 1] = &seasons[i + 1] + &res;
        }
        // Trends top-down: out[j] = t[j] + up(out[j + 1]).
        let last = trends.len() - 1;
        for (k, ff) in self.up.iter().enumerate() {
            let j = last - k;
            let res = time_ff(ff, trends[j].view())?;
            trends[j - 1] = &trends[j - 1] + &res;
        }
        xs.iter()
            .zip(seasons.into_iter().zip(trends))
            .map(|(ori, (s, t))| {
                let out = s + t;
                match &self.out_cross {
                    Some(ff) => Ok(ori + &ff.forward3(out.view())?),
                    None => Ok(out),
                }
            })
            .collect()
    }
}

/// TimeMixer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TimeMixerHparams {
    pub d_model: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    pub moving_avg: usize,
    pub down_sampling_layers: usize,
    pub down_sampling_window: usize,
    pub channel_independence: usize,
    pub down_sampling_method: String,
    pub decomp_method: String,
    pub top_k: usize,
    pub use_norm: bool,
}

impl Default for TimeMixerHparams {
    fn default() -> Self {
        TimeMixerHparams {
            d_model: 32,
            d_ff: 32,
            e_layers: 4,
            moving_avg: 25,
            down_sampling_layers: 1,
            down_sampling_window: 2,
            channel_independence: 0,
            down_sampling_method: "avg".into(),
            decomp_method: "moving_avg".into(),
            top_k: 5,
            use_norm: true,
        }
    }
}

pub struct TimeMixer {
    norms: Vec<InstanceNorm>,
    use_norm: bool,
    pool: Pool1d,
    channel_independent: bool,
    /// `preprocess` kernel (channel_independence = 0).
    moving_avg: usize,
    embedding: TokenEmbedding,
    blocks: Vec<MixingBlock>,
    predict: Vec<Linear>,
    projection: Linear,
    /// `out_res_layers` then `regression_layers`, per scale (channel_independence = 0).
    residual: Vec<(Linear, Linear)>,
    distr_output: Option<Linear>,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for TimeMixer {
    const CLASS: &'static str = "TimeMixer";
    const NON_ARCHITECTURE: &'static [&'static str] = &["decoder_input_size_multiplier", "dropout"];
    type Hparams = TimeMixerHparams;
    type Net = TimeMixer;

    fn load(
        spec: &ModelSpec,
        hp: TimeMixerHparams,
        store: &TensorStore,
    ) -> Result<TimeMixer, BuildError> {
        require_no_exog(spec)?;
        let n = n_series(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let d_model = hp.d_model;
        let d_ff = hp.d_ff;
        let e_layers = hp.e_layers;
        let moving_avg = hp.moving_avg;
        let layers = hp.down_sampling_layers;
        let window = hp.down_sampling_window;
        let ci = match hp.channel_independence {
            0 => false,
            1 => true,
            v => return Err(invalid!("channel_independence must be 0 or 1, not {v}")),
        };
        let kind = match hp.down_sampling_method.as_str() {
            "avg" => PoolKind::Avg,
            "max" => PoolKind::Max,
            "conv" => {
                return Err(BuildError::Unsupported(
                    "TimeMixer with down_sampling_method='conv' builds a new randomly initialised Conv1d on every forward pass in NeuralForecast 3.3.0, so its forecasts are random".into(),
                ))
            }
            other => {
                return Err(invalid!(
                    "down_sampling_method '{other}' is not avg, max or conv"
                ))
            }
        };
        let decomp = match hp.decomp_method.as_str() {
            "moving_avg" => Decomp::MovingAvg(moving_avg),
            "dft_decomp" => Decomp::Dft(hp.top_k),
            other => {
                return Err(invalid!(
                    "decomp_method '{other}' is not moving_avg or dft_decomp"
                ))
            }
        };
        if moving_avg.is_multiple_of(2) || window < 1 {
            return Err(invalid!(
                "moving_avg {moving_avg} must be odd and down_sampling_window {window} positive"
            ));
        }
        // Scale lengths: input_size // window^i (the trend layers' ceil must agree).
        let lens: Vec<usize> = (0..=layers).map(|i| l / window.pow(i as u32)).collect();
        if lens.contains(&0) || (1..=layers).any(|i| l.div_ceil(window.pow(i as u32)) != lens[i]) {
            return Err(invalid!(
                "input_size {l} is not divisible into {layers} down-sampling steps of {window}"
            ));
        }
        let ff =
            |prefix: &str, dims| FeedForward::load(store, prefix, (0, 2), dims, Activation::GELU);
        let blocks = (0..e_layers)
            .map(|b| {
                let p = format!("pdm_blocks.{b}");
                Ok(MixingBlock {
                    decomp,
                    cross: (!ci)
                        .then(|| ff(&format!("{p}.cross_layer"), (d_model, d_ff, d_model)))
                        .transpose()?,
                    down: (0..layers)
                        .map(|i| {
                            ff(
                                &format!("{p}.mixing_multi_scale_season.down_sampling_layers.{i}"),
                                (lens[i], lens[i + 1], lens[i + 1]),
                            )
                        })
                        .collect::<Result<_, BuildError>>()?,
                    up: (0..layers)
                        .map(|k| {
                            let i = layers - 1 - k;
                            ff(
                                &format!("{p}.mixing_multi_scale_trend.up_sampling_layers.{k}"),
                                (lens[i + 1], lens[i], lens[i]),
                            )
                        })
                        .collect::<Result<_, BuildError>>()?,
                    out_cross: ci
                        .then(|| ff(&format!("{p}.out_cross_layer"), (d_model, d_ff, d_model)))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let residual = if ci {
            Vec::new()
        } else {
            lens.iter()
                .enumerate()
                .map(|(i, &t)| {
                    Ok((
                        Linear::load(store, &format!("out_res_layers.{i}"), t, t, true)?,
                        Linear::load(store, &format!("regression_layers.{i}"), t, h, true)?,
                    ))
                })
                .collect::<Result<_, BuildError>>()?
        };
        Ok(TimeMixer {
            norms: (0..=layers)
                .map(|i| InstanceNorm::load_revin(store, &format!("normalize_layers.{i}"), n))
                .collect::<Result<_, _>>()?,
            use_norm: hp.use_norm,
            pool: Pool1d::new(kind, window, window, false)?,
            channel_independent: ci,
            moving_avg,
            embedding: TokenEmbedding::load(
                store,
                "enc_embedding.value_embedding",
                if ci { 1 } else { n },
                d_model,
            )?,
            blocks,
            predict: lens
                .iter()
                .enumerate()
                .map(|(i, &t)| Linear::load(store, &format!("predict_layers.{i}"), t, h, true))
                .collect::<Result<_, _>>()?,
            projection: Linear::load(
                store,
                "projection_layer",
                d_model,
                if ci { 1 } else { n },
                true,
            )?,
            residual,
            distr_output: (outputs > 1)
                .then(|| Linear::load(store, "distr_output", n, n * outputs, true))
                .transpose()?,
            n_series: n,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl TimeMixer {
    /// The scales [time_i, series], each normalised by its own RevIN; the
    /// statistics of scale 0 undo the output.
    fn scales(
        &self,
        x: Array2<f32>,
    ) -> Result<(Vec<Array2<f32>>, Option<InstanceStats>), ForwardError> {
        let mut raw = vec![x];
        for _ in 1..self.norms.len() {
            let last = raw.last().ok_or_else(|| shape!("no scale to pool"))?;
            let pooled = self.pool.forward_rows(last.t())?;
            raw.push(pooled.t().as_standard_layout().into_owned());
        }
        let mut stats0 = None;
        for (i, (x, norm)) in raw.iter_mut().zip(&self.norms).enumerate() {
            let mut z = x.clone();
            let stats = norm.normalize(&mut z)?;
            if self.use_norm {
                *x = z;
            }
            if i == 0 {
                stats0 = Some(stats);
            }
        }
        Ok((raw, stats0))
    }
}

impl Forecaster for TimeMixer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (n, h) = (self.n_series, self.h);
        check_series(batch, n)?;
        let window = insample_y(batch, self.exclude_insample_y)
            .t()
            .as_standard_layout()
            .into_owned();
        let (scales, stats) = self.scales(window)?;
        // Sequences per scale [batch, time, channels]: the window, or each series alone.
        let (inputs, trends): (Vec<Array3<f32>>, Vec<Array2<f32>>) = if self.channel_independent {
            let seqs = scales
                .iter()
                .map(|x| {
                    let (t, _) = x.dim();
                    Array3::from_shape_fn((n, t, 1), |(s, k, _)| x[[k, s]])
                })
                .collect();
            (seqs, Vec::new())
        } else {
            scales
                .iter()
                .map(|x| {
                    let (season, trend) = series_decomp(x.t(), self.moving_avg);
                    let season = season.t().as_standard_layout().into_owned();
                    (
                        season.insert_axis(Axis(0)),
                        trend.t().as_standard_layout().into_owned(),
                    )
                })
                .unzip()
        };
        let mut enc = inputs
            .iter()
            .map(|x| self.embedding.forward(x.view()))
            .collect::<Result<Vec<_>, _>>()?;
        for block in &self.blocks {
            enc = block.forward(&enc)?;
        }
        // Per scale [h, series], summed over the scales in order.
        let mut y: Option<Array2<f32>> = None;
        for (i, e) in enc.iter().enumerate() {
            let dec = over_time(e.view(), &self.predict[i])?;
            let proj = per_step(dec.view(), &self.projection)?;
            let out = if self.channel_independent {
                // [series, h, 1] -> [h, series].
                proj.index_axis(Axis(2), 0).t().to_owned()
            } else {
                let (res, reg) = self
                    .residual
                    .get(i)
                    .ok_or_else(|| shape!("missing residual layers"))?;
                let trend = trends.get(i).ok_or_else(|| shape!("missing trend"))?;
                let r = reg.forward(res.forward(trend.t())?.view())?;
                proj.index_axis(Axis(0), 0).to_owned() + r.t()
            };
            y = Some(match y {
                Some(acc) => acc + out,
                None => out,
            });
        }
        let mut y = y.ok_or_else(|| shape!("TimeMixer has no scales"))?;
        if let (true, Some(stats)) = (self.use_norm, &stats) {
            self.norms[0].denormalize(&mut y, stats)?;
        }
        if let Some(d) = &self.distr_output {
            y = d.forward(y.view())?;
        }
        series_rows(&y, h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_conv_down_sampling_is_refused() {
        let hp = serde_json::json!({
            "h": 3, "input_size": 8, "n_series": 3, "down_sampling_method": "conv",
            "loss": {"cls": "MAE"}
        });
        let spec = ModelSpec::from_hparams("TimeMixer", hp).unwrap();
        match super::super::build(&spec, &TensorStore::default()) {
            Err(BuildError::Unsupported(why)) => assert!(why.contains("random"), "{why}"),
            _ => panic!("down_sampling_method='conv' must be refused"),
        }
    }

    #[test]
    fn dft_split_clears_the_first_sequence_only() {
        // Batch 0's season is 0 (freq[0] = 0 zeroes its amplitudes); the other
        // sequences keep every non-zero bin, so their season is the input.
        let x = Array3::from_shape_fn((2, 1, 4), |(b, _, c)| (b * 4 + c) as f32 + 1.0);
        let (season, trend) = dft_split(&x, 2).unwrap();
        assert!(season.index_axis(Axis(0), 0).iter().all(|v| *v == 0.0));
        assert_eq!(trend.index_axis(Axis(0), 0), x.index_axis(Axis(0), 0));
        for (s, v) in season
            .index_axis(Axis(0), 1)
            .iter()
            .zip(x.index_axis(Axis(0), 1))
        {
            assert!((s - v).abs() < 1e-5, "{s} vs {v}");
        }
        assert!(dft_split(&x, 4).is_err());
    }
}
