//! `torch.nn.RNN` / `LSTM` / `GRU` in eval mode, batch-first: the cells in
//! PyTorch's gate order (LSTM i,f,g,o; GRU r,z,n) and weight layout
//! (`weight_ih_l{k}` [gates*hidden, in], `weight_hh_l{k}`, `bias_*`,
//! LSTM `weight_hr_l{k}` when `proj_size` > 0), and the stacked driver that
//! carries the state between calls (recurrent forecasting steps one value at
//! a time with the state kept, as `maintain_state` does in NeuralForecast).

use super::activation::sigmoid;
use super::temporal::c_order;
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, ArrayView3, Axis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl CellKind {
    fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// What one layer reads in and what the state it carries looks like.
#[derive(Debug, Clone, Copy)]
pub struct LayerShape {
    pub input: usize,
    pub hidden: usize,
    /// LSTM `proj_size`; 0 for none.
    pub proj: usize,
    pub bias: bool,
}

/// One recurrent layer, weights transposed for row-major GEMMs.
#[derive(Debug, Clone)]
pub struct RecurrentLayer {
    kind: CellKind,
    hidden: usize,
    /// [in, gates * hidden]
    w_ih_t: Array2<f32>,
    /// [out, gates * hidden]; out is `proj` when projecting, else `hidden`.
    w_hh_t: Array2<f32>,
    b_ih: Option<Array1<f32>>,
    b_hh: Option<Array1<f32>>,
    /// [hidden, proj]
    w_hr_t: Option<Array2<f32>>,
}

/// The state one layer carries: h [batch, out], and c [batch, hidden] for LSTM.
#[derive(Debug, Clone)]
pub struct LayerState {
    pub h: Array2<f32>,
    pub c: Option<Array2<f32>>,
}

impl RecurrentLayer {
    /// Loads `<prefix>.weight_ih<suffix>` and its siblings (suffix `_l0`, ...).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        suffix: &str,
        kind: CellKind,
        shape: LayerShape,
    ) -> Result<RecurrentLayer, BuildError> {
        if shape.proj > 0 && kind != CellKind::Lstm {
            return Err(invalid!("proj_size is an LSTM option"));
        }
        let g = kind.gates() * shape.hidden;
        let out = if shape.proj > 0 {
            shape.proj
        } else {
            shape.hidden
        };
        let name = |w: &str| format!("{prefix}.{w}{suffix}");
        let w_ih = store.array2(&name("weight_ih"), g, shape.input)?;
        let w_hh = store.array2(&name("weight_hh"), g, out)?;
        let (b_ih, b_hh) = if shape.bias {
            (
                Some(store.array1(&name("bias_ih"), g)?),
                Some(store.array1(&name("bias_hh"), g)?),
            )
        } else {
            (None, None)
        };
        let w_hr_t = if shape.proj > 0 {
            Some(
                store
                    .array2(&name("weight_hr"), shape.proj, shape.hidden)?
                    .t()
                    .as_standard_layout()
                    .to_owned(),
            )
        } else {
            None
        };
        Ok(RecurrentLayer {
            kind,
            hidden: shape.hidden,
            w_ih_t: w_ih.t().as_standard_layout().to_owned(),
            w_hh_t: w_hh.t().as_standard_layout().to_owned(),
            b_ih,
            b_hh,
            w_hr_t,
        })
    }

    pub fn in_features(&self) -> usize {
        self.w_ih_t.nrows()
    }

    /// Width of the outputs (and of h): the projection size, else hidden.
    pub fn out_features(&self) -> usize {
        self.w_hh_t.nrows()
    }

    /// The zero state PyTorch starts from.
    pub fn zero_state(&self, batch: usize) -> LayerState {
        LayerState {
            h: Array2::zeros((batch, self.out_features())),
            c: (self.kind == CellKind::Lstm).then(|| Array2::zeros((batch, self.hidden))),
        }
    }

    /// x [batch, steps, in] -> outputs [batch, steps, out]; `state` is updated
    /// to the state after the last step.
    pub fn run(
        &self,
        x: ArrayView3<f32>,
        state: &mut LayerState,
    ) -> Result<Array3<f32>, ForwardError> {
        let (b, t, i) = x.dim();
        if i != self.in_features() {
            return Err(shape!(
                "recurrent layer expects {} inputs, got {i}",
                self.in_features()
            ));
        }
        if state.h.dim() != (b, self.out_features()) {
            return Err(shape!(
                "recurrent state is {:?}, the batch needs {:?}",
                state.h.dim(),
                (b, self.out_features())
            ));
        }
        let hsz = self.hidden;
        // All input projections in one GEMM, as PyTorch precomputes them.
        let flat = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((b * t, i))
            .map_err(|e| ForwardError::array("recurrent input does not flatten", e))?;
        let mut xg = c_order(flat.dot(&self.w_ih_t));
        if let Some(bias) = &self.b_ih {
            xg += bias;
        }
        let mut out = Array3::<f32>::zeros((b, t, self.out_features()));
        let mut cell_h = Array2::<f32>::zeros((b, hsz));
        for step in 0..t {
            let mut hg = c_order(state.h.dot(&self.w_hh_t));
            if let Some(bias) = &self.b_hh {
                hg += bias;
            }
            for r in 0..b {
                let xr = xg.row(r * t + step);
                let hr = hg.row(r);
                let (Some(xs), Some(hs)) = (xr.as_slice(), hr.as_slice()) else {
                    return Err(shape!("recurrent gates are not contiguous"));
                };
                let mut h_row = cell_h.row_mut(r);
                let Some(hn) = h_row.as_slice_mut() else {
                    return Err(shape!("recurrent state is not contiguous"));
                };
                match self.kind {
                    CellKind::RnnTanh => {
                        for j in 0..hsz {
                            hn[j] = (xs[j] + hs[j]).tanh();
                        }
                    }
                    CellKind::RnnRelu => {
                        for j in 0..hsz {
                            hn[j] = (xs[j] + hs[j]).max(0.0);
                        }
                    }
                    CellKind::Gru => {
                        let prev = state.h.row(r);
                        for j in 0..hsz {
                            let reset = sigmoid(xs[j] + hs[j]);
                            let update = sigmoid(xs[hsz + j] + hs[hsz + j]);
                            let new = (xs[2 * hsz + j] + reset * hs[2 * hsz + j]).tanh();
                            // aten: (hx - n) * z + n
                            hn[j] = (prev[j] - new) * update + new;
                        }
                    }
                    CellKind::Lstm => {
                        let Some(c) = state.c.as_mut() else {
                            return Err(shape!("LSTM state has no cell"));
                        };
                        let mut c_row = c.row_mut(r);
                        for j in 0..hsz {
                            let ig = sigmoid(xs[j] + hs[j]);
                            let fg = sigmoid(xs[hsz + j] + hs[hsz + j]);
                            let cg = (xs[2 * hsz + j] + hs[2 * hsz + j]).tanh();
                            let og = sigmoid(xs[3 * hsz + j] + hs[3 * hsz + j]);
                            let cy = fg * c_row[j] + ig * cg;
                            c_row[j] = cy;
                            hn[j] = og * cy.tanh();
                        }
                    }
                }
            }
            let h_out = match &self.w_hr_t {
                Some(w) => cell_h.dot(w),
                None => cell_h.clone(),
            };
            out.index_axis_mut(Axis(1), step).assign(&h_out);
            state.h = h_out;
        }
        Ok(out)
    }
}

