//! TFT's gating blocks (neuralforecast/models/tft.py): the gated linear unit
//! `GLU` (a Linear to twice the width, then `F.glu`: first half times the
//! sigmoid of the second) and the gated residual network `GRN`
//! (`lin_a` [+ `lin_c` of a static context] -> activation -> `lin_i` -> GLU,
//! plus the input or its `out_proj`, then a LayerNorm with eps 1e-3 that is
//! the identity when the output has width 1).
//!
//! Temporal inputs are rows [batch * steps, features], each batch's steps
//! consecutive; a context [batch, hidden] is added to every step of its batch
//! (torch's `lin_c(c).unsqueeze(1)`).

use super::activation::{sigmoid, Activation};
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::temporal::c_order;
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis};

/// The epsilon of every LayerNorm in TFT's gates.
pub const TFT_LN_EPS: f32 = 1e-3;

/// `GRN`'s `get_activation_fn`: the names it maps, ELU for any other.
pub fn grn_activation(name: &str) -> Result<Activation, BuildError> {
    match name {
        "ReLU" | "Softplus" | "Tanh" | "SELU" | "LeakyReLU" | "Sigmoid" | "ELU" | "GELU" => {
            Activation::parse(name)
        }
        // F.glu halves the width, so lin_i cannot take its output: such a model never ran.
        "GLU" => Err(BuildError::Unsupported(
            "grn_activation GLU halves the GRN width; such a TFT cannot run".into(),
        )),
        _ => Ok(Activation::ELU),
    }
}

#[derive(Debug, Clone)]
pub struct Glu {
    lin: Linear,
}

impl Glu {
    /// `<prefix>.lin` [2 * out, in].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        output: usize,
    ) -> Result<Glu, BuildError> {
        Ok(Glu {
            lin: Linear::load(store, &format!("{prefix}.lin"), input, 2 * output, true)?,
        })
    }

    /// x [rows, in] -> [rows, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let y = c_order(self.lin.forward(x)?);
        let out = y.ncols() / 2;
        Ok(Array2::from_shape_fn((y.nrows(), out), |(r, j)| {
            y[[r, j]] * sigmoid(y[[r, out + j]])
        }))
    }
}

/// A context [batch, width] shared by `rows_per_batch` consecutive rows.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub values: ArrayView2<'a, f32>,
    pub rows_per_batch: usize,
}

#[derive(Debug, Clone)]
pub struct Grn {
    lin_a: Linear,
    lin_c: Option<Linear>,
    lin_i: Linear,
    glu: Glu,
    out_proj: Option<Linear>,
    norm: Option<LayerNorm>,
    activation: Activation,
}

/// Widths of one GRN: `output` None keeps the input width (and adds the
/// input itself); `context` loads `lin_c`.
#[derive(Debug, Clone, Copy)]
pub struct GrnShape {
    pub input: usize,
    pub hidden: usize,
    pub output: Option<usize>,
    pub context: bool,
}

impl Grn {
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        shape: GrnShape,
        activation: Activation,
    ) -> Result<Grn, BuildError> {
        let GrnShape {
            input,
            hidden,
            output,
            context,
        } = shape;
        let p = |name: &str| format!("{prefix}.{name}");
        let out = output.unwrap_or(hidden);
        if output.is_none() && input != hidden {
            return Err(invalid!(
                "{prefix}: a GRN without out_proj needs input width {input} = hidden {hidden}"
            ));
        }
        let norm = if output == Some(1) {
            None
        } else {
            Some(LayerNorm::load(store, &p("layer_norm.ln"), &[out])?.with_eps(TFT_LN_EPS))
        };
        Ok(Grn {
            lin_a: Linear::load(store, &p("lin_a"), input, hidden, true)?,
            lin_c: context
                .then(|| Linear::load(store, &p("lin_c"), hidden, hidden, false))
                .transpose()?,
            lin_i: Linear::load(store, &p("lin_i"), hidden, hidden, true)?,
            glu: Glu::load(store, &p("glu"), hidden, out)?,
            out_proj: output
                .map(|o| Linear::load(store, &p("out_proj"), input, o, true))
                .transpose()?,
            norm,
            activation,
        })
    }

    /// a [rows, input] -> [rows, output].
    pub fn forward(
        &self,
        a: ArrayView2<f32>,
        c: Option<Context>,
    ) -> Result<Array2<f32>, ForwardError> {
        let mut x = c_order(self.lin_a.forward(a)?);
        if let Some(ctx) = c {
            let lin_c = self
                .lin_c
                .as_ref()
                .ok_or_else(|| shape!("this GRN takes no context"))?;
            let cc = lin_c.forward(ctx.values)?;
            let per = ctx.rows_per_batch;
            if per == 0 || cc.nrows() * per != x.nrows() {
                return Err(shape!(
                    "a context of {} rows does not cover {} inputs",
                    cc.nrows(),
                    x.nrows()
                ));
            }
            for (r, mut row) in x.axis_iter_mut(Axis(0)).enumerate() {
                row += &cc.row(r / per);
            }
        }
        self.activation.apply_inplace(&mut x);
        let x = self.lin_i.forward(x.view())?;
        let mut x = c_order(self.glu.forward(x.view())?);
        match &self.out_proj {
            Some(p) => x += &p.forward(a)?,
            None => x += &a,
        }
        if let Some(norm) = &self.norm {
            norm.forward_inplace(&mut x)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::linear::tests::from_parts;
    use ndarray::array;

    #[test]
    fn glu_gates_the_first_half_by_the_second() {
        let g = Glu {
            lin: from_parts(array![[1.0, 0.0], [0.0, 1.0]], None),
        };
        let y = g.forward(array![[2.0f32, -1.0]].view()).unwrap();
        assert!((y[[0, 0]] - 2.0 * sigmoid(-1.0)).abs() < 1e-7);
        assert_eq!(y.dim(), (1, 1));
    }

    #[test]
    fn grn_matches_hand_computation() {
        // input 1 -> hidden 1 -> output 1 (no LayerNorm), ELU, a context.
        let grn = Grn {
            lin_a: from_parts(array![[2.0]], Some(array![0.5])),
            lin_c: Some(from_parts(array![[-1.0]], None)),
            lin_i: from_parts(array![[1.5]], Some(array![-0.25])),
            glu: Glu {
                lin: from_parts(array![[1.0], [0.5]], Some(array![0.0, 0.1])),
            },
            out_proj: Some(from_parts(array![[3.0]], Some(array![1.0]))),
            norm: None,
            activation: Activation::ELU,
        };
        let a = array![[1.0f32], [-2.0]];
        let c = array![[4.0f32]];
        let y = grn
            .forward(
                a.view(),
                Some(Context {
                    values: c.view(),
                    rows_per_batch: 2,
                }),
            )
            .unwrap();
        for (r, av) in [1.0f64, -2.0].into_iter().enumerate() {
            let x = 2.0 * av + 0.5 - 4.0;
            let x = if x > 0.0 { x } else { x.exp() - 1.0 };
            let x = 1.5 * x - 0.25;
            let glu = x / (1.0 + (-(0.5 * x + 0.1)).exp());
            let want = glu + 3.0 * av + 1.0;
            assert!(
                (y[[r, 0]] as f64 - want).abs() < 1e-5,
                "{} vs {want}",
                y[[r, 0]]
            );
        }
        assert!(grn
            .forward(
                a.view(),
                Some(Context {
                    values: c.view(),
                    rows_per_batch: 3
                })
            )
            .is_err());
        assert_eq!(grn_activation("Foo").ok(), Some(Activation::ELU));
        assert!(grn_activation("GLU").is_err());
    }
}
