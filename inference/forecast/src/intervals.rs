//! Prediction intervals from conformity scores, as `nf.predict(level=...,
//! quantiles=...)` computes them for a point-loss model of a bundle fitted
//! with `prediction_intervals` (NeuralForecast's `level_to_quantiles`,
//! `add_conformal_distribution_intervals` and `add_conformal_error_intervals`):
//! which cuts a request asks for, the columns they are written to, and the
//! arithmetic. Pure: the pipeline feeds it forecasts and scores.

use crate::contract::PyNumber;

/// Why the asked levels or quantiles cannot be computed: the client's
/// mistake, answered `invalid_level` as `nf.predict` raises.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LevelError {
    #[error("is empty: nf.predict cannot compute intervals for no level")]
    Empty,
    #[error("{0} is outside 0..=100 (the bundle's NeuralForecast release takes the level/100 score quantile)")]
    LevelOutOfRange(f64),
    #[error("asks for the quantile {0} of the conformity scores, outside [0, 1] (a level must be within -100..=100, a quantile within 0..=1)")]
    ScoreQuantile(f64),
    #[error("asks for the quantile {0} of an implicit-quantile model's forecasts, outside [0, 1] (a level must be within -100..=100, a quantile within 0..=1)")]
    ModelQuantile(f64),
}

/// Why a bundle's conformal calibration cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    #[error(
        "prediction intervals method '{0}' is not one of conformal_distribution, conformal_error"
    )]
    Method(String),
    #[error("prediction_intervals.n_windows must be positive")]
    NoWindows,
    #[error("_cs_df column '{name}' holds {got} scores, not series x {n_windows} windows x h {h}")]
    ScoreCount {
        name: String,
        got: usize,
        n_windows: usize,
        h: usize,
    },
    #[error("_cs_df column '{name}' holds {value}")]
    NonFinite { name: String, value: f64 },
}

/// `PredictionIntervals.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Quantiles of the forecast shifted by every window's absolute error,
    /// both ways.
    ConformalDistribution,
    /// The forecast minus / plus a quantile of the absolute errors.
    ConformalError,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, CalibrationError> {
        match s {
            "conformal_distribution" => Ok(Method::ConformalDistribution),
            "conformal_error" => Ok(Method::ConformalError),
            other => Err(CalibrationError::Method(other.to_string())),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Method::ConformalDistribution => "conformal_distribution",
            Method::ConformalError => "conformal_error",
        }
    }
}

/// Which release's `predict` the intervals follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// NeuralForecast 3.0 and later: interval columns right after each
    /// model's forecast, computed before the series-level scaler is
    /// inverted; `conformal_error` at the `0.5 + level/200` score quantile.
    Current,
    /// NeuralForecast 1.x and 2.x (`level` only): every model's forecast
    /// first, then each model's interval columns, computed on the final
    /// forecast; `conformal_error` at the `level/100` score quantile.
    Before3,
}

/// What a request asks for, as `nf.predict` reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Level(Vec<PyNumber>),
    Quantiles(Vec<PyNumber>),
}

/// The quantile levels a conformal method evaluates and the column suffix of
/// each, in NeuralForecast's column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cuts {
    pub cuts: Vec<f64>,
    pub suffixes: Vec<String>,
    /// For `level`: the levels, sorted (the 1.x/2.x error method reads them).
    pub levels: Vec<f64>,
}

