//! `torch.nn.functional.interpolate` along one axis with `align_corners=False`
//! and no `scale_factor`, computed in f32 the way torch's CPU kernels do, with
//! the source taps and weights precomputed once per (input, output) length.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use ndarray::ArrayView1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterpMode {
    Nearest,
    Linear,
    /// NHITS' cubic: `F.interpolate(x[:, None], size=n, mode="bicubic")` on a
    /// one-row image, reading row 0 of the n x n result. The height pass reads
    /// the single row through all four taps, so it only rescales by the sum of
    /// its weights (1 up to rounding), which is kept for parity.
    Cubic,
}

impl InterpMode {
    /// NeuralForecast's `interpolation_mode`: "linear", "nearest", or any name
    /// containing "cubic".
    pub fn parse(name: &str) -> Result<InterpMode, BuildError> {
        match name {
            "linear" => Ok(InterpMode::Linear),
            "nearest" => Ok(InterpMode::Nearest),
            n if n.contains("cubic") => Ok(InterpMode::Cubic),
            other => Err(invalid!(
                "interpolation_mode '{other}' is not linear, nearest or cubic"
            )),
        }
    }
}

/// Resampling from `in_len` to `out_len` points.
#[derive(Debug, Clone)]
pub struct Resize {
    in_len: usize,
    /// Per output point: up to four (source index, weight) taps, summed in order.
    taps: Vec<[(usize, f32); 4]>,
    n_taps: usize,
    /// Cubic only: the height pass weights of output row 0.
    row_weights: Option<[f32; 4]>,
}

/// `cubic_convolution1/2` and `get_cubic_upsample_coefficients` (A = -0.75).
fn cubic_coefficients(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let conv1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let conv2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let x2 = 1.0 - t;
    [conv2(t + 1.0), conv1(t), conv1(x2), conv2(x2 + 1.0)]
}

/// `area_pixel_compute_source_index` (align_corners=False) in f32.
fn source_index(scale: f32, dst: usize, cubic: bool) -> f32 {
    let src = scale * (dst as f32 + 0.5) - 0.5;
    if !cubic && src < 0.0 {
        0.0
    } else {
        src
    }
}

/// `guard_index_and_lambda`: floor clamped to the last index, fraction in [0, 1].
fn index_and_lambda(real: f32, in_len: usize) -> (i64, f32) {
    let idx = (real.floor() as i64).min(in_len as i64 - 1);
    (idx, (real - idx as f32).clamp(0.0, 1.0))
}

impl Resize {
    pub fn new(mode: InterpMode, in_len: usize, out_len: usize) -> Result<Resize, BuildError> {
        if in_len == 0 || out_len == 0 {
            return Err(invalid!("cannot interpolate {in_len} points to {out_len}"));
        }
        let scale = in_len as f32 / out_len as f32;
        let last = in_len - 1;
        let clamp = |i: i64| i.clamp(0, last as i64) as usize;
        let mut taps = Vec::with_capacity(out_len);
        let mut row_weights = None;
        let n_taps = match mode {
            InterpMode::Nearest => {
                for i in 0..out_len {
                    let src = if out_len == in_len {
                        i
                    } else if out_len == 2 * in_len {
                        i >> 1
                    } else {
                        ((i as f32 * scale).floor() as usize).min(last)
                    };
                    taps.push([(src, 1.0), (0, 0.0), (0, 0.0), (0, 0.0)]);
                }
                1
            }
            InterpMode::Linear => {
                for i in 0..out_len {
                    let (i0, i1, l0, l1) = if out_len == in_len {
                        (i, i, 1.0, 0.0)
                    } else {
                        let (i0, l1) = index_and_lambda(source_index(scale, i, false), in_len);
                        let i0 = clamp(i0);
                        (i0, if i0 < last { i0 + 1 } else { i0 }, 1.0 - l1, l1)
                    };
                    taps.push([(i0, l0), (i1, l1), (0, 0.0), (0, 0.0)]);
                }
                2
            }
            InterpMode::Cubic => {
                for i in 0..out_len {
                    let (idx, t) = index_and_lambda(source_index(scale, i, true), in_len);
                    let w = cubic_coefficients(t);
                    let mut tap = [(0usize, 0.0f32); 4];
                    for (j, slot) in tap.iter_mut().enumerate() {
                        *slot = (clamp(idx + j as i64 - 1), w[j]);
                    }
                    taps.push(tap);
                }
                // Height: 1 input row resized to out_len rows, output row 0.
                let (_, t) = index_and_lambda(source_index(1.0 / out_len as f32, 0, true), 1);
                row_weights = Some(cubic_coefficients(t));
                4
            }
        };
        Ok(Resize {
            in_len,
            taps,
            n_taps,
            row_weights,
        })
    }