/// `num_layers` layers fed one into the next (dropout is off in eval).
#[derive(Debug, Clone)]
pub struct RecurrentStack {
    layers: Vec<RecurrentLayer>,
}

impl RecurrentStack {
    /// Loads `<prefix>.weight_ih_l{k}`... for k in 0..n_layers.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        kind: CellKind,
        first: LayerShape,
        n_layers: usize,
    ) -> Result<RecurrentStack, BuildError> {
        if n_layers == 0 {
            return Err(invalid!("a recurrent encoder needs at least one layer"));
        }
        let out = if first.proj > 0 {
            first.proj
        } else {
            first.hidden
        };
        let layers = (0..n_layers)
            .map(|k| {
                let shape = LayerShape {
                    input: if k == 0 { first.input } else { out },
                    ..first
                };
                RecurrentLayer::load(store, prefix, &format!("_l{k}"), kind, shape)
            })
            .collect::<Result<_, _>>()?;
        Ok(RecurrentStack { layers })
    }

    pub fn out_features(&self) -> usize {
        self.layers.last().map_or(0, RecurrentLayer::out_features)
    }

    pub fn zero_state(&self, batch: usize) -> Vec<LayerState> {
        self.layers.iter().map(|l| l.zero_state(batch)).collect()
    }

    /// x [batch, steps, in] -> the last layer's outputs [batch, steps, out].
    pub fn run(
        &self,
        x: ArrayView3<f32>,
        states: &mut [LayerState],
    ) -> Result<Array3<f32>, ForwardError> {
        if states.len() != self.layers.len() {
            return Err(shape!("one recurrent state per layer is needed"));
        }
        let mut cur: Option<Array3<f32>> = None;
        for (layer, state) in self.layers.iter().zip(states.iter_mut()) {
            let input = match &cur {
                Some(a) => a.view(),
                None => x,
            };
            let next = layer.run(input, state)?;
            cur = Some(next);
        }
        cur.ok_or_else(|| shape!("a recurrent encoder needs at least one layer"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::{array, Array};

    pub fn layer(
        kind: CellKind,
        w_ih: Array2<f32>,
        w_hh: Array2<f32>,
        b_ih: Array1<f32>,
        b_hh: Array1<f32>,
    ) -> RecurrentLayer {
        RecurrentLayer {
            kind,
            hidden: w_ih.nrows() / kind.gates(),
            w_ih_t: w_ih.t().as_standard_layout().to_owned(),
            w_hh_t: w_hh.t().as_standard_layout().to_owned(),
            b_ih: Some(b_ih),
            b_hh: Some(b_hh),
            w_hr_t: None,
        }
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn lstm_step_matches_hand_computation() {
        // hidden 1, input 1: gates i, f, g, o.
        let l = layer(
            CellKind::Lstm,
            array![[0.5], [-0.3], [0.8], [0.2]],
            array![[0.1], [0.4], [-0.6], [0.7]],
            array![0.0, 0.1, -0.1, 0.2],
            array![0.05, 0.0, 0.0, -0.1],
        );
        let mut st = LayerState {
            h: array![[0.3f32]],
            c: Some(array![[-0.2f32]]),
        };
        let y = l.run(array![[[2.0f32]]].view(), &mut st).unwrap();
        let (x, h, c) = (2.0f64, 0.3f64, -0.2f64);
        let i = sig(0.5 * x + 0.1 * h + 0.05);
        let f = sig(-0.3 * x + 0.1 + 0.4 * h);
        let g = (0.8 * x - 0.1 - 0.6 * h).tanh();
        let o = sig(0.2 * x + 0.2 + 0.7 * h - 0.1);
        let c1 = f * c + i * g;
        let h1 = o * c1.tanh();
        assert!((y[[0, 0, 0]] as f64 - h1).abs() < 1e-6);
        assert!((st.c.unwrap()[[0, 0]] as f64 - c1).abs() < 1e-6);
        assert!((st.h[[0, 0]] as f64 - h1).abs() < 1e-6);
    }

    #[test]
    fn gru_and_rnn_steps_match_hand_computation() {
        let g = layer(
            CellKind::Gru,
            array![[0.5], [-0.3], [0.8]],
            array![[0.1], [0.4], [-0.6]],
            array![0.0, 0.1, -0.1],
            array![0.05, 0.0, 0.3],
        );
        let mut st = g.zero_state(1);
        st.h = array![[0.3f32]];
        let y = g.run(array![[[2.0f32]]].view(), &mut st).unwrap();
        let (x, h) = (2.0f64, 0.3f64);
        let r = sig(0.5 * x + 0.1 * h + 0.05);
        let z = sig(-0.3 * x + 0.1 + 0.4 * h);
        let n = (0.8 * x - 0.1 + r * (-0.6 * h + 0.3)).tanh();
        assert!((y[[0, 0, 0]] as f64 - ((1.0 - z) * n + z * h)).abs() < 1e-6);

        let relu = layer(
            CellKind::RnnRelu,
            array![[1.0]],
            array![[-2.0]],
            array![0.0],
            array![0.0],
        );
        let mut st = relu.zero_state(1);
        // steps: 1 -> relu(1) = 1; then 0.5 - 2*1 < 0 -> 0; then 3 -> 3.
        let y = relu
            .run(array![[[1.0f32], [0.5], [3.0]]].view(), &mut st)
            .unwrap();
        assert_eq!(y, array![[[1.0f32], [0.0], [3.0]]]);
    }

    #[test]
    fn stepping_with_kept_state_equals_one_run() {
        let g = layer(
            CellKind::Gru,
            Array::from_shape_fn((6, 2), |(i, j)| (i as f32 - j as f32) * 0.1),
            Array::from_shape_fn((6, 2), |(i, j)| (i * j) as f32 * 0.05 - 0.1),
            Array::from_elem(6, 0.01),
            Array::from_elem(6, -0.02),
        );
        let stack = RecurrentStack {
            layers: vec![g.clone(), {
                let mut second = g;
                second.w_ih_t.mapv_inplace(|v| v * 0.5);
                second
            }],
        };
        let x = Array::from_shape_fn((3, 4, 2), |(b, t, c)| (b + t) as f32 * 0.2 - c as f32);
        let mut all = stack.zero_state(3);
        let whole = stack.run(x.view(), &mut all).unwrap();
        let mut st = stack.zero_state(3);
        for t in 0..4 {
            let step = crate::nn::exog::steps(x.view(), t..t + 1);
            let y = stack.run(step, &mut st).unwrap();
            assert_eq!(y.index_axis(Axis(1), 0), whole.index_axis(Axis(1), t));
        }
        assert!(stack.run(Array3::zeros((3, 1, 5)).view(), &mut st).is_err());
    }
}
