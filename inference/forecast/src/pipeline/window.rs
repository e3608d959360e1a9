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

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, frame, panel_of, x_at, y_at};
    use super::*;
    use crate::bundle::Bundle;
    use serde_json::json;

    fn batch(b: &Bundle, p: &Panel, ys: Option<&[Vec<f32>]>) -> (WindowBatch, Vec<Stats>) {
        let m = &b.models[0];
        p.windows(m.spec.as_ref().unwrap(), m, b.h, ys).unwrap()
    }

    #[test]
    fn short_histories_are_left_padded_and_masked() {
        // Identity TemporalNorm: the window holds the values themselves.
        let b = bundle("dlinear_d_identity");
        let mut body = frame(&b, &["a"], 5);
        let long = frame(&b, &["b"], 20);
        let df = body["df"].as_array_mut().unwrap();
        df.extend(long["df"].as_array().unwrap().iter().cloned());
        df[1]["available_mask"] = json!(0);
        for row in df.iter_mut().skip(2) {
            row["available_mask"] = json!(1);
        }
        df[0]["available_mask"] = json!(1);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let (w, inverse) = batch(&b, &p, None);
        assert_eq!(w.insample_y.dim(), (2, 14));
        assert_eq!(inverse.len(), 2);
        let a: Vec<f32> = w.insample_y.row(0).to_vec();
        let want: Vec<f32> = (0..9)
            .map(|_| 0.0)
            .chain((0..5).map(|t| y_at(0, t) as f32))
            .collect();
        assert_eq!(a, want);
        let mask: Vec<f32> = w.insample_mask.row(0).to_vec();
        let mut want = vec![0.0; 9];
        want.extend([1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(mask, want);
        // The long series: its last 14 values, all available.
        assert_eq!(w.insample_y[[1, 0]], y_at(0, 6) as f32);
        assert_eq!(w.insample_y[[1, 13]], y_at(0, 19) as f32);
        assert!(w.insample_mask.row(1).iter().all(|m| *m == 1.0));
        assert!(w.hist_exog.is_none() && w.futr_exog.is_none() && w.stat_exog.is_none());
    }

    #[test]
    fn a_recursive_history_replaces_the_requests() {
        let b = bundle("dlinear_d_identity");
        let body = frame(&b, &["a"], 5);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let mut y = p.series[0].y.clone();
        y.extend([7.0, 8.0]);
        let (w, _) = batch(&b, &p, Some(&[y]));
        let row = w.insample_y.row(0).to_vec();
        assert_eq!(&row[12..], [7.0, 8.0]);
        assert_eq!(row[6], 0.0);
        assert_eq!(row[7], y_at(0, 0) as f32);
        // Appended forecasts count as available.
        assert_eq!(w.insample_mask.row(0).iter().sum::<f32>(), 7.0);
    }

    #[test]
    fn temporal_norm_scales_each_window_and_is_inverted() {
        let b = bundle("mlp_d_standard");
        let body = frame(&b, &["a", "b"], 30);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let (w, inverse) = batch(&b, &p, None);
        let kind = b.models[0].spec.as_ref().unwrap().scaler;
        assert_eq!(inverse.len(), 2);
        for (i, stats) in inverse.iter().enumerate() {
            let row = w.insample_y.row(i);
            assert!(row.iter().sum::<f32>().abs() < 1e-4);
            let last = kind.inverse(row[13], *stats);
            assert!((last - y_at(i, 29) as f32).abs() < 1e-3, "{last}");
        }
    }

    #[test]
    fn exogenous_windows_hold_history_then_future() {
        let mut b = bundle("mlp_exog_static");
        (b.local_scaler, b.local_static_scaler) = (None, None);
        let body = frame(&b, &["s1", "s2"], 10);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let (w, _) = batch(&b, &p, None);
        let fx = w.futr_exog.unwrap();
        assert_eq!(fx.dim(), (2, 14 + 7, 2));
        for (c, col) in ["promo", "wave"].iter().enumerate() {
            let x = p.exog.iter().position(|e| e == col).unwrap();
            assert_eq!(fx[[1, 3, c]], 0.0, "left padding");
            assert_eq!(fx[[1, 4, c]], x_at(1, x, 0) as f32);
            assert_eq!(fx[[1, 13, c]], x_at(1, x, 9) as f32);
            assert_eq!(fx[[1, 14, c]], x_at(1, x, 10) as f32);
            assert_eq!(fx[[1, 20, c]], x_at(1, x, 16) as f32);
        }
        let sx = w.stat_exog.unwrap();
        assert_eq!(sx.row(1).to_vec(), [2.0, 3.0]);
        assert!(w.hist_exog.is_none());
    }

    #[test]
    fn categories_bypass_temporal_norm() {
        let b = bundle("mlp_cat");
        let mut body = frame(&b, &["s1"], 20);
        let words = |t: usize| (["cloud", "sun"][t % 2], ["Mon", "Sat"][(t / 2) % 2]);
        for (t, row) in body["df"].as_array_mut().unwrap().iter_mut().enumerate() {
            row["sky"] = json!(words(t).0);
            row["dow"] = json!(words(t).1);
        }
        for (t, row) in body["futr_df"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            row["dow"] = json!(words(t).1);
        }
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let (w, _) = batch(&b, &p, None);
        let spec = b.models[0].spec.as_ref().unwrap();
        let (hx, fx) = (w.hist_exog.unwrap(), w.futr_exog.unwrap());
        assert_eq!(spec.hist_exog, ["temp", "sky"]);
        assert_eq!(spec.futr_exog, ["promo", "dow"]);
        let s = &p.series[0];
        let (sky, dow) = (
            p.exog.iter().position(|e| e == "sky").unwrap(),
            p.exog.iter().position(|e| e == "dow").unwrap(),
        );
        let fdow = p.futr.iter().position(|e| e == "dow").unwrap();
        assert!(
            s.exog[sky][6..].iter().all(|v| *v > 0.0),
            "known categories"
        );
        for t in 0..14 {
            assert_eq!(hx[[0, t, 1]], s.exog[sky][6 + t]);
            assert_eq!(fx[[0, t, 1]], s.exog[dow][6 + t]);
        }
        for k in 0..b.h {
            assert_eq!(fx[[0, 14 + k, 1]], s.futr[fdow][k]);
        }
        // temp and promo are normalised per window: mean 0.
        assert!((0..14).map(|t| hx[[0, t, 0]]).sum::<f32>().abs() < 1e-4);
        assert!((0..14).map(|t| fx[[0, t, 0]]).sum::<f32>().abs() < 1e-4);
    }

    #[test]
    fn recurrent_models_read_one_step_more() {
        let b = bundle("lstm_w_rec_mq");
        let m = &b.models[0];
        let body = json!({"df": [
            {"unique_id": "a", "ds": "2024-01-07", "y": 1},
            {"unique_id": "a", "ds": "2024-01-14", "y": 3},
            {"unique_id": "a", "ds": "2024-01-21", "y": 2},
        ]});
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        let (w, _) = p.windows(m.spec.as_ref().unwrap(), m, b.h, None).unwrap();
        assert_eq!(m.spec.as_ref().unwrap().input_size, 12);
        assert_eq!(w.insample_y.dim(), (1, 13));
        assert_eq!(w.insample_mask.row(0).iter().sum::<f32>(), 3.0);
    }
}
