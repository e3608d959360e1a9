//! The response comparator for answers of another API profile's shape
//! (`shadow.answer`): `compare_shaped` on two answers (status + body) from
//! the input, in one of a few fixed shapes (every orient; the frame at the
//! body's root, under a key and deeper; the model name at a pointer or
//! nowhere; key columns named or found). Byte 0 picks the shape, bytes 1
//! and 2 the statuses, the rest holds the two bodies as in `comparator`.
//! Swapping them never changes the verdict for bodies that both parse, and
//! an answer compared with itself never differs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_filter::compare::{compare_shaped, AnswerShape, Orient, Outcome};

#[path = "answers.rs"]
mod answers;

/// Kept in step with the seeds in scripts/fuzz.sh (the index is byte 0).
/// Each one is valid as a `shadow.answer` (config.rs: a frame at "" has no
/// model, named key columns differ and are among a values frame's columns).
fn shapes() -> &'static [AnswerShape] {
    static S: std::sync::OnceLock<Vec<AnswerShape>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let shape =
            |at: &str, orient: Orient, id: Option<&str>, time: Option<&str>, model_at: &str| {
                AnswerShape {
                    at: at.into(),
                    orient,
                    id: id.map(str::to_string),
                    time: time.map(str::to_string),
                    model_at: model_at.into(),
                }
            };
        let names = |n: &[&str]| Orient::Values(n.iter().map(|c| c.to_string()).collect());
        vec![
            shape("/forecast", Orient::Records, None, None, "/model"),
            shape("", Orient::Records, Some("series"), Some("timestamp"), ""),
            shape("/forecast", Orient::Columns, None, None, ""),
            shape("", Orient::Columns, Some("unique_id"), None, ""),
            shape("/forecast", Orient::Split, None, Some("ds"), "/model"),
            shape("", Orient::Split, None, None, ""),
            shape("", names(&["unique_id", "ds", "y_hat"]), None, None, ""),
            shape(
                "/forecast",
                names(&["series", "timestamp", "y_hat", "y_hat_lo"]),
                Some("series"),
                Some("timestamp"),
                "/model",
            ),
            shape("/out/a~1b/0", Orient::Records, None, None, "/meta/model"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let shapes = shapes();
    let shape = &shapes[pick as usize % shapes.len()];
    let Some((a, b)) = answers::two(data) else {
        return;
    };
    let tol = answers::TOLERANCE;
    let ab = compare_shaped(a, b, tol, shape);
    let ba = compare_shaped(b, a, tol, shape);
    if let (Outcome::Match { .. }, other) | (other, Outcome::Match { .. }) = (&ab, &ba) {
        if !matches!(other, Outcome::Match { .. } | Outcome::Error(_)) {
            panic!("asymmetric verdict in {shape:?}: {ab:?} vs {ba:?}");
        }
    }
    if let (Outcome::Match { max_rel: x }, Outcome::Match { max_rel: y }) = (&ab, &ba) {
        assert_eq!(x, y, "max_rel depends on the order in {shape:?}");
    }
    // Itself: equal (no difference at all) or not comparable (not JSON, or
    // no frame of the shape), never a mismatch.
    for x in [a, b] {
        let same = compare_shaped(x, x, tol, shape);
        assert!(
            matches!(same, Outcome::Match { max_rel } if max_rel == 0.0)
                || matches!(same, Outcome::Error(_)),
            "a body differs from itself in {shape:?}: {same:?}"
        );
    }
});
