//! One model's forecast over the panel: the forward passes of its `h`
//! (recursive beyond it), the implicit-quantile grid, temporal scaling
//! inverted. The answer is per series, in the series-level scaler's space.

use super::horizon::{median_output, Grid};
use super::panel::Panel;
use super::plan::Asks;
use crate::bundle::BundleModel;
use crate::error::{ApiError, ErrorCode};
use crate::forecaster::ForwardError;
use crate::intervals::IQ_GRID;
use crate::models::{Forecaster, Layout, WindowBatch};
use crate::nn::implicit_quantile::ImplicitQuantileHead;
use crate::nn::scalers::Stats;
use crate::spec::ModelSpec;
use ndarray::Array3;

/// Model `m`'s forecast: per series, `grid.horizon()` rows of `outputs`
/// values in the local scaler's space (temporal scaling inverted), and
/// `outputs` (the asked quantiles of an implicit-quantile model, else the
/// model's outputs).
pub(super) fn forecast_model(
    panel: &Panel,
    m: &BundleModel,
    asks: &Asks,
    grid: Grid,
) -> Result<(Vec<Vec<f32>>, usize), ApiError> {
    let (Some(spec), Ok(net)) = (&m.spec, &m.net) else {
        return Err(ApiError::internal(format!(
            "model {} has no forward pass",
            m.name
        )));
    };
    let n = panel.series.len();
    // A multivariate model forecasts all series in ONE window: exactly the
    // n_series it was trained on, in the panel's sorted unique_id order.
    if let Layout::Multivariate { n_series } = net.layout() {
        if n != n_series {
            return Err(ApiError::new(ErrorCode::InvalidSeries, format!(
                    "model {} ({}) is multivariate: it forecasts exactly the {n_series} series it was trained on, together; the request has {n}",
                    m.name, m.class
                ),
            ));
        }
    }
    let fc = Forecasting {
        panel,
        model: m,
        spec,
        net: net.as_ref(),
        grid,
    };
    match (&m.implicit_quantile, &asks.implicit) {
        (Some(head), Some(p)) => {
            // nf.predict runs an implicit-quantile model once per quantile
            // of a fixed grid and answers quantiles of those forecasts.
            let mut runs = Vec::with_capacity(IQ_GRID.len());
            for q in IQ_GRID {
                runs.push(fc.run(Some((head, q)))?);
            }
            let scaled = p.quantiles_of(&runs, n, grid.horizon());
            Ok((scaled, p.quantiles.len()))
        }
        (Some(head), None) => Ok((fc.run(Some((head, 0.5)))?, spec.n_outputs())),
        (None, _) => Ok((fc.run(None)?, spec.n_outputs())),
    }
}

/// One model's forecast over the request's panel: the passes of its `h`
/// (direct models) or one rollout (recurrent decoders).
struct Forecasting<'a> {
    panel: &'a Panel,
    model: &'a BundleModel,
    spec: &'a ModelSpec,
    net: &'a dyn Forecaster,
    grid: Grid,
}

/// An implicit-quantile head and the embedding of its quantile.
type Embedded<'a> = Option<(&'a ImplicitQuantileHead, f32)>;

