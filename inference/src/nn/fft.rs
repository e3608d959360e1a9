//! Discrete Fourier transforms with `torch.fft`'s conventions (no
//! normalisation forward, 1/n inverse), for the short axes the models
//! transform (TimeMixer's `dft_decomp`, TimesNet's period search, StemGNN's
//! spectral cell). A direct O(n²) DFT, not an FFT: every bin is a sum
//! accumulated in f64 with exact twiddles and rounded once to f32, so it is
//! within an ulp or so of torch's f32 pocketfft results.

use std::f64::consts::PI;

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

/// cos and sin of 2π·k/n for k < n (the twiddles of one length), exact at
/// the quarter turns where they are 0 or ±1.
fn twiddles(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|k| match (4 * k % n == 0, 4 * k / n.max(1)) {
            (true, 0) => (1.0, 0.0),
            (true, 1) => (0.0, 1.0),
            (true, 2) => (-1.0, 0.0),
            (true, _) => (0.0, -1.0),
            (false, _) => {
                let a = 2.0 * PI * k as f64 / n as f64;
                (a.cos(), a.sin())
            }
        })
        .collect()
}

/// `torch.fft.fft` of a complex sequence: X[k] = Σ x[t]·e^{-2πikt/n}.
pub fn fft(x: &[Complex]) -> Vec<Complex> {
    let n = x.len();
    let w = twiddles(n);
    (0..n)
        .map(|k| {
            let (mut re, mut im) = (0f64, 0f64);
            for (t, v) in x.iter().enumerate() {
                let (c, s) = w[(k * t) % n];
                let (a, b) = (f64::from(v.re), f64::from(v.im));
                re += a * c + b * s;
                im += b * c - a * s;
            }
            Complex {
                re: re as f32,
                im: im as f32,
            }
        })
        .collect()
}

/// `torch.fft.rfft` of a real sequence: bins 0..=n/2.
pub fn rfft(x: &[f32]) -> Vec<Complex> {
    let n = x.len();
    let w = twiddles(n.max(1));
    (0..=n / 2)
        .map(|k| {
            let (mut re, mut im) = (0f64, 0f64);
            for (t, v) in x.iter().enumerate() {
                let (c, s) = w[(k * t) % n];
                re += f64::from(*v) * c;
                im -= f64::from(*v) * s;
            }
            Complex {
                re: re as f32,
                im: im as f32,
            }
        })
        .collect()
}

/// `torch.fft.irfft(X, n)`: the real signal of length `n` whose spectrum has
/// the bins 0..=n/2 of `x` (missing ones are zero, extra ones ignored, as
/// torch trims or pads). Like pocketfft's c2r, the imaginary parts of bin 0
/// and, for even n, bin n/2 do not contribute.
pub fn irfft(x: &[Complex], n: usize) -> Vec<f32> {
    let w = twiddles(n.max(1));
    let bin = |k: usize| x.get(k).copied().unwrap_or_default();
    (0..n)
        .map(|t| {
            let mut acc = f64::from(bin(0).re);
            for k in 1..n.div_ceil(2) {
                let (c, s) = w[(k * t) % n];
                let v = bin(k);
                acc += 2.0 * (f64::from(v.re) * c - f64::from(v.im) * s);
            }
            if n % 2 == 0 && n > 0 {
                let sign = if t % 2 == 0 { 1.0 } else { -1.0 };
                acc += sign * f64::from(bin(n / 2).re);
            }
            (acc / n as f64) as f32
        })
        .collect()
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