/// `sorted(set(values))`: the first of equal values kept (its text names
/// the column), then ascending.
fn sorted_unique(values: &[PyNumber]) -> Vec<&PyNumber> {
    let mut out: Vec<&PyNumber> = Vec::with_capacity(values.len());
    for v in values {
        if !out.iter().any(|o| o.value == v.value) {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.value.total_cmp(&b.value));
    out
}

impl Cuts {
    /// The cuts of `add_conformal_*_intervals`: for levels, the lower cuts
    /// `(100 - l) / 200` of the levels high to low, then the upper cuts
    /// `1 - (100 - l) / 200` low to high (columns `-lo-<l>`, `-hi-<l>`); for
    /// quantiles, the sorted quantiles (columns `-ql<q>`).
    pub fn conformal(asked: &Asked) -> Cuts {
        match asked {
            Asked::Level(level) => {
                let level = sorted_unique(level);
                let alphas: Vec<f64> = level.iter().map(|l| 100.0 - l.value).collect();
                let mut cuts: Vec<f64> = alphas.iter().rev().map(|a| a / 200.0).collect();
                cuts.extend(alphas.iter().map(|a| 1.0 - a / 200.0));
                let mut suffixes: Vec<String> = level
                    .iter()
                    .rev()
                    .map(|l| format!("-lo-{}", l.repr))
                    .collect();
                suffixes.extend(level.iter().map(|l| format!("-hi-{}", l.repr)));
                Cuts {
                    cuts,
                    suffixes,
                    levels: level.iter().map(|l| l.value).collect(),
                }
            }
            Asked::Quantiles(q) => {
                let q = sorted_unique(q);
                Cuts {
                    cuts: q.iter().map(|q| q.value).collect(),
                    suffixes: q.iter().map(|q| format!("-ql{}", q.repr)).collect(),
                    levels: Vec::new(),
                }
            }
        }
    }

    /// Why numpy would refuse these cuts, as `nf.predict` then raises.
    pub fn check(&self, style: Style, method: Method) -> Result<(), LevelError> {
        if self.cuts.is_empty() {
            return Err(LevelError::Empty);
        }
        if (style, method) == (Style::Before3, Method::ConformalError) {
            if let Some(l) = self.levels.iter().find(|l| !(0.0..=100.0).contains(*l)) {
                return Err(LevelError::LevelOutOfRange(*l));
            }
        }
        if let Some(c) = self.cuts.iter().find(|c| !(0.0..=1.0).contains(*c)) {
            return Err(LevelError::ScoreQuantile(*c));
        }
        Ok(())
    }
}

/// `np.quantile(sorted, q)` with the default linear method, computed as
/// numpy does it (its virtual index and its two-sided interpolation).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let last = n - 1;
    // numpy's `n * q + (alpha + q * (1 - alpha - beta)) - 1`, alpha = beta = 1.
    let (alpha, beta) = (1.0, 1.0);
    let virtual_index = n as f64 * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    let (prev, next) = if virtual_index >= last as f64 {
        (last, last)
    } else if virtual_index < 0.0 {
        (0, 0)
    } else {
        let p = virtual_index.floor() as usize;
        (p, (p + 1).min(last))
    };
    let gamma = virtual_index - virtual_index.floor();
    let (a, b) = (sorted[prev], sorted[next]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// `add_conformal_error_intervals` of NeuralForecast 1.x and 2.x: the
/// forecast minus the `l/100` score quantile for the levels high to low,
/// then plus it for the levels low to high.
fn error_step_before3(mean: f64, errors: &[f64], levels: &[f64], out: &mut Vec<f64>) {
    let mut sorted = errors.to_vec();
    sorted.sort_by(f64::total_cmp);
    out.extend(
        levels
            .iter()
            .rev()
            .map(|l| mean - quantile_sorted(&sorted, l / 100.0)),
    );
    out.extend(
        levels
            .iter()
            .map(|l| mean + quantile_sorted(&sorted, l / 100.0)),
    );
}

/// The interval values of one forecast step: `mean` is the model's forecast,
/// `errors` the absolute errors of the calibration windows at this step (of
/// the same series position). One value per cut, in `cuts` order.
pub fn conformal_step(method: Method, mean: f64, errors: &[f64], cuts: &Cuts, out: &mut Vec<f64>) {
    match method {
        Method::ConformalDistribution => {
            let mut paths: Vec<f64> = errors
                .iter()
                .map(|e| mean - e)
                .chain(errors.iter().map(|e| mean + e))
                .collect();
            paths.sort_by(f64::total_cmp);
            out.extend(cuts.cuts.iter().map(|&c| quantile_sorted(&paths, c)));
        }
        Method::ConformalError => {
            let mut sorted = errors.to_vec();
            sorted.sort_by(f64::total_cmp);
            let k = cuts.cuts.len();
            for (i, &c) in cuts.cuts.iter().enumerate() {
                // NeuralForecast subtracts the score quantile of the mirrored
                // cut (`scores_quantiles[::-1][i]`) below the median.
                out.push(if c < 0.5 {
                    mean - quantile_sorted(&sorted, cuts.cuts[k - 1 - i])
                } else if c > 0.5 {
                    mean + quantile_sorted(&sorted, c)
                } else {
                    mean
                });
            }
        }
    }
}

/// The quantiles `nf.predict` runs an implicit-quantile model (IQLoss,
/// HuberIQLoss) for, one forward pass each, before answering quantiles of
/// those forecasts (the head's quantiles need not be monotonic).
pub const IQ_GRID: [f64; 11] = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99];

/// What an implicit-quantile model answers for `level` / `quantiles`: the
/// quantiles (NeuralForecast's `level_to_quantiles` for levels) and their
/// column suffixes (`_get_column_name`): `-lo-<l>`, `-median`, `-hi-<l>`
/// with whole levels for `level`, `_ql<q>` for `quantiles`. No point column.
#[derive(Debug, Clone, PartialEq)]
pub struct ImplicitQuantiles {
    pub quantiles: Vec<f64>,
    pub suffixes: Vec<String>,
}

impl ImplicitQuantiles {
    pub fn of(asked: &Asked) -> ImplicitQuantiles {
        match asked {
            Asked::Level(level) => {
                let mut q: Vec<f64> = Vec::new();
                for l in sorted_unique(level) {
                    for v in [
                        (50.0 - l.value / 2.0) / 100.0,
                        (50.0 + l.value / 2.0) / 100.0,
                    ] {
                        if !q.contains(&v) {
                            q.push(v);
                        }
                    }
                }
                q.sort_by(f64::total_cmp);
                let suffixes = q
                    .iter()
                    .map(|&q| {
                        // Python's int(round(x)): halves to even.
                        if q < 0.5 {
                            format!("-lo-{}", (100.0 - 200.0 * q).round_ties_even() as i64)
                        } else if q > 0.5 {
                            format!(
                                "-hi-{}",
                                (100.0 - 200.0 * (1.0 - q)).round_ties_even() as i64
                            )
                        } else {
                            "-median".to_string()
                        }
                    })
                    .collect();
                ImplicitQuantiles {
                    quantiles: q,
                    suffixes,
                }
            }
            Asked::Quantiles(q) => {
                let q = sorted_unique(q);
                ImplicitQuantiles {
                    quantiles: q.iter().map(|q| q.value).collect(),
                    suffixes: q.iter().map(|q| format!("_ql{}", q.repr)).collect(),
                }
            }
        }
    }

    /// Why numpy would refuse these quantiles (an empty list it takes: the
    /// model then adds no column).
    pub fn check(&self) -> Result<(), LevelError> {
        match self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            Some(q) => Err(LevelError::ModelQuantile(*q)),
            None => Ok(()),
        }
    }

    /// `np.quantile` over the grid's forecasts: `grid[g][series]` holds
    /// `steps` values; the answer holds `steps x quantiles` per series.
    pub fn quantiles_of(&self, grid: &[Vec<Vec<f32>>], n: usize, steps: usize) -> Vec<Vec<f32>> {
        let k = self.quantiles.len();
        let mut out = vec![Vec::with_capacity(steps * k); n];
        let mut values = Vec::with_capacity(grid.len());
        for (i, dst) in out.iter_mut().enumerate() {
            for t in 0..steps {
                values.clear();
                values.extend(
                    grid.iter()
                        .filter_map(|g| g.get(i)?.get(t))
                        .map(|v| *v as f64),
                );
                values.sort_by(f64::total_cmp);
                dst.extend(
                    self.quantiles
                        .iter()
                        .map(|&q| quantile_sorted(&values, q) as f32),
                );
            }
        }
        out
    }
}

