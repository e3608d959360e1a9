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
