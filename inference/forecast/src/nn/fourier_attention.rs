//! FEDformer's frequency-enhanced blocks (neuralforecast/models/fedformer.py),
//! on the exact DFT of `fft.rs`:
//!
//! - `FourierBlock` (self-attention): each head's channels are rfft'd along
//!   time, the selected modes mixed across channels by learned complex
//!   weights [heads, e, e, modes] (the result for the i-th selected mode goes
//!   to bin i, as 3.3.0 writes it), and irfft'd back; keys and values unused.
//! - `FourierCrossAttention`: the selected modes of queries and keys,
//!   `tanh(q·k)` (complex tanh, no conjugate) weighting the key modes, the
//!   learned weights, bins placed back at the query modes, scaled by
//!   1/(in * out) and irfft'd.
//!
//! Both return [heads, e, steps] in memory, which `AutoCorrelationLayer`
//! views as [steps, heads * e]; that view is reproduced. The modes are the
//! lowest ones, or a random choice that the saved model does not record:
//! served only when that choice is every mode.

use super::decomp_transformer::Correlation;
use super::fft::{irfft, rfft, Complex};
use crate::forecaster::{shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2};

/// `get_frequency_modes(seq_len, modes, mode_select)`, when it is deterministic.
pub fn frequency_modes(
    seq_len: usize,
    modes: usize,
    mode_select: &str,
) -> Result<Vec<usize>, BuildError> {
    let half = seq_len / 2;
    let m = modes.min(half);
    if mode_select == "random" && m < half {
        return Err(BuildError::Unsupported(format!(
            "mode_select 'random' picks {m} of {half} frequency modes at random when the model is \
             built and does not save them: the loaded model's forecasts are random (served with \
             mode_select 'low' or modes >= {half})"
        )));
    }
    Ok((0..m).collect())
}

/// A complex f64 accumulator.
#[derive(Debug, Clone, Copy, Default)]
struct C64 {
    re: f64,
    im: f64,
}

impl C64 {
    fn of(c: Complex) -> C64 {
        C64 {
            re: f64::from(c.re),
            im: f64::from(c.im),
        }
    }

    fn mul_add(&mut self, a: Complex, b: Complex) {
        let (a, b) = (C64::of(a), C64::of(b));
        self.re += a.re * b.re - a.im * b.im;
        self.im += a.re * b.im + a.im * b.re;
    }

    fn round(self) -> Complex {
        Complex {
            re: self.re as f32,
            im: self.im as f32,
        }
    }
}

/// `tanh` of a complex value, (sinh 2a + i sin 2b) / (cosh 2a + cos 2b),
/// computed in f64 and rounded once.
fn ctanh(z: Complex) -> Complex {
    let (a, b) = (f64::from(z.re), f64::from(z.im));
    if a.abs() > 20.0 {
        // cosh overflows long after the real part has saturated at ±1.
        let im = 4.0 * b.sin() * b.cos() * (-2.0 * a.abs()).exp();
        return Complex {
            re: a.signum() as f32,
            im: im as f32,
        };
    }
    let d = (2.0 * a).cosh() + (2.0 * b).cos();
    Complex {
        re: ((2.0 * a).sinh() / d) as f32,
        im: ((2.0 * b).sin() / d) as f32,
    }
}

/// The learned complex weights [heads, e_in, e_out, modes].
#[derive(Debug, Clone)]
struct Weights {
    data: Vec<Complex>,
    e_in: usize,
    e_out: usize,
    modes: usize,
}

impl Weights {
    fn load(
        store: &TensorStore,
        name: &str,
        heads: usize,
        e: usize,
        modes: usize,
    ) -> Result<Weights, BuildError> {
        let t = store.get(name, &[heads, e, e, modes, 2])?;
        Ok(Weights {
            data: t
                .data
                .chunks_exact(2)
                .map(|c| Complex { re: c[0], im: c[1] })
                .collect(),
            e_in: e,
            e_out: e,
            modes,
        })
    }