/// A bundle's conformal calibration: `PredictionIntervals` and, per model
/// column, the absolute errors of `n_windows` cross-validation windows
/// (`_cs_df`), laid out per series (in sorted id order), window, step.
#[derive(Debug, Clone)]
pub struct Conformal {
    pub method: Method,
    /// The writer's `predict` (NeuralForecast 1.x/2.x bundles differ).
    pub style: Style,
    pub n_windows: usize,
    pub step_size: usize,
    pub h: usize,
    pub scores: Vec<(String, Vec<f64>)>,
}

impl Conformal {
    /// Series the scores were computed on (`nf.predict` pairs them with the
    /// request's series by position and needs as many).
    pub fn n_series(&self) -> usize {
        self.scores
            .first()
            .map(|(_, s)| s.len() / (self.n_windows * self.h).max(1))
            .unwrap_or(0)
    }

    pub fn scores_of(&self, model: &str) -> Option<&[f64]> {
        self.scores
            .iter()
            .find(|(n, _)| n == model)
            .map(|(_, s)| s.as_slice())
    }

    /// Every score column must hold series x windows x h values.
    pub fn check(&self) -> Result<(), CalibrationError> {
        let per_series = self.n_windows * self.h;
        if per_series == 0 {
            return Err(CalibrationError::NoWindows);
        }
        let n = self.n_series();
        for (name, s) in &self.scores {
            if s.is_empty() || s.len() != n * per_series {
                return Err(CalibrationError::ScoreCount {
                    name: name.clone(),
                    got: s.len(),
                    n_windows: self.n_windows,
                    h: self.h,
                });
            }
            if let Some(bad) = s.iter().find(|v| !v.is_finite()) {
                return Err(CalibrationError::NonFinite {
                    name: name.clone(),
                    value: *bad,
                });
            }
        }
        Ok(())
    }

