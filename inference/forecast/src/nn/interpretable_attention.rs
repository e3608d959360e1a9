//! TFT's `InterpretableMultiHeadAttention` (neuralforecast/models/tft.py):
//! one bias-free projection gives a query and a key per head and ONE value
//! shared by all heads; each head attends causally (the `triu(-inf, 1)`
//! mask), the heads' outputs are averaged, and a bias-free Linear maps the
//! head width back to the hidden size.

use super::attention::scaled_dot_product_masked;
use super::linear::Linear;
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis, Slice};

#[derive(Debug, Clone)]
pub struct InterpretableAttention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    d_head: usize,
}

impl InterpretableAttention {
    /// `<prefix>.qkv_linears` [(2 * heads + 1) * d_head, hidden] and
    /// `<prefix>.out_proj` [hidden, d_head], with d_head = hidden / heads.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
    ) -> Result<InterpretableAttention, BuildError> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(invalid!(
                "{heads} heads do not divide a hidden size of {hidden}"
            ));
        }
        let d_head = hidden / heads;
        Ok(InterpretableAttention {
            qkv: Linear::load(
                store,
                &format!("{prefix}.qkv_linears"),
                hidden,
                (2 * heads + 1) * d_head,
                false,
            )?,
            out: Linear::load(store, &format!("{prefix}.out_proj"), d_head, hidden, false)?,
            heads,
            d_head,
        })
    }

    /// Causal self-attention over the steps of one sequence x [steps, hidden];
    /// returns the outputs of steps `from..` only (TFT keeps the horizon).
    pub fn forward(&self, x: ArrayView2<f32>, from: usize) -> Result<Array2<f32>, ForwardError> {
        let t = x.nrows();
        if from > t {
            return Err(shape!("attention output from step {from} of {t}"));
        }
        let qkv = self.qkv.forward(x)?;
        let (e, m) = (self.d_head, self.heads);
        // d_head ** -0.5 in Python floats, rounded once.
        let scale = (e as f64).powf(-0.5) as f32;
        let q = qkv.slice_axis(Axis(0), Slice::from(from..));
        let v = qkv.slice_axis(Axis(1), Slice::from(2 * m * e..(2 * m + 1) * e));
        let mut sum = Array2::<f32>::zeros((t - from, e));
        for h in 0..m {
            let qh = q.slice_axis(Axis(1), Slice::from(h * e..(h + 1) * e));
            let kh = qkv.slice_axis(Axis(1), Slice::from((m + h) * e..(m + h + 1) * e));
            sum += &scaled_dot_product_masked(qh, kh, v, scale, Some(from))?;
        }
        sum.mapv_inplace(|s| s / m as f32);
        self.out.forward(sum.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::linear::tests::from_parts;
    use ndarray::{array, Array};

    #[test]
    fn heads_share_the_value_and_are_averaged() {
        // hidden 2, 2 heads of width 1: q0, q1, k0, k1, v.
        let qkv = from_parts(
            array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [2.0, 0.0]],
            None,
        );
        let att = InterpretableAttention {
            qkv,
            out: from_parts(array![[1.0], [-1.0]], None),
            heads: 2,
            d_head: 1,
        };
        let x = array![[1.0f32, 0.0], [0.5, 2.0]];
        let y = att.forward(x.view(), 0).unwrap();
        // Step 0 sees only itself: value 2 * 1 = 2 in both heads.
        assert!((y[[0, 0]] - 2.0).abs() < 1e-6 && (y[[0, 1]] + 2.0).abs() < 1e-6);
        // Step 1: head h scores q_h(x1) * k_h(x_j) for j = 0, 1.
        let (vals, x1) = ([2.0f32, 1.0], [0.5f32, 2.0]);
        let qh = [x1[0], x1[1]];
        let kh = |h: usize, j: usize| {
            let xj = [x[[j, 0]], x[[j, 1]]];
            if h == 0 {
                xj[0] + xj[1]
            } else {
                xj[0] - xj[1]
            }
        };
        let mut mean = 0.0f32;
        for (h, q) in qh.into_iter().enumerate() {
            let s = [q * kh(h, 0), q * kh(h, 1)];
            let z = s[0].exp() + s[1].exp();
            mean += (s[0].exp() * vals[0] + s[1].exp() * vals[1]) / z / 2.0;
        }
        assert!((y[[1, 0]] - mean).abs() < 1e-5);
        // Keeping only the horizon gives the same rows.
        let tail = att.forward(x.view(), 1).unwrap();
        assert_eq!(tail.row(0), y.row(1));
        assert!(att.forward(Array::zeros((2, 3)).view(), 0).is_err());
    }
}
