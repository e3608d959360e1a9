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

/// A JSON value that keeps its objects' key order (serde_json's `Value`
/// sorts keys), for checking column order.
#[derive(Debug)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Ordered>()? {
                    out.push((k, v));
                }
                Ok(Ordered::Object(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element::<Ordered>()? {
                    out.push(v);
                }
                Ok(Ordered::Array(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    pub fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The column names of every row of the predictions array at `path` of
/// `text`, in document order.
pub fn column_order(text: &str, path: &[&str]) -> Vec<Vec<String>> {
    let doc: Ordered = serde_json::from_str(text).expect("JSON");
    let mut v = &doc;
    for p in path {
        v = v.get(p).unwrap_or_else(|| panic!("no {p}"));
    }
    match v {
        Ordered::Array(rows) => rows
            .iter()
            .map(|r| match r {
                Ordered::Object(kv) => kv.iter().map(|(k, _)| k.clone()).collect(),
                _ => panic!("a prediction row is not an object"),
            })
            .collect(),
        _ => panic!("predictions is not an array"),
    }
}

/// Asserts the answer's columns come in the reference's order, row by row.
pub fn assert_column_order(case: &Path, got_text: &str) {
    let want_text = std::fs::read_to_string(case).expect("case");
    assert_eq!(
        column_order(got_text, &["predictions"]),
        column_order(&want_text, &["expected", "predictions"]),
        "{}: column order",
        case.display()
    );
}