    /// Interval columns for one model: `means` holds `h` forecasts per series
    /// (series-major), the result `cuts.len()` values per forecast, in order.
    pub fn intervals(&self, scores: &[f64], means: &[f64], steps: usize, cuts: &Cuts) -> Vec<f64> {
        let mut out = Vec::with_capacity(means.len() * cuts.cuts.len());
        let per_series = self.n_windows * self.h;
        let mut errors = Vec::with_capacity(self.n_windows);
        for (k, &mean) in means.iter().enumerate() {
            let (i, t) = (k / steps.max(1), k % steps.max(1));
            errors.clear();
            for w in 0..self.n_windows {
                if let Some(e) = scores.get(i * per_series + w * self.h + t) {
                    errors.push(*e);
                }
            }
            match (self.style, self.method) {
                (Style::Before3, Method::ConformalError) => {
                    error_step_before3(mean, &errors, &cuts.levels, &mut out)
                }
                _ => conformal_step(self.method, mean, &errors, cuts, &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: f64) -> PyNumber {
        PyNumber::float(v)
    }

    #[test]
    fn level_cuts_and_names_follow_neuralforecast() {
        let c = Cuts::conformal(&Asked::Level(vec![
            PyNumber::int(95),
            PyNumber::int(80),
            n(80.0),
        ]));
        assert_eq!(c.suffixes, ["-lo-95", "-lo-80", "-hi-80", "-hi-95"]);
        let want = [0.025, 0.1, 0.9, 0.975];
        for (a, b) in c.cuts.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        let q = Cuts::conformal(&Asked::Quantiles(vec![n(0.9), n(0.1), n(0.5)]));
        assert_eq!(q.suffixes, ["-ql0.1", "-ql0.5", "-ql0.9"]);
        let check = |l: Vec<PyNumber>, style| {
            Cuts::conformal(&Asked::Level(l)).check(style, Method::ConformalError)
        };
        assert!(check(vec![PyNumber::int(120)], Style::Current).is_err());
        assert!(check(vec![], Style::Current).is_err());
        assert!(check(vec![PyNumber::int(100)], Style::Current).is_ok());
        assert!(check(vec![PyNumber::int(-20)], Style::Current).is_ok());
        assert!(check(vec![PyNumber::int(-20)], Style::Before3).is_err());
    }

    #[test]
    fn implicit_quantile_columns_follow_neuralforecast() {
        let l = ImplicitQuantiles::of(&Asked::Level(vec![
            n(80.0),
            PyNumber::int(0),
            PyNumber::int(95),
        ]));
        assert_eq!(
            l.suffixes,
            ["-lo-95", "-lo-80", "-median", "-hi-80", "-hi-95"]
        );
        let q = ImplicitQuantiles::of(&Asked::Quantiles(vec![n(0.9), n(0.3), n(0.9)]));
        assert_eq!(q.suffixes, ["_ql0.3", "_ql0.9"]);
        assert!(
            ImplicitQuantiles::of(&Asked::Level(vec![PyNumber::int(101)]))
                .check()
                .is_err()
        );
        assert!(ImplicitQuantiles::of(&Asked::Level(vec![])).check().is_ok());
        // Quantiles of the grid's forecasts per step: [1..=11] at 0.5 is 6.
        let grid: Vec<Vec<Vec<f32>>> = (1..=11)
            .map(|v| vec![vec![v as f32, -(v as f32)]])
            .collect();
        let med = ImplicitQuantiles::of(&Asked::Level(vec![PyNumber::int(0)]));
        assert_eq!(med.quantiles_of(&grid, 1, 2), vec![vec![6.0, -6.0]]);
    }

    #[test]
    fn quantile_is_numpys_linear_method() {
        let v = [1.0, 2.0, 4.0, 8.0];
        // np.quantile([1, 2, 4, 8], [0, 0.1, 0.5, 0.9, 1])
        let want = [1.0, 1.3, 3.0, 6.8, 8.0];
        for (q, w) in [0.0, 0.1, 0.5, 0.9, 1.0].iter().zip(want) {
            assert!((quantile_sorted(&v, *q) - w).abs() < 1e-12, "{q}");
        }
    }

    #[test]
    fn error_method_mirrors_the_lower_cuts() {
        // Errors 1, 3 at this step; level 80 -> cuts 0.1, 0.9.
        let cuts = Cuts::conformal(&Asked::Level(vec![PyNumber::int(80)]));
        let mut out = Vec::new();
        conformal_step(Method::ConformalError, 10.0, &[3.0, 1.0], &cuts, &mut out);
        // quantile([1, 3], 0.9) = 2.8 on both sides.
        assert!(
            (out[0] - 7.2).abs() < 1e-12 && (out[1] - 12.8).abs() < 1e-12,
            "{out:?}"
        );
        // NeuralForecast 1.x/2.x: the level/100 = 0.8 quantile, 2.6.
        out.clear();
        error_step_before3(10.0, &[3.0, 1.0], &cuts.levels, &mut out);
        assert!(
            (out[0] - 7.4).abs() < 1e-12 && (out[1] - 12.6).abs() < 1e-12,
            "{out:?}"
        );
        out.clear();
        conformal_step(
            Method::ConformalDistribution,
            10.0,
            &[3.0, 1.0],
            &cuts,
            &mut out,
        );
        // paths 7, 9, 11, 13: quantile 0.1 = 7.6, 0.9 = 12.4.
        assert!(
            (out[0] - 7.6).abs() < 1e-12 && (out[1] - 12.4).abs() < 1e-12,
            "{out:?}"
        );
    }
}
