//! Kolmogorov-Arnold layers: KAN's `KANLinear` (neuralforecast/models/kan.py),
//! a SiLU base path plus learned B-spline curves on the stored grid, with the
//! Cox-de Boor recursion evaluated in torch's order and f32; and RMoK's
//! experts (neuralforecast/models/rmok.py): `TaylorKANLayer` (polynomials),
//! `JacobiKANLayer` (Jacobi polynomials of tanh(x)) and `WaveKANLayer`
//! (wavelets, then an eval-mode BatchNorm1d).

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::batch_norm::BatchNorm1d;
use crate::nn::linear::Linear;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView1, ArrayView2, Axis};
use std::f32::consts::PI;

#[derive(Debug, Clone)]
pub struct KanLinear {
    /// [in_features, grid points]: the `grid` buffer (knots per input).
    grid: Array2<f32>,
    spline_order: usize,
    /// `base_weight`, no bias.
    base: Linear,
    /// `spline_weight * spline_scaler` flattened to [out, in * n_bases].
    spline: Linear,
}

impl KanLinear {
    /// `<prefix>.{grid, base_weight, spline_weight}` and, when
    /// `standalone_scale`, `<prefix>.spline_scaler`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        grid_size: usize,
        spline_order: usize,
        standalone_scale: bool,
    ) -> Result<KanLinear, BuildError> {
        if grid_size == 0 {
            return Err(invalid!("{prefix}: grid_size must be at least 1"));
        }
        let n_bases = grid_size + spline_order;
        let points = grid_size + 2 * spline_order + 1;
        let grid = store.array2(&format!("{prefix}.grid"), in_features, points)?;
        let w = store.array_dyn(
            &format!("{prefix}.spline_weight"),
            &[out_features, in_features, n_bases],
        )?;
        let mut w = w
            .into_shape_with_order((out_features, in_features * n_bases))
            .map_err(|e| invalid!("{prefix}.spline_weight: {e}"))?;
        if standalone_scale {
            // `scaled_spline_weight`, the same f32 products torch forms per call.
            let s = store.array2(
                &format!("{prefix}.spline_scaler"),
                out_features,
                in_features,
            )?;
            for ((o, k), v) in w.indexed_iter_mut() {
                *v *= s[[o, k / n_bases]];
            }
        }
        Ok(KanLinear {
            grid,
            spline_order,
            base: Linear::from_weight(
                store.array2(&format!("{prefix}.base_weight"), out_features, in_features)?,
                None,
            )?,
            spline: Linear::from_weight(w, None)?,
        })
    }

    /// The B-spline bases of one input value on its knots: `b_splines`.
    fn bases(&self, x: f32, knots: ArrayView1<f32>, out: &mut Vec<f32>) {
        let g = knots;
        out.clear();
        out.extend((0..g.len() - 1).map(|j| f32::from(u8::from(x >= g[j] && x < g[j + 1]))));
        for k in 1..=self.spline_order {
            for j in 0..out.len() - 1 {
                out[j] = (x - g[j]) / (g[j + k] - g[j]) * out[j]
                    + (g[j + k + 1] - x) / (g[j + k + 1] - g[j + 1]) * out[j + 1];
            }
            out.pop();
        }
    }

    /// x [batch, in] -> [batch, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let (b, i) = x.dim();
        if i != self.grid.nrows() {
            return Err(shape!(
                "KAN layer expects {} inputs, got {i}",
                self.grid.nrows()
            ));
        }
        let mut act = x.to_owned();
        Activation::SiLU.apply_inplace(&mut act);
        let n_bases = self.grid.ncols() - 1 - self.spline_order;
        let mut bases = Array2::<f32>::zeros((b, i * n_bases));
        let mut buf = Vec::with_capacity(self.grid.ncols());
        for (r, row) in x.rows().into_iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                self.bases(*v, self.grid.row(c), &mut buf);
                for (k, basis) in buf.iter().enumerate() {
                    bases[[r, c * n_bases + k]] = *basis;
                }
            }
        }
        Ok(self.base.forward(act.view())? + self.spline.forward(bases.view())?)
    }
}

/// `x ** i` as torch's `pow(Tensor, Scalar)` computes it: products for the
/// exponents it special-cases, `pow` otherwise.
fn powi_like_torch(x: f32, i: usize) -> f32 {
    match i {
        0 => 1.0,
        1 => x,
        2 => x * x,
        3 => x * x * x,
        _ => x.powf(i as f32),
    }
}

