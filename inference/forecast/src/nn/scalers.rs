//! `TemporalNorm` (neuralforecast/common/_scalers.py): the window-level scaler
//! inside every model, fit on the masked insample part of each window.
//! All arithmetic in f32 as PyTorch does it.

pub use crate::spec::TemporalScalerKind;

const EPS: f32 = 1e-6;
/// Normal MAD-to-std factor NeuralForecast uses as the robust fallback.
const MAD_FROM_STD: f32 = 0.674_489_75;

/// Shift and scale of one channel of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub shift: f32,
    pub scale: f32,
}

/// Revin's learned terms for the target channel: used only by the inverse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RevinAffine {
    pub bias: f32,
    pub weight: f32,
}

impl TemporalScalerKind {
    /// Statistics over the values whose mask is 1.
    pub fn fit(self, x: &[f32], mask: &[f32]) -> Stats {
        match self {
            Self::Identity => Stats {
                shift: 0.0,
                scale: 1.0,
            },
            Self::Standard | Self::Revin => {
                let (mean, std) = masked_mean_std(x, mask);
                let std = if std == 0.0 { 1.0 } else { std };
                Stats {
                    shift: mean,
                    scale: std + EPS,
                }
            }
            Self::Robust | Self::Invariant => {
                let median = masked_lower_median(x.iter().copied(), mask);
                let mut mad = masked_lower_median(x.iter().map(|v| (v - median).abs()), mask);
                if mad == 0.0 {
                    let (_, std) = masked_mean_std(x, mask);
                    mad = std * MAD_FROM_STD;
                }
                if mad == 0.0 {
                    mad = 1.0;
                }
                Stats {
                    shift: median,
                    scale: mad + EPS,
                }
            }
            Self::MinMax | Self::MinMax1 => {
                let mut lo = f32::INFINITY;
                let mut hi = f32::NEG_INFINITY;
                for (v, m) in x.iter().zip(mask) {
                    if *m >= 1.0 {
                        lo = lo.min(*v);
                        hi = hi.max(*v);
                    }
                }
                let mut range = hi - lo;
                if range == 0.0 {
                    range = 1.0;
                }
                Stats {
                    shift: lo,
                    scale: range + EPS,
                }
            }
        }
    }

    pub fn transform(self, v: f32, s: Stats) -> f32 {
        match self {
            Self::Identity => v,
            Self::Standard | Self::Revin | Self::Robust | Self::MinMax => (v - s.shift) / s.scale,
            Self::MinMax1 => ((v - s.shift) / s.scale) * 2.0 - 1.0,
            Self::Invariant => ((v - s.shift) / s.scale).asinh(),
        }
    }

    /// The statistics the inverse uses: Revin folds its learned terms in.
    pub fn inverse_stats(self, s: Stats, revin: Option<RevinAffine>) -> Stats {
        match (self, revin) {
            (Self::Revin, Some(r)) => Stats {
                shift: s.shift + r.bias,
                scale: s.scale * (r.weight.max(0.0) + EPS),
            },
            _ => s,
        }
    }

    pub fn inverse(self, z: f32, s: Stats) -> f32 {
        match self {
            Self::Identity => z,
            Self::Standard | Self::Revin | Self::Robust | Self::MinMax => z * s.scale + s.shift,
            Self::MinMax1 => ((z + 1.0) / 2.0) * s.scale + s.shift,
            Self::Invariant => z.sinh() * s.scale + s.shift,
        }
    }
}

/// Masked mean and population std; 0 when nothing is unmasked (torch's nan_to_num).
fn masked_mean_std(x: &[f32], mask: &[f32]) -> (f32, f32) {
    let mut sum = 0f32;
    let mut n = 0usize;
    for (v, m) in x.iter().zip(mask) {
        if *m >= 1.0 {
            sum += v;
            n += 1;
        }
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f32;
    let mut sq = 0f32;
    for (v, m) in x.iter().zip(mask) {
        if *m >= 1.0 {
            let d = v - mean;
            sq += d * d;
        }
    }
    (mean, (sq / n as f32).sqrt())
}

/// `torch.nanmedian`: the lower of the two middle values; 0 when all masked.
fn masked_lower_median(x: impl Iterator<Item = f32>, mask: &[f32]) -> f32 {
    let mut vals: Vec<f32> = x
        .zip(mask)
        .filter(|(_, m)| **m >= 1.0)
        .map(|(v, _)| v)
        .collect();
    if vals.is_empty() {
        return 0.0;
    }
    let k = (vals.len() - 1) / 2;
    let (_, m, _) = vals.select_nth_unstable_by(k, f32::total_cmp);
    *m
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TemporalScalerKind; 7] = [
        TemporalScalerKind::Identity,
        TemporalScalerKind::Standard,
        TemporalScalerKind::Robust,
        TemporalScalerKind::MinMax,
        TemporalScalerKind::MinMax1,
        TemporalScalerKind::Invariant,
        TemporalScalerKind::Revin,
    ];

    #[test]
    fn round_trip_every_kind() {
        let x = [3.0f32, 7.0, 1.0, 9.5, 4.0, 4.0];
        let mask = [1.0f32; 6];
        for kind in ALL {
            let s = kind.fit(&x, &mask);
            for v in x {
                let back = kind.inverse(kind.transform(v, s), s);
                assert!((back - v).abs() < 1e-4, "{kind:?}: {v} -> {back}");
            }
        }
    }

    #[test]
    fn mask_excludes_padding() {
        let x = [0.0f32, 0.0, 10.0, 20.0];
        let mask = [0.0f32, 0.0, 1.0, 1.0];
        let s = TemporalScalerKind::Standard.fit(&x, &mask);
        assert_eq!(s.shift, 15.0);
        assert!((s.scale - (5.0 + EPS)).abs() < 1e-6);
        let mm = TemporalScalerKind::MinMax.fit(&x, &mask);
        assert_eq!(mm.shift, 10.0);
    }

    #[test]
    fn robust_uses_lower_median_and_fallbacks() {
        let s = TemporalScalerKind::Robust.fit(&[1.0, 2.0, 3.0, 4.0], &[1.0; 4]);
        assert_eq!(s.shift, 2.0); // lower median of an even count
                                  // MAD 0 falls back to 0.6745 * std.
        let s = TemporalScalerKind::Robust.fit(&[5.0, 5.0, 5.0, 9.0], &[1.0; 4]);
        assert_eq!(s.shift, 5.0);
        assert!((s.scale - (3f32.sqrt() * MAD_FROM_STD + EPS)).abs() < 1e-5);
        // Constant: std 0 falls back to 1.
        let s = TemporalScalerKind::Robust.fit(&[2.0; 3], &[1.0; 3]);
        assert_eq!(s.scale, 1.0 + EPS);
    }

    #[test]
    fn revin_inverse_folds_affine_terms() {
        let s = Stats {
            shift: 1.0,
            scale: 2.0,
        };
        let inv = TemporalScalerKind::Revin.inverse_stats(
            s,
            Some(RevinAffine {
                bias: 0.5,
                weight: -3.0,
            }),
        );
        assert_eq!(inv.shift, 1.5);
        assert!((inv.scale - 2.0 * EPS).abs() < 1e-9); // relu(weight) = 0
    }

    #[test]
    fn unknown_kind_is_refused() {
        assert!(TemporalScalerKind::parse("zscore").is_err());
    }
}
