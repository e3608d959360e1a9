//! PatchTST's patching (neuralforecast/models/patchtst.py, `padding_patch =
//! "end"`): the window is padded at the end with `stride` copies of its last
//! value (`ReplicationPad1d((0, stride))`), then cut into patches of
//! `patch_len` steps every `stride` steps (`Tensor.unfold`).

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use ndarray::{Array2, ArrayView1};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patching {
    pub patch_len: usize,
    pub stride: usize,
}

impl Patching {
    pub fn new(patch_len: usize, stride: usize) -> Result<Patching, BuildError> {
        if patch_len == 0 || stride == 0 {
            return Err(invalid!(
                "patch_len {patch_len} and stride {stride} must be positive"
            ));
        }
        Ok(Patching { patch_len, stride })
    }

    /// Patches cut from a window of `len` steps.
    pub fn count(&self, len: usize) -> Result<usize, ForwardError> {
        let padded = len + self.stride;
        padded
            .checked_sub(self.patch_len)
            .map(|d| d / self.stride + 1)
            .ok_or_else(|| {
                shape!(
                    "a patch of {} steps does not fit a window of {len} padded by {}",
                    self.patch_len,
                    self.stride
                )
            })
    }

    /// x [len] -> [count(len), patch_len].
    pub fn patches(&self, x: ArrayView1<f32>) -> Result<Array2<f32>, ForwardError> {
        let len = x.len();
        let n = self.count(len)?;
        let last = *x
            .last()
            .ok_or_else(|| shape!("cannot patch an empty window"))?;
        Ok(Array2::from_shape_fn((n, self.patch_len), |(p, j)| {
            let t = p * self.stride + j;
            if t < len {
                x[t]
            } else {
                last
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn pads_with_the_last_value_and_unfolds() {
        let p = Patching::new(3, 2).unwrap();
        // [1 2 3 4 5] + [5 5] -> patches at 0, 2, 4.
        let x = array![1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(p.count(5).ok(), Some(3));
        assert_eq!(
            p.patches(x.view()).unwrap(),
            array![[1.0f32, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 5.0, 5.0]]
        );
        // A patch as long as the padded window: one patch.
        let long = Patching::new(7, 2).unwrap();
        assert_eq!(long.count(5).ok(), Some(1));
        assert!(Patching::new(8, 2).unwrap().count(5).is_err());
        assert!(Patching::new(0, 1).is_err());
    }
}
