//! XLinear (neuralforecast/models/xlinear.py) for one multivariate window:
//! each series (optionally normalised) is projected from `input_size` to
//! `hidden_size` and joined with its learned global token; a temporal gate
//! (x · sigmoid(MLP(x))) runs over each series' features, a channel gate over
//! the series (tokens and gated globals side by side); the gated token, the
//! channel-gated global and the projected hist / futr / static exogenous
//! features feed a linear head to `h * outputs` per series.

use super::{
    channels_first, check_series, insample_y, n_series, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::{sigmoid, Activation};
use crate::nn::feed_forward::FeedForward;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::linear::Linear;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{concatenate, Array2, Array3, ArrayView2, Axis, Slice};
use serde::Deserialize;

/// `GatingBlock`: x · sigmoid(Linear(ReLU(Linear(x)))).
struct Gate(FeedForward);

impl Gate {
    fn load(
        store: &TensorStore,
        prefix: &str,
        width: usize,
        ff: usize,
    ) -> Result<Gate, BuildError> {
        let block = FeedForward::load(
            store,
            &format!("{prefix}.weight"),
            (0, 3),
            (width, ff, width),
            Activation::ReLU,
        )?;
        Ok(Gate(block))
    }

    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut w = self.0.forward(x)?;
        w.zip_mut_with(&x, |w, x| *w = x * sigmoid(*w));
        Ok(w)
    }
}

/// XLinear's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct XLinearHparams {
    pub use_norm: bool,
    pub hidden_size: usize,
    pub temporal_ff: usize,
    pub channel_ff: usize,
}

impl Default for XLinearHparams {
    fn default() -> Self {
        XLinearHparams {
            use_norm: true,
            hidden_size: 128,
            temporal_ff: 256,
            channel_ff: 8,
        }
    }
}

pub struct XLinear {
    norm: Option<InstanceNorm>,
    projection: Linear,
    /// [n_series, hidden]
    glob_token: Array2<f32>,
    temporal_gate: Gate,
    channel_gate: Gate,
    hist_projection: Option<Linear>,
    futr_projection: Option<Linear>,
    stat_projection: Option<Linear>,
    head: Linear,
    n_series: usize,
    input_size: usize,
    hidden: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for XLinear {
    const CLASS: &'static str = "XLinear";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &[
        "channel_dropout",
        "embed_dropout",
        "head_dropout",
        "temporal_dropout",
    ];
    type Hparams = XLinearHparams;
    type Net = XLinear;

    fn load(
        spec: &ModelSpec,
        hp: XLinearHparams,
        store: &TensorStore,
    ) -> Result<XLinear, BuildError> {
        let n = n_series(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let hidden = hp.hidden_size;
        let (nh, nf, ns) = (
            spec.exog_widths().hist,
            spec.exog_widths().futr,
            spec.exog_widths().stat,
        );
        let projection = |name: &str, width: usize| {
            (width > 0)
                .then(|| Linear::load(store, name, width, hidden, true))
                .transpose()
        };
        let head_in =
            hidden * (2 + usize::from(nh > 0) + usize::from(nf > 0) + usize::from(ns > 0));
        Ok(XLinear {
            norm: InstanceNorm::use_norm(hp.use_norm),
            projection: Linear::load(store, "projection.0", l, hidden, true)?,
            glob_token: store
                .array_dyn("glob_token", &[1, n, hidden])?
                .into_shape_with_order((n, hidden))
                .map_err(|e| invalid!("glob_token: {e}"))?,
            temporal_gate: Gate::load(store, "temporal_gating", 2 * hidden, hp.temporal_ff)?,
            channel_gate: Gate::load(store, "channel_gating", 2 * n, hp.channel_ff)?,
            hist_projection: projection("hist_exog_projection", nh * l)?,
            futr_projection: projection("futr_exog_projection", nf * (l + h))?,
            stat_projection: projection("stat_exog_projection", ns)?,
            head: Linear::load(store, "head.1", head_in, h * outputs, true)?,
            n_series: n,
            input_size: l,
            hidden,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

/// An exogenous block [series, time, channels] as rows [series, channels * time]
/// (torch's `permute(0, 3, 1, 2).reshape(batch, n_series, -1)`).
fn series_major(x: &Array3<f32>, n: usize, steps: usize) -> Result<Array2<f32>, ForwardError> {
    let x = channels_first(x, n)?;
    let (c, t, _) = x.dim();
    if t != steps {
        return Err(shape!("an exogenous block has {t} steps, not {steps}"));
    }
    Ok(Array2::from_shape_fn((n, c * t), |(s, k)| {
        x[[k / t, k % t, s]]
    }))
}

impl Forecaster for XLinear {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (n, hid, l) = (self.n_series, self.hidden, self.input_size);
        check_series(batch, n)?;
        let y = insample_y(batch, self.exclude_insample_y);
        let (w, stats) = normalized_window(self.norm.as_ref(), y.view())?;
        let emb = self.projection.forward(w.t())?;
        let joined = concatenate(Axis(1), &[emb.view(), self.glob_token.view()])
            .map_err(|e| ForwardError::array("tokens do not join the global tokens", e))?;
        let en = self.temporal_gate.forward(joined.view())?;
        let origin = en.slice_axis(Axis(1), Slice::from(..hid));
        let glob = en.slice_axis(Axis(1), Slice::from(hid..));
        // The channel gate reads [hidden, 2 * series]: tokens, then gated globals.
        let ex = concatenate(Axis(0), &[emb.view(), glob])
            .map_err(|e| ForwardError::array("channel gate inputs do not join", e))?;
        let ex = self.channel_gate.forward(ex.t())?;
        let glob = ex.slice_axis(Axis(1), Slice::from(n..));
        let mut parts: Vec<Array2<f32>> = vec![origin.to_owned(), glob.t().to_owned()];
        if let Some(p) = &self.hist_projection {
            let hx = batch
                .hist_exog
                .as_ref()
                .ok_or_else(|| shape!("XLinear needs hist_exog"))?;
            parts.push(p.forward(series_major(hx, n, l)?.view())?);
        }
        if let Some(p) = &self.futr_projection {
            let fx = batch
                .futr_exog
                .as_ref()
                .ok_or_else(|| shape!("XLinear needs futr_exog"))?;
            parts.push(p.forward(series_major(fx, n, l + self.h)?.view())?);
        }
        if let Some(p) = &self.stat_projection {
            let sx = batch
                .stat_exog
                .as_ref()
                .ok_or_else(|| shape!("XLinear needs stat_exog"))?;
            parts.push(p.forward(sx.view())?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let en = concatenate(Axis(1), &views)
            .map_err(|e| ForwardError::array("XLinear features do not join", e))?;
        let head = self.head.forward(en.view())?;
        let y = denormalized_output(self.norm.as_ref(), stats.as_ref(), head.view())?;
        series_rows(&y, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
