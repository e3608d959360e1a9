//! TFT's `VariableSelectionNetwork` (neuralforecast/models/tft.py): a joint
//! GRN over all embedded variables (with an optional static context) gives a
//! softmax weight per variable; each variable goes through its own GRN, and
//! the weighted sum of those is the selected embedding.

use super::activation::Activation;
use super::attention::softmax_inplace;
use super::grn::{Context, Grn, GrnShape};
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView3, Axis};

#[derive(Debug, Clone)]
pub struct VariableSelection {
    joint: Grn,
    vars: Vec<Grn>,
    hidden: usize,
}

impl VariableSelection {
    /// `<prefix>.joint_grn` and `<prefix>.var_grns.{i}`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        n_inputs: usize,
        activation: Activation,
    ) -> Result<VariableSelection, BuildError> {
        if n_inputs == 0 {
            return Err(invalid!("{prefix}: variable selection over no variables"));
        }
        let joint = Grn::load(
            store,
            &format!("{prefix}.joint_grn"),
            GrnShape {
                input: hidden * n_inputs,
                hidden,
                output: Some(n_inputs),
                context: true,
            },
            activation,
        )?;
        let vars = (0..n_inputs)
            .map(|i| {
                Grn::load(
                    store,
                    &format!("{prefix}.var_grns.{i}"),
                    GrnShape {
                        input: hidden,
                        hidden,
                        output: None,
                        context: false,
                    },
                    activation,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(VariableSelection {
            joint,
            vars,
            hidden,
        })
    }

    /// x [rows, n_inputs, hidden] -> [rows, hidden].
    pub fn forward(
        &self,
        x: ArrayView3<f32>,
        c: Option<Context>,
    ) -> Result<Array2<f32>, ForwardError> {
        let (rows, n, hidden) = x.dim();
        if n != self.vars.len() || hidden != self.hidden {
            return Err(shape!(
                "variable selection over {} variables of width {}, got {n} of {hidden}",
                self.vars.len(),
                self.hidden
            ));
        }
        let flat = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, n * hidden))
            .map_err(|e| ForwardError::array("variable selection input does not flatten", e))?;
        let mut weights = super::temporal::c_order(self.joint.forward(flat.view(), c)?);
        for mut row in weights.axis_iter_mut(Axis(0)) {
            let r = row
                .as_slice_mut()
                .ok_or_else(|| shape!("variable selection weights are not contiguous"))?;
            softmax_inplace(r);
        }
        let mut out = Array2::<f32>::zeros((rows, hidden));
        for (i, grn) in self.vars.iter().enumerate() {
            let t = grn.forward(x.index_axis(Axis(1), i), None)?;
            for ((mut o, tr), w) in out
                .axis_iter_mut(Axis(0))
                .zip(t.axis_iter(Axis(0)))
                .zip(weights.column(i))
            {
                o.scaled_add(*w, &tr);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// hidden 2, two variables: the joint GRN reduces to LayerNorm([x[0][0], x[1][0]])
    /// and variable i's GRN to the constant bias of its LayerNorm.
    fn store() -> TensorStore {
        let z = |n: usize| vec![0.0f32; n];
        let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
            ("v.joint_grn.lin_a.weight".into(), vec![2, 4], z(8)),
            ("v.joint_grn.lin_a.bias".into(), vec![2], z(2)),
            ("v.joint_grn.lin_c.weight".into(), vec![2, 2], z(4)),
            ("v.joint_grn.lin_i.weight".into(), vec![2, 2], z(4)),
            ("v.joint_grn.lin_i.bias".into(), vec![2], z(2)),
            ("v.joint_grn.glu.lin.weight".into(), vec![4, 2], z(8)),
            ("v.joint_grn.glu.lin.bias".into(), vec![4], z(4)),
            (
                "v.joint_grn.out_proj.weight".into(),
                vec![2, 4],
                vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            ),
            ("v.joint_grn.out_proj.bias".into(), vec![2], z(2)),
            (
                "v.joint_grn.layer_norm.ln.weight".into(),
                vec![2],
                vec![1.0; 2],
            ),
            ("v.joint_grn.layer_norm.ln.bias".into(), vec![2], z(2)),
        ];
        for (i, b) in [(0, 10.0f32), (1, -4.0)] {
            let p = format!("v.var_grns.{i}");
            t.extend([
                (format!("{p}.lin_a.weight"), vec![2, 2], z(4)),
                (format!("{p}.lin_a.bias"), vec![2], z(2)),
                (format!("{p}.lin_i.weight"), vec![2, 2], z(4)),
                (format!("{p}.lin_i.bias"), vec![2], z(2)),
                (format!("{p}.glu.lin.weight"), vec![4, 2], z(8)),
                (format!("{p}.glu.lin.bias"), vec![4], z(4)),
                (format!("{p}.layer_norm.ln.weight"), vec![2], z(2)),
                (format!("{p}.layer_norm.ln.bias"), vec![2], vec![b; 2]),
            ]);
        }
        let t: Vec<(&str, Vec<usize>, Vec<f32>)> = t
            .iter()
            .map(|(n, s, d)| (n.as_str(), s.clone(), d.clone()))
            .collect();
        TensorStore::from_tensors(&t)
    }

    #[test]
    fn softmax_weights_mix_the_variables() {
        let vsn = VariableSelection::load(&store(), "v", 2, 2, Activation::ELU).unwrap();
        // Row: variable 0 = [0, 5], variable 1 = [2, 7]; the joint logits are
        // LayerNorm([0, 2]) = [-1, 1] / sqrt(1 + 1e-3).
        let x = array![[[0.0f32, 5.0], [2.0, 7.0]]];
        let y = vsn.forward(x.view(), None).unwrap();
        let w1 = 1.0 / (1.0 + (-2.0f32 / 1.001f32.sqrt()).exp());
        let want = (1.0 - w1) * 10.0 + w1 * -4.0;
        assert!(
            (y[[0, 0]] - want).abs() < 1e-5 && (y[[0, 1]] - want).abs() < 1e-5,
            "{y:?}"
        );
        assert!(vsn.forward(array![[[0.0f32, 5.0]]].view(), None).is_err());
    }
}
