//! Element-wise activations, applied in place.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use ndarray::{ArrayBase, DataMut, Dimension};

pub fn relu_inplace<S: DataMut<Elem = f32>, D: Dimension>(x: &mut ArrayBase<S, D>) {
    x.mapv_inplace(|v| if v > 0.0 { v } else { 0.0 });
}

/// `torch.nn` activation by its class name, as NeuralForecast's `ACTIVATIONS`
/// list names them (decoder MLPs, TCN encoders), with torch's default arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    ReLU,
    Softplus,
    Tanh,
    SELU,
    LeakyReLU,
    Sigmoid,
    GELU,
    ELU,
    SiLU,
    Mish,
    Softsign,
    Hardshrink,
    Softshrink,
    /// Eval mode: a leaky ReLU with the mean of the default slope range.
    RReLU,
    CELU,
    LogSigmoid,
    Hardtanh,
    Hardswish,
    Identity,
}

impl Activation {
    /// The class name as NeuralForecast stores it; names with learned weights
    /// or a changed width (PReLU, GLU) or required arguments (Threshold) are refused.
    pub fn parse(name: &str) -> Result<Activation, BuildError> {
        use Activation::*;
        Ok(match name {
            "ReLU" => ReLU,
            "Softplus" => Softplus,
            "Tanh" => Tanh,
            "SELU" => SELU,
            "LeakyReLU" => LeakyReLU,
            "Sigmoid" => Sigmoid,
            "GELU" => GELU,
            "ELU" => ELU,
            "SiLU" => SiLU,
            "Mish" => Mish,
            "Softsign" => Softsign,
            "Hardshrink" => Hardshrink,
            "Softshrink" => Softshrink,
            "RReLU" => RReLU,
            "CELU" => CELU,
            "LogSigmoid" => LogSigmoid,
            "Hardtanh" => Hardtanh,
            "Hardswish" => Hardswish,
            "Identity" => Identity,
            other => {
                return Err(BuildError::Unsupported(format!(
                    "activation '{other}' is not supported"
                )))
            }
        })
    }

    pub fn apply(self, x: f32) -> f32 {
        use Activation::*;
        const SELU_ALPHA: f32 = 1.673_263_2;
        const SELU_SCALE: f32 = 1.050_701;
        match self {
            ReLU => x.max(0.0),
            Softplus => softplus(x),
            Tanh => x.tanh(),
            SELU => {
                if x > 0.0 {
                    SELU_SCALE * x
                } else {
                    SELU_SCALE * SELU_ALPHA * x.exp_m1()
                }
            }
            LeakyReLU => leaky(x, 0.01),
            Sigmoid => sigmoid(x),
            GELU => gelu(x),
            ELU | CELU => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            SiLU => x / (1.0 + (-x).exp()),
            Mish => x * softplus(x).tanh(),
            Softsign => x / (1.0 + x.abs()),
            Hardshrink => {
                if x.abs() > 0.5 {
                    x
                } else {
                    0.0
                }
            }
            Softshrink => {
                if x > 0.5 {
                    x - 0.5
                } else if x < -0.5 {
                    x + 0.5
                } else {
                    0.0
                }
            }
            RReLU => leaky(x, (1.0 / 8.0 + 1.0 / 3.0) / 2.0),
            LogSigmoid => x.min(0.0) - (-x.abs()).exp().ln_1p(),
            Hardtanh => x.clamp(-1.0, 1.0),
            Hardswish => {
                if x <= -3.0 {
                    0.0
                } else if x >= 3.0 {
                    x
                } else {
                    x * (x + 3.0) / 6.0
                }
            }
            Identity => x,
        }
    }

    pub fn apply_inplace<S: DataMut<Elem = f32>, D: Dimension>(self, x: &mut ArrayBase<S, D>) {
        if self != Activation::Identity {
            x.mapv_inplace(|v| self.apply(v));
        }
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Exact (erf) GELU, `torch.nn.functional.gelu`'s default.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// beta = 1, threshold = 20 (torch's defaults).
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

fn leaky(x: f32, slope: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        x * slope
    }
}

/// `torch.nn.PReLU`: a leaky ReLU whose slope is learned, one for all
/// features or one per feature (column), stored as `<prefix>.weight`.
#[derive(Debug, Clone)]
pub struct PRelu {
    slope: Vec<f32>,
}

impl PRelu {
    pub fn load(store: &crate::tensors::TensorStore, prefix: &str) -> Result<PRelu, BuildError> {
        let name = format!("{prefix}.weight");
        let shape = store.shape_of(&name)?.to_vec();
        let slope = store.get(&name, &shape)?.data.clone();
        if shape.len() != 1 || slope.is_empty() {
            return Err(invalid!("tensor '{name}' must be a non-empty vector"));
        }
        Ok(PRelu { slope })
    }

    /// x: [batch, features].
    pub fn apply_inplace(&self, x: &mut ndarray::Array2<f32>) -> Result<(), ForwardError> {
        match self.slope.as_slice() {
            [a] => x.mapv_inplace(|v| leaky(v, *a)),
            s if s.len() == x.ncols() => {
                for mut row in x.rows_mut() {
                    row.iter_mut().zip(s).for_each(|(v, a)| *v = leaky(*v, *a));
                }
            }
            s => {
                return Err(shape!(
                    "PReLU has {} slopes for {} features",
                    s.len(),
                    x.ncols()
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn relu_clamps_negatives_only() {
        let mut x = array![[-1.0f32, 0.0, 2.5]];
        relu_inplace(&mut x);
        assert_eq!(x, array![[0.0f32, 0.0, 2.5]]);
    }

    #[test]
    fn named_activations_match_torch_values() {
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
        // torch.nn.functional.gelu(torch.tensor([-1.5, 0.3, 2.0]))
        for (x, want) in [
            (-1.5f32, -0.100_210_86),
            (0.3, 0.185_373_44),
            (2.0, 1.954_499_7),
        ] {
            assert!(close(gelu(x), want), "gelu({x}) = {}", gelu(x));
        }
        assert!(close(Activation::SELU.apply(-1.0), -1.111_330_7));
        assert!(close(Activation::Mish.apply(1.0), 0.865_098_4));
        assert!(close(Activation::LogSigmoid.apply(-2.0), -2.126_928));
        assert_eq!(Activation::parse("ReLU").ok(), Some(Activation::ReLU));
        assert!(Activation::parse("PReLU").is_err());
    }
}
