//! StemGNN (neuralforecast/models/stemgnn.py) for one multivariate window.
//! A GRU runs over the series (each series' window is one step) and a
//! self-attention of its outputs gives a graph; its normalised Laplacian's
//! Chebyshev polynomials (orders 0-3) filter the window. Two stock blocks
//! each take the DFT over the four orders, pass real and imaginary parts
//! through gated linear units, invert it, apply the learned graph
//! convolution and emit a forecast (the first also a backcast, the second
//! block's input); the summed forecasts go through a two-layer head to
//! `h * outputs` per series.

use super::{
    check_series, insample_y, n_series, require_no_exog, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::{sigmoid, Activation};
use crate::nn::attention::softmax_inplace;
use crate::nn::feed_forward::FeedForward;
use crate::nn::fft::{fft, irfft, Complex};
use crate::nn::linear::Linear;
use crate::nn::recurrent::{CellKind, LayerShape, RecurrentLayer};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::Deserialize;

/// Chebyshev orders of the graph filter (`3 + 1` in the weight shape).
const ORDERS: usize = 4;

/// StemGNN's `GLU`: left(x) · sigmoid(right(x)).
struct Glu {
    left: Linear,
    right: Linear,
}

impl Glu {
    fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        output: usize,
    ) -> Result<Glu, BuildError> {
        let lin =
            |side: &str| Linear::load(store, &format!("{prefix}.{side}"), input, output, true);
        Ok(Glu {
            left: lin("linear_left")?,
            right: lin("linear_right")?,
        })
    }

    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = self.left.forward(x)?;
        y.zip_mut_with(&self.right.forward(x)?, |l, r| *l *= sigmoid(*r));
        Ok(y)
    }
}

/// `StockBlockLayer`.
struct StockBlock {
    /// Per order [m * L, m * L].
    weight: Vec<Array2<f32>>,
    /// real, imaginary, real, imaginary, ...
    glus: Vec<Glu>,
    forecast: Linear,
    forecast_result: Linear,
    /// `backcast` and `backcast_short_cut` (first block only).
    backcast: Option<(Linear, Linear)>,
    time_step: usize,
}

impl StockBlock {
    fn load(
        store: &TensorStore,
        prefix: &str,
        time_step: usize,
        multi: usize,
        first: bool,
    ) -> Result<StockBlock, BuildError> {
        let (l, ml) = (time_step, multi * time_step);
        let w = store.array_dyn(&format!("{prefix}.weight"), &[1, ORDERS, 1, ml, ml])?;
        let weight = (0..ORDERS)
            .map(|k| Array2::from_shape_fn((ml, ml), |(i, j)| w[[0, k, 0, i, j]]))
            .collect();
        let glus = (0..6)
            .map(|i| {
                let input = if i < 2 { ORDERS * l } else { ORDERS * ml };
                Glu::load(store, &format!("{prefix}.GLUs.{i}"), input, ORDERS * ml)
            })
            .collect::<Result<_, _>>()?;
        let lin = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), i, o, true)
        };
        Ok(StockBlock {
            weight,
            glus,
            forecast: lin("forecast", ml, ml)?,
            forecast_result: lin("forecast_result", ml, l)?,
            backcast: first
                .then(|| {
                    Ok::<_, BuildError>((lin("backcast", ml, l)?, lin("backcast_short_cut", l, l)?))
                })
                .transpose()?,
            time_step,
        })
    }

    /// x [series, L] and the Chebyshev terms -> (forecast [series, L], backcast).
    fn forward(
        &self,
        x: ArrayView2<f32>,
        cheb: &[Array2<f32>],
    ) -> Result<(Array2<f32>, Option<Array2<f32>>), ForwardError> {
        let (n, l) = x.dim();
        if l != self.time_step {
            return Err(shape!(
                "stock block expects {} steps, got {l}",
                self.time_step
            ));
        }
        let gfted: Vec<Array2<f32>> = cheb.iter().map(|c| c.dot(&x)).collect();
        // DFT over the orders for every (series, step): rows [series, order * L].
        let mut real = Array2::<f32>::zeros((n, ORDERS * l));
        let mut imag = Array2::<f32>::zeros((n, ORDERS * l));
        for s in 0..n {
            for t in 0..l {
                let seq: Vec<Complex> = gfted
                    .iter()
                    .map(|g| Complex {
                        re: g[[s, t]],
                        im: 0.0,
                    })
                    .collect();
                for (k, v) in fft(&seq).into_iter().enumerate() {
                    real[[s, k * l + t]] = v.re;
                    imag[[s, k * l + t]] = v.im;
                }
            }
        }
        for pair in self.glus.chunks_exact(2) {
            real = pair[0].forward(real.view())?;
            imag = pair[1].forward(imag.view())?;
        }
        // Back over the orders: iffted[k] [series, m * L].
        let ml = real.ncols() / ORDERS;
        let mut iffted = vec![Array2::<f32>::zeros((n, ml)); ORDERS];
        for s in 0..n {
            for j in 0..ml {
                let spec: Vec<Complex> = (0..ORDERS)
                    .map(|k| Complex {
                        re: real[[s, k * ml + j]],
                        im: imag[[s, k * ml + j]],
                    })
                    .collect();
                for (k, v) in irfft(&spec, ORDERS).into_iter().enumerate() {
                    iffted[k][[s, j]] = v;
                }
            }
        }
        let mut igfted = iffted[0].dot(&self.weight[0]);
        for (f, w) in iffted.iter().zip(&self.weight).skip(1) {
            igfted = igfted + f.dot(w);
        }
        let mut source = self.forecast.forward(igfted.view())?;
        source.mapv_inplace(sigmoid);
        let forecast = self.forecast_result.forward(source.view())?;
        let backcast = match &self.backcast {
            Some((back, short)) => {
                let mut b = back.forward(igfted.view())? - short.forward(x)?;
                b.mapv_inplace(sigmoid);
                Some(b)
            }
            None => None,
        };
        Ok((forecast, backcast))
    }
}

