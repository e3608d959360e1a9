//! DLinear's series decomposition: a moving average with edge replication
//! (`MovingAvg` + `SeriesDecomp` in neuralforecast/models/dlinear.py).

use ndarray::{Array2, ArrayView2};

/// Returns (residual, trend) for each row of x [batch, time].
pub fn series_decomp(x: ArrayView2<f32>, kernel: usize) -> (Array2<f32>, Array2<f32>) {
    let (b, t) = x.dim();
    let pad = (kernel.saturating_sub(1)) / 2;
    let mut trend = Array2::<f32>::zeros((b, t));
    let mut padded = vec![0f32; t + 2 * pad];
    for (i, row) in x.outer_iter().enumerate() {
        let first = row[0];
        let last = row[t - 1];
        for p in padded.iter_mut().take(pad) {
            *p = first;
        }
        for (j, v) in row.iter().enumerate() {
            padded[pad + j] = *v;
        }
        for p in padded.iter_mut().skip(pad + t) {
            *p = last;
        }
        // AvgPool1d(kernel, stride=1, padding=0) over the padded row.
        let n_out = padded.len() + 1 - kernel.min(padded.len());
        for j in 0..n_out.min(t) {
            let s: f32 = padded[j..j + kernel].iter().sum();
            trend[[i, j]] = s / kernel as f32;
        }
    }
    let resid = &x - &trend;
    (resid, trend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn constant_series_has_no_residual() {
        let x = array![[2.0f32, 2.0, 2.0, 2.0]];
        let (r, t) = series_decomp(x.view(), 3);
        assert_eq!(t, x);
        assert!(r.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn edges_replicate() {
        let x = array![[0.0f32, 3.0, 6.0]];
        let (_, t) = series_decomp(x.view(), 3);
        assert_eq!(t, array![[1.0f32, 3.0, 5.0]]);
    }
}
