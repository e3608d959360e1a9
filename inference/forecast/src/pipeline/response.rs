//! The answer: each model's forecast with the series-level scaler inverted,
//! its conformal intervals when asked, laid out in NeuralForecast's rows
//! and columns, cut to the requested horizon.

use super::panel::Panel;
use super::plan::{conformal_point, Asks, IntervalPlan};
use crate::bundle::{Bundle, BundleModel};
use crate::contract::Forecast;
use crate::error::{ApiError, ErrorCode};
use crate::intervals::Style;

/// One model's conformal intervals: per (series, step) `width` values.
struct Intervals {
    values: Vec<f64>,
    width: usize,
    /// 1.x/2.x: computed from the final forecast and appended after every
    /// model's forecast.
    before3: bool,
}

/// The answer's cells while the models fill them: per (series, step) row
/// the forecasts, and the 1.x/2.x intervals that go after all of them.
pub(super) struct Table {
    values: Vec<Vec<f32>>,
    tail: Vec<Vec<f32>>,
    horizon: usize,
}

impl Table {
    pub(super) fn new(n: usize, horizon: usize, width: usize) -> Table {
        Table {
            values: vec![Vec::with_capacity(width); n * horizon],
            tail: vec![Vec::new(); n * horizon],
            horizon,
        }
    }

    /// Model `m`'s forecast (`scaled`: per series, `horizon` rows of
    /// `outputs` values in the series-level scaler's space) and its
    /// conformal intervals when asked for.
    pub(super) fn add(
        &mut self,
        b: &Bundle,
        panel: &Panel,
        m: &BundleModel,
        asks: &Asks,
        scaled: &[Vec<f32>],
        outputs: usize,
    ) -> Result<(), ApiError> {
        let horizon = self.horizon;
        let intervals = match (&asks.conformal, conformal_point(m)) {
            (Some(p), true) => Some(conformal(b, panel, m, p, scaled, horizon)?),
            _ => None,
        };
        for (i, rows) in scaled.iter().enumerate().take(panel.series.len()) {
            for t in 0..horizon {
                let row = rows.get(t * outputs..(t + 1) * outputs).unwrap_or(&[]);
                let dst = &mut self.values[i * horizon + t];
                dst.extend(row.iter().map(|v| inverse(panel, i, *v)));
                let Some(iv) = &intervals else { continue };
                let (k, at) = (iv.width, (i * horizon + t) * iv.width);
                if let Some(cells) = iv.values.get(at..at + k) {
                    if iv.before3 {
                        // 1.x/2.x append every model's intervals after
                        // all forecasts.
                        self.tail[i * horizon + t].extend(cells.iter().map(|v| *v as f32));
                    } else {
                        dst.extend(cells.iter().map(|v| inverse(panel, i, *v as f32)));
                    }
                }
            }
        }
        Ok(())
    }

    /// The rows of the answer: every series' first `wanted` steps, each
    /// value finite.
    pub(super) fn into_forecast(
        self,
        b: &Bundle,
        panel: &Panel,
        columns: Vec<String>,
        wanted: usize,
    ) -> Result<Forecast, ApiError> {
        let mut values = self.values;
        for (dst, extra) in values.iter_mut().zip(self.tail) {
            dst.extend(extra);
        }
        let mut rows = Vec::with_capacity(panel.series.len() * wanted);
        let mut vals = values.into_iter();
        for s in &panel.series {
            for (t, ds) in s.future.iter().enumerate() {
                let v = vals.next().unwrap_or_default();
                if t >= wanted {
                    continue;
                }
                if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
                    return Err(ApiError::new(ErrorCode::NonFiniteValue, format!(
                            "the forecast for series '{}' at {ds} ({}) is not finite: the history overflows float32 arithmetic",
                            s.id, columns.get(bad).map(String::as_str).unwrap_or("?")
                        ),
                    ));
                }
                rows.push((s.id.clone(), *ds, v));
            }
        }
        Ok(Forecast {
            id_col: b.columns.id.clone(),
            time_col: b.columns.time.clone(),
            columns,
            rows,
        })
    }
}

/// Series `i`'s value with the series-level scaler inverted.
fn inverse(panel: &Panel, i: usize, v: f32) -> f32 {
    match panel.series[i].target_scaler {
        Some(ls) => ls.inverse(v),
        None => v,
    }
}

/// Conformal intervals of a point forecast, computed before the
/// series-level scaler is inverted, as NeuralForecast does: from the
/// forecast in the series-level scaler's space, then scaled back (3.0 and
/// later), or from the final forecast (1.x/2.x), as the bundle's release did.
fn conformal(
    b: &Bundle,
    panel: &Panel,
    m: &BundleModel,
    p: &IntervalPlan,
    scaled: &[Vec<f32>],
    horizon: usize,
) -> Result<Intervals, ApiError> {
    let scores = p.conformal.scores_of(&m.name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidLevel,
            format!(
                "bundle '{}' holds no conformity scores for model {}",
                b.name, m.name
            ),
        )
    })?;
    let before3 = p.conformal.style == Style::Before3;
    let means: Vec<f64> = scaled
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .map(move |v| if before3 { inverse(panel, i, *v) } else { *v } as f64)
        })
        .collect();
    Ok(Intervals {
        values: p.conformal.intervals(scores, &means, horizon, &p.cuts),
        width: p.cuts.cuts.len(),
        before3,
    })
}