fn check_width(x: &ArrayView2<f32>, want: usize, what: &str) -> Result<(), ForwardError> {
    if x.ncols() != want {
        return Err(shape!("{what} expects {want} inputs, got {}", x.ncols()));
    }
    Ok(())
}

/// `TaylorKANLayer`: y[o] = Σ_k Σ_i coeffs[o, i, k] · x[i]^k + bias[o].
#[derive(Debug, Clone)]
pub struct TaylorKan {
    /// [out, in, order]
    coeffs: Array3<f32>,
    bias: Option<Vec<f32>>,
}

impl TaylorKan {
    /// `<prefix>.coeffs` [out, in, order] and, when `bias`, `<prefix>.bias` [1, out].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        output: usize,
        order: usize,
        bias: bool,
    ) -> Result<TaylorKan, BuildError> {
        let coeffs = store
            .array_dyn(&format!("{prefix}.coeffs"), &[output, input, order])?
            .into_dimensionality()
            .map_err(|e| invalid!("{prefix}.coeffs: {e}"))?;
        let bias = bias
            .then(|| {
                store
                    .get(&format!("{prefix}.bias"), &[1, output])
                    .map(|t| t.data.clone())
            })
            .transpose()?;
        Ok(TaylorKan { coeffs, bias })
    }

    /// x [batch, in] -> [batch, out]; one term per power, summed over the inputs.
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let (out, input, order) = self.coeffs.dim();
        check_width(&x, input, "Taylor KAN layer")?;
        let mut y = Array2::<f32>::zeros((x.nrows(), out));
        for (row, mut dst) in x.rows().into_iter().zip(y.rows_mut()) {
            for k in 0..order {
                let powers: Vec<f32> = row.iter().map(|v| powi_like_torch(*v, k)).collect();
                for (o, d) in dst.iter_mut().enumerate() {
                    let c = self.coeffs.index_axis(Axis(0), o);
                    *d += powers
                        .iter()
                        .enumerate()
                        .fold(0f32, |s, (i, p)| s + p * c[[i, k]]);
                }
            }
            if let Some(b) = &self.bias {
                dst.iter_mut().zip(b).for_each(|(d, b)| *d += b);
            }
        }
        Ok(y)
    }
}

/// `JacobiKANLayer` (a = b = 1): Jacobi polynomials P_0..P_degree of tanh(x),
/// weighted by `jacobi_coeffs` [in, out, degree + 1].
#[derive(Debug, Clone)]
pub struct JacobiKan {
    degree: usize,
    /// [in * (degree + 1), out], row i * (degree + 1) + d.
    weight: Linear,
}

impl JacobiKan {
    const A: f64 = 1.0;
    const B: f64 = 1.0;

    pub fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        output: usize,
        degree: usize,
    ) -> Result<JacobiKan, BuildError> {
        let c = store.array_dyn(
            &format!("{prefix}.jacobi_coeffs"),
            &[input, output, degree + 1],
        )?;
        let k = degree + 1;
        let w = Array2::from_shape_fn((output, input * k), |(o, r)| c[[r / k, o, r % k]]);
        Ok(JacobiKan {
            degree,
            weight: Linear::from_weight(w, None)?,
        })
    }

    /// The polynomials of one input, in torch's f32 recurrence (the f64
    /// coefficients rounded to f32 as torch's scalar arithmetic does).
    fn polynomials(&self, x: f32, out: &mut Vec<f32>) {
        let (a, b) = (Self::A, Self::B);
        out.clear();
        out.push(1.0);
        if self.degree > 0 {
            out.push(((a - b) as f32 + (a + b + 2.0) as f32 * x) / 2.0);
        }
        for i in 2..=self.degree {
            let i = i as f64;
            let k = (2.0 * i + a + b) * (2.0 * i + a + b - 1.0) / (2.0 * i * (i + a + b));
            let k1 = (2.0 * i + a + b - 1.0) * (a * a - b * b)
                / (2.0 * i * (i + a + b) * (2.0 * i + a + b - 2.0));
            let k2 = (i + a - 1.0) * (i + b - 1.0) * (2.0 * i + a + b)
                / (i * (i + a + b) * (2.0 * i + a + b - 2.0));
            let n = out.len();
            let next = (k as f32 * x + k1 as f32) * out[n - 1] - k2 as f32 * out[n - 2];
            out.push(next);
        }
    }

    /// x [batch, in] -> [batch, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let k = self.degree + 1;
        check_width(&x, self.weight.in_features() / k, "Jacobi KAN layer")?;
        let mut basis = Array2::<f32>::zeros((x.nrows(), x.ncols() * k));
        let mut buf = Vec::with_capacity(k);
        for (row, mut dst) in x.rows().into_iter().zip(basis.rows_mut()) {
            for (i, v) in row.iter().enumerate() {
                self.polynomials(v.tanh(), &mut buf);
                for (d, p) in buf.iter().enumerate() {
                    dst[i * k + d] = *p;
                }
            }
        }
        self.weight.forward(basis.view())
    }
}