    fn at(&self, h: usize, i: usize, o: usize, m: usize) -> Complex {
        self.data[((h * self.e_in + i) * self.e_out + o) * self.modes + m]
    }
}

/// The rfft of every channel of x [steps, heads * e]: [channel][bin].
fn spectra(x: ArrayView2<f32>) -> Vec<Vec<Complex>> {
    (0..x.ncols())
        .map(|c| rfft(&x.column(c).to_vec()))
        .collect()
}

/// Channel spectra [heads * e][bins] back to time, laid out as torch's
/// [heads, e, steps] memory viewed as [steps, heads * e].
fn to_steps(spectra: &[Vec<Complex>], steps: usize) -> Array2<f32> {
    let width = spectra.len();
    let flat: Vec<f32> = spectra.iter().flat_map(|s| irfft(s, steps)).collect();
    Array2::from_shape_fn((steps, width), |(l, j)| flat[l * width + j])
}

fn check(q: ArrayView2<f32>, heads: usize, e: usize, index: &[usize]) -> Result<(), ForwardError> {
    if q.ncols() != heads * e {
        return Err(shape!(
            "Fourier block expects {} channels, got {}",
            heads * e,
            q.ncols()
        ));
    }
    let bins = q.nrows() / 2 + 1;
    match index.iter().find(|i| **i >= bins) {
        Some(i) => Err(shape!(
            "frequency mode {i} is past the {bins} bins of {} steps",
            q.nrows()
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
pub struct FourierBlock {
    index: Vec<usize>,
    weights: Weights,
    heads: usize,
}

impl FourierBlock {
    /// `<prefix>.weights1` [heads, e, e, len(index)] (C64).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        heads: usize,
        e: usize,
        index: Vec<usize>,
    ) -> Result<FourierBlock, BuildError> {
        Ok(FourierBlock {
            weights: Weights::load(store, &format!("{prefix}.weights1"), heads, e, index.len())?,
            index,
            heads,
        })
    }
}

impl Correlation for FourierBlock {
    fn correlate(
        &self,
        q: ArrayView2<f32>,
        _k: ArrayView2<f32>,
        _v: ArrayView2<f32>,
        heads: usize,
    ) -> Result<Array2<f32>, ForwardError> {
        let (h_n, e) = (self.heads, self.weights.e_in);
        if heads != h_n {
            return Err(shape!("Fourier block of {h_n} heads run with {heads}"));
        }
        check(q, h_n, e, &self.index)?;
        let steps = q.nrows();
        let x = spectra(q);
        let mut out = vec![vec![Complex::default(); steps / 2 + 1]; h_n * e];
        for h in 0..h_n {
            for (wi, &i) in self.index.iter().enumerate() {
                for o in 0..e {
                    let mut acc = C64::default();
                    for c in 0..e {
                        acc.mul_add(x[h * e + c][i], self.weights.at(h, c, o, wi));
                    }
                    // Bin wi, not i: 3.3.0 writes `out_ft[..., wi]`.
                    out[h * e + o][wi] = acc.round();
                }
            }
        }
        Ok(to_steps(&out, steps))
    }
}

#[derive(Debug, Clone)]
pub struct FourierCrossAttention {
    index_q: Vec<usize>,
    index_kv: Vec<usize>,
    weights: Weights,
    heads: usize,
    /// in_channels * out_channels (hidden²), divided out twice in f32.
    channels: (f32, f32),
}

impl FourierCrossAttention {
    /// `<prefix>.weights1` [heads, e, e, len(index_q)] (C64).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        heads: usize,
        e: usize,
        index_q: Vec<usize>,
        index_kv: Vec<usize>,
    ) -> Result<FourierCrossAttention, BuildError> {
        let hidden = (heads * e) as f32;
        Ok(FourierCrossAttention {
            weights: Weights::load(
                store,
                &format!("{prefix}.weights1"),
                heads,
                e,
                index_q.len(),
            )?,
            index_q,
            index_kv,
            heads,
            channels: (hidden, hidden),
        })
    }
}

impl Correlation for FourierCrossAttention {
    fn correlate(
        &self,
        q: ArrayView2<f32>,
        k: ArrayView2<f32>,
        _v: ArrayView2<f32>,
        heads: usize,
    ) -> Result<Array2<f32>, ForwardError> {
        let (h_n, e) = (self.heads, self.weights.e_in);
        if heads != h_n {
            return Err(shape!(
                "Fourier cross-attention of {h_n} heads run with {heads}"
            ));
        }
        check(q, h_n, e, &self.index_q)?;
        check(k, h_n, e, &self.index_kv)?;
        let steps = q.nrows();
        let (qs, ks) = (spectra(q), spectra(k));
        let (mq, mk) = (self.index_q.len(), self.index_kv.len());
        let mut out = vec![vec![Complex::default(); steps / 2 + 1]; h_n * e];
        for h in 0..h_n {
            let qm = |c: usize, x: usize| qs[h * e + c][self.index_q[x]];
            let km = |c: usize, y: usize| ks[h * e + c][self.index_kv[y]];
            // tanh(Σ_e q[e, x] k[e, y]) [mq, mk].
            let qk: Vec<Complex> = (0..mq * mk)
                .map(|xy| {
                    let mut acc = C64::default();
                    for c in 0..e {
                        acc.mul_add(qm(c, xy / mk), km(c, xy % mk));
                    }
                    ctanh(acc.round())
                })
                .collect();
            // Σ_y qk[x, y] k[e, y] [e, mq].
            let qkv: Vec<Complex> = (0..e * mq)
                .map(|cx| {
                    let (c, x) = (cx / mq, cx % mq);
                    let mut acc = C64::default();
                    for y in 0..mk {
                        acc.mul_add(qk[x * mk + y], km(c, y));
                    }
                    acc.round()
                })
                .collect();
            for x in 0..mq {
                for o in 0..e {
                    let mut acc = C64::default();
                    for c in 0..e {
                        acc.mul_add(qkv[c * mq + x], self.weights.at(h, c, o, x));
                    }
                    let v = acc.round();
                    let (a, b) = self.channels;
                    out[h * e + o][self.index_q[x]] = Complex {
                        re: v.re / a / b,
                        im: v.im / a / b,
                    };
                }
            }
        }
        Ok(to_steps(&out, steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_the_lowest_or_all() {
        assert_eq!(
            frequency_modes(14, 64, "random").ok(),
            Some((0..7).collect())
        );
        assert_eq!(frequency_modes(16, 3, "low").ok(), Some(vec![0, 1, 2]));
        assert!(frequency_modes(16, 3, "random").is_err());
    }

    #[test]
    fn complex_tanh_matches_reference_values() {
        // numpy.tanh(0.5 + 1j) = 1.0428307 + 0.8068774j
        let t = ctanh(Complex { re: 0.5, im: 1.0 });
        assert!((t.re - 1.042_830_7).abs() < 1e-6 && (t.im - 0.806_877_4).abs() < 1e-6);
        let big = ctanh(Complex {
            re: -300.0,
            im: 2.0,
        });
        assert_eq!(big.re, -1.0);
        assert!(big.im.abs() < 1e-30);
    }

    #[test]
    fn a_block_with_one_unit_mode_keeps_the_mean() {
        // One head, one channel, mode 0 with weight 1: only the mean survives.
        let store =
            TensorStore::from_tensors(&[("b.weights1", vec![1, 1, 1, 1, 2], vec![1.0, 0.0])]);
        let block = FourierBlock::load(&store, "b", 1, 1, vec![0]).unwrap();
        let x = Array2::from_shape_vec((4, 1), vec![1.0f32, 2.0, 3.0, 6.0]).unwrap();
        let y = block.correlate(x.view(), x.view(), x.view(), 1).unwrap();
        assert!(y.iter().all(|v| (v - 3.0).abs() < 1e-6), "{y:?}");
    }
}