impl Forecasting<'_> {
    /// Per series, the model's outputs for `passes * h` steps in the local
    /// scaler's space (temporal scaling inverted); an implicit-quantile
    /// model's outputs go through its head for quantile `q` first.
    fn run(
        &self,
        quantile: Option<(&ImplicitQuantileHead, f64)>,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        let embedding = match quantile {
            Some((head, q)) => Some((head, head.embed(q as f32).map_err(|e| self.internal(e))?)),
            None => None,
        };
        let (spec, grid) = (self.spec, self.grid);
        let horizon = grid.horizon();
        let n = self.panel.series.len();
        let mut scaled = vec![Vec::<f32>::with_capacity(horizon * spec.n_outputs()); n];
        if grid.passes > 1 && self.net.rolls_out() {
            // A recurrent decoder (RECURRENT = True) rolls out the whole horizon.
            let (batch, inverse) = self.panel.windows(spec, self.model, horizon, None)?;
            let out = self.forward(&batch, horizon, embedding)?;
            push_scaled(&mut scaled, &out, spec, &inverse);
            return Ok(scaled);
        }
        self.passes(&mut scaled, embedding)?;
        Ok(scaled)
    }

    /// Direct models: one pass per `h` steps, each feeding its forecast
    /// (the median of a quantile loss) back as history.
    fn passes(&self, scaled: &mut [Vec<f32>], embedding: Embedded) -> Result<(), ApiError> {
        let (spec, panel) = (self.spec, self.panel);
        let Grid { h, wanted, passes } = self.grid;
        let outputs = spec.n_outputs();
        let feed = median_output(spec).unwrap_or(0);
        let mut ys: Option<Vec<Vec<f32>>> = None;
        for pass in 0..passes {
            // NeuralForecast's last pass, when only r < h steps are left,
            // sees a window ending h - r steps before the forecasts so far
            // (its future part is r steps long); its first r outputs count.
            let left = wanted - pass * h;
            if pass > 0 && left < h {
                if let Some(ys) = ys.as_mut() {
                    for y in ys.iter_mut() {
                        y.truncate(y.len().saturating_sub(h - left));
                    }
                }
            }
            let (batch, inverse) = panel.windows(spec, self.model, h, ys.as_deref())?;
            let out = self.forward(&batch, h, embedding)?;
            push_scaled(scaled, &out, spec, &inverse);
            if pass + 1 < passes {
                let ys =
                    ys.get_or_insert_with(|| panel.series.iter().map(|s| s.y.clone()).collect());
                for (i, y) in ys.iter_mut().enumerate() {
                    let start = pass * h * outputs;
                    y.extend(
                        scaled[i][start..start + h * outputs]
                            .chunks(outputs)
                            .map(|row| row[feed]),
                    );
                }
            }
        }
        Ok(())
    }

    /// One forward pass (a rollout when `steps` is not the model's `h`),
    /// its shape checked, through the implicit-quantile head if any.
    fn forward(
        &self,
        batch: &WindowBatch,
        steps: usize,
        embedding: Embedded,
    ) -> Result<Array3<f32>, ApiError> {
        let (m, net) = (self.model, self.net);
        let n = self.panel.series.len();
        let mut out = if steps == self.grid.h {
            net.forward(batch)
        } else {
            net.forward_rollout(batch, steps)
        }
        .map_err(|e| self.internal(e))?;
        if out.dim() != (n, steps, self.spec.n_outputs()) {
            return Err(ApiError::internal(format!(
                "{} returned shape {:?}",
                m.name,
                out.dim()
            )));
        }
        if let (Some((head, e)), Some(values)) = (embedding, out.as_slice_mut()) {
            head.apply(values, e).map_err(|e| self.internal(e))?;
        }
        Ok(out)
    }

    fn internal(&self, e: ForwardError) -> ApiError {
        ApiError::internal(format!("{}: {e}", self.model.name))
    }
}

