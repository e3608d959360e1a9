//! Each model's last window of every series: left-padded to the model's
//! input size, masked, temporally normalised (`TemporalNorm`), with the
//! exogenous columns it reads, and the statistics to invert its output.

use super::panel::{Panel, Series};
use crate::bundle::BundleModel;
use crate::error::ApiError;
use crate::models::WindowBatch;
use crate::nn::scalers::Stats;
use crate::spec::{ModelSpec, TemporalScalerKind};
use ndarray::{Array2, Array3};

/// Where each exogenous column a model reads sits in the panel.
struct Gathered {
    /// Historic exogenous, in `Panel::exog`.
    hist: Vec<usize>,
    /// Future exogenous: their history in `Panel::exog`, their future in
    /// `Panel::futr`.
    futr_hist: Vec<usize>,
    futr: Vec<usize>,
    /// Static exogenous, in `Panel::stat`.
    stat: Vec<usize>,
    /// Per hist / futr column: a category (its numbers bypass TemporalNorm).
    cat_hist: Vec<bool>,
    cat_futr: Vec<bool>,
}

impl Gathered {
    fn of(panel: &Panel, spec: &ModelSpec) -> Result<Gathered, ApiError> {
        let col_of = |names: &[String], pool: &[String]| -> Result<Vec<usize>, ApiError> {
            names
                .iter()
                .map(|c| {
                    pool.iter()
                        .position(|p| p == c)
                        .ok_or_else(|| ApiError::internal(format!("column {c} not gathered")))
                })
                .collect()
        };
        let is_cat = |names: &[String]| -> Vec<bool> {
            names
                .iter()
                .map(|c| spec.categorical.names().any(|n| n == c))
                .collect()
        };
        Ok(Gathered {
            hist: col_of(&spec.hist_exog, &panel.exog)?,
            futr_hist: col_of(&spec.futr_exog, &panel.exog)?,
            futr: col_of(&spec.futr_exog, &panel.futr)?,
            stat: col_of(&spec.stat_exog, &panel.stat)?,
            cat_hist: is_cat(&spec.hist_exog),
            cat_futr: is_cat(&spec.futr_exog),
        })
    }
}

/// One series' window of `l` steps being filled: the values, the mask, and
/// how many steps are left padding.
struct Window {
    win: Vec<f32>,
    mask: Vec<f32>,
    pad: usize,
    take: usize,
}

impl Window {
    fn new(l: usize) -> Window {
        Window {
            win: vec![0f32; l],
            mask: vec![0f32; l],
            pad: 0,
            take: 0,
        }
    }

    /// The window's last `take` steps of a history of `len` rows, and its
    /// mask: 0 on the padding, the series' `available_mask` elsewhere.
    fn mask_for(&mut self, s: &Series, len: usize) {
        let l = self.win.len();
        self.take = len.min(l);
        self.pad = l - self.take;
        // Rows past the request's history (forecasts appended by a
        // recursive pass) are available.
        let start = len - self.take;
        let pad = self.pad;
        self.mask.iter_mut().enumerate().for_each(|(t, m)| {
            *m = if t < pad {
                0.0
            } else {
                s.available
                    .as_ref()
                    .and_then(|a| a.get(start + t - pad))
                    .copied()
                    .unwrap_or(1.0)
            }
        });
    }

    /// Left padding with zeros, as NeuralForecast pads short histories.
    fn fill(&mut self, src: &[f32]) {
        let (pad, take) = (self.pad, self.take);
        self.win[..pad].iter_mut().for_each(|v| *v = 0.0);
        self.win[pad..].copy_from_slice(&src[src.len() - take..]);
    }
}

