//! The horizon a request asks for, what the bundle can forecast of it, and
//! the grid of whole passes of the models' `h` it is forecast on.

use crate::bundle::Bundle;
use crate::contract::PredictRequest;
use crate::error::{ApiError, ErrorCode};
use crate::spec::ModelSpec;

/// Longest horizon served, as a multiple of the bundle's `h` (each multiple
/// above the first is one more forward pass per model).
pub const MAX_HORIZON_FACTOR: usize = 100;

/// The grid every model forecasts on: whole passes of the model's `h`
/// covering the `wanted` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grid {
    /// The bundle's `h`: the steps of one forward pass.
    pub(super) h: usize,
    /// The steps the request asked for.
    pub(super) wanted: usize,
    pub(super) passes: usize,
}

impl Grid {
    pub(super) fn new(h: usize, wanted: usize) -> Grid {
        Grid {
            h,
            wanted,
            passes: wanted.div_ceil(h),
        }
    }

    /// The steps forecast per series: `passes * h`, at least `wanted`.
    pub(super) fn horizon(&self) -> usize {
        self.passes * self.h
    }
}

/// The requested horizon, checked against what the bundle can forecast.
pub(super) fn requested_horizon(b: &Bundle, req: &PredictRequest) -> Result<usize, ApiError> {
    let Some(h) = req.h else { return Ok(b.h) };
    let max = b.h.saturating_mul(MAX_HORIZON_FACTOR);
    if h < 1 || h as u64 > max as u64 {
        return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                "h = {h} is outside 1..={max} (bundle '{}' forecasts {} steps per pass; longer horizons are predicted recursively up to {MAX_HORIZON_FACTOR}x)",
                b.name, b.h
            ),
        ));
    }
    let h = h as usize;
    if h > b.h && b.intervals.is_some() {
        return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                "h = {h} is above bundle '{}''s horizon {}: it was fitted with prediction intervals, and nf.predict does not forecast past the calibrated horizon",
                b.name, b.h
            ),
        ));
    }
    if h > b.h {
        check_recursive(b, h)?;
    }
    Ok(h)
}

/// Whether every model can forecast `h` steps beyond its own recursively.
fn check_recursive(b: &Bundle, h: usize) -> Result<(), ApiError> {
    // NeuralForecast refuses historic exogenous here; future exogenous
    // would need futr_df rows beyond the model's horizon, which its
    // recursive path slices in a way this service does not reproduce.
    for m in &b.models {
        let Some(spec) = &m.spec else { continue };
        let why = if !spec.hist_exog.is_empty() {
            Some("historic exogenous")
        } else if !spec.futr_exog.is_empty() {
            Some("future exogenous")
        } else if median_output(spec).is_none() {
            Some("no median output to feed back")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                    "h = {h} is above bundle '{}''s horizon {} and model {} has {why}: recursive prediction is not possible; ask for h <= {}",
                    b.name, b.h, m.name, b.h
                ),
            ));
        }
    }
    Ok(())
}

/// The output fed back in recursive prediction: the only one of a point
/// loss, the median of a quantile loss (as NeuralForecast does).
pub(super) fn median_output(spec: &ModelSpec) -> Option<usize> {
    if spec.n_outputs() == 1 {
        return Some(0);
    }
    spec.output_names.iter().position(|n| n == "-median")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, request};
    use super::*;

    fn horizon(b: &Bundle, h: &str) -> Result<usize, ApiError> {
        requested_horizon(b, &request(&format!(r#"{{"df": [], "h": {h}}}"#)))
    }

    #[test]
    fn the_grid_is_whole_passes() {
        assert_eq!(Grid::new(7, 7).passes, 1);
        assert_eq!(Grid::new(7, 3).horizon(), 7);
        let g = Grid::new(7, 17);
        assert_eq!((g.passes, g.horizon(), g.wanted), (3, 21, 17));
    }

    #[test]
    fn horizons_up_to_the_factor_are_served() {
        let b = bundle("mlp_d_standard");
        assert_eq!(
            requested_horizon(&b, &request(r#"{"df": []}"#)).unwrap(),
            b.h
        );
        assert_eq!(horizon(&b, "null").unwrap(), b.h);
        assert_eq!(horizon(&b, "3").unwrap(), 3);
        let max = b.h * MAX_HORIZON_FACTOR;
        assert_eq!(horizon(&b, &max.to_string()).unwrap(), max);
        for bad in [0, max + 1] {
            let e = horizon(&b, &bad.to_string()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidHorizon);
            assert!(
                e.message.contains(&format!("outside 1..={max}")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn calibrated_bundles_stop_at_their_horizon() {
        let b = bundle("mlp_d_conformal_error");
        assert!(b.intervals.is_some());
        assert_eq!(horizon(&b, &b.h.to_string()).unwrap(), b.h);
        let e = horizon(&b, &(b.h + 1).to_string()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHorizon);
        assert!(e.message.contains("calibrated horizon"), "{}", e.message);
    }

    #[test]
    fn exogenous_models_are_not_rolled_out() {
        let b = bundle("mlp_exog");
        assert_eq!(horizon(&b, &b.h.to_string()).unwrap(), b.h);
        let e = horizon(&b, &(b.h + 1).to_string()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHorizon);
        assert!(e.message.contains("historic exogenous"), "{}", e.message);
        let mut b = bundle("mlp_exog");
        for m in &mut b.models {
            if let Some(s) = m.spec.as_mut() {
                s.hist_exog.clear();
            }
        }
        let e = horizon(&b, &(b.h + 1).to_string()).unwrap_err();
        assert!(e.message.contains("future exogenous"), "{}", e.message);
    }

    #[test]
    fn the_median_is_fed_back() {
        let b = bundle("mlp_me_mq");
        let spec = b.models[0].spec.as_ref().unwrap();
        let at = median_output(spec).unwrap();
        assert_eq!(spec.output_names[at], "-median");
        assert!(spec.n_outputs() > 1);
        let b = bundle("mlp_d_standard");
        assert_eq!(median_output(b.models[0].spec.as_ref().unwrap()), Some(0));
        let mut spec = spec.clone();
        spec.output_names.retain(|n| n != "-median");
        assert_eq!(median_output(&spec), None);
        // A quantile loss rolls out through its median.
        assert!(horizon(&bundle("mlp_me_mq"), "25").is_ok());
    }
}
