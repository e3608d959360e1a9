//! `torch.nn.LayerNorm`: every contiguous run of `prod(normalized_shape)`
//! values is centred and scaled by its own mean and biased variance, then the
//! elementwise affine. `LayerNorm(d)` on [tokens, d] normalises each row;
//! TSMixerx's `LayerNorm((h, c))` on one [h, c] window normalises all of it.

use crate::forecaster::{shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{ArrayBase, DataMut, Dimension};

/// torch's default `eps`.
pub const EPS: f32 = 1e-5;

#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Loads `<prefix>.weight` and `<prefix>.bias`, both of `normalized_shape`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        normalized_shape: &[usize],
    ) -> Result<LayerNorm, BuildError> {
        Ok(LayerNorm {
            weight: store
                .get(&format!("{prefix}.weight"), normalized_shape)?
                .data
                .clone(),
            bias: store
                .get(&format!("{prefix}.bias"), normalized_shape)?
                .data
                .clone(),
            eps: EPS,
        })
    }

    /// A non-default `eps` (TFT's gates use `LayerNorm(eps=1e-3)`).
    pub fn with_eps(self, eps: f32) -> LayerNorm {
        LayerNorm { eps, ..self }
    }

    /// Values normalised together.
    pub fn len(&self) -> usize {
        self.weight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }

    /// Normalises `x` in place, run by run in row-major order. The element
    /// count must be a multiple of `len()`.
    pub fn forward_inplace<S, D>(&self, x: &mut ArrayBase<S, D>) -> Result<(), ForwardError>
    where
        S: DataMut<Elem = f32>,
        D: Dimension,
    {
        let d = self.len();
        let n = x.len();
        let data = x
            .as_slice_mut()
            .ok_or_else(|| shape!("layer norm input is not contiguous in row-major order"))?;
        if d == 0 || !n.is_multiple_of(d) {
            return Err(shape!(
                "layer norm over {d} values cannot split an input of {n}"
            ));
        }
        for run in data.chunks_exact_mut(d) {
            // Moments accumulated in f64 and rounded once: torch's f32 moments are
            // within an ulp of these.
            let mean = run.iter().map(|v| f64::from(*v)).sum::<f64>() / d as f64;
            let var = run
                .iter()
                .map(|v| {
                    let c = f64::from(*v) - mean;
                    c * c
                })
                .sum::<f64>()
                / d as f64;
            let mean = mean as f32;
            let rstd = 1.0 / (var as f32 + self.eps).sqrt();
            for ((v, w), b) in run.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * rstd * w + b;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::array;

    pub fn from_parts(weight: Vec<f32>, bias: Vec<f32>) -> LayerNorm {
        LayerNorm {
            weight,
            bias,
            eps: EPS,
        }
    }

    #[test]
    fn rows_match_hand_computed_values() {
        // Row [1, 2, 3, 6]: mean 3, biased var (4 + 1 + 0 + 9) / 4 = 3.5.
        let ln = from_parts(vec![1.0, 2.0, 1.0, 1.0], vec![0.0, 0.0, 0.5, 0.0]);
        let mut x = array![[1.0f32, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]];
        ln.forward_inplace(&mut x).unwrap();
        let r = 1.0 / (3.5f32 + EPS).sqrt();
        let want = [-2.0 * r, -2.0 * r, 0.5, 3.0 * r];
        for (g, w) in x.row(0).iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        // A constant run maps to the bias alone.
        assert_eq!(x.row(1).to_vec(), vec![0.0, 0.0, 0.5, 0.0]);
    }

    #[test]
    fn a_two_dim_shape_normalises_the_whole_window() {
        let ln = from_parts(vec![1.0; 4], vec![0.0; 4]);
        let mut x = array![[0.0f32, 2.0], [4.0, 6.0]];
        ln.forward_inplace(&mut x).unwrap();
        let s = (5.0f32 + EPS).sqrt();
        assert!((x[[0, 0]] + 3.0 / s).abs() < 1e-6);
        assert!((x[[1, 1]] - 3.0 / s).abs() < 1e-6);
        let mut bad = array![[1.0f32, 2.0, 3.0]];
        assert!(ln.forward_inplace(&mut bad).is_err());
    }
}
