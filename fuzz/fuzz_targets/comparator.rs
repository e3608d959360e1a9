//! The response comparator: two answers (status + body) from the input,
//! compared both ways; swapping them never changes the verdict for bodies
//! that both parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_filter::compare::{compare, Outcome};

#[path = "answers.rs"]
mod answers;

fuzz_target!(|data: &[u8]| {
    let Some((a, b)) = answers::two(data) else {
        return;
    };
    let ab = compare(a, b, answers::TOLERANCE);
    let ba = compare(b, a, answers::TOLERANCE);
    if let (Outcome::Match { .. }, other) | (other, Outcome::Match { .. }) = (&ab, &ba) {
        if !matches!(other, Outcome::Match { .. } | Outcome::Error(_)) {
            panic!("asymmetric verdict: {ab:?} vs {ba:?}");
        }
    }
});
