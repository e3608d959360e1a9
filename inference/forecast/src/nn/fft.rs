//! Discrete Fourier transforms with `torch.fft`'s conventions (no
//! normalisation forward, 1/n inverse), for the axes the models transform
//! (Autoformer's auto-correlation, FEDformer's Fourier blocks, TimeMixer's
//! `dft_decomp`, TimesNet's period search, StemGNN's spectral cell).
//! rustfft in f64 (any length: mixed radix, Bluestein for large primes),
//! rounded once to f32, so results are within an ulp or so of torch's f32
//! pocketfft. Plans are cached per thread and length.

use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;
use std::cell::RefCell;

thread_local! {
    static PLANNER: RefCell<FftPlanner<f64>> = RefCell::new(FftPlanner::new());
}

/// In-place unnormalised DFT (forward: e^{-2πikt/n}; inverse: e^{+2πikt/n}).
fn transform(buf: &mut [Complex64], inverse: bool) {
    if buf.is_empty() {
        return;
    }
    let plan = PLANNER.with(|p| {
        let mut p = p.borrow_mut();
        if inverse {
            p.plan_fft_inverse(buf.len())
        } else {
            p.plan_fft_forward(buf.len())
        }
    });
    plan.process(buf);
}

fn to_f32(v: Complex64) -> Complex {
    Complex {
        re: v.re as f32,
        im: v.im as f32,
    }
}

/// A complex f32 value (torch's complex64 element).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    pub re: f32,
    pub im: f32,
}

impl Complex {
    /// `abs()` of a complex tensor: hypot(re, im).
    pub fn abs(self) -> f32 {
        self.re.hypot(self.im)
    }
}

/// `torch.fft.fft` of a complex sequence: X[k] = Σ x[t]·e^{-2πikt/n}.
pub fn fft(x: &[Complex]) -> Vec<Complex> {
    let mut buf: Vec<Complex64> = x
        .iter()
        .map(|v| Complex64::new(f64::from(v.re), f64::from(v.im)))
        .collect();
    transform(&mut buf, false);
    buf.into_iter().map(to_f32).collect()
}

/// `torch.fft.rfft` of a real sequence: bins 0..=n/2.
pub fn rfft(x: &[f32]) -> Vec<Complex> {
    let n = x.len();
    let mut buf: Vec<Complex64> = x
        .iter()
        .map(|v| Complex64::new(f64::from(*v), 0.0))
        .collect();
    transform(&mut buf, false);
    if n == 0 {
        return vec![Complex::default()];
    }
    buf.into_iter().take(n / 2 + 1).map(to_f32).collect()
}

/// `torch.fft.irfft(X, n)`: the real signal of length `n` whose spectrum has
/// the bins 0..=n/2 of `x` (missing ones are zero, extra ones ignored, as
/// torch trims or pads). Like pocketfft's c2r, the imaginary parts of bin 0
/// and, for even n, bin n/2 do not contribute.
pub fn irfft(x: &[Complex], n: usize) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let bin = |k: usize| {
        let v = x.get(k).copied().unwrap_or_default();
        Complex64::new(f64::from(v.re), f64::from(v.im))
    };
    // The Hermitian spectrum: X[n-k] = conj(X[k]).
    let mut buf = vec![Complex64::new(0.0, 0.0); n];
    buf[0] = Complex64::new(bin(0).re, 0.0);
    for k in 1..n.div_ceil(2) {
        let v = bin(k);
        buf[k] = v;
        buf[n - k] = v.conj();
    }
    if n.is_multiple_of(2) {
        buf[n / 2] = Complex64::new(bin(n / 2).re, 0.0);
    }
    transform(&mut buf, true);
    buf.into_iter().map(|v| (v.re / n as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(re: f32, im: f32) -> Complex {
        Complex { re, im }
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * (1.0 + b.abs())
    }

    #[test]
    fn rfft_matches_hand_computed_bins() {
        // x = [1, 2, 3, 4]: X0 = 10, X1 = -2 + 2i, X2 = -2.
        let x = rfft(&[1.0, 2.0, 3.0, 4.0]);
        let want = [c(10.0, 0.0), c(-2.0, 2.0), c(-2.0, 0.0)];
        assert_eq!(x.len(), 3);
        for (g, w) in x.iter().zip(want) {
            assert!(close(g.re, w.re) && close(g.im, w.im), "{g:?} vs {w:?}");
        }
        // Odd length 3, x = [1, 0, 0]: all bins 1.
        assert_eq!(rfft(&[1.0, 0.0, 0.0]), vec![c(1.0, 0.0); 2]);
        assert!(close(c(3.0, 4.0).abs(), 5.0));
    }

    #[test]
    fn fft_of_a_complex_sequence() {
        // x = [1, i]: X0 = 1 + i, X1 = 1 - i.
        let x = fft(&[c(1.0, 0.0), c(0.0, 1.0)]);
        assert!(close(x[0].re, 1.0) && close(x[0].im, 1.0));
        assert!(close(x[1].re, 1.0) && close(x[1].im, -1.0));
    }

    #[test]
    fn irfft_inverts_rfft_and_ignores_edge_imaginary_parts() {
        for x in [
            vec![1.0f32, -2.0, 3.5, 0.25, 4.0],
            vec![0.5f32, 2.0, -1.0, 3.0, 7.0, -4.0],
        ] {
            let back = irfft(&rfft(&x), x.len());
            for (a, b) in back.iter().zip(&x) {
                assert!(close(*a, *b), "{back:?} vs {x:?}");
            }
        }
        // n = 4 from bins [X0, X1, X2]: the imaginary parts of X0 and X2 drop out.
        let y = irfft(&[c(4.0, 9.0), c(0.0, 0.0), c(0.0, -9.0)], 4);
        assert_eq!(y, vec![1.0; 4]);
        // Fewer bins than n/2 + 1 are zero-padded.
        assert_eq!(irfft(&[c(2.0, 0.0)], 2), vec![1.0, 1.0]);
    }
}
