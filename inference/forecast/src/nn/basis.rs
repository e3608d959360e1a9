//! How a block of the NBEATS family turns theta into (backcast, forecast):
//! NBEATS/NBEATSx `IdentityBasis`, `TrendBasis` and `SeasonalityBasis` (fixed
//! bases saved with the weights, so any `basis`/`n_basis`/`n_polynomials`/
//! `n_harmonics` is served as trained), NBEATSx `ExogenousBasis`, and NHITS'
//! `_IdentityBasis`, whose forecast knots are interpolated to the horizon.

use super::interpolate::Resize;
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Slice};

#[derive(Debug, Clone)]
pub enum Basis {
    /// theta = [backcast (L) | forecast (h x outputs, step-major)].
    Identity {
        input_size: usize,
        h: usize,
        outputs: usize,
    },
    /// Trend and seasonality: backcast = theta[:P] . B [P, L]; forecast
    /// reshapes theta[P:] to [P, outputs] and projects it on F [P, h].
    Fixed {
        backcast_basis: Array2<f32>,
        forecast_basis: Array2<f32>,
        outputs: usize,
    },
    /// theta = [forecast coefficients (C) | backcast coefficients (C)] on the
    /// C exogenous channels of the window ([batch, L + h, C]); one output,
    /// broadcast over a multi-output forecast.
    Exogenous { channels: usize, h: usize },
    /// NHITS: theta = [backcast (L) | knots (outputs x n, output-major)], each
    /// output's knots resized to h.
    Interpolated {
        input_size: usize,
        knots: usize,
        outputs: usize,
        resize: Resize,
    },
}

impl Basis {
    /// The NBEATS basis of a stack type; trend/seasonality read
    /// `<prefix>.basis.{backcast,forecast}_basis`.
    pub fn nbeats(
        stack_type: &str,
        store: &TensorStore,
        prefix: &str,
        input_size: usize,
        h: usize,
        outputs: usize,
        exog_channels: usize,
    ) -> Result<Basis, BuildError> {
        match stack_type {
            "identity" => Ok(Basis::Identity {
                input_size,
                h,
                outputs,
            }),
            "trend" | "seasonality" => {
                let b = format!("{prefix}.basis.backcast_basis");
                let f = format!("{prefix}.basis.forecast_basis");
                let p = *store
                    .shape_of(&f)?
                    .first()
                    .ok_or_else(|| invalid!("tensor '{f}' has no rows"))?;
                Ok(Basis::Fixed {
                    backcast_basis: store.array2(&b, p, input_size)?,
                    forecast_basis: store.array2(&f, p, h)?,
                    outputs,
                })
            }
            "exogenous" => Ok(Basis::Exogenous {
                channels: exog_channels,
                h,
            }),
            other => Err(invalid!("stack type '{other}' is not known")),
        }
    }

    /// Width of theta this basis consumes.
    pub fn n_theta(&self) -> usize {
        match self {
            Basis::Identity {
                input_size,
                h,
                outputs,
            } => input_size + h * outputs,
            Basis::Fixed {
                forecast_basis,
                outputs,
                ..
            } => forecast_basis.nrows() * (outputs + 1),
            Basis::Exogenous { channels, .. } => 2 * channels,
            Basis::Interpolated {
                input_size,
                knots,
                outputs,
                ..
            } => input_size + knots * outputs,
        }
    }