/// `wavelet_type` of a `WaveKANLayer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wavelet {
    MexicanHat,
    Morlet,
    Dog,
    Meyer,
    Shannon,
}

impl Wavelet {
    pub fn parse(name: &str) -> Result<Wavelet, BuildError> {
        Ok(match name {
            "mexican_hat" => Wavelet::MexicanHat,
            "morlet" => Wavelet::Morlet,
            "dog" => Wavelet::Dog,
            "meyer" => Wavelet::Meyer,
            "shannon" => Wavelet::Shannon,
            other => return Err(invalid!("wavelet_function '{other}' is not supported")),
        })
    }

    /// The wavelet at a scaled input `s`; `window` is Shannon's Hamming weight.
    fn at(self, s: f32, window: f32) -> f32 {
        let gauss = |s: f32| (-0.5 * (s * s)).exp();
        match self {
            Wavelet::MexicanHat => {
                let c = (2.0 / (3f64.sqrt() * std::f64::consts::PI.powf(0.25))) as f32;
                c * (s * s - 1.0) * gauss(s)
            }
            Wavelet::Morlet => gauss(s) * (5.0 * s).cos(),
            Wavelet::Dog => -s * gauss(s),
            Wavelet::Meyer => {
                let v = s.abs();
                let aux = if v <= 0.5 {
                    1.0
                } else if v >= 1.0 {
                    0.0
                } else {
                    let t = 2.0 * v - 1.0;
                    let nu = t.powf(4.0) * (35.0 - 84.0 * t + 70.0 * (t * t) - 20.0 * (t * t * t));
                    (PI / 2.0 * nu).cos()
                };
                (PI * v).sin() * aux
            }
            Wavelet::Shannon => {
                // torch.sinc(s / pi) * window.
                let t = s / PI;
                let sinc = if t == 0.0 {
                    1.0
                } else {
                    let p = PI * t;
                    p.sin() / p
                };
                sinc * window
            }
        }
    }
}

/// `WaveKANLayer`: Σ_i w[o, i] · ψ((x[i] - translation[o, i]) / scale[o, i]),
/// then the BatchNorm1d (`with_bn`, the default) in eval mode.
#[derive(Debug, Clone)]
pub struct WaveKan {
    wavelet: Wavelet,
    /// [out, in] each.
    scale: Array2<f32>,
    translation: Array2<f32>,
    weights: Array2<f32>,
    /// `torch.hamming_window(in, periodic=False)` for Shannon.
    window: Vec<f32>,
    bn: Option<BatchNorm1d>,
}