#[cfg(test)]
mod tests {
    use super::super::horizon::Grid;
    use super::super::plan::{check_intervals, output_columns};
    use super::super::rollout::forecast_model;
    use super::super::test_support::{bundle, frame, panel_of, request};
    use super::*;

    fn answer(
        b: &Bundle,
        p: &Panel,
        scaled: &[Vec<f32>],
        wanted: usize,
    ) -> Result<Forecast, ApiError> {
        let horizon = scaled[0].len();
        let mut table = Table::new(p.series.len(), horizon, 1);
        table.add(b, p, &b.models[0], &Asks::default(), scaled, 1)?;
        table.into_forecast(b, p, b.output_columns(), wanted)
    }

    #[test]
    fn rows_are_cut_to_the_wanted_horizon() {
        let b = bundle("mlp_d_standard");
        let p = panel_of(&b, &frame(&b, &["a", "b"], 20), 14, 10).unwrap();
        let scaled: Vec<Vec<f32>> = (0..2)
            .map(|i| (0..14).map(|t| (100 * i + t) as f32).collect())
            .collect();
        let f = answer(&b, &p, &scaled, 10).unwrap();
        assert_eq!(
            (f.id_col.as_str(), f.time_col.as_str()),
            ("unique_id", "ds")
        );
        assert_eq!(f.columns, ["MLP"]);
        assert_eq!(f.rows.len(), 20);
        let (id, ds, v) = &f.rows[13];
        assert_eq!(
            (id.to_string(), *ds, v.as_slice()),
            ("b".into(), p.series[1].future[3], &[103.0][..])
        );
        assert_eq!(f.rows[9].2, [9.0]);
    }

    #[test]
    fn the_series_scaler_is_inverted() {
        let b = bundle("mlp_d_conformal_error");
        assert!(b.local_scaler.is_some());
        let p = panel_of(&b, &frame(&b, &["a", "b"], 20), 7, 10).unwrap();
        let f = answer(&b, &p, &[vec![0.0; 7], vec![1.0; 7]], 7).unwrap();
        for (i, s) in p.series.iter().enumerate() {
            let ls = s.target_scaler.unwrap();
            assert_eq!(f.rows[7 * i].2, [ls.inverse(i as f32)]);
            assert_ne!(f.rows[7 * i].2, [i as f32]);
        }
    }

    #[test]
    fn non_finite_forecasts_are_refused() {
        let b = bundle("mlp_d_standard");
        let p = panel_of(&b, &frame(&b, &["a", "b"], 20), 7, 10).unwrap();
        let mut scaled = vec![vec![1.0; 7], vec![1.0; 7]];
        scaled[1][2] = f32::NAN;
        let e = answer(&b, &p, &scaled, 7).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        let at = p.series[1].future[2];
        assert!(
            e.message
                .starts_with(&format!("the forecast for series 'b' at {at} (MLP)")),
            "{}",
            e.message
        );
        // Past the wanted horizon it is not answered, so not refused.
        assert!(answer(&b, &p, &scaled, 2).is_ok());
    }

    #[test]
    fn conformal_intervals_surround_the_point_forecast() {
        let b = bundle("mlp_d_conformal_error");
        let req = request(r#"{"df": [], "level": [80]}"#);
        let asks = check_intervals(&b, &req).unwrap_or_else(|e| panic!("{e}"));
        let n = asks.conformal.as_ref().unwrap().conformal.n_series();
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let p = panel_of(&b, &frame(&b, &ids, 30), 7, 10).unwrap();
        let grid = Grid::new(b.h, b.h);
        let m = &b.models[0];
        let (scaled, outputs) = forecast_model(&p, m, &asks, grid).unwrap();
        let columns = output_columns(&b, &asks);
        let mut table = Table::new(n, 7, columns.len());
        table.add(&b, &p, m, &asks, &scaled, outputs).unwrap();
        let f = table.into_forecast(&b, &p, columns, 7).unwrap();
        assert_eq!(f.columns, ["MLP", "MLP-lo-80", "MLP-hi-80"]);
        for (_, _, v) in &f.rows {
            assert!(v[1] < v[0] && v[0] < v[2], "{v:?}");
        }
        let mut other = bundle("mlp_d_conformal_error");
        other.models[0].name = "Other".into();
        let e = Table::new(n, 7, 3)
            .add(&other, &p, &other.models[0], &asks, &scaled, outputs)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidLevel);
        assert!(e
            .message
            .ends_with("holds no conformity scores for model Other"));
    }
}
