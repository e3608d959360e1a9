//! The Python/Rust split.
//!
//! Every request gets a bucket in `0..BUCKETS` (basis points); buckets below
//! the Rust weight go to Rust. A request with a sticky key gets the key's
//! hash as its bucket, so the key always lands on the same backend at a given
//! weight, and raising the weight only moves keys from Python to Rust: a
//! key's bucket never changes, only the threshold moves. Requests without a
//! key take the next value of a low-discrepancy sequence, which hits the
//! weight within a few requests instead of only on average.

use crate::config::Backend;

/// Buckets per 100 %: weights are basis points.
pub const BUCKETS: u32 = 10_000;

/// The backend for a bucket at a weight.
pub fn backend_for(bucket: u32, rust_weight_bp: u32) -> Backend {
    if bucket < rust_weight_bp {
        Backend::Rust
    } else {
        Backend::Python
    }
}

/// The sticky bucket of a key: FNV-1a, then a 64-bit finalizer because
/// FNV's low bits are poor for short keys that differ in one character.
pub fn key_bucket(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    scale(mix64(h))
}

/// splitmix64's finalizer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Maps a uniform u64 onto `0..BUCKETS` without modulo bias.
fn scale(x: u64) -> u32 {
    ((u128::from(x) * u128::from(BUCKETS)) >> 64) as u32
}

/// A Weyl sequence `frac(n * alpha)`: consecutive values spread evenly over
/// the buckets, so any window of N requests is within a few buckets of the
/// weight. Two sequences with different irrational steps are independent
/// enough to sample the split and the shadow share separately.
#[derive(Debug, Clone, Copy)]
pub struct Sequence {
    state: u64,
    step: u64,
}

impl Sequence {
    /// Step 2^64 / golden ratio.
    pub fn golden(seed: u64) -> Sequence {
        Sequence {
            state: seed,
            step: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Step 2^64 * (sqrt 2 - 1).
    pub fn silver(seed: u64) -> Sequence {
        Sequence {
            state: seed,
            step: 0x6a09_e667_f3bc_c909,
        }
    }

    pub fn next_bucket(&mut self) -> u32 {
        self.state = self.state.wrapping_add(self.step);
        scale(self.state)
    }
}

#[cfg(test)]
mod tests;
