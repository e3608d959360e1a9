//! Multi-head attention as NeuralForecast's `AttentionLayer` + `FullAttention`
//! compute it (common/_modules.py): q/k/v projections split into heads,
//! `softmax(q kᵀ · scale) v` per head (torch's `scaled_dot_product_attention`,
//! scale `1/sqrt(d_head)`, softmax in f32), heads concatenated, output projection.
//! Dropout is off in eval mode. Queries may attend to another sequence
//! (decoder cross-attention) and may be causally masked.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::nn::linear::Linear;
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis, Slice};

/// Softmax of one row in place, max-subtracted as torch does.
pub fn softmax_inplace(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `softmax(q kᵀ · scale) v` for one head: q [L, E], k [S, E], v [S, D] -> [L, D].
pub fn scaled_dot_product(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    scale: f32,
) -> Result<Array2<f32>, ForwardError> {
    scaled_dot_product_masked(q, k, v, scale, None)
}

/// As `scaled_dot_product`; a causal `offset` hides key j from query i when
/// j > i + offset (the `triu(-inf, 1)` mask torch adds to the scaled scores,
/// for queries that are the steps from `offset` on).
pub fn scaled_dot_product_masked(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    scale: f32,
    causal: Option<usize>,
) -> Result<Array2<f32>, ForwardError> {
    if k.nrows() != v.nrows() {
        return Err(shape!(
            "attention keys {:?} and values {:?} do not agree",
            k.dim(),
            v.dim()
        ));
    }
    let mut scores = scaled_scores(q, k, scale)?;
    softmax_rows(&mut scores, causal)?;
    Ok(scores.dot(&v))
}

/// `q kᵀ · scale` [L, S], row-major.
pub fn scaled_scores(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    scale: f32,
) -> Result<Array2<f32>, ForwardError> {
    if q.ncols() != k.ncols() {
        return Err(shape!(
            "attention shapes do not agree: q {:?}, k {:?}",
            q.dim(),
            k.dim()
        ));
    }
    // Row-major whatever layout the GEMM picked (it may pick column-major for thin operands).
    let mut scores = crate::nn::temporal::c_order(q.dot(&k.t()));
    scores.mapv_inplace(|x| x * scale);
    Ok(scores)
}

/// Softmax of every row of the scores, after the causal mask of
/// `scaled_dot_product_masked` when given.
pub fn softmax_rows(scores: &mut Array2<f32>, causal: Option<usize>) -> Result<(), ForwardError> {
    for (i, mut row) in scores.axis_iter_mut(Axis(0)).enumerate() {
        let r = row
            .as_slice_mut()
            .ok_or_else(|| shape!("attention scores are not contiguous"))?;
        if let Some(offset) = causal {
            r.iter_mut()
                .skip(i + offset + 1)
                .for_each(|s| *s = f32::NEG_INFINITY);
        }
        softmax_inplace(r);
    }
    Ok(())
}

/// How the heads' outputs reach the output projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLayout {
    /// [tokens, heads * d_head]: each token's heads side by side.
    Interleaved,
    /// Informer's `ProbAttention` returns [heads, tokens, d_head] and
    /// `AttentionLayer` views that memory as [tokens, heads * d_head] without
    /// a transpose, so heads and steps mix.
    Stacked,
}