/// Appends one pass's outputs, temporal scaling inverted, per series.
fn push_scaled(scaled: &mut [Vec<f32>], out: &Array3<f32>, spec: &ModelSpec, inverse: &[Stats]) {
    let (_, steps, outputs) = out.dim();
    for (i, dst) in scaled.iter_mut().enumerate() {
        for t in 0..steps {
            for q in 0..outputs {
                dst.push(spec.scaler.inverse(out[[i, t, q]], inverse[i]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::check_intervals;
    use super::super::test_support::{bundle, day, frame, panel_of, request};
    use super::*;
    use crate::bundle::Bundle;
    use serde_json::json;

    fn forecast(b: &Bundle, body: &serde_json::Value, wanted: usize) -> Vec<Vec<f32>> {
        let grid = Grid::new(b.h, wanted);
        let p = panel_of(b, body, grid.horizon(), 10).unwrap();
        let (scaled, outputs) = forecast_model(&p, &b.models[0], &Asks::default(), grid).unwrap();
        assert_eq!(outputs, 1);
        assert!(scaled.iter().all(|s| s.len() == grid.horizon()));
        scaled
    }

    /// `body` with `extra[i]` appended to series i's history.
    fn extended(body: &serde_json::Value, n: usize, extra: &[&[f32]]) -> serde_json::Value {
        let mut out = body.clone();
        let df = out["df"].as_array_mut().unwrap();
        for (i, ys) in extra.iter().enumerate() {
            let id = ["a", "b"][i];
            for (k, y) in ys.iter().enumerate() {
                df.push(json!({"unique_id": id, "ds": day((n + k) as u64), "y": *y as f64}));
            }
        }
        out
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{a:?} != {b:?}");
        }
    }

    #[test]
    fn each_pass_feeds_its_forecast_back() {
        // No series-level scaler: the panel's space is the request's.
        let b = bundle("mlp_d_standard");
        let body = frame(&b, &["a", "b"], 30);
        let one = forecast(&b, &body, 7);
        let two = forecast(&b, &body, 14);
        close(&two[0][..7], &one[0]);
        close(&two[1][..7], &one[1]);
        let next = forecast(&b, &extended(&body, 30, &[&one[0], &one[1]]), 7);
        close(&two[0][7..], &next[0]);
        close(&two[1][7..], &next[1]);
    }

    #[test]
    fn a_short_last_pass_ends_its_window_early() {
        // 10 steps: the second pass sees the first 3 forecasts, not all 7.
        let b = bundle("mlp_d_standard");
        let body = frame(&b, &["a", "b"], 30);
        let one = forecast(&b, &body, 7);
        let ten = forecast(&b, &body, 10);
        let next = forecast(&b, &extended(&body, 30, &[&one[0][..3], &one[1][..3]]), 7);
        close(&ten[0][7..10], &next[0][..3]);
        close(&ten[1][7..10], &next[1][..3]);
        let full = forecast(&b, &extended(&body, 30, &[&one[0], &one[1]]), 7);
        assert_ne!(ten[0][7..10], full[0][..3]);
    }

    #[test]
    fn recurrent_decoders_roll_out_the_whole_horizon() {
        let b = bundle("lstm_w_rec_mq");
        let rows: Vec<_> = (0..30)
            .map(|t| {
                let ds = chrono::NaiveDate::from_ymd_opt(2024, 1, 7).unwrap()
                    + chrono::Days::new(7 * t);
                json!({"unique_id": "a", "ds": ds.format("%Y-%m-%d").to_string(), "y": (t % 5) as f64 + t as f64})
            })
            .collect();
        let body = json!({ "df": rows });
        let grid = Grid::new(b.h, 9);
        assert_eq!(grid.passes, 3);
        let p = panel_of(&b, &body, grid.horizon(), 10).unwrap();
        let m = &b.models[0];
        let (scaled, outputs) = forecast_model(&p, m, &Asks::default(), grid).unwrap();
        assert_eq!(outputs, 3);
        assert_eq!(scaled[0].len(), 12 * 3);
        assert!(scaled[0].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn multivariate_models_take_exactly_their_series() {
        let b = bundle("tsmixer_h_revin");
        let body = json!({"df": (0..30).flat_map(|t| ["a", "b"].map(|id| json!({
            "unique_id": id, "ds": format!("2024-01-02T{:02}:00:00", t % 24), "y": t
        }))).take(48).collect::<Vec<_>>()});
        let grid = Grid::new(b.h, b.h);
        let p = panel_of(&b, &body, grid.horizon(), 10).unwrap();
        let e = err_of(forecast_model(&p, &b.models[0], &Asks::default(), grid));
        assert_eq!(e.code, ErrorCode::InvalidSeries);
        assert!(e.message.contains("exactly the 3 series"), "{}", e.message);
    }

    #[test]
    fn a_model_without_a_forward_pass_is_an_internal_error() {
        let mut b = bundle("mlp_d_standard");
        b.models[0].net = Err(crate::bundle::NotServed("no weights".into()));
        let body = frame(&b, &["a"], 20);
        let grid = Grid::new(b.h, b.h);
        let p = panel_of(&b, &body, grid.horizon(), 10).unwrap();
        let e = err_of(forecast_model(&p, &b.models[0], &Asks::default(), grid));
        assert_eq!(e.code, ErrorCode::InternalError);
        assert_eq!(e.message, "model MLP has no forward pass");
    }

    #[test]
    fn implicit_quantiles_come_from_the_grid() {
        let b = bundle("iqloss_d");
        let body = frame(&b, &["a", "b"], 30);
        let asks = check_intervals(&b, &request(r#"{"df": [], "quantiles": [0.1, 0.9]}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        let grid = Grid::new(b.h, b.h);
        let p = panel_of(&b, &body, grid.horizon(), 10).unwrap();
        let (scaled, outputs) = forecast_model(&p, &b.models[0], &asks, grid).unwrap();
        assert_eq!(outputs, 2);
        for s in &scaled {
            assert_eq!(s.len(), b.h * 2);
            assert!(s.chunks(2).all(|q| q[0] < q[1]), "{s:?}");
        }
        let (point, outputs) = forecast_model(&p, &b.models[0], &Asks::default(), grid).unwrap();
        assert_eq!(outputs, 1);
        assert!(point[0]
            .iter()
            .zip(scaled[0].chunks(2))
            .all(|(m, q)| q[0] < *m && *m < q[1]));
    }

    fn err_of<T>(r: Result<T, ApiError>) -> ApiError {
        super::super::test_support::err(r)
    }
}