impl Panel {
    /// The last window of every series for one model, and the statistics to
    /// invert its output.
    /// `ys`: each series' target history when it differs from the request's
    /// (recursive prediction appends the forecasts so far).
    pub(super) fn windows(
        &self,
        spec: &ModelSpec,
        model: &BundleModel,
        h: usize,
        ys: Option<&[Vec<f32>]>,
    ) -> Result<(WindowBatch, Vec<Stats>), ApiError> {
        // Recurrent models read one step more than input_size (see Forecaster::insample_steps).
        let l = model
            .net
            .as_ref()
            .ok()
            .and_then(|net| net.insample_steps())
            .unwrap_or(spec.input_size);
        let n = self.series.len();
        let kind = spec.scaler;
        let cols = Gathered::of(self, spec)?;
        let mut batch = WindowBatch {
            insample_y: Array2::<f32>::zeros((n, l)),
            insample_mask: Array2::<f32>::zeros((n, l)),
            hist_exog: (!cols.hist.is_empty())
                .then(|| Array3::<f32>::zeros((n, l, cols.hist.len()))),
            futr_exog: (!cols.futr.is_empty())
                .then(|| Array3::<f32>::zeros((n, l + h, cols.futr.len()))),
            stat_exog: (!cols.stat.is_empty()).then(|| Array2::<f32>::zeros((n, cols.stat.len()))),
        };
        let mut inverse = Vec::with_capacity(n);
        let mut w = Window::new(l);
        for (i, s) in self.series.iter().enumerate() {
            let y = ys.and_then(|ys| ys.get(i)).unwrap_or(&s.y);
            w.mask_for(s, y.len());
            w.fill(y);
            let stats = kind.fit(&w.win, &w.mask);
            for t in 0..l {
                batch.insample_y[[i, t]] = kind.transform(w.win[t], stats);
                batch.insample_mask[[i, t]] = w.mask[t];
            }
            inverse.push(kind.inverse_stats(stats, model.revin));
            if let Some(hx) = batch.hist_exog.as_mut() {
                fill_hist(hx, i, s, &cols, kind, &mut w);
            }
            if let Some(fx) = batch.futr_exog.as_mut() {
                fill_futr(fx, i, s, &cols, kind, &mut w);
            }
            if let Some(sx) = batch.stat_exog.as_mut() {
                for (c, &col) in cols.stat.iter().enumerate() {
                    sx[[i, c]] = s.stat[col];
                }
            }
        }
        Ok((batch, inverse))
    }
}

/// Series `i`'s historic exogenous window, each column normalised on its own.
fn fill_hist(
    hx: &mut Array3<f32>,
    i: usize,
    s: &Series,
    cols: &Gathered,
    kind: TemporalScalerKind,
    w: &mut Window,
) {
    let l = w.win.len();
    for (c, &col) in cols.hist.iter().enumerate() {
        w.fill(&s.exog[col]);
        if cols.cat_hist[c] {
            // Category numbers bypass TemporalNorm; padding reads as unseen (0).
            (0..l).for_each(|t| hx[[i, t, c]] = w.win[t]);
            continue;
        }
        let st = kind.fit(&w.win, &w.mask);
        for t in 0..l {
            hx[[i, t, c]] = kind.transform(w.win[t], st);
        }
    }
}

/// Series `i`'s future exogenous window: the insample part, then the
/// horizon from futr_df.
fn fill_futr(
    fx: &mut Array3<f32>,
    i: usize,
    s: &Series,
    cols: &Gathered,
    kind: TemporalScalerKind,
    w: &mut Window,
) {
    let l = w.win.len();
    for (c, (&hcol, &fcol)) in cols.futr_hist.iter().zip(&cols.futr).enumerate() {
        w.fill(&s.exog[hcol]);
        if cols.cat_futr[c] {
            (0..l).for_each(|t| fx[[i, t, c]] = w.win[t]);
            for (k, v) in s.futr[fcol].iter().enumerate() {
                fx[[i, l + k, c]] = *v;
            }
            continue;
        }
        // Statistics from the insample part only (the horizon is masked).
        let st = kind.fit(&w.win, &w.mask);
        for t in 0..l {
            fx[[i, t, c]] = kind.transform(w.win[t], st);
        }
        for (k, v) in s.futr[fcol].iter().enumerate() {
            fx[[i, l + k, c]] = kind.transform(*v, st);
        }
    }
}
