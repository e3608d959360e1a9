//! Series-level scalers (`local_scaler_type` of the NeuralForecast object):
//! coreforecast's LocalStandardScaler, LocalRobustScaler (mad, iqr) and
//! LocalMinMaxScaler and LocalBoxCoxScaler (loglik), refit on each request's
//! history per series and column, inverted on the target after the forward
//! pass. Arithmetic follows coreforecast's float32 kernels.

/// Why a local scaler cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScalerError {
    /// The bundle names a scaler this service does not know.
    #[error("local_scaler_type '{0}' is unknown")]
    Unknown(String),
    /// A request's values Box-Cox cannot transform (coreforecast raises).
    #[error("the Box-Cox local scaler needs non-negative values")]
    NegativeForBoxCox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalScalerKind {
    Standard,
    RobustMad,
    RobustIqr,
    MinMax,
    /// Box-Cox with lambda in [0, 2] maximising the log-likelihood (Brent).
    BoxCox,
}

impl LocalScalerKind {
    pub fn parse(s: &str) -> Result<LocalScalerKind, ScalerError> {
        Ok(match s {
            "standard" => Self::Standard,
            "robust" => Self::RobustMad,
            "robust-iqr" => Self::RobustIqr,
            "minmax" => Self::MinMax,
            "boxcox" => Self::BoxCox,
            other => return Err(ScalerError::Unknown(other.to_string())),
        })
    }

