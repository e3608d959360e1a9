//! `torch.nn.Conv1d` / `F.conv1d` (stride 1, groups 1) with dilation and
//! explicit left/right zero padding, on channels-last [batch, time, channels]
//! arrays. A causal convolution (TCN's `CausalConv1d`: symmetric padding then
//! `Chomp1d`) is left padding `(kernel - 1) * dilation` and no right padding:
//! the chomped outputs are exactly the ones that only see the past.
//! `padding_mode="circular"` is `circular_pad` followed by no padding.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, ArrayView3, Axis};

#[derive(Debug, Clone)]
pub struct Conv1d {
    /// [kernel * in, out]: row `k * in + c` holds torch's `weight[:, c, k]`.
    w: Array2<f32>,
    bias: Option<Array1<f32>>,
    in_channels: usize,
    kernel: usize,
    dilation: usize,
    pad_left: usize,
    pad_right: usize,
}

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub dilation: usize,
    pub pad_left: usize,
    pub pad_right: usize,
}

impl ConvShape {
    /// Sees only the present and the past; output as long as the input.
    pub fn causal(in_channels: usize, out_channels: usize, kernel: usize, dilation: usize) -> Self {
        ConvShape {
            in_channels,
            out_channels,
            kernel,
            dilation,
            pad_left: kernel.saturating_sub(1) * dilation,
            pad_right: 0,
        }
    }
}

impl Conv1d {
    /// Loads `<prefix>.weight` [out, in, kernel] and `<prefix>.bias` [out].
    pub fn load(store: &TensorStore, prefix: &str, shape: ConvShape) -> Result<Conv1d, BuildError> {
        Self::load_with_bias(store, prefix, shape, true)
    }

    /// A `bias=False` convolution: `<prefix>.weight` only.
    pub fn load_unbiased(
        store: &TensorStore,
        prefix: &str,
        shape: ConvShape,
    ) -> Result<Conv1d, BuildError> {
        Self::load_with_bias(store, prefix, shape, false)
    }

    fn load_with_bias(
        store: &TensorStore,
        prefix: &str,
        shape: ConvShape,
        bias: bool,
    ) -> Result<Conv1d, BuildError> {
        let ConvShape {
            in_channels: cin,
            out_channels: cout,
            kernel,
            ..
        } = shape;
        if kernel == 0 || shape.dilation == 0 {
            return Err(invalid!("{prefix}: kernel and dilation must be positive"));
        }
        let w = store.array_dyn(&format!("{prefix}.weight"), &[cout, cin, kernel])?;
        let bias = bias
            .then(|| store.array1(&format!("{prefix}.bias"), cout))
            .transpose()?;
        let w = Array2::from_shape_fn((kernel * cin, cout), |(r, o)| w[[o, r % cin, r / cin]]);
        Ok(Conv1d {
            w,
            bias,
            in_channels: cin,
            kernel,
            dilation: shape.dilation,
            pad_left: shape.pad_left,
            pad_right: shape.pad_right,
        })
    }

    pub fn out_channels(&self) -> usize {
        self.w.ncols()
    }

    /// x [batch, time, in] -> [batch, time + pads - dilation * (kernel - 1), out].
    pub fn forward(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, c) = x.dim();
        if c != self.in_channels {
            return Err(shape!(
                "conv1d expects {} channels, got {c}",
                self.in_channels
            ));
        }
        let span = self.dilation * (self.kernel - 1);
        let padded = t + self.pad_left + self.pad_right;
        if padded <= span {
            return Err(shape!(
                "conv1d input of {t} steps is shorter than the kernel span {}",
                span + 1
            ));
        }
        let t_out = padded - span;
        // im2col: one row per output step, the kernel taps side by side; then one GEMM.
        let mut cols = Array2::<f32>::zeros((b * t_out, self.kernel * c));
        for bi in 0..b {
            for to in 0..t_out {
                let mut row = cols.row_mut(bi * t_out + to);
                for k in 0..self.kernel {
                    let src = (to + k * self.dilation) as isize - self.pad_left as isize;
                    if src < 0 || src as usize >= t {
                        continue;
                    }
                    for ci in 0..c {
                        row[k * c + ci] = x[[bi, src as usize, ci]];
                    }
                }
            }
        }
        let mut y = cols.dot(&self.w);
        if let Some(bias) = &self.bias {
            for mut r in y.axis_iter_mut(Axis(0)) {
                r += bias;
            }
        }
        super::temporal::c_order(y)
            .into_shape_with_order((b, t_out, self.out_channels()))
            .map_err(|e| ForwardError::array("conv1d output does not reshape", e))
    }
}

