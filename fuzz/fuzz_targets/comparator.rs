//! The response comparator: two answers (status + body) from the input,
//! compared both ways; swapping them never changes the verdict for bodies
//! that both parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_filter::compare::{compare, Answer, Outcome, Tolerance};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = |b: u8| if b % 4 == 0 { 503 } else { 200 };
    let (s1, s2) = (status(data[0]), status(data[1]));
    let rest = &data[2..];
    let cut = rest
        .iter()
        .position(|b| *b == 0xff)
        .unwrap_or(rest.len() / 2);
    let (a, b) = (&rest[..cut], &rest[(cut + 1).min(rest.len())..]);
    let tol = Tolerance {
        abs: 1e-6,
        rel: 1e-4,
    };
    let ab = compare(
        Answer {
            status: s1,
            body: a,
        },
        Answer {
            status: s2,
            body: b,
        },
        tol,
    );
    let ba = compare(
        Answer {
            status: s2,
            body: b,
        },
        Answer {
            status: s1,
            body: a,
        },
        tol,
    );
    if let (Outcome::Match { .. }, other) | (other, Outcome::Match { .. }) = (&ab, &ba) {
        if !matches!(other, Outcome::Match { .. } | Outcome::Error(_)) {
            panic!("asymmetric verdict: {ab:?} vs {ba:?}");
        }
    }
});
