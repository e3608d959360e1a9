//! `torch.nn.MaxPool1d` / `AvgPool1d` along time, with `ceil_mode` (NHITS
//! pools with kernel = stride and `ceil_mode=True`, so the last window may
//! hang over the end of the series) and optional symmetric padding
//! (Informer's distilling `MaxPool1d(3, 2, padding=1)`; max pooling pads
//! with -inf, average pooling counts the padding).

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// `count_include_pad=True`, but with no padding a window that hangs over
    /// the end is averaged over the points it covers (torch's divisor).
    Avg,
}

impl PoolKind {
    /// NeuralForecast's `pooling_mode` names.
    pub fn parse(name: &str) -> Result<PoolKind, BuildError> {
        match name {
            "MaxPool1d" => Ok(PoolKind::Max),
            "AvgPool1d" => Ok(PoolKind::Avg),
            other => Err(invalid!(
                "pooling_mode '{other}' is not MaxPool1d or AvgPool1d"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool1d {
    pub kind: PoolKind,
    pub kernel: usize,
    pub stride: usize,
    pub ceil_mode: bool,
    pub padding: usize,
}

impl Pool1d {
    pub fn new(
        kind: PoolKind,
        kernel: usize,
        stride: usize,
        ceil_mode: bool,
    ) -> Result<Self, BuildError> {
        if kernel == 0 || stride == 0 {
            return Err(invalid!(
                "pooling kernel {kernel} and stride {stride} must be positive"
            ));
        }
        Ok(Pool1d {
            kind,
            kernel,
            stride,
            ceil_mode,
            padding: 0,
        })
    }

    /// The same pooling with `padding` steps on each side (at most half the kernel, as torch requires).
    pub fn with_padding(self, padding: usize) -> Result<Self, BuildError> {
        if 2 * padding > self.kernel {
            return Err(invalid!(
                "pooling padding {padding} exceeds half the kernel {}",
                self.kernel
            ));
        }
        Ok(Pool1d { padding, ..self })
    }

    /// Output length for an input of `len` (torch's `pooling_output_shape`
    /// without dilation), or an error where torch raises.
    pub fn out_len(&self, len: usize) -> Result<usize, ForwardError> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let round_up = if self.ceil_mode { s - 1 } else { 0 };
        let n = (len + 2 * p + round_up)
            .checked_sub(k)
            .map(|d| d / s + 1)
            .unwrap_or(0);
        // A window must start inside the input or its left padding.
        let n = if self.ceil_mode && n > 0 && (n - 1) * s >= len + p {
            n - 1
        } else {
            n
        };
        if n == 0 {
            return Err(shape!(
                "pooling window {k} does not fit an input of length {len}"
            ));
        }
        Ok(n)
    }

    /// Pools one strided sequence `src` (length `len`) into `dst`.
    fn pool_into(&self, len: usize, src: impl Fn(usize) -> f32, mut dst: impl FnMut(usize, f32)) {
        let n = self.out_len(len).unwrap_or(0);
        let p = self.padding;
        for o in 0..n {
            // The window in padded coordinates, then the part over real steps.
            let (wstart, wend) = (
                o * self.stride,
                (o * self.stride + self.kernel).min(len + 2 * p),
            );
            let (start, end) = (wstart.max(p) - p, wend.min(len + p).max(p) - p);
            let v = match self.kind {
                PoolKind::Max => (start..end).map(&src).fold(f32::NEG_INFINITY, |m, v| {
                    // torch propagates NaN through max pooling.
                    if v > m || v.is_nan() {
                        v
                    } else {
                        m
                    }
                }),
                PoolKind::Avg => {
                    let sum = (start..end).map(&src).fold(0.0f32, |a, v| a + v);
                    // count_include_pad: the divisor counts left and right padding in the window.
                    sum / (wend - wstart) as f32
                }
            };
            dst(o, v);
        }
    }

    /// x: [batch, time] -> [batch, out_len(time)].
    pub fn forward_rows(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let (b, t) = x.dim();
        let n = self.out_len(t)?;
        let mut y = Array2::<f32>::zeros((b, n));
        for (row, mut out) in x.rows().into_iter().zip(y.rows_mut()) {
            self.pool_into(t, |i| row[i], |o, v| out[o] = v);
        }
        Ok(y)
    }

    /// x: [batch, time, channels] -> [batch, out_len(time), channels]: each
    /// channel pooled along time (torch's permute -> pool -> permute back).
    pub fn forward_time_major(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, c) = x.dim();
        let n = self.out_len(t)?;
        let mut y = Array3::<f32>::zeros((b, n, c));
        for i in 0..b {
            for ch in 0..c {
                self.pool_into(t, |k| x[[i, k, ch]], |o, v| y[[i, o, ch]] = v);
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const X: [f32; 7] = [1.0, -2.0, 3.5, 0.25, 4.0, -1.0, 2.0];

    fn pool(kind: PoolKind, k: usize) -> Vec<f32> {
        let x = Array2::from_shape_vec((1, 7), X.to_vec()).unwrap();
        let p = Pool1d::new(kind, k, k, true).unwrap();
        p.forward_rows(x.view())
            .unwrap()
            .into_raw_vec_and_offset()
            .0
    }

    /// Values from torch 2.15: nn.MaxPool1d(k, k, ceil_mode=True) and
    /// nn.AvgPool1d(k, k, ceil_mode=True) on X.
    #[test]
    fn ceil_mode_matches_torch() {
        assert_eq!(pool(PoolKind::Max, 2), vec![1.0, 3.5, 4.0, 2.0]);
        assert_eq!(pool(PoolKind::Avg, 2), vec![-0.5, 1.875, 1.5, 2.0]);
        assert_eq!(pool(PoolKind::Max, 3), vec![3.5, 4.0, 2.0]);
        assert_eq!(pool(PoolKind::Avg, 3), vec![0.833_333_3, 1.083_333_4, 2.0]);
        assert_eq!(pool(PoolKind::Max, 4), vec![3.5, 4.0]);
        assert_eq!(pool(PoolKind::Avg, 4), vec![0.6875, 1.666_666_6]);
        // Kernel longer than the input: one window over what there is.
        assert_eq!(pool(PoolKind::Max, 8), vec![4.0]);
        assert_eq!(pool(PoolKind::Avg, 8), vec![1.107_142_8]);
        assert_eq!(pool(PoolKind::Max, 1), X.to_vec());
    }

    #[test]
    fn output_lengths() {
        let p = |k, s, c| Pool1d::new(PoolKind::Max, k, s, c).unwrap();
        assert_eq!(p(2, 2, true).out_len(7).ok(), Some(4));
        assert_eq!(p(2, 2, false).out_len(7).ok(), Some(3));
        assert_eq!(p(3, 2, true).out_len(6).ok(), Some(3)); // a 4th window would start at 6
        assert_eq!(p(8, 8, true).out_len(7).ok(), Some(1));
        assert!(p(8, 8, false).out_len(7).is_err());
        assert!(Pool1d::new(PoolKind::Avg, 0, 1, true).is_err());
        assert!(PoolKind::parse("LPPool1d").is_err());
        // Informer's MaxPool1d(3, 2, padding=1): windows [-1, 1], [1, 3], [3, 5], [5, 7].
        let padded = Pool1d::new(PoolKind::Max, 3, 2, false)
            .unwrap()
            .with_padding(1)
            .unwrap();
        let x = Array2::from_shape_vec((1, 7), X.to_vec()).unwrap();
        assert_eq!(
            padded.forward_rows(x.view()).unwrap().row(0).to_vec(),
            vec![1.0, 3.5, 4.0, 2.0]
        );
        // Average pooling counts the padding: (0 + 1 - 2) / 3 first.
        let avg = Pool1d::new(PoolKind::Avg, 3, 2, false)
            .unwrap()
            .with_padding(1)
            .unwrap();
        assert_eq!(avg.forward_rows(x.view()).unwrap()[[0, 0]], -1.0 / 3.0);
        assert!(padded.with_padding(2).is_err());
    }

    #[test]
    fn channels_pool_along_time() {
        let x = array![[[1.0f32, 10.0], [3.0, 20.0], [5.0, 30.0]]];
        let p = Pool1d::new(PoolKind::Avg, 2, 2, true).unwrap();
        let y = p.forward_time_major(x.view()).unwrap();
        assert_eq!(y, array![[[2.0f32, 15.0], [5.0, 30.0]]]);
    }
}