/// x [batch, time, channels] wrapped around by `pad` steps on each side
/// (`padding_mode="circular"`): [x[t-pad..], x, x[..pad]].
pub fn circular_pad(x: ArrayView3<f32>, pad: usize) -> Result<Array3<f32>, ForwardError> {
    let (b, t, c) = x.dim();
    if pad > t {
        return Err(shape!(
            "circular padding of {pad} exceeds a sequence of {t} steps"
        ));
    }
    Ok(Array3::from_shape_fn((b, t + 2 * pad, c), |(i, s, j)| {
        x[[i, (s + t - pad) % t, j]]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn conv(w: Vec<f32>, cout: usize, cin: usize, shape: ConvShape) -> Conv1d {
        let k = shape.kernel;
        let w = Array3::from_shape_vec((cout, cin, k), w).unwrap();
        Conv1d {
            w: Array2::from_shape_fn((k * cin, cout), |(r, o)| w[[o, r % cin, r / cin]]),
            bias: Some(Array1::from_elem(cout, 0.5)),
            in_channels: cin,
            kernel: k,
            dilation: shape.dilation,
            pad_left: shape.pad_left,
            pad_right: shape.pad_right,
        }
    }

    #[test]
    fn causal_dilated_conv_sees_only_the_past() {
        // kernel 2, dilation 2: y[t] = w0 * x[t-2] + w1 * x[t] + b, zeros before the start.
        let c = conv(vec![10.0, 1.0], 1, 1, ConvShape::causal(1, 1, 2, 2));
        let x = array![[[1.0f32], [2.0], [3.0], [4.0], [5.0]]];
        let y = c.forward(x.view()).unwrap();
        assert_eq!(
            y.index_axis(Axis(2), 0),
            array![[1.5f32, 2.5, 13.5, 24.5, 35.5]]
        );
    }

    #[test]
    fn forward_padding_and_channels_follow_torch_layout() {
        // out 2, in 2, kernel 2, dilation 1, right padding 1 (BiTCN's forward mode).
        // weight[o, c, k] = o*100 + c*10 + k
        let w: Vec<f32> = (0..2)
            .flat_map(|o| {
                (0..2).flat_map(move |c| (0..2).map(move |k| (o * 100 + c * 10 + k) as f32))
            })
            .collect();
        let shape = ConvShape {
            in_channels: 2,
            out_channels: 2,
            kernel: 2,
            dilation: 1,
            pad_left: 0,
            pad_right: 1,
        };
        let c = conv(w, 2, 2, shape);
        let x = array![[[1.0f32, 2.0], [3.0, 4.0]]];
        let y = c.forward(x.view()).unwrap();
        // t=0: sum_c w[o,c,0]*x[0,c] + w[o,c,1]*x[1,c]; t=1: only tap 0 on x[1].
        let want = |o: f32, t: usize| -> f32 {
            let wv = |c: f32, k: f32| o * 100.0 + c * 10.0 + k;
            let x0 = [1.0, 2.0];
            let x1 = [3.0, 4.0];
            let mut s = 0.5;
            for ci in 0..2 {
                if t == 0 {
                    s += wv(ci as f32, 0.0) * x0[ci] + wv(ci as f32, 1.0) * x1[ci];
                } else {
                    s += wv(ci as f32, 0.0) * x1[ci];
                }
            }
            s
        };
        assert_eq!(y.dim(), (1, 2, 2));
        for t in 0..2 {
            for o in 0..2 {
                assert_eq!(y[[0, t, o]], want(o as f32, t));
            }
        }
        assert!(c.forward(Array3::zeros((1, 2, 3)).view()).is_err());
    }

    #[test]
    fn circular_padding_wraps_both_ends() {
        let x = array![[[1.0f32], [2.0], [3.0]]];
        let p = circular_pad(x.view(), 2).unwrap();
        assert_eq!(
            p.iter().copied().collect::<Vec<_>>(),
            vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]
        );
        assert!(circular_pad(x.view(), 4).is_err());
    }
}
