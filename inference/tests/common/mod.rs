//! What the golden-case tests share: reading a case and comparing an answer
//! with the reference's, row by row.
//!
//! Each test crate compiles this module and uses part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The worst |a-b|/tol over a comparison and where it was.
#[derive(Debug, Default)]
pub struct Worst {
    pub ratio: f64,
    pub at: String,
}

impl Worst {
    pub fn merge(&mut self, other: Worst) {
        if other.ratio > self.ratio {
            *self = other;
        }
    }
}

/// Asserts that `got` (the service's predictions array) answers as `want`
/// (the reference's): same rows in the same order, same columns, equal
/// non-numbers, every number within 1e-4 + 1e-5·|want|. `reference` names
/// who answered `want` in the failure message.
pub fn assert_predictions_match(case: &Path, got: &Value, want: &Value, reference: &str) -> Worst {
    let (g, w) = (
        got.as_array()
            .unwrap_or_else(|| panic!("{}: predictions is not an array", case.display())),
        want.as_array()
            .unwrap_or_else(|| panic!("{}: expected predictions is not an array", case.display())),
    );
    assert_eq!(g.len(), w.len(), "{}: row count", case.display());
    let mut worst = Worst::default();
    for (gr, wr) in g.iter().zip(w) {
        let (go, wo) = (gr.as_object().unwrap(), wr.as_object().unwrap());
        assert_eq!(
            go.keys().collect::<Vec<_>>(),
            wo.keys().collect::<Vec<_>>(),
            "{}: columns",
            case.display()
        );
        for (k, wv) in wo {
            let Some(b) = wv.as_f64() else {
                assert_eq!(&go[k], wv, "{}: {k}", case.display());
                continue;
            };
            let a = go[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: {k} is {} in the answer", case.display(), go[k]));
            let tol = 1e-4 + 1e-5 * b.abs();
            let ratio = (a - b).abs() / tol;
            let at = || format!("{} {} {} {k}", case.display(), gr["unique_id"], gr["ds"]);
            assert!(ratio <= 1.0, "{}: rust {a}, {reference} {b}", at());
            if ratio > worst.ratio {
                worst = Worst { ratio, at: at() };
            }
        }
    }
    worst
}
