//! Element-wise activations, applied in place.

use ndarray::{ArrayBase, DataMut, Dimension};

pub fn relu_inplace<S: DataMut<Elem = f32>, D: Dimension>(x: &mut ArrayBase<S, D>) {
    x.mapv_inplace(|v| if v > 0.0 { v } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn relu_clamps_negatives_only() {
        let mut x = array![[-1.0f32, 0.0, 2.5]];
        relu_inplace(&mut x);
        assert_eq!(x, array![[0.0f32, 0.0, 2.5]]);
    }
}
