//! `torch.nn.Conv2d` with a square kernel, stride 1 and `same` zero padding
//! (`padding = (kernel - 1) / 2`, odd kernels), on channels-last images
//! [height, width, channels]: im2col, then one GEMM. TimesNet's inception
//! block averages such convolutions of kernels 1, 3, 5, ...; centred kernels
//! of one image add up, so their mean is one convolution whose kernel is the
//! mean of the zero-padded kernels (`Conv2d::mean`).

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, ArrayView3, Axis};

#[derive(Debug, Clone)]
pub struct Conv2d {
    /// [kernel * kernel * in, out]: row (ki * kernel + kj) * in + c holds
    /// torch's `weight[:, c, ki, kj]`.
    w: Array2<f32>,
    bias: Array1<f32>,
    in_channels: usize,
    kernel: usize,
}

impl Conv2d {
    /// `<prefix>.weight` [out, in, k, k] and `<prefix>.bias` [out].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
    ) -> Result<Conv2d, BuildError> {
        if kernel.is_multiple_of(2) {
            return Err(invalid!("{prefix}: only odd kernels pad to the same size"));
        }
        let w = store.array_dyn(
            &format!("{prefix}.weight"),
            &[out_channels, in_channels, kernel, kernel],
        )?;
        let w = Array2::from_shape_fn((kernel * kernel * in_channels, out_channels), |(r, o)| {
            let (tap, c) = (r / in_channels, r % in_channels);
            w[[o, c, tap / kernel, tap % kernel]]
        });
        Ok(Conv2d {
            w,
            bias: store.array1(&format!("{prefix}.bias"), out_channels)?,
            in_channels,
            kernel,
        })
    }

    /// The convolution equal to the mean of `convs` (same channels, odd kernels).
    pub fn mean(convs: &[Conv2d]) -> Result<Conv2d, BuildError> {
        let first = convs
            .first()
            .ok_or_else(|| invalid!("no convolutions to average"))?;
        let (cin, cout) = (first.in_channels, first.w.ncols());
        let k = convs.iter().map(|c| c.kernel).max().unwrap_or(1);
        let mut w = Array2::<f32>::zeros((k * k * cin, cout));
        let mut bias = Array1::<f32>::zeros(cout);
        for c in convs {
            if (c.in_channels, c.w.ncols()) != (cin, cout) {
                return Err(invalid!("averaged convolutions differ in channels"));
            }
            let off = (k - c.kernel) / 2;
            for (r, row) in c.w.rows().into_iter().enumerate() {
                let (tap, ch) = (r / cin, r % cin);
                let (ki, kj) = (tap / c.kernel + off, tap % c.kernel + off);
                let mut dst = w.row_mut((ki * k + kj) * cin + ch);
                dst += &row;
            }
            bias += &c.bias;
        }
        let n = convs.len() as f32;
        w.mapv_inplace(|v| v / n);
        bias.mapv_inplace(|v| v / n);
        Ok(Conv2d {
            w,
            bias,
            in_channels: cin,
            kernel: k,
        })
    }

    /// x [height, width, in] -> [height, width, out].
    pub fn forward(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (h, wd, c) = x.dim();
        if c != self.in_channels {
            return Err(shape!(
                "conv2d expects {} channels, got {c}",
                self.in_channels
            ));
        }
        let (k, pad) = (self.kernel, self.kernel / 2);
        let mut cols = Array2::<f32>::zeros((h * wd, k * k * c));
        for i in 0..h {
            for j in 0..wd {
                let mut row = cols.row_mut(i * wd + j);
                for ki in 0..k {
                    let Some(si) = (i + ki).checked_sub(pad).filter(|s| *s < h) else {
                        continue;
                    };
                    for kj in 0..k {
                        let Some(sj) = (j + kj).checked_sub(pad).filter(|s| *s < wd) else {
                            continue;
                        };
                        let base = (ki * k + kj) * c;
                        for ch in 0..c {
                            row[base + ch] = x[[si, sj, ch]];
                        }
                    }
                }
            }
        }
        let mut y = cols.dot(&self.w);
        for mut r in y.axis_iter_mut(Axis(0)) {
            r += &self.bias;
        }
        super::temporal::c_order(y)
            .into_shape_with_order((h, wd, self.w.ncols()))
            .map_err(|e| ForwardError::array("conv2d output does not reshape", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn conv(w: Array2<f32>, bias: f32, kernel: usize) -> Conv2d {
        Conv2d {
            w,
            bias: array![bias],
            in_channels: 1,
            kernel,
        }
    }

    #[test]
    fn same_padding_sums_the_neighbourhood() {
        // 3x3 of ones over a 2x2 image: every output sees all four pixels.
        let c = conv(Array2::ones((9, 1)), 0.5, 3);
        let x = Array3::from_shape_vec((2, 2, 1), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let y = c.forward(x.view()).unwrap();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![10.5; 4]);
        assert!(c.forward(Array3::zeros((2, 2, 2)).view()).is_err());
    }

    #[test]
    fn mean_of_kernels_is_the_mean_of_outputs() {
        let k1 = conv(array![[2.0f32]], 1.0, 1);
        // 3x3 kernel: the right neighbour only.
        let mut w3 = Array2::zeros((9, 1));
        w3[[5, 0]] = 1.0;
        let k3 = conv(w3, 3.0, 3);
        let x = Array3::from_shape_vec((1, 3, 1), vec![1.0f32, 10.0, 100.0]).unwrap();
        let m = Conv2d::mean(&[k1.clone(), k3.clone()]).unwrap();
        let (a, b) = (k1.forward(x.view()).unwrap(), k3.forward(x.view()).unwrap());
        let want = (a + b).mapv(|v| v / 2.0);
        assert_eq!(m.forward(x.view()).unwrap(), want);
    }
}