    /// theta [batch, n_theta] -> (backcast [batch, L], forecast [batch, h,
    /// outputs or 1]). `exog` ([batch, L + h, C]) is read by `Exogenous` only.
    pub fn forward(
        &self,
        theta: ArrayView2<f32>,
        exog: Option<ArrayView3<f32>>,
    ) -> Result<(Array2<f32>, Array3<f32>), ForwardError> {
        let b = theta.nrows();
        if theta.ncols() != self.n_theta() {
            return Err(shape!(
                "basis expects theta of width {}, got {}",
                self.n_theta(),
                theta.ncols()
            ));
        }
        match self {
            Basis::Identity {
                input_size,
                h,
                outputs,
            } => {
                let (backcast, rest) = theta.split_at(Axis(1), *input_size);
                let mut forecast = Array3::zeros((b, *h, *outputs));
                for (mut f, t) in forecast.outer_iter_mut().zip(rest.outer_iter()) {
                    f.iter_mut().zip(t).for_each(|(d, v)| *d = *v);
                }
                Ok((backcast.to_owned(), forecast))
            }
            Basis::Fixed {
                backcast_basis,
                forecast_basis,
                outputs,
            } => {
                let p = forecast_basis.nrows();
                let backcast = theta.split_at(Axis(1), p).0.dot(backcast_basis);
                let mut forecast = Array3::zeros((b, forecast_basis.ncols(), *outputs));
                for q in 0..*outputs {
                    // theta[P:] reshaped [P, outputs]: output q is every outputs-th column.
                    let coefs = theta.slice_axis(
                        Axis(1),
                        Slice::new((p + q) as isize, None, *outputs as isize),
                    );
                    forecast
                        .index_axis_mut(Axis(2), q)
                        .assign(&coefs.dot(forecast_basis));
                }
                Ok((backcast, forecast))
            }
            Basis::Exogenous { channels, h } => {
                let x = exog.ok_or_else(|| shape!("the exogenous basis needs exogenous inputs"))?;
                let (xb, t, c) = x.dim();
                if xb != b || c != *channels || t < *h {
                    return Err(shape!(
                        "exogenous basis built for {channels} channels got [{xb}, {t}, {c}]"
                    ));
                }
                let l = t - h;
                let mut backcast = Array2::zeros((b, l));
                let mut forecast = Array3::zeros((b, *h, 1));
                for i in 0..b {
                    for k in 0..t {
                        let off = if k < l { c } else { 0 };
                        let mut v = 0.0f32;
                        for ch in 0..c {
                            v += theta[[i, off + ch]] * x[[i, k, ch]];
                        }
                        if k < l {
                            backcast[[i, k]] = v;
                        } else {
                            forecast[[i, k - l, 0]] = v;
                        }
                    }
                }
                Ok((backcast, forecast))
            }
            Basis::Interpolated {
                input_size,
                knots,
                outputs,
                resize,
            } => {
                let backcast = theta.split_at(Axis(1), *input_size).0.to_owned();
                let mut forecast = Array3::zeros((b, resize.out_len(), *outputs));
                for i in 0..b {
                    for q in 0..*outputs {
                        let start = input_size + q * knots;
                        let row = theta.row(i);
                        let knots_q = row.slice_axis(Axis(0), Slice::from(start..start + knots));
                        let mut dst = forecast.index_axis_mut(Axis(0), i);
                        resize.apply(knots_q, |t, v| dst[[t, q]] = v)?;
                    }
                }
                Ok((backcast, forecast))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::interpolate::InterpMode;
    use ndarray::array;

    #[test]
    fn identity_splits_step_major() {
        let basis = Basis::Identity {
            input_size: 2,
            h: 2,
            outputs: 2,
        };
        let theta = array![[1.0f32, 2.0, 10.0, 11.0, 20.0, 21.0]];
        let (b, f) = basis.forward(theta.view(), None).unwrap();
        assert_eq!(b, array![[1.0f32, 2.0]]);
        assert_eq!(f, array![[[10.0f32, 11.0], [20.0, 21.0]]]);
        assert!(basis.forward(array![[1.0f32]].view(), None).is_err());
    }

    #[test]
    fn fixed_basis_reshapes_coefficients_output_minor() {
        // P = 2 basis rows, L = 1, h = 2, 2 outputs.
        let basis = Basis::Fixed {
            backcast_basis: array![[1.0f32], [2.0]],
            forecast_basis: array![[1.0f32, 0.0], [1.0, 1.0]],
            outputs: 2,
        };
        // backcast coefs [1, 1]; forecast coefs [[p0q0, p0q1], [p1q0, p1q1]].
        let theta = array![[1.0f32, 1.0, 3.0, 5.0, 7.0, 11.0]];
        let (b, f) = basis.forward(theta.view(), None).unwrap();
        assert_eq!(b, array![[3.0f32]]);
        assert_eq!(f, array![[[10.0f32, 16.0], [7.0, 11.0]]]);
    }

    #[test]
    fn exogenous_basis_splits_forecast_first() {
        let basis = Basis::Exogenous { channels: 1, h: 1 };
        let x = array![[[2.0f32], [3.0], [5.0]]]; // L = 2, h = 1
        let (b, f) = basis
            .forward(array![[10.0f32, 1.0]].view(), Some(x.view()))
            .unwrap();
        assert_eq!(b, array![[2.0f32, 3.0]]);
        assert_eq!(f, array![[[50.0f32]]]);
        assert!(basis.forward(array![[10.0f32, 1.0]].view(), None).is_err());
    }

    #[test]
    fn interpolated_knots_are_output_major() {
        let basis = Basis::Interpolated {
            input_size: 1,
            knots: 2,
            outputs: 2,
            resize: Resize::new(InterpMode::Nearest, 2, 4).unwrap(),
        };
        let theta = array![[0.0f32, 1.0, 2.0, 10.0, 20.0]];
        let (_, f) = basis.forward(theta.view(), None).unwrap();
        assert_eq!(
            f,
            array![[[1.0f32, 10.0], [1.0, 10.0], [2.0, 20.0], [2.0, 20.0]]]
        );
    }
}
