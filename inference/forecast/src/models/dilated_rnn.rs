//! DilatedRNN (neuralforecast/models/dilated_rnn.py): groups of dilated
//! recurrent layers (`dilations`, e.g. [[1, 2], [4, 8]]) with a residual
//! around every group after the first, a Linear over time from the window
//! to the horizon (`context_adapter`), then the MLP decoder on
//! `[hidden | futr exog]` per horizon step.
//!
//! A layer with dilation r runs its cell over r interleaved subsequences
//! (steps j, j + r, ...; the last ones zero-padded to equal length), each from
//! a zero state, exactly as `DRNN.drnn_layer` does. `cell_type` is one of the
//! cells that run in 3.3.0: RNN, GRU and LSTM (`torch.nn`) and ResLSTM
//! (defined in dilated_rnn.py). AttentiveLSTM is refused: its forward raises
//! in 3.3.0.

use super::{BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::sigmoid;
use crate::nn::exog::ExogWidths;
use crate::nn::mlp_decoder::{ContextDecoder, DecoderShape};
use crate::nn::recurrent::{CellKind, LayerShape, RecurrentLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, ArrayView3, Axis, Slice};
use serde::Deserialize;

/// `ResLSTMCell`: input, forget and output gates also read the cell state;
/// the output adds the (projected) input to tanh(c).
#[derive(Debug)]
struct ResLstm {
    hidden: usize,
    w_ii_t: Array2<f32>,
    b_ii: Array1<f32>,
    w_ih_t: Array2<f32>,
    b_ih: Array1<f32>,
    w_ic_t: Array2<f32>,
    b_ic: Array1<f32>,
    w_hh_t: Array2<f32>,
    b_hh: Array1<f32>,
    /// None when input and hidden sizes match: the input is added as is.
    w_ir_t: Option<Array2<f32>>,
}

#[derive(Debug)]
enum Cell {
    Torch(Box<RecurrentLayer>),
    Res(Box<ResLstm>),
}

#[derive(Debug)]
struct DilatedLayer {
    cell: Cell,
    rate: usize,
}

/// DilatedRNN's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DilatedRnnHparams {
    pub dilations: Vec<Vec<usize>>,
    pub decoder_hidden_size: usize,
    pub decoder_layers: usize,
    pub decoder_activation: String,
    pub cell_type: String,
    pub encoder_hidden_size: usize,
}

impl Default for DilatedRnnHparams {
    fn default() -> Self {
        DilatedRnnHparams {
            dilations: vec![vec![1, 2], vec![4, 8]],
            decoder_hidden_size: 128,
            decoder_layers: 2,
            decoder_activation: "ReLU".into(),
            cell_type: "LSTM".into(),
            encoder_hidden_size: 128,
        }
    }
}

pub struct DilatedRnn {
    groups: Vec<Vec<DilatedLayer>>,
    head: ContextDecoder,
}

