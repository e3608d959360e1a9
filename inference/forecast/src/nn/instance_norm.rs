//! Instance normalisation over time, per series, of one multivariate window
//! [time, series], undone on the output: `RevINMultivariate`
//! (common/_modules.py; TSMixer, TSMixerx, with learned affine terms) and
//! iTransformer's `use_norm` (the same statistics, no affine terms), and
//! `RevIN` (TimeMixer, PatchTST: per-feature affine terms, `eps²` added to
//! the weight when undoing them; PatchTST may centre on the last value).
//! Statistics run over every step of the window, zero padding included, as
//! in PyTorch (these are not the masked temporal scalers of `scalers.rs`).

use crate::forecaster::{shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis};

/// `RevINMultivariate`'s and iTransformer's variance epsilon.
pub const EPS: f32 = 1e-5;

#[derive(Debug, Clone)]
pub struct InstanceNorm {
    /// (weight, bias) per series.
    affine: Option<(Vec<f32>, Vec<f32>)>,
    eps: f32,
    /// Added to the affine weight by the inverse (RevIN's `eps * eps`).
    weight_eps: f32,
    /// Centre on the window's last value instead of its mean (RevIN's `subtract_last`).
    subtract_last: bool,
}

/// Mean (or last value) and std of each series of the window the input was
/// normalised with.
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
            weight_eps: 0.0,
            subtract_last: false,
        }
    }

    /// iTransformer's `use_norm` (also SOFTS, TimeXer, XLinear): a plain
    /// norm unless the hyperparameter turns it off.
    pub fn use_norm(use_norm: bool) -> Option<InstanceNorm> {
        use_norm.then(InstanceNorm::plain)
    }

    /// `<prefix>.affine_weight` / `<prefix>.affine_bias`, each [1, 1, n_series].
    pub fn load_affine(
        store: &TensorStore,
        prefix: &str,
        n_series: usize,
    ) -> Result<InstanceNorm, BuildError> {
        let get = |name: &str| -> Result<Vec<f32>, BuildError> {
            Ok(store
                .get(&format!("{prefix}.{name}"), &[1, 1, n_series])?
                .data
                .clone())
        };
        Ok(InstanceNorm {
            affine: Some((get("affine_weight")?, get("affine_bias")?)),
            eps: EPS,
            weight_eps: 0.0,
            subtract_last: false,
        })
    }

    /// `RevIN(affine=True)`: `<prefix>.affine_weight` / `.affine_bias`, each [n_series].
    pub fn load_revin(
        store: &TensorStore,
        prefix: &str,
        n_series: usize,
    ) -> Result<InstanceNorm, BuildError> {
        let get = |name: &str| store.array1(&format!("{prefix}.{name}"), n_series);
        Ok(InstanceNorm {
            affine: Some((get("affine_weight")?.to_vec(), get("affine_bias")?.to_vec())),
            eps: EPS,
            weight_eps: EPS * EPS,
            subtract_last: false,
        })
    }

    /// `RevIN(subtract_last=True)`: the window is centred on its last value
    /// (the std is still taken around the mean).
    pub fn subtract_last(self) -> InstanceNorm {
        InstanceNorm {
            subtract_last: true,
            ..self
        }
    }

    fn check(&self, x: &Array2<f32>) -> Result<(), ForwardError> {
        match &self.affine {
            Some((w, _)) if w.len() != x.ncols() => Err(shape!(
                "instance norm learned {} series, the window has {}",
                w.len(),
                x.ncols()
            )),
            _ => Ok(()),
        }
    }

    /// Normalises x [time, series] in place, column by column.
    pub fn normalize(&self, x: &mut Array2<f32>) -> Result<InstanceStats, ForwardError> {
        self.check(x)?;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for (j, mut col) in x.axis_iter_mut(Axis(1)).enumerate() {
            let n = col.len().max(1) as f64;
            // torch.mean / torch.var(unbiased=False): f64 moments rounded once.
            let m = col.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
            let var = col.iter().map(|v| (f64::from(*v) - m).powi(2)).sum::<f64>() / n;
            let (mut m, s) = (m as f32, (var as f32 + self.eps).sqrt());
            if self.subtract_last {
                m = col.last().copied().unwrap_or(0.0);
            }
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
    pub fn denormalize(
        &self,
        x: &mut Array2<f32>,
        stats: &InstanceStats,
    ) -> Result<(), ForwardError> {
        self.check(x)?;
        if stats.mean.len() != x.ncols() {
            return Err(shape!(
                "instance statistics of {} series for an output of {}",
                stats.mean.len(),
                x.ncols()
            ));
        }
        for (j, mut col) in x.axis_iter_mut(Axis(1)).enumerate() {
            if let Some((w, b)) = &self.affine {
                let w = w[j] + self.weight_eps;
                col.mapv_inplace(|v| (v - b[j]) / w);
            }
            let (m, s) = (stats.mean[j], stats.std[j]);
            col.mapv_inplace(|v| v * s + m);
        }
        Ok(())
    }
}

/// A multivariate model's window: rows [series, time] as [time, series],
/// normalised per series when the model has a norm, with the statistics that
/// `denormalized_output` undoes it with.
pub fn normalized_window(
    norm: Option<&InstanceNorm>,
    rows: ArrayView2<f32>,
) -> Result<(Array2<f32>, Option<InstanceStats>), ForwardError> {
    let mut x = rows.t().as_standard_layout().into_owned();
    let stats = norm.map(|norm| norm.normalize(&mut x)).transpose()?;
    Ok((x, stats))
}

/// A multivariate head's output rows [series, steps] as [steps, series],
/// the window's normalisation undone.
pub fn denormalized_output(
    norm: Option<&InstanceNorm>,
    stats: Option<&InstanceStats>,
    rows: ArrayView2<f32>,
) -> Result<Array2<f32>, ForwardError> {
    let mut y = rows.t().as_standard_layout().into_owned();
    if let (Some(norm), Some(stats)) = (norm, stats) {
        norm.denormalize(&mut y, stats)?;
    }
    Ok(y)
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
            weight_eps: 0.0,
            subtract_last: false,
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

    #[test]
    fn subtract_last_centres_on_the_last_value() {
        let norm = InstanceNorm::plain().subtract_last();
        let mut x = array![[1.0f32], [3.0], [2.0]];
        let st = norm.normalize(&mut x).unwrap();
        // mean 2, biased var 2/3; centred on 2.0 (the last value).
        let s = (2.0f32 / 3.0 + EPS).sqrt();
        assert!((x[[0, 0]] + 1.0 / s).abs() < 1e-6 && x[[2, 0]] == 0.0);
        let mut y = array![[0.5f32]];
        norm.denormalize(&mut y, &st).unwrap();
        assert!((y[[0, 0]] - (0.5 * s + 2.0)).abs() < 1e-6);
    }
}
