//! Autoformer's `AutoCorrelation` in eval mode (`time_delay_agg_inference`,
//! neuralforecast/models/autoformer.py): keys and values are zero-padded or
//! cut to the queries' length L; each channel's circular cross-correlation
//! of queries and keys comes from `irfft(rfft(q) * conj(rfft(k)))` (torch's
//! default irfft length `2 * (L / 2)`, so one lag short for odd L); the
//! correlation averaged over heads then channels ranks the lags, the
//! `int(factor * ln L)` best are softmax-weighted, and every channel's values
//! rolled by each of those lags are summed with those weights.

use super::attention::softmax_inplace;
use super::decomp_transformer::Correlation;
use super::fft::{irfft, rfft, Complex};
use crate::forecaster::{shape, ForwardError};
use ndarray::{Array2, ArrayView2};

#[derive(Debug, Clone, Copy)]
pub struct AutoCorrelation {
    pub factor: usize,
}

impl AutoCorrelation {
    /// Lags aggregated for sequences of `len` steps.
    pub fn top_k(&self, len: usize) -> usize {
        (self.factor as f64 * (len as f64).ln()) as usize
    }
}

impl Correlation for AutoCorrelation {
    fn correlate(
        &self,
        q: ArrayView2<f32>,
        k: ArrayView2<f32>,
        v: ArrayView2<f32>,
        heads: usize,
    ) -> Result<Array2<f32>, ForwardError> {
        let (l, width) = q.dim();
        let s = k.nrows();
        if k.ncols() != width || v.dim() != k.dim() || heads == 0 || width % heads != 0 {
            return Err(shape!(
                "auto-correlation shapes do not agree: q {:?}, k {:?}, v {:?}, {heads} heads",
                q.dim(),
                k.dim(),
                v.dim()
            ));
        }
        let e = width / heads;
        // Keys and values zero-padded or cut to L steps.
        let padded = |a: &ArrayView2<f32>, c: usize| -> Vec<f32> {
            (0..l)
                .map(|t| if t < s { a[[t, c]] } else { 0.0 })
                .collect()
        };
        let n = 2 * (l / 2);
        let corr: Vec<Vec<f32>> = (0..width)
            .map(|c| {
                let qf = rfft(&q.column(c).to_vec());
                let kf = rfft(&padded(&k, c));
                let prod: Vec<Complex> = qf
                    .iter()
                    .zip(&kf)
                    .map(|(a, b)| Complex {
                        re: a.re * b.re + a.im * b.im,
                        im: a.im * b.re - a.re * b.im,
                    })
                    .collect();
                irfft(&prod, n)
            })
            .collect();
        // Mean over heads, then over channels (torch.mean(torch.mean(corr, 1), 1)).
        let mean: Vec<f32> = (0..n)
            .map(|tau| {
                let per_channel: f32 = (0..e)
                    .map(|j| (0..heads).map(|h| corr[h * e + j][tau]).sum::<f32>() / heads as f32)
                    .sum();
                per_channel / e as f32
            })
            .collect();
        let top_k = self.top_k(l);
        if top_k > n {
            return Err(shape!("auto-correlation keeps {top_k} of {n} lags"));
        }
        // topk: largest first.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| mean[*b].total_cmp(&mean[*a]));
        let delays = &order[..top_k];
        let mut weights: Vec<f32> = delays.iter().map(|d| mean[*d]).collect();
        softmax_inplace(&mut weights);
        let mut out = Array2::<f32>::zeros((l, width));
        for c in 0..width {
            let values = padded(&v, c);
            for (d, w) in delays.iter().zip(&weights) {
                for t in 0..l {
                    out[[t, c]] += values[(t + d) % l] * w;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn a_periodic_signal_aggregates_at_its_period() {
        // One channel, period 4 over 8 steps: lags 0 and 4 correlate best.
        let x = Array2::from_shape_fn((8, 1), |(t, _)| [1.0f32, 0.0, -1.0, 0.0][t % 4]);
        let ac = AutoCorrelation { factor: 1 };
        assert_eq!(ac.top_k(8), 2);
        let v = Array2::from_shape_fn((8, 1), |(t, _)| t as f32);
        let y = ac.correlate(x.view(), x.view(), v.view(), 1).unwrap();
        // Equal weights 1/2 on lags 0 and 4: (v[t] + v[(t + 4) % 8]) / 2.
        for t in 0..8 {
            let want = (t as f32 + ((t + 4) % 8) as f32) / 2.0;
            assert!((y[[t, 0]] - want).abs() < 1e-5, "{t}: {}", y[[t, 0]]);
        }
        assert!(ac.correlate(x.view(), x.view(), v.view(), 3).is_err());
    }
}
