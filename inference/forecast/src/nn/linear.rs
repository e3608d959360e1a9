//! `torch.nn.Linear`: y = x Wᵀ + b, with W stored [out, in] as PyTorch saves it.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, ArrayView2, Axis};

#[derive(Debug, Clone)]
pub struct Linear {
    /// Stored transposed, [in, out], so the forward pass is one row-major GEMM.
    weight_t: Array2<f32>,
    bias: Option<Array1<f32>>,
}

impl Linear {
    /// Loads `<prefix>.weight` [out, in] and, when `bias`, `<prefix>.bias` [out].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Linear, BuildError> {
        let w = store.array2(&format!("{prefix}.weight"), out_features, in_features)?;
        let b = if bias {
            Some(store.array1(&format!("{prefix}.bias"), out_features)?)
        } else {
            None
        };
        Ok(Linear {
            weight_t: w.t().as_standard_layout().to_owned(),
            bias: b,
        })
    }

    /// From a weight [out, in] and a bias [out] stored under other names
    /// (KAN's `base_weight`) or derived from stored tensors.
    pub fn from_weight(
        weight: Array2<f32>,
        bias: Option<Array1<f32>>,
    ) -> Result<Linear, BuildError> {
        if let Some(b) = &bias {
            if b.len() != weight.nrows() {
                return Err(invalid!(
                    "bias of {} for a weight of {} outputs",
                    b.len(),
                    weight.nrows()
                ));
            }
        }
        Ok(Linear {
            weight_t: weight.t().as_standard_layout().to_owned(),
            bias,
        })
    }

    /// A `Conv1d` with `kernel_size=1` (`<prefix>.weight` [out, in, 1], bias [out])
    /// is this linear map applied to every step's channels.
    pub fn load_conv1x1(
        store: &TensorStore,
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
    ) -> Result<Linear, BuildError> {
        let w = store.array_dyn(&format!("{prefix}.weight"), &[out_channels, in_channels, 1])?;
        let w = Array2::from_shape_fn((in_channels, out_channels), |(i, o)| w[[o, i, 0]]);
        Ok(Linear {
            weight_t: w,
            bias: Some(store.array1(&format!("{prefix}.bias"), out_channels)?),
        })
    }

    pub fn in_features(&self) -> usize {
        self.weight_t.nrows()
    }

    pub fn out_features(&self) -> usize {
        self.weight_t.ncols()
    }

    /// x: [batch, in] -> [batch, out]. A width mismatch is an error, never a panic.
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        if x.ncols() != self.in_features() {
            return Err(shape!(
                "linear layer expects {} inputs, got {}",
                self.in_features(),
                x.ncols()
            ));
        }
        let mut y = x.dot(&self.weight_t);
        if let Some(b) = &self.bias {
            for mut row in y.axis_iter_mut(Axis(0)) {
                row += b;
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::array;

    pub fn from_parts(w: Array2<f32>, b: Option<Array1<f32>>) -> Linear {
        Linear {
            weight_t: w.t().as_standard_layout().to_owned(),
            bias: b,
        }
    }

    #[test]
    fn matches_torch_layout() {
        // W [out=2, in=3]
        let l = from_parts(
            array![[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]],
            Some(array![0.5, -0.5]),
        );
        let y = l.forward(array![[1.0f32, 1.0, 2.0]].view()).unwrap();
        assert!(l.forward(array![[1.0f32]].view()).is_err());
        assert_eq!(y, array![[9.5f32, -0.5]]);
        assert_eq!((l.in_features(), l.out_features()), (3, 2));
    }
}