fn transposed(
    store: &TensorStore,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Array2<f32>, BuildError> {
    Ok(store
        .array2(name, rows, cols)?
        .t()
        .as_standard_layout()
        .to_owned())
}

impl ResLstm {
    fn load(
        store: &TensorStore,
        p: &str,
        input: usize,
        hidden: usize,
    ) -> Result<ResLstm, BuildError> {
        let g = 3 * hidden;
        Ok(ResLstm {
            hidden,
            w_ii_t: transposed(store, &format!("{p}.weight_ii"), g, input)?,
            b_ii: store.array1(&format!("{p}.bias_ii"), g)?,
            w_ih_t: transposed(store, &format!("{p}.weight_ih"), g, hidden)?,
            b_ih: store.array1(&format!("{p}.bias_ih"), g)?,
            w_ic_t: transposed(store, &format!("{p}.weight_ic"), g, hidden)?,
            b_ic: store.array1(&format!("{p}.bias_ic"), g)?,
            w_hh_t: transposed(store, &format!("{p}.weight_hh"), hidden, hidden)?,
            b_hh: store.array1(&format!("{p}.bias_hh"), hidden)?,
            w_ir_t: if input == hidden {
                None
            } else {
                Some(transposed(store, &format!("{p}.weight_ir"), hidden, input)?)
            },
        })
    }

    fn run(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (n, t, c) = x.dim();
        let hs = self.hidden;
        let flat = flatten(x, n * t, c)?;
        let mut xg = flat.dot(&self.w_ii_t);
        xg += &self.b_ii;
        let residual = match &self.w_ir_t {
            Some(w) => flat.dot(w),
            None if c == hs => flat,
            None => return Err(shape!("ResLSTM input of {c} channels, hidden {hs}")),
        };
        let mut h = Array2::<f32>::zeros((n, hs));
        let mut cst = Array2::<f32>::zeros((n, hs));
        let mut out = Array3::<f32>::zeros((n, t, hs));
        for step in 0..t {
            let mut hg = h.dot(&self.w_ih_t);
            hg += &self.b_ih;
            let mut cg = cst.dot(&self.w_ic_t);
            cg += &self.b_ic;
            let mut cand = h.dot(&self.w_hh_t);
            cand += &self.b_hh;
            for r in 0..n {
                let xr = xg.row(r * t + step);
                let rr = residual.row(r * t + step);
                for j in 0..hs {
                    let gate = |k: usize| xr[k] + hg[[r, k]] + cg[[r, k]];
                    let ig = sigmoid(gate(j));
                    let fg = sigmoid(gate(hs + j));
                    let og = sigmoid(gate(2 * hs + j));
                    let cy = fg * cst[[r, j]] + ig * cand[[r, j]].tanh();
                    cst[[r, j]] = cy;
                    let hy = og * (cy.tanh() + rr[j]);
                    out[[r, step, j]] = hy;
                }
            }
            h.assign(&out.index_axis(Axis(1), step));
        }
        Ok(out)
    }
}

fn flatten(x: ArrayView3<f32>, rows: usize, cols: usize) -> Result<Array2<f32>, ForwardError> {
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, cols))
        .map_err(|e| ForwardError::array("sequence does not flatten", e))
}

impl Cell {
    fn load(
        store: &TensorStore,
        p: &str,
        kind: &str,
        input: usize,
        hidden: usize,
    ) -> Result<Cell, BuildError> {
        let torch = |k: CellKind| -> Result<Cell, BuildError> {
            let shape = LayerShape {
                input,
                hidden,
                proj: 0,
                bias: true,
            };
            let layer = RecurrentLayer::load(store, p, "_l0", k, shape)?;
            Ok(Cell::Torch(Box::new(layer)))
        };
        match kind {
            "RNN" => torch(CellKind::RnnTanh),
            "LSTM" => torch(CellKind::Lstm),
            "GRU" => torch(CellKind::Gru),
            "ResLSTM" => Ok(Cell::Res(Box::new(ResLstm::load(
                store,
                &format!("{p}.cell"),
                input,
                hidden,
            )?))),
            // dilated_rnn.py's AttentiveLSTMLayer unbinds its input to a tuple
            // and then concatenates it as a tensor: its forward raises a
            // TypeError in 3.3.0, so no such model can have been trained.
            "AttentiveLSTM" => Err(BuildError::Unsupported(
                "DilatedRNN cell_type 'AttentiveLSTM' is not supported: its forward fails in NeuralForecast 3.3.0 (TypeError in AttentiveLSTMLayer), so there are no reference numbers to match".into(),
            )),
            other => Err(BuildError::Unsupported(format!(
                "DilatedRNN cell_type '{other}' is not supported (RNN, LSTM, GRU, ResLSTM are)"
            ))),
        }
    }

    /// x [n, steps, in] from a zero state -> [n, steps, hidden].
    fn run(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        match self {
            Cell::Torch(layer) => {
                let mut st = layer.zero_state(x.dim().0);
                layer.run(x, &mut st)
            }
            Cell::Res(c) => c.run(x),
        }
    }
}

