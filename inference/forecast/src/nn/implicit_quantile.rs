//! The output head of `IQLoss` / `HuberIQLoss` (NeuralForecast's
//! `domain_map`): the quantile `q` is an input. `QuantileLayer` embeds it,
//! `cos(q * k * pi)` for k < cos_embedding_dim through Linear, PReLU,
//! Linear to one number `e`, and every network output `y` (in the temporal
//! scaler's space) becomes `PReLU(w * y * (1 + e) + b)`. `e` depends on `q`
//! only, so one request computes it once per quantile.

use super::activation::PRelu;
use super::linear::Linear;
use crate::forecaster::{shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::Array2;

#[derive(Debug, Clone)]
pub struct ImplicitQuantileHead {
    embedding_dim: usize,
    tau_in: Linear,
    tau_act: PRelu,
    tau_out: Linear,
    out: Linear,
    out_act: PRelu,
}

impl ImplicitQuantileHead {
    /// `loss.quantile_layer.output_layer.{0,1,2}` and `loss.output_layer.{0,1}`.
    pub fn load(
        store: &TensorStore,
        embedding_dim: usize,
    ) -> Result<ImplicitQuantileHead, BuildError> {
        let q = "loss.quantile_layer.output_layer";
        Ok(ImplicitQuantileHead {
            embedding_dim,
            tau_in: Linear::load(store, &format!("{q}.0"), embedding_dim, embedding_dim, true)?,
            tau_act: PRelu::load(store, &format!("{q}.1"))?,
            tau_out: Linear::load(store, &format!("{q}.2"), embedding_dim, 1, true)?,
            out: Linear::load(store, "loss.output_layer.0", 1, 1, true)?,
            out_act: PRelu::load(store, "loss.output_layer.1")?,
        })
    }

    /// `e` for quantile `q`, in float32 as torch computes it.
    pub fn embed(&self, q: f32) -> Result<f32, ForwardError> {
        let pi = std::f32::consts::PI;
        let cos =
            Array2::from_shape_fn((1, self.embedding_dim), |(_, k)| (q * k as f32 * pi).cos());
        let mut hidden = self.tau_in.forward(cos.view())?;
        self.tau_act.apply_inplace(&mut hidden)?;
        let e = self.tau_out.forward(hidden.view())?;
        e.first()
            .copied()
            .ok_or_else(|| shape!("empty quantile embedding"))
    }

    /// The mapped outputs, in place: `values` are network outputs for `e`.
    pub fn apply(&self, values: &mut [f32], e: f32) -> Result<(), ForwardError> {
        let x = Array2::from_shape_fn((values.len(), 1), |(i, _)| values[i] * (1.0 + e));
        let mut y = self.out.forward(x.view())?;
        self.out_act.apply_inplace(&mut y)?;
        for (v, m) in values.iter_mut().zip(y.iter()) {
            *v = *m;
        }
        Ok(())
    }
}