impl WaveKan {
    /// `<prefix>.{scale, translation, wavelet_weights}` [out, in] and `<prefix>.bn`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        input: usize,
        output: usize,
        wavelet: Wavelet,
        with_bn: bool,
    ) -> Result<WaveKan, BuildError> {
        let get = |name: &str| store.array2(&format!("{prefix}.{name}"), output, input);
        // arange * (2π / (n - 1)), cos, * -0.46, + 0.54, in f32 (torch's order).
        let step = (2.0 * std::f64::consts::PI / (input as f64 - 1.0)) as f32;
        let window = (0..input)
            .map(|n| {
                if input == 1 {
                    1.0
                } else {
                    (n as f32 * step).cos() * -0.46 + 0.54
                }
            })
            .collect();
        Ok(WaveKan {
            wavelet,
            scale: get("scale")?,
            translation: get("translation")?,
            weights: get("wavelet_weights")?,
            window,
            bn: with_bn
                .then(|| BatchNorm1d::load(store, &format!("{prefix}.bn"), output, 1e-5))
                .transpose()?,
        })
    }

    /// x [batch, in] -> [batch, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let (out, input) = self.weights.dim();
        check_width(&x, input, "wavelet KAN layer")?;
        let mut y = Array2::<f32>::zeros((x.nrows(), out));
        for (row, mut dst) in x.rows().into_iter().zip(y.rows_mut()) {
            for (o, d) in dst.iter_mut().enumerate() {
                *d = (0..input).fold(0f32, |acc, i| {
                    let s = (row[i] - self.translation[[o, i]]) / self.scale[[o, i]];
                    acc + self.wavelet.at(s, self.window[i]) * self.weights[[o, i]]
                });
            }
            if let Some(bn) = &self.bn {
                let r = dst
                    .as_slice_mut()
                    .ok_or_else(|| shape!("wavelet output is not contiguous"))?;
                bn.forward_inplace(r)?;
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn layer(grid: Array2<f32>, order: usize) -> KanLinear {
        let n = grid.ncols() - 1 - order;
        KanLinear {
            grid,
            spline_order: order,
            base: Linear::from_weight(array![[0.0f32]], None).unwrap(),
            spline: Linear::from_weight(Array2::ones((1, n)), None).unwrap(),
        }
    }

    #[test]
    fn bsplines_match_hand_computed_values() {
        let knots = array![[-1.0f32, 0.0, 1.0, 2.0]];
        let mut out = Vec::new();
        // Order 1: hat functions, each 0.5 half-way between knots.
        layer(knots.clone(), 1).bases(0.5, knots.row(0), &mut out);
        assert_eq!(out, vec![0.5, 0.5]);
        // Order 2: the uniform quadratic B-spline peaks at 3/4 mid-support.
        layer(knots.clone(), 2).bases(0.5, knots.row(0), &mut out);
        assert_eq!(out, vec![0.75]);
        // Outside the grid every basis is 0.
        layer(knots.clone(), 1).bases(2.5, knots.row(0), &mut out);
        assert_eq!(out, vec![0.0, 0.0]);
    }

    #[test]
    fn forward_adds_the_silu_base_and_the_spline_sum() {
        let k = layer(array![[-1.0f32, 0.0, 1.0, 2.0]], 1);
        // base weight 0; the spline weights are all 1, so a partition of unity inside.
        let y = k.forward(array![[0.25f32]].view()).unwrap();
        assert_eq!(y[[0, 0]], 1.0);
        assert!(k.forward(array![[0.25f32, 1.0]].view()).is_err());
    }
}

#[cfg(test)]
mod expert_tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn taylor_sums_weighted_powers() {
        // out 1, in 2, order 3: coeffs c[0, i, k] = (i + 1) * 10^k.
        let coeffs = Array3::from_shape_fn((1, 2, 3), |(_, i, k)| {
            (i as f32 + 1.0) * 10f32.powi(k as i32)
        });
        let t = TaylorKan {
            coeffs,
            bias: Some(vec![0.5]),
        };
        let y = t.forward(array![[2.0f32, -1.0]].view()).unwrap();
        // x0 = 2: 1 + 20 + 400; x1 = -1: 2 - 20 + 200; + 0.5.
        assert_eq!(y[[0, 0]], 421.0 + 182.0 + 0.5);
    }

    #[test]
    fn jacobi_polynomials_match_closed_forms() {
        // a = b = 1: P1 = 2x, P2 = (15x² - 3) / 4 (Gegenbauer-type closed form).
        let j = JacobiKan {
            degree: 2,
            weight: Linear::from_weight(Array2::zeros((1, 3)), None).unwrap(),
        };
        let mut p = Vec::new();
        j.polynomials(0.5, &mut p);
        assert_eq!(p[0], 1.0);
        assert_eq!(p[1], 1.0);
        assert!((p[2] - (15.0 * 0.25 - 3.0) / 4.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn wavelets_match_their_formulas() {
        let c = 2.0 / (3f32.sqrt() * PI.powf(0.25));
        assert!((Wavelet::MexicanHat.at(0.0, 1.0) + c).abs() < 1e-6);
        assert_eq!(Wavelet::Dog.at(0.0, 1.0), 0.0);
        assert_eq!(Wavelet::Morlet.at(0.0, 1.0), 1.0);
        // Meyer: sin(pi v) for v <= 1/2, 0 from 1 on.
        assert!((Wavelet::Meyer.at(0.5, 1.0) - 1.0).abs() < 1e-6);
        assert_eq!(Wavelet::Meyer.at(1.5, 1.0), 0.0);
        assert_eq!(Wavelet::Shannon.at(0.0, 0.25), 0.25);
        assert!(Wavelet::parse("haar").is_err());
    }
}