/// StemGNN's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StemGnnHparams {
    pub leaky_rate: f64,
    pub n_stacks: usize,
    pub multi_layer: usize,
}

impl Default for StemGnnHparams {
    fn default() -> Self {
        StemGnnHparams {
            leaky_rate: 0.2,
            n_stacks: 2,
            multi_layer: 5,
        }
    }
}

pub struct StemGnn {
    gru: RecurrentLayer,
    weight_key: Vec<f32>,
    weight_query: Vec<f32>,
    leaky_rate: f32,
    blocks: [StockBlock; 2],
    fc: FeedForward,
    n_series: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for StemGnn {
    const CLASS: &'static str = "StemGNN";
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout_rate"];
    type Hparams = StemGnnHparams;
    type Net = StemGnn;

    fn load(
        spec: &ModelSpec,
        hp: StemGnnHparams,
        store: &TensorStore,
    ) -> Result<StemGnn, BuildError> {
        require_no_exog(spec)?;
        let n = n_series(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        if hp.n_stacks != 2 {
            return Err(invalid!("StemGNN has exactly two stacks"));
        }
        let multi = hp.multi_layer;
        let leaky_rate = hp.leaky_rate as f32;
        let shape = LayerShape {
            input: l,
            hidden: n,
            proj: 0,
            bias: true,
        };
        let vector = |name: &str| -> Result<Vec<f32>, BuildError> {
            Ok(store.get(name, &[n, 1])?.data.clone())
        };
        Ok(StemGnn {
            gru: RecurrentLayer::load(store, "GRU", "_l0", CellKind::Gru, shape)?,
            weight_key: vector("weight_key")?,
            weight_query: vector("weight_query")?,
            leaky_rate,
            blocks: [
                StockBlock::load(store, "stock_block.0", l, multi, true)?,
                StockBlock::load(store, "stock_block.1", l, multi, false)?,
            ],
            fc: FeedForward::load(
                store,
                "fc",
                (0, 2),
                (l, l, h * outputs),
                Activation::LeakyReLU,
            )?,
            n_series: n,
            h,
            outputs,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl StemGnn {
    /// `latent_correlation_layer`: the Chebyshev terms [0, L, 2L² - 0, 2L·T2 - L]
    /// of the normalised Laplacian of the learned graph.
    fn graph(&self, x: ArrayView2<f32>) -> Result<Vec<Array2<f32>>, ForwardError> {
        let n = self.n_series;
        // The series are the GRU's steps: [1, series, L] -> [series, hidden = series].
        let seq = x.insert_axis(Axis(0));
        let out = self.gru.run(seq, &mut self.gru.zero_state(1))?;
        let out = out.index_axis(Axis(0), 0);
        let proj = |w: &[f32]| -> Vec<f32> {
            (0..n)
                .map(|u| (0..n).fold(0f32, |s, i| s + out[[i, u]] * w[i]))
                .collect()
        };
        let (key, query) = (proj(&self.weight_key), proj(&self.weight_query));
        let mut att = Array2::from_shape_fn((n, n), |(u, v)| {
            let d = key[u] + query[v];
            if d > 0.0 {
                d
            } else {
                d * self.leaky_rate
            }
        });
        for mut row in att.rows_mut() {
            softmax_inplace(
                row.as_slice_mut()
                    .ok_or_else(|| shape!("graph attention is not contiguous"))?,
            );
        }
        let degree: Vec<f32> = att.rows().into_iter().map(|r| r.sum()).collect();
        let sym = (&att + &att.t()).mapv(|v| 0.5 * v);
        let d_hat: Vec<f32> = degree.iter().map(|d| 1.0 / (d.sqrt() + 1e-7)).collect();
        let lap = Array2::from_shape_fn((n, n), |(i, j)| {
            let m = if i == j {
                degree[i] - sym[[i, j]]
            } else {
                -sym[[i, j]]
            };
            d_hat[i] * (m * d_hat[j])
        });
        let t2 = lap.dot(&lap).mapv(|v| 2.0 * v);
        let t3 = lap.dot(&t2).mapv(|v| 2.0 * v) - &lap;
        Ok(vec![Array2::zeros((n, n)), lap, t2, t3])
    }
}

impl Forecaster for StemGnn {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        // Rows [series, L].
        let x = insample_y(batch, self.exclude_insample_y);
        let cheb = self.graph(x.view())?;
        let (f0, back) = self.blocks[0].forward(x.view(), &cheb)?;
        let back = back.ok_or_else(|| shape!("the first stock block has no backcast"))?;
        let (f1, _) = self.blocks[1].forward(back.view(), &cheb)?;
        let y = self.fc.forward((f0 + f1).view())?;
        series_rows(
            &y.t().as_standard_layout().into_owned(),
            self.h,
            n,
            self.outputs,
        )
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
