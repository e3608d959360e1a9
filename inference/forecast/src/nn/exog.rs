//! The per-step encoder input of NeuralForecast's sequence models (RNN, LSTM,
//! GRU, DilatedRNN, TCN, BiTCN): channels `[y | hist exog | static exog
//! repeated over time | futr exog]`, in that order.

use crate::forecaster::{shape, ForwardError, WindowBatch};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Slice};

/// y [batch, steps]; hist and futr [batch, steps, _] (already cut to `steps`);
/// stat [batch, _]. Returns [batch, steps, 1 + hist + stat + futr].
pub fn step_inputs(
    y: ArrayView2<f32>,
    hist: Option<ArrayView3<f32>>,
    stat: Option<ArrayView2<f32>>,
    futr: Option<ArrayView3<f32>>,
) -> Result<Array3<f32>, ForwardError> {
    let (b, t) = y.dim();
    let nh = hist.map_or(0, |a| a.dim().2);
    let ns = stat.map_or(0, |a| a.ncols());
    let nf = futr.map_or(0, |a| a.dim().2);
    for (name, d) in [
        ("hist", hist.map(|a| a.dim())),
        ("futr", futr.map(|a| a.dim())),
    ] {
        if let Some((db, dt, _)) = d {
            if (db, dt) != (b, t) {
                return Err(shape!(
                    "{name} exogenous block is [{db}, {dt}, _], the window is [{b}, {t}]"
                ));
            }
        }
    }
    if let Some(st) = stat {
        if st.nrows() != b {
            return Err(shape!(
                "static exogenous block has {} rows for {b} windows",
                st.nrows()
            ));
        }
    }
    let mut x = Array3::<f32>::zeros((b, t, 1 + nh + ns + nf));
    x.index_axis_mut(Axis(2), 0).assign(&y);
    if let Some(hx) = hist {
        x.slice_axis_mut(Axis(2), Slice::from(1..1 + nh))
            .assign(&hx);
    }
    if let Some(st) = stat {
        for (i, row) in st.outer_iter().enumerate() {
            x.index_axis_mut(Axis(0), i)
                .slice_axis_mut(Axis(1), Slice::from(1 + nh..1 + nh + ns))
                .assign(
                    &row.broadcast((t, ns))
                        .ok_or_else(|| shape!("static row does not broadcast"))?,
                );
        }
    }
    if let Some(fx) = futr {
        x.slice_axis_mut(Axis(2), Slice::from(1 + nh + ns..))
            .assign(&fx);
    }
    Ok(x)
}

/// Steps `range` of a [batch, time, channels] view (the `[:, a:b]` of torch).
pub fn steps<S: Into<Slice>>(x: ArrayView3<'_, f32>, range: S) -> ArrayView3<'_, f32> {
    let mut x = x;
    x.slice_axis_inplace(Axis(1), range.into());
    x
}

/// A batch's blocks checked against what a model was built for.
pub struct Inputs<'a> {
    /// [batch, window]
    pub y: ArrayView2<'a, f32>,
    /// [batch, window, n_hist]
    pub hist: Option<ArrayView3<'a, f32>>,
    /// [batch, n_stat]
    pub stat: Option<ArrayView2<'a, f32>>,
    /// [batch, window + h, n_futr]
    pub futr: Option<ArrayView3<'a, f32>>,
}

pub use crate::spec::ExogWidths;

impl ExogWidths {
    /// What the network reads: categorical columns count their embedding width.
    pub fn of(spec: &crate::spec::ModelSpec) -> ExogWidths {
        spec.exog_widths()
    }

    /// Channels of `step_inputs`: y plus every exogenous column.
    pub fn channels(&self) -> usize {
        1 + self.hist + self.stat + self.futr
    }
}

fn check_block(
    name: &str,
    got: Option<Vec<usize>>,
    want: Vec<usize>,
    width: usize,
) -> Result<(), ForwardError> {
    match got {
        None if width == 0 => Ok(()),
        None => Err(shape!("the model needs {width} {name} exogenous columns")),
        Some(_) if width == 0 => Err(shape!("the model takes no {name} exogenous variables")),
        Some(g) if g == want => Ok(()),
        Some(g) => Err(shape!(
            "{name} exogenous block is {g:?}, the model needs {want:?}"
        )),
    }
}

impl<'a> Inputs<'a> {
    pub fn check(
        batch: &'a WindowBatch,
        window: usize,
        h: usize,
        w: ExogWidths,
    ) -> Result<Inputs<'a>, ForwardError> {
        let (b, l) = batch.insample_y.dim();
        if l != window {
            return Err(shape!("window has {l} steps, the model reads {window}"));
        }
        check_block(
            "hist",
            batch.hist_exog.as_ref().map(|a| a.shape().to_vec()),
            vec![b, l, w.hist],
            w.hist,
        )?;
        check_block(
            "static",
            batch.stat_exog.as_ref().map(|a| a.shape().to_vec()),
            vec![b, w.stat],
            w.stat,
        )?;
        check_block(
            "futr",
            batch.futr_exog.as_ref().map(|a| a.shape().to_vec()),
            vec![b, l + h, w.futr],
            w.futr,
        )?;
        Ok(Inputs {
            y: batch.insample_y.view(),
            hist: batch.hist_exog.as_ref().map(|a| a.view()),
            stat: batch.stat_exog.as_ref().map(|a| a.view()),
            futr: batch.futr_exog.as_ref().map(|a| a.view()),
        })
    }

    /// The encoder input over the window, `[y | hist | stat | futr[:L]]`,
    /// y zeroed for a model trained with `exclude_insample_y`.
    pub fn window_steps(&self, exclude_insample_y: bool) -> Result<Array3<f32>, ForwardError> {
        let zeros;
        let y = if exclude_insample_y {
            zeros = Array2::<f32>::zeros(self.y.raw_dim());
            zeros.view()
        } else {
            self.y
        };
        let l = self.y.ncols();
        step_inputs(y, self.hist, self.stat, self.futr.map(|f| steps(f, ..l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn channels_in_neuralforecast_order() {
        let y = array![[1.0f32, 2.0]];
        let hist = array![[[10.0f32], [20.0]]];
        let stat = array![[7.0f32, 8.0]];
        let futr = array![[[-1.0f32], [-2.0]]];
        let x = step_inputs(
            y.view(),
            Some(hist.view()),
            Some(stat.view()),
            Some(futr.view()),
        )
        .unwrap();
        assert_eq!(
            x,
            array![[[1.0f32, 10.0, 7.0, 8.0, -1.0], [2.0, 20.0, 7.0, 8.0, -2.0]]]
        );
        let short = array![[[-1.0f32]]];
        assert!(step_inputs(y.view(), None, None, Some(short.view())).is_err());
    }
}
