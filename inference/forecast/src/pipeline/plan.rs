//! What `level` / `quantiles` ask of the bundle's models, and the output
//! columns the answer has because of it.

use crate::bundle::conformal::Calibration;
use crate::bundle::{Bundle, BundleModel};
use crate::contract::PredictRequest;
use crate::error::{ApiError, ErrorCode};
use crate::intervals::{Asked, Conformal, Cuts, ImplicitQuantiles, Style};

/// The conformal intervals a request makes point-loss models write: the
/// cuts, and the bundle's conformity scores they come from.
pub(super) struct IntervalPlan<'b> {
    pub(super) cuts: Cuts,
    pub(super) conformal: &'b Conformal,
}

/// What `level` / `quantiles` ask of the bundle's models.
#[derive(Default)]
pub(super) struct Asks<'b> {
    /// Point-loss models: conformal intervals after the forecast.
    pub(super) conformal: Option<IntervalPlan<'b>>,
    /// Implicit-quantile models: quantiles instead of the forecast.
    pub(super) implicit: Option<ImplicitQuantiles>,
}

impl Asks<'_> {
    /// nf.predict pairs the bundle's conformity scores with the request's
    /// series by position, so conformal intervals need exactly the series
    /// the scores were computed on.
    pub(super) fn check_series(&self, b: &Bundle, n: usize) -> Result<(), ApiError> {
        let Some(p) = &self.conformal else {
            return Ok(());
        };
        let want = p.conformal.n_series();
        if n != want {
            return Err(ApiError::new(ErrorCode::InvalidSeries, format!(
                    "bundle '{}' holds conformity scores for {want} series, which nf.predict pairs with the request's series by position: prediction intervals need exactly {want} series, the request has {n}",
                    b.name
                ),
            ));
        }
        Ok(())
    }
}

/// Takes the conformal intervals (not an implicit-quantile model).
pub(super) fn conformal_point(m: &BundleModel) -> bool {
    m.spec
        .as_ref()
        .is_some_and(|s| s.n_outputs() == 1 && s.implicit_quantile.is_none())
}

/// `level` / `quantiles` as `nf.predict` takes them: refused together; a
/// multi-quantile model (MQLoss, HuberMQLoss) ignores them; an
/// implicit-quantile model (IQLoss, HuberIQLoss) answers those quantiles of
/// its forecasts; a point-loss model computes conformal intervals from the
/// bundle's conformity scores, and without scores `nf.predict` raises.
pub(super) fn check_intervals<'b>(
    b: &'b Bundle,
    req: &PredictRequest,
) -> Result<Asks<'b>, ApiError> {
    let asked = match (&req.level, &req.quantiles) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLevel,
                "level and quantiles cannot both be set (as in nf.predict)",
            ))
        }
        (Some(l), None) => Asked::Level(l.clone()),
        (None, Some(q)) => Asked::Quantiles(q.clone()),
        (None, None) => return Ok(Asks::default()),
    };
    let what = match asked {
        Asked::Level(_) => "level",
        Asked::Quantiles(_) => "quantiles",
    };
    let refuse = |why: String| ApiError::new(ErrorCode::InvalidLevel, format!("{what}: {why}"));
    if let Some(why) = writer_refusal(b, what) {
        return Err(refuse(why));
    }
    let mut asks = Asks::default();
    let implicit = b.models.iter().any(|m| {
        m.spec
            .as_ref()
            .is_some_and(|s| s.implicit_quantile.is_some())
    });
    if implicit {
        let q = ImplicitQuantiles::of(&asked);
        q.check().map_err(|e| refuse(e.to_string()))?;
        asks.implicit = Some(q);
    }
    let Some(point) = b.models.iter().find(|m| conformal_point(m)) else {
        return Ok(asks); // MQLoss / HuberMQLoss ignore them
    };
    let conformal = match &b.intervals {
        Calibration::Conformal(c) => c,
        Calibration::Unreadable(why) => {
            return Err(refuse(format!(
                "bundle '{}' was fitted with prediction intervals, but {why}",
                b.name
            )))
        }
        Calibration::None => {
            let loss = point.spec.as_ref().map(|s| s.loss.as_str()).unwrap_or("?");
            return Err(refuse(format!(
                "model {} was trained with loss {loss} and bundle '{}' has no prediction intervals, so nf.predict cannot give {what} (fit with prediction_intervals, or a quantile loss)",
                point.name, b.name
            )));
        }
    };
    let cuts = Cuts::conformal(&asked);
    cuts.check(conformal.style, conformal.method)
        .map_err(|e| refuse(e.to_string()))?;
    asks.conformal = Some(IntervalPlan { cuts, conformal });
    Ok(asks)
}

