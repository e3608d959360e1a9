//! Instance normalisation over time, per series, of one multivariate window
//! [time, series], undone on the output: `RevINMultivariate`
//! (common/_modules.py; TSMixer, TSMixerx, with learned affine terms) and
//! iTransformer's `use_norm` (the same statistics, no affine terms).
//! Statistics run over every step of the window, zero padding included, as
//! in PyTorch (these are not the masked temporal scalers of `scalers.rs`).

use crate::bundle::tensors::TensorStore;
use ndarray::{Array2, Axis};

/// `RevINMultivariate`'s and iTransformer's variance epsilon.
pub const EPS: f32 = 1e-5;

#[derive(Debug, Clone)]
pub struct InstanceNorm {
    /// (weight, bias) per series.
    affine: Option<(Vec<f32>, Vec<f32>)>,
    eps: f32,
}

/// Mean and std of each series of the window the input was normalised with.
#[derive(Debug, Clone)]
pub struct InstanceStats {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl InstanceNorm {
    /// No learned terms (iTransformer's `use_norm`).
    pub fn plain() -> InstanceNorm {
        InstanceNorm {
            affine: None,
            eps: EPS,
        }
    }

    /// `<prefix>.affine_weight` / `<prefix>.affine_bias`, each [1, 1, n_series].
    pub fn load_affine(
        store: &TensorStore,
        prefix: &str,
        n_series: usize,
    ) -> Result<InstanceNorm, String> {
        let get = |name: &str| -> Result<Vec<f32>, String> {
            Ok(store
                .get(&format!("{prefix}.{name}"), &[1, 1, n_series])?
                .data
                .clone())
        };
        Ok(InstanceNorm {
            affine: Some((get("affine_weight")?, get("affine_bias")?)),
            eps: EPS,
        })
    }

    fn check(&self, x: &Array2<f32>) -> Result<(), String> {
        match &self.affine {
            Some((w, _)) if w.len() != x.ncols() => Err(format!(
                "instance norm learned {} series, the window has {}",
                w.len(),
                x.ncols()
            )),
            _ => Ok(()),
        }
    }

    /// Normalises x [time, series] in place, column by column.
    pub fn normalize(&self, x: &mut Array2<f32>) -> Result<InstanceStats, String> {
        self.check(x)?;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for (j, mut col) in x.axis_iter_mut(Axis(1)).enumerate() {
            let n = col.len().max(1) as f64;
            // torch.mean / torch.var(unbiased=False): f64 moments rounded once.
            let m = col.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
            let var = col.iter().map(|v| (f64::from(*v) - m).powi(2)).sum::<f64>() / n;
            let (m, s) = (m as f32, (var as f32 + self.eps).sqrt());
            col.mapv_inplace(|v| (v - m) / s);
            if let Some((w, b)) = &self.affine {
                col.mapv_inplace(|v| v * w[j] + b[j]);
            }
            mean.push(m);
            std.push(s);
        }
        Ok(InstanceStats { mean, std })
    }

    /// Undoes `normalize` on an output [steps, series].
    pub fn denormalize(&self, x: &mut Array2<f32>, stats: &InstanceStats) -> Result<(), String> {
        self.check(x)?;
        if stats.mean.len() != x.ncols() {
            return Err(format!(
                "instance statistics of {} series for an output of {}",
                stats.mean.len(),
                x.ncols()
            ));
        }
        for (j, mut col) in x.axis_iter_mut(Axis(1)).enumerate() {
            if let Some((w, b)) = &self.affine {
                col.mapv_inplace(|v| (v - b[j]) / w[j]);
            }
            let (m, s) = (stats.mean[j], stats.std[j]);
            col.mapv_inplace(|v| v * s + m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn normalizes_each_series_and_round_trips() {
        let norm = InstanceNorm {
            affine: Some((vec![2.0, 1.0], vec![1.0, 0.0])),
            eps: EPS,
        };
        let orig = array![[1.0f32, 5.0], [3.0, 5.0]];
        let mut x = orig.clone();
        let st = norm.normalize(&mut x).unwrap();
        // Series 0: mean 2, std sqrt(1 + eps); weight 2, bias 1.
        let s = (1.0f32 + EPS).sqrt();
        assert!((x[[0, 0]] - (-2.0 / s + 1.0)).abs() < 1e-6);
        // Constant series 1: std sqrt(eps), values 0.
        assert_eq!(x[[1, 1]], 0.0);
        norm.denormalize(&mut x, &st).unwrap();
        for (a, b) in x.iter().zip(orig.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
        assert!(norm.normalize(&mut array![[1.0f32]]).is_err());
    }
}