impl DilatedLayer {
    /// `DRNN.drnn_layer`: [B, T, C] -> r*B subsequences of ceil(T/r) steps
    /// (batch index j*B + b holds steps j, j+r, ...), run, interleaved back.
    fn run(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, c) = x.dim();
        let r = self.rate;
        let td = t.div_ceil(r);
        let mut dil = Array3::<f32>::zeros((r * b, td, c));
        for j in 0..r {
            for k in 0..td {
                let src = k * r + j;
                if src < t {
                    dil.slice_axis_mut(Axis(0), Slice::from(j * b..(j + 1) * b))
                        .index_axis_mut(Axis(1), k)
                        .assign(&x.index_axis(Axis(1), src));
                }
            }
        }
        let y = self.cell.run(dil.view())?;
        let hid = y.dim().2;
        let mut out = Array3::<f32>::zeros((b, t, hid));
        for step in 0..t {
            let (j, k) = (step % r, step / r);
            out.index_axis_mut(Axis(1), step).assign(
                &y.slice_axis(Axis(0), Slice::from(j * b..(j + 1) * b))
                    .index_axis(Axis(1), k),
            );
        }
        Ok(out)
    }
}

fn dilation_groups(dilations: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, BuildError> {
    if dilations.iter().flatten().any(|d| *d == 0) {
        return Err(invalid!(
            "dilations must be a list of lists of positive integers"
        ));
    }
    Ok(dilations.to_vec())
}

impl Model for DilatedRnn {
    const CLASS: &'static str = "DilatedRNN";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["context_size"];
    type Hparams = DilatedRnnHparams;
    type Net = DilatedRnn;

    fn load(
        spec: &ModelSpec,
        hp: DilatedRnnHparams,
        store: &TensorStore,
    ) -> Result<DilatedRnn, BuildError> {
        let kind = hp.cell_type.as_str().to_string();
        let hidden = hp.encoder_hidden_size;
        let exog = ExogWidths::of(spec);
        let mut groups = Vec::new();
        for (g, rates) in dilation_groups(&hp.dilations)?.into_iter().enumerate() {
            let mut layers = Vec::with_capacity(rates.len());
            for (i, rate) in rates.into_iter().enumerate() {
                let input = if g == 0 && i == 0 {
                    exog.channels()
                } else {
                    hidden
                };
                let p = format!("rnn_stack.{g}.cells.{i}");
                layers.push(DilatedLayer {
                    cell: Cell::load(store, &p, &kind, input, hidden)?,
                    rate,
                });
            }
            if layers.is_empty() {
                return Err(invalid!("an empty dilation group"));
            }
            groups.push(layers);
        }
        if groups.is_empty() {
            return Err(invalid!("dilations list no layer"));
        }
        Ok(DilatedRnn {
            groups,
            head: ContextDecoder::load(
                store,
                spec,
                DecoderShape {
                    hidden_size: hp.decoder_hidden_size,
                    layers: hp.decoder_layers,
                    activation: &hp.decoder_activation,
                },
                hidden,
            )?,
        })
    }
}

impl Forecaster for DilatedRnn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (inp, mut x) = self.head.window(batch)?;
        for (g, group) in self.groups.iter().enumerate() {
            let mut out: Option<Array3<f32>> = None;
            for layer in group {
                out = Some(layer.run(out.as_ref().map_or(x.view(), |a| a.view()))?);
            }
            let mut out = out.ok_or_else(|| shape!("an empty dilation group"))?;
            if g > 0 {
                out += &x;
            }
            x = out;
        }
        self.head.forward(x.view(), inp.futr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cell: &str) -> ModelSpec {
        let hp = serde_json::json!({
            "h": 2, "input_size": 4, "loss": {"cls": "MAE"},
            "cell_type": cell, "dilations": [[1, 2]], "encoder_hidden_size": 4,
        });
        ModelSpec::from_hparams("DilatedRNN", hp).unwrap()
    }

    #[test]
    fn cells_that_do_not_run_in_3_3_0_are_refused_by_name() {
        for (cell, why) in [("AttentiveLSTM", "3.3.0"), ("Transformer", "not supported")] {
            match super::super::build(&spec(cell), &TensorStore::default()) {
                Err(BuildError::Unsupported(m)) => assert!(m.contains(why), "{m}"),
                Err(m) => panic!("{cell}: invalid {m}"),
                Ok(_) => panic!("{cell} loaded without tensors"),
            }
        }
        // A supported cell without its tensors is an invalid file, not an unsupported one.
        assert!(matches!(
            super::super::build(&spec("GRU"), &TensorStore::default()),
            Err(BuildError::Tensor(crate::tensors::TensorError::Missing(_)))
        ));
    }
}