/// NeuralForecast 1.x/2.x predict: `level` only, and only with the
/// bundle's conformal intervals, whatever the models' losses.
fn writer_refusal(b: &Bundle, what: &str) -> Option<String> {
    let writer = b.writer_before_3()?;
    if what == "quantiles" {
        return Some(format!(
            "bundle '{}' was written by {writer}, whose predict takes no quantiles (ask for level)",
            b.name
        ));
    }
    if !b.intervals.is_some() {
        return Some(format!(
            "bundle '{}' was written by {writer}, whose predict raises for level without prediction intervals (fit with prediction_intervals)",
            b.name
        ));
    }
    None
}

/// Output columns in NeuralForecast's order: per model its outputs; after a
/// point forecast its conformal interval columns when asked for; an
/// implicit-quantile model's asked quantiles instead of its forecast.
pub(super) fn output_columns(b: &Bundle, asks: &Asks) -> Vec<String> {
    let mut out = Vec::new();
    let mut tail = Vec::new();
    for m in &b.models {
        if let (Some(q), Some(_)) = (&asks.implicit, &m.implicit_quantile) {
            out.extend(q.suffixes.iter().map(|s| format!("{}{s}", m.name)));
            continue;
        }
        out.extend(m.columns());
        if let (Some(p), true) = (&asks.conformal, conformal_point(m)) {
            let cols = p.cuts.suffixes.iter().map(|s| format!("{}{s}", m.name));
            match p.conformal.style {
                Style::Current => out.extend(cols),
                Style::Before3 => tail.extend(cols),
            }
        }
    }
    out.extend(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, err, request};
    use super::*;

    fn asks<'b>(b: &'b Bundle, extra: &str) -> Result<Asks<'b>, ApiError> {
        check_intervals(b, &request(&format!(r#"{{"df": []{extra}}}"#)))
    }

    #[test]
    fn nothing_asked_changes_nothing() {
        let b = bundle("mlp_d_conformal_error");
        let a = asks(&b, "").unwrap();
        assert!(a.conformal.is_none() && a.implicit.is_none());
        assert_eq!(output_columns(&b, &a), b.output_columns());
        assert!(a.check_series(&b, 1).is_ok());
    }

    #[test]
    fn level_and_quantiles_are_refused_together() {
        let b = bundle("mlp_d_conformal_error");
        let e = err(asks(&b, r#", "level": [80], "quantiles": [0.5]"#));
        assert_eq!(e.code, ErrorCode::InvalidLevel);
        assert!(e.message.contains("cannot both be set"));
    }

    #[test]
    fn point_models_get_conformal_columns_after_their_forecast() {
        let b = bundle("mlp_d_conformal_error");
        let a = asks(&b, r#", "level": [80]"#).unwrap();
        let p = a.conformal.as_ref().unwrap();
        assert_eq!(p.conformal.style, Style::Current);
        let name = &b.models[0].name;
        assert_eq!(
            output_columns(&b, &a),
            [
                name.clone(),
                format!("{name}-lo-80"),
                format!("{name}-hi-80")
            ]
        );
        let n = p.conformal.n_series();
        assert!(a.check_series(&b, n).is_ok());
        let e = a.check_series(&b, n + 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSeries);
        assert!(e.message.contains(&format!("exactly {n} series")));
    }

    #[test]
    fn point_models_without_scores_refuse_intervals() {
        let b = bundle("mlp_d_standard");
        let e = err(asks(&b, r#", "level": [80]"#));
        assert_eq!(e.code, ErrorCode::InvalidLevel);
        assert!(e.message.starts_with("level: model"), "{}", e.message);
        assert!(e.message.contains("has no prediction intervals"));
        let e = err(asks(&b, r#", "quantiles": [0.2]"#));
        assert!(e.message.starts_with("quantiles: "), "{}", e.message);
    }

    #[test]
    fn multi_quantile_models_ignore_the_ask() {
        let b = bundle("mlp_me_mq");
        let a = asks(&b, r#", "level": [80]"#).unwrap();
        assert!(a.conformal.is_none() && a.implicit.is_none());
        assert_eq!(output_columns(&b, &a), b.output_columns());
    }

    #[test]
    fn implicit_quantile_models_answer_the_quantiles() {
        let b = bundle("iqloss_d");
        let a = asks(&b, r#", "quantiles": [0.1, 0.9]"#).unwrap();
        let q = a.implicit.as_ref().unwrap();
        assert_eq!(q.quantiles.len(), 2);
        let cols = output_columns(&b, &a);
        for m in &b.models {
            let own: Vec<&String> = cols.iter().filter(|c| c.starts_with(&m.name)).collect();
            if m.implicit_quantile.is_some() {
                assert_eq!(own.len(), 2, "{cols:?}");
                assert!(!own.contains(&&m.name), "{cols:?}");
            } else {
                assert!(own.contains(&&m.name), "{cols:?}");
            }
        }
        let e = err(asks(&b, r#", "quantiles": [1.5]"#));
        assert_eq!(e.code, ErrorCode::InvalidLevel);
    }
}