#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl MultiHeadAttention {
    /// `<prefix>.{query,key,value,out}_projection`, with NeuralForecast's
    /// default head width `hidden / heads`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
    ) -> Result<MultiHeadAttention, BuildError> {
        if heads == 0 || hidden / heads == 0 {
            return Err(invalid!(
                "{heads} heads do not fit a hidden size of {hidden}"
            ));
        }
        let inner = (hidden / heads) * heads;
        let proj = |name: &str, fan_in: usize, fan_out: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), fan_in, fan_out, true)
        };
        Ok(MultiHeadAttention {
            query: proj("query_projection", hidden, inner)?,
            key: proj("key_projection", hidden, inner)?,
            value: proj("value_projection", hidden, inner)?,
            out: proj("out_projection", inner, hidden)?,
            heads,
        })
    }

    /// Self-attention over the tokens of x [tokens, hidden].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        self.attend(x, x, false)
    }

    /// The tokens of x [tokens, hidden] attend to those of `memory`
    /// [keys, hidden] (x itself for self-attention); `causal` masks later keys.
    pub fn attend(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
        causal: bool,
    ) -> Result<Array2<f32>, ForwardError> {
        self.attend_with(x, memory, causal, HeadLayout::Interleaved)
    }

    /// `attend` with the heads laid out for the output projection as `layout` says.
    pub fn attend_with(
        &self,
        x: ArrayView2<f32>,
        memory: ArrayView2<f32>,
        causal: bool,
        layout: HeadLayout,
    ) -> Result<Array2<f32>, ForwardError> {
        let q = self.query.forward(x)?;
        let k = self.key.forward(memory)?;
        let v = self.value.forward(memory)?;
        let e = q.ncols() / self.heads;
        let scale = 1.0 / (e as f32).sqrt();
        let mut heads_out = Array2::<f32>::zeros((x.nrows(), q.ncols()));
        for h in 0..self.heads {
            let cols = Slice::from(h * e..(h + 1) * e);
            let o = scaled_dot_product_masked(
                q.slice_axis(Axis(1), cols),
                k.slice_axis(Axis(1), cols),
                v.slice_axis(Axis(1), cols),
                scale,
                causal.then_some(0),
            )?;
            match layout {
                HeadLayout::Interleaved => heads_out.slice_axis_mut(Axis(1), cols).assign(&o),
                HeadLayout::Stacked => {
                    // Head h fills flat positions [h * L * e, (h + 1) * L * e).
                    let flat = heads_out
                        .as_slice_mut()
                        .ok_or_else(|| shape!("attention output is not contiguous"))?;
                    let n = o.len();
                    for (dst, src) in flat[h * n..(h + 1) * n].iter_mut().zip(o.iter()) {
                        *dst = *src;
                    }
                }
            }
        }
        self.out.forward(heads_out.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_matches_hand_computed_values() {
        let mut r = [1.0f32, 2.0, 3.0];
        softmax_inplace(&mut r);
        // e^-2, e^-1, 1 over their sum.
        let z = (-2f32).exp() + (-1f32).exp() + 1.0;
        let want = [(-2f32).exp() / z, (-1f32).exp() / z, 1.0 / z];
        for (g, w) in r.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
        assert!((want[0] - 0.090_030_57).abs() < 1e-7);
        // Large logits do not overflow.
        let mut big = [1000.0f32, 1000.0];
        softmax_inplace(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn attention_weights_values_by_scaled_scores() {
        // One query against two keys; scores [0, 2] * 0.5 = [0, 1].
        let q = array![[1.0f32, 1.0]];
        let k = array![[0.0f32, 0.0], [1.0, 1.0]];
        let v = array![[10.0f32], [20.0]];
        let o = scaled_dot_product(q.view(), k.view(), v.view(), 0.5).unwrap();
        let p1 = 1f32.exp() / (1.0 + 1f32.exp());
        assert!((o[[0, 0]] - (10.0 * (1.0 - p1) + 20.0 * p1)).abs() < 1e-5);
        assert!(scaled_dot_product(q.view(), v.view(), v.view(), 1.0).is_err());
    }

    #[test]
    fn stacked_heads_are_read_as_steps_without_a_transpose() {
        // hidden 2, 2 heads of width 1, identity projections: with one key
        // each head's output is the value, o_h[t] = x[t, h].
        let eye = || {
            crate::nn::linear::tests::from_parts(
                array![[1.0, 0.0], [0.0, 1.0]],
                Some(array![0.0, 0.0]),
            )
        };
        let mha = MultiHeadAttention {
            query: eye(),
            key: eye(),
            value: eye(),
            out: eye(),
            heads: 2,
        };
        let x = array![[1.0f32, 2.0], [3.0, 4.0]];
        let m = array![[5.0f32, 6.0]];
        let inter = mha
            .attend_with(x.view(), m.view(), false, HeadLayout::Interleaved)
            .unwrap();
        assert_eq!(inter, array![[5.0f32, 6.0], [5.0, 6.0]]);
        // [heads, steps, 1] = [[5, 5], [6, 6]] read as [steps, 2].
        let stacked = mha
            .attend_with(x.view(), m.view(), false, HeadLayout::Stacked)
            .unwrap();
        assert_eq!(stacked, array![[5.0f32, 5.0], [6.0, 6.0]]);
    }

    #[test]
    fn causal_mask_hides_later_keys() {
        let q = array![[1.0f32], [1.0]];
        let k = array![[0.0f32], [1.0]];
        let v = array![[10.0f32], [20.0]];
        let o = scaled_dot_product_masked(q.view(), k.view(), v.view(), 1.0, Some(0)).unwrap();
        // Query 0 sees key 0 only; query 1 weights both by softmax([0, 1]).
        assert_eq!(o[[0, 0]], 10.0);
        let p1 = 1f32.exp() / (1.0 + 1f32.exp());
        assert!((o[[1, 0]] - (10.0 * (1.0 - p1) + 20.0 * p1)).abs() < 1e-5);
    }
}