    pub fn out_len(&self) -> usize {
        self.taps.len()
    }

    /// Resamples `src` (length `in_len`) into `dst(i, value)` for each output point.
    pub fn apply(
        &self,
        src: ArrayView1<f32>,
        mut dst: impl FnMut(usize, f32),
    ) -> Result<(), ForwardError> {
        if src.len() != self.in_len {
            return Err(shape!(
                "interpolation built for {} points got {}",
                self.in_len,
                src.len()
            ));
        }
        for (i, tap) in self.taps.iter().enumerate() {
            let mut v = src[tap[0].0] * tap[0].1;
            for &(k, w) in &tap[1..self.n_taps] {
                v += src[k] * w;
            }
            if let Some(rw) = &self.row_weights {
                let mut r = v * rw[0];
                for w in &rw[1..] {
                    r += v * w;
                }
                v = r;
            }
            dst(i, v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn run(mode: InterpMode, x: &[f32], n: usize) -> Vec<f32> {
        let r = Resize::new(mode, x.len(), n).unwrap();
        let mut out = vec![f32::NAN; n];
        r.apply(ArrayView1::from(x), |i, v| out[i] = v).unwrap();
        out
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 2e-6 * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
    }

    const K: [f32; 3] = [1.0, -2.0, 3.5];

    /// Values from torch 2.15: F.interpolate(K[None, None], size=n, mode=...).
    #[test]
    fn linear_matches_torch() {
        assert_eq!(run(InterpMode::Linear, &K, 3), K.to_vec());
        assert_close(
            &run(InterpMode::Linear, &K, 7),
            &[
                1.0,
                0.571_428_6,
                -0.714_285_6,
                -2.0,
                0.357_143,
                2.714_286,
                3.5,
            ],
        );
        assert_close(
            &run(InterpMode::Linear, &K, 12),
            &[
                1.0, 1.0, 0.625, -0.125, -0.875, -1.625, -1.3125, 0.0625, 1.4375, 2.8125, 3.5, 3.5,
            ],
        );
        assert_close(
            &run(InterpMode::Linear, &K, 5),
            &[1.0, -0.2, -2.0, 1.3, 3.5],
        );
        assert_eq!(run(InterpMode::Linear, &[2.5], 4), vec![2.5; 4]);
    }

    #[test]
    fn nearest_matches_torch() {
        assert_eq!(
            run(InterpMode::Nearest, &K, 7),
            vec![1.0, 1.0, 1.0, -2.0, -2.0, 3.5, 3.5]
        );
        assert_eq!(
            run(InterpMode::Nearest, &K, 12),
            vec![1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0, 3.5, 3.5, 3.5, 3.5]
        );
        assert_eq!(
            run(InterpMode::Nearest, &K, 5),
            vec![1.0, 1.0, -2.0, -2.0, 3.5]
        );
        assert_eq!(
            run(InterpMode::Nearest, &K, 6),
            vec![1.0, 1.0, -2.0, -2.0, 3.5, 3.5]
        );
    }

    /// F.interpolate(K[None, None, None], size=n, mode="bicubic")[0, 0, 0].
    #[test]
    fn cubic_matches_torch_bicubic_first_row() {
        assert_close(
            &run(InterpMode::Cubic, &K, 3),
            &[1.000_000_2, -2.000_000_5, 3.500_000_7],
        );
        assert_close(
            &run(InterpMode::Cubic, &K, 7),
            &[
                1.327_987_6,
                0.564_870_6,
                -1.317_784,
                -1.999_999_8,
                -0.005_831_598,
                2.795_189,
                4.101_312,
            ],
        );
        assert_close(
            &run(InterpMode::Cubic, &K, 12),
            &[
                1.329_589_6,
                1.215_331_8,
                0.630_126_8,
                -0.443_603_4,
                -1.523_193,
                -2.081_298_4,
                -1.640_624_6,
                -0.347_656_16,
                1.320_312_3,
                2.894_530_5,
                3.894_774_2,
                4.104_247,
            ],
        );
        assert_close(&run(InterpMode::Cubic, &[2.5], 4), &[2.5; 4]);
    }

    #[test]
    fn refuses_bad_shapes() {
        assert!(Resize::new(InterpMode::Linear, 0, 3).is_err());
        let r = Resize::new(InterpMode::Linear, 3, 6).unwrap();
        assert!(r.apply(array![1.0f32, 2.0].view(), |_, _| ()).is_err());
        assert_eq!(InterpMode::parse("bicubic").ok(), Some(InterpMode::Cubic));
        assert!(InterpMode::parse("area").is_err());
    }
}