    /// Statistics of one series' column, as coreforecast computes them on f32 data.
    /// Box-Cox refuses negative values (coreforecast raises on them).
    pub fn fit(self, x: &[f32]) -> Result<LocalStats, ScalerError> {
        if self == Self::BoxCox {
            if x.iter().any(|v| *v < 0.0) {
                return Err(ScalerError::NegativeForBoxCox);
            }
            return Ok(LocalStats::BoxCox {
                lambda: boxcox_lambda(x),
            });
        }
        let (offset, scale) = match self {
            Self::Standard => {
                let n = x.len().max(1) as f64;
                let mean = x.iter().map(|v| *v as f64).sum::<f64>() / n;
                let var = x.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n;
                (mean as f32, var.sqrt() as f32)
            }
            Self::RobustMad => {
                let median = quantile(x, 0.5);
                let dev: Vec<f32> = x.iter().map(|v| (v - median).abs()).collect();
                (median, quantile(&dev, 0.5))
            }
            Self::RobustIqr => {
                let median = quantile(x, 0.5);
                (median, quantile(x, 0.75) - quantile(x, 0.25))
            }
            Self::MinMax => {
                let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                (lo, hi - lo)
            }
            Self::BoxCox => (0.0, 1.0),
        };
        // coreforecast replaces a zero scale (a constant series) by 1.
        Ok(LocalStats::Affine {
            offset,
            scale: if scale == 0.0 { 1.0 } else { scale },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalStats {
    /// (x - offset) / scale.
    Affine {
        offset: f32,
        scale: f32,
    },
    BoxCox {
        lambda: f32,
    },
}

impl LocalStats {
    pub fn transform(&self, v: f32) -> f32 {
        match *self {
            LocalStats::Affine { offset, scale } => (v - offset) / scale,
            LocalStats::BoxCox { lambda } => boxcox(v, lambda),
        }
    }
    pub fn inverse(&self, v: f32) -> f32 {
        match *self {
            LocalStats::Affine { offset, scale } => v * scale + offset,
            LocalStats::BoxCox { lambda } => inv_boxcox(v, lambda),
        }
    }
}

fn boxcox(x: f32, lambda: f32) -> f32 {
    if lambda < 0.0 && x < 0.0 {
        return f32::NAN;
    }
    if lambda.abs() < 1e-19 {
        return x.ln();
    }
    if x > 0.0 {
        return (lambda * x.ln()).exp_m1() / lambda;
    }
    (-(lambda * (-x).ln()).exp() - 1.0) / lambda
}

fn inv_boxcox(z: f32, lambda: f32) -> f32 {
    if lambda < 0.0 && lambda * z + 1.0 < 0.0 {
        return f32::NAN;
    }
    if lambda == 0.0 {
        return z.exp();
    }
    if lambda * z + 1.0 > 0.0 {
        return ((lambda * z).ln_1p() / lambda).exp();
    }
    -(((-lambda * z - 1.0).ln()) / lambda).exp()
}

/// Negative Box-Cox profile log-likelihood at `lambda` (f32 data, f64 sums).
fn boxcox_neg_loglik(lambda: f32, x: &[f32]) -> f32 {
    let n = x.len();
    let logs: Vec<f32> = x.iter().map(|v| v.ln()).collect();
    let values: Vec<f32> = if lambda == 0.0 {
        logs.clone()
    } else {
        x.iter().map(|v| (lambda * v.ln()).exp() / lambda).collect()
    };
    let mean = values.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
    let var = values
        .iter()
        .map(|v| (*v as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    let sum_logs: f64 = logs.iter().map(|v| *v as f64).sum();
    -(((lambda as f64 - 1.0) * sum_logs - n as f64 / 2.0 * var.ln()) as f32)
}

/// Brent's minimisation of the negative log-likelihood over lambda in [0, 2],
/// with coreforecast's tolerance (float32 epsilon ^ 0.25).
fn boxcox_lambda(x: &[f32]) -> f32 {
    let tol = (f32::EPSILON).powf(0.25) as f64;
    brent_min(|l| boxcox_neg_loglik(l as f32, x) as f64, 0.0, 2.0, tol) as f32
}

/// Brent's method (golden section + parabolic steps) on [a, b].
fn brent_min(f: impl Fn(f64) -> f64, mut a: f64, mut b: f64, tol: f64) -> f64 {
    const GOLDEN: f64 = 0.381_966_0;
    let eps = f64::EPSILON.sqrt();
    let mut v = a + GOLDEN * (b - a);
    let mut w = v;
    let mut x = v;
    let (mut d, mut e) = (0.0f64, 0.0f64);
    let mut fx = f(x);
    let (mut fv, mut fw) = (fx, fx);
    let tol3 = tol / 3.0;
    for _ in 0..500 {
        let xm = (a + b) * 0.5;
        let tol1 = eps * x.abs() + tol3;
        let t2 = tol1 * 2.0;
        if (x - xm).abs() <= t2 - (b - a) * 0.5 {
            break;
        }
        let (mut p, mut q, mut r) = (0.0f64, 0.0f64, 0.0f64);
        if e.abs() > tol1 {
            r = (x - w) * (fx - fv);
            q = (x - v) * (fx - fw);
            p = (x - v) * q - (x - w) * r;
            q = (q - r) * 2.0;
            if q > 0.0 {
                p = -p;
            } else {
                q = -q;
            }
            r = e;
            e = d;
        }
        if p.abs() >= (q * 0.5 * r).abs() || p <= q * (a - x) || p >= q * (b - x) {
            e = if x < xm { b - x } else { a - x };
            d = GOLDEN * e;
        } else {
            d = p / q;
            let u = x + d;
            if u - a < t2 || b - u < t2 {
                d = if x >= xm { -tol1 } else { tol1 };
            }
        }
        let u = if d.abs() >= tol1 {
            x + d
        } else if d > 0.0 {
            x + tol1
        } else {
            x - tol1
        };
        let fu = f(u);
        if fu <= fx {
            if u < x {
                b = x;
            } else {
                a = x;
            }
            v = w;
            w = x;
            x = u;
            fv = fw;
            fw = fx;
            fx = fu;
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                v = w;
                fv = fw;
                w = u;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    x
}

/// coreforecast's `Quantile`: linear interpolation between order statistics,
/// position computed in f32.
fn quantile(x: &[f32], p: f32) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    let mut buf = x.to_vec();
    let n = buf.len();
    let i_plus_g = p * (n as f32 - 1.0);
    let i = (i_plus_g as usize).min(n - 1);
    let g = i_plus_g - i as f32;
    let (_, at, upper) = buf.select_nth_unstable_by(i, f32::total_cmp);
    let mut out = *at;
    if g > 0.0 {
        if let Some(next) = upper.iter().copied().reduce(f32::min) {
            out += g * (next - out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_like_numpy_linear() {
        let x = [4.0f32, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&x, 0.5), 2.5);
        assert_eq!(quantile(&x, 0.25), 1.75);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn each_kind_round_trips() {
        let x = [10.0f32, 12.0, 9.0, 15.0, 11.0];
        for k in [
            LocalScalerKind::Standard,
            LocalScalerKind::RobustMad,
            LocalScalerKind::RobustIqr,
            LocalScalerKind::MinMax,
            LocalScalerKind::BoxCox,
        ] {
            let s = k.fit(&x).unwrap();
            for v in x {
                assert!((s.inverse(s.transform(v)) - v).abs() < 1e-4);
            }
        }
        assert_eq!(
            LocalScalerKind::MinMax.fit(&x).unwrap(),
            LocalStats::Affine {
                offset: 9.0,
                scale: 6.0
            }
        );
        assert_eq!(
            LocalScalerKind::Standard.fit(&[1.0, 3.0]).unwrap(),
            LocalStats::Affine {
                offset: 2.0,
                scale: 1.0
            }
        );
    }

    #[test]
    fn constant_series_gets_unit_scale() {
        assert_eq!(
            LocalScalerKind::Standard.fit(&[3.0, 3.0]).unwrap(),
            LocalStats::Affine {
                offset: 3.0,
                scale: 1.0
            }
        );
        assert_eq!(
            LocalScalerKind::MinMax.fit(&[3.0]).unwrap(),
            LocalStats::Affine {
                offset: 3.0,
                scale: 1.0
            }
        );
        assert!(LocalScalerKind::parse("nope").is_err());
    }

    #[test]
    fn boxcox_refuses_negatives_and_finds_log_for_exponential_growth() {
        assert!(LocalScalerKind::BoxCox.fit(&[1.0, -2.0]).is_err());
        // Geometric data is most normal after a log: lambda near 0.
        let x: Vec<f32> = (0..40).map(|i| (1.15f32).powi(i)).collect();
        let LocalStats::BoxCox { lambda } = LocalScalerKind::BoxCox.fit(&x).unwrap() else {
            panic!()
        };
        assert!(lambda < 0.1, "lambda {lambda}");
        // Linear data wants lambda near 1.
        let y: Vec<f32> = (1..60).map(|i| i as f32).collect();
        let LocalStats::BoxCox { lambda } = LocalScalerKind::BoxCox.fit(&y).unwrap() else {
            panic!()
        };
        assert!(lambda > 0.5, "lambda {lambda}");
    }
}
