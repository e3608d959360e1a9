//! The input layout both comparator targets read: a status byte per answer,
//! then the two bodies, split at the first 0xff (or in the middle).

use wasm_filter::compare::{Answer, Tolerance};

/// The filter's default tolerance.
pub const TOLERANCE: Tolerance = Tolerance {
    abs: 1e-6,
    rel: 1e-4,
};

/// Two answers from `data` (`data[0]` and `data[1]` pick 503 or 200); None
/// when the input is too short.
pub fn two(data: &[u8]) -> Option<(Answer<'_>, Answer<'_>)> {
    if data.len() < 3 {
        return None;
    }
    let status = |b: u8| if b % 4 == 0 { 503 } else { 200 };
    let rest = &data[2..];
    let cut = rest
        .iter()
        .position(|b| *b == 0xff)
        .unwrap_or(rest.len() / 2);
    let (a, b) = (&rest[..cut], &rest[(cut + 1).min(rest.len())..]);
    Some((
        Answer {
            status: status(data[0]),
            body: a,
        },
        Answer {
            status: status(data[1]),
            body: b,
        },
    ))
}
