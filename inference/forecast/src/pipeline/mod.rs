//! From a request to a forecast for one bundle, as `NeuralForecast.predict`
//! does it: validate and group the rows, refit the series-level scaler, build
//! each model's last window (left-padded, temporally normalised), run the
//! forward pass, invert both scalings, and lay out the rows.
//!
//! One step per module, in the order a request goes through them (each uses
//! only the ones before it):
//! - `cells`: one cell read as a number, a category, an id or a stamp;
//! - `columns`: the columns the bundle reads and the types of every cell;
//! - `plan`: what `level` / `quantiles` ask, and the answer's columns;
//! - `horizon`: the horizon asked and the grid of passes it is forecast on;
//! - `exog`: `futr_df` and `static_df` keyed and aligned with the series;
//! - `panel`: `df` grouped into sorted series, the series-level scaler refitted;
//! - `window`: each model's last window of every series;
//! - `rollout`: one model's forward passes over the horizon;
//! - `response`: the scalings inverted, the intervals, the rows.

mod cells;
mod columns;
mod exog;
mod horizon;
mod panel;
mod plan;
mod response;
mod rollout;
#[cfg(test)]
mod test_support;
mod window;

use crate::bundle::Bundle;
use crate::contract::{Forecast, PredictRequest};
use crate::error::{ApiError, ErrorCode};
use columns::{check_types, UsedColumns};
use horizon::{requested_horizon, Grid};
use panel::Panel;
use plan::{check_intervals, output_columns};
use response::Table;
use rollout::forecast_model;

pub use columns::{AVAILABLE_MASK, SAMPLE_WEIGHT};
pub use horizon::MAX_HORIZON_FACTOR;

/// Most series one request may hold unless configured (`server.max_series`):
/// the answer's memory grows with series x horizon.
pub const DEFAULT_MAX_SERIES: usize = 20_000;

/// Runs every model of the bundle on the request.
pub fn predict(b: &Bundle, req: &PredictRequest) -> Result<Forecast, ApiError> {
    predict_with_limit(b, req, DEFAULT_MAX_SERIES)
}

/// `predict` with a bound on the number of series (422 `too_many_series`).
pub fn predict_with_limit(
    b: &Bundle,
    req: &PredictRequest,
    max_series: usize,
) -> Result<Forecast, ApiError> {
    if let Some(why) = b.unsupported_reason() {
        return Err(ApiError::new(
            ErrorCode::UnsupportedModel,
            format!("bundle '{}' cannot be served: {why}", b.name),
        ));
    }
    let seen = check_types(req, b, &UsedColumns::of(b))?;
    let asks = check_intervals(b, req)?;
    // The grid every model forecasts on: whole passes of the model's h.
    let grid = Grid::new(b.h, requested_horizon(b, req)?);
    let panel = Panel::from_request(b, req, seen, grid.horizon(), max_series)?;
    asks.check_series(b, panel.series.len())?;
    let columns = output_columns(b, &asks);
    let mut table = Table::new(panel.series.len(), grid.horizon(), columns.len());
    for m in &b.models {
        let (scaled, outputs) = forecast_model(&panel, m, &asks, grid)?;
        table.add(b, &panel, m, &asks, &scaled, outputs)?;
    }
    table.into_forecast(b, &panel, columns, grid.wanted)
}

#[cfg(test)]
mod tests {
    use super::test_support::{bundle, frame};
    use super::*;

    fn run(b: &Bundle, body: &serde_json::Value) -> Result<Forecast, ApiError> {
        let text = body.to_string();
        predict(b, &PredictRequest::from_slice(text.as_bytes())?)
    }

    #[test]
    fn the_steps_run_in_order() {
        let b = bundle("mlp_d_standard");
        let mut body = frame(&b, &["a", "b"], 20);
        body["h"] = serde_json::json!(0);
        body["level"] = serde_json::json!([80]);
        body["quantiles"] = serde_json::json!([0.5]);
        body["df"][3]["y"] = serde_json::json!("x");
        body["df"][4] = body["df"][5].clone();
        // Types first, then level / quantiles, the horizon, the panel.
        let codes = [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidLevel,
            ErrorCode::InvalidHorizon,
            ErrorCode::DuplicateRows,
        ];
        for code in codes {
            let e = run(&b, &body).unwrap_err();
            assert_eq!(e.code, code, "{}", e.message);
            let o = body.as_object_mut().unwrap();
            match code {
                ErrorCode::InvalidRequest => o["df"][3]["y"] = serde_json::json!(1.5),
                ErrorCode::InvalidLevel => drop(o.remove("quantiles").zip(o.remove("level"))),
                ErrorCode::InvalidHorizon => drop(o.remove("h")),
                _ => {}
            }
        }
    }

    #[test]
    fn longer_horizons_extend_the_answer() {
        let b = bundle("mlp_d_standard");
        let mut body = frame(&b, &["a", "b"], 20);
        let short = run(&b, &body).unwrap();
        body["h"] = serde_json::json!(17);
        let long = run(&b, &body).unwrap();
        assert_eq!((short.rows.len(), long.rows.len()), (14, 34));
        assert_eq!(long.rows[..7], short.rows[..7]);
        assert_eq!(long.rows[17..24], short.rows[7..]);
    }

    #[test]
    fn an_unsupported_bundle_is_refused_first() {
        let mut b = bundle("mlp_d_standard");
        b.unsupported = Some("a test".into());
        let e = run(&b, &serde_json::json!({"df": []})).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedModel);
        assert_eq!(
            e.message,
            "bundle 'mlp_d_standard' cannot be served: a test"
        );
    }
}
