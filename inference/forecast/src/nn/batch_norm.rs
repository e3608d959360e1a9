//! `torch.nn.BatchNorm1d` in eval mode: the running statistics, folded as
//! torch's CPU kernel folds them, `y = x * alpha + beta` with
//! `alpha = weight / sqrt(running_var + eps)` and `beta = bias - running_mean * alpha`.

use crate::forecaster::{shape, BuildError, ForwardError};
use crate::tensors::TensorStore;

#[derive(Debug, Clone)]
pub struct BatchNorm1d {
    alpha: Vec<f32>,
    beta: Vec<f32>,
}

impl BatchNorm1d {
    /// Loads `<prefix>.{weight,bias,running_mean,running_var}`, each [num_features].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        num_features: usize,
        eps: f32,
    ) -> Result<BatchNorm1d, BuildError> {
        let get = |name: &str| -> Result<&[f32], BuildError> {
            Ok(store
                .get(&format!("{prefix}.{name}"), &[num_features])?
                .data
                .as_slice())
        };
        let (w, b) = (get("weight")?, get("bias")?);
        let (mean, var) = (get("running_mean")?, get("running_var")?);
        Ok(Self::fold(w, b, mean, var, eps))
    }

    fn fold(w: &[f32], b: &[f32], mean: &[f32], var: &[f32], eps: f32) -> BatchNorm1d {
        let alpha: Vec<f32> = w
            .iter()
            .zip(var)
            .map(|(w, v)| (1.0 / (v + eps).sqrt()) * w)
            .collect();
        let beta = b
            .iter()
            .zip(mean)
            .zip(&alpha)
            .map(|((b, m), a)| b - m * a)
            .collect();
        BatchNorm1d { alpha, beta }
    }

    pub fn num_features(&self) -> usize {
        self.alpha.len()
    }

    /// Normalises one sample, its features in torch's order.
    pub fn forward_inplace(&self, x: &mut [f32]) -> Result<(), ForwardError> {
        if x.len() != self.num_features() {
            return Err(shape!(
                "batch norm expects {} features, got {}",
                self.num_features(),
                x.len()
            ));
        }
        for ((v, a), b) in x.iter_mut().zip(&self.alpha).zip(&self.beta) {
            *v = *v * a + b;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_running_statistics() {
        // (x - 1) / sqrt(3 + 1) * 2 + 0.5 at x = 5: 4.5.
        let bn = BatchNorm1d::fold(&[2.0, 1.0], &[0.5, 0.0], &[1.0, 0.0], &[3.0, 0.0], 1.0);
        let mut x = [5.0f32, -2.0];
        bn.forward_inplace(&mut x).unwrap();
        assert_eq!(x, [4.5, -2.0]);
        assert!(bn.forward_inplace(&mut [1.0]).is_err());
    }
}
