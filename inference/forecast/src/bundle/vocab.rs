//! The categorical vocabularies NeuralForecast 3.3 saves with a bundle
//! (`categorical_vocab_` in configuration.json): per column, every value
//! seen at fit numbered from 1 in sorted order; `nf.predict` maps a value
//! through it (`df[col].map(vocab).fillna(0)`), so a value it never saw is 0.

use super::format::{malformed, FormatError};
use crate::contract::Cell;
use serde_json::Value;
use std::collections::HashMap;

/// A vocabulary key as Python compares them: a string, or a number (an int,
/// a float and a bool of equal value are one key, as `1 == 1.0 == True`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(String),
    /// `bits` of the number.
    Num(u64),
}

/// A number's key: its f64 bits, -0.0 folded into 0.0.
fn bits(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

impl Key {
    fn num(x: f64) -> Key {
        Key::Num(bits(x))
    }

    fn of_json(v: &Value) -> Option<Key> {
        match v {
            Value::String(s) => Some(Key::Str(s.clone())),
            Value::Bool(b) => Some(Key::num(f64::from(u8::from(*b)))),
            Value::Number(n) => n.as_f64().map(Key::num),
            _ => None,
        }
    }
}

/// One column's vocabulary: string values and numeric values apart, so a
/// request's value is looked up without allocating.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    strs: HashMap<String, u32>,
    nums: HashMap<u64, u32>,
}

impl Vocab {
    fn insert(&mut self, k: Key, n: u32) {
        match k {
            Key::Str(s) => self.strs.insert(s, n),
            Key::Num(bits) => self.nums.insert(bits, n),
        };
    }

    /// Values seen at fit.
    pub fn len(&self) -> usize {
        self.strs.len() + self.nums.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The embedding row of a request value: its number, 0 for a value the
    /// fit never saw; `None` for a value that is no category (null, array).
    pub fn index_of(&self, c: &Cell) -> Option<u32> {
        let num = |x: f64| self.nums.get(&bits(x));
        let found = match c {
            Cell::Str(s) => self.strs.get(s.as_ref()),
            Cell::Bool(b) => num(f64::from(u8::from(*b))),
            Cell::Int(i) => num(*i as f64),
            Cell::Float(f) => num(*f),
            _ => return None,
        };
        Some(found.copied().unwrap_or(0))
    }
}

/// Every categorical column's vocabulary, by column name.
#[derive(Debug, Clone, Default)]
pub struct Vocabularies {
    cols: Vec<(String, Vocab)>,
}

impl Vocabularies {
    /// `categorical_vocab_`: `{col: {value: n}}`, or for non-string values
    /// the tagged form `{"__nf__": "mapping", "items": [[value, n], ...]}`.
    pub fn from_config(cfg: &Value) -> Result<Vocabularies, FormatError> {
        let Some(all) = cfg.get("categorical_vocab_") else {
            return Ok(Vocabularies::default());
        };
        let all = match all {
            Value::Null => return Ok(Vocabularies::default()),
            Value::Object(m) => m,
            _ => return Err(malformed!("categorical_vocab_ must be an object")),
        };
        let mut cols = Vec::with_capacity(all.len());
        for (col, v) in all {
            let bad = || malformed!("categorical_vocab_.{col} is not a value -> number mapping");
            let pairs: Vec<(Key, &Value)> = match v {
                Value::Object(m) if m.get("__nf__").and_then(Value::as_str) == Some("mapping") => m
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(bad)?
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([k, n]) => Key::of_json(k).map(|k| (k, n)).ok_or_else(bad),
                        _ => Err(bad()),
                    })
                    .collect::<Result<_, _>>()?,
                Value::Object(m) => m.iter().map(|(k, n)| (Key::Str(k.clone()), n)).collect(),
                _ => return Err(bad()),
            };
            let mut vocab = Vocab::default();
            for (k, n) in pairs {
                let n = n
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(bad)?;
                vocab.insert(k, n);
            }
            cols.push((col.clone(), vocab));
        }
        Ok(Vocabularies { cols })
    }

    pub fn get(&self, col: &str) -> Option<&Vocab> {
        self.cols.iter().find(|(c, _)| c == col).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Vocab)> {
        self.cols.iter().map(|(c, v)| (c.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    #[test]
    fn string_and_tagged_vocabularies() {
        let cfg = json!({"categorical_vocab_": {
            "month": {"Apr": 1, "Aug": 2},
            "store": {"__nf__": "mapping", "items": [[3, 1], [7, 2], [true, 3]]}
        }});
        let v = Vocabularies::from_config(&cfg).unwrap();
        let month = v.get("month").unwrap();
        assert_eq!(month.index_of(&Cell::Str(Cow::Borrowed("Aug"))), Some(2));
        assert_eq!(month.index_of(&Cell::Str(Cow::Borrowed("Sep"))), Some(0));
        // "1" is not 1 (pandas' map compares values, not their text).
        assert_eq!(month.index_of(&Cell::Int(1)), Some(0));
        let store = v.get("store").unwrap();
        assert_eq!(store.index_of(&Cell::Int(7)), Some(2));
        assert_eq!(store.index_of(&Cell::Float(7.0)), Some(2));
        assert_eq!(store.index_of(&Cell::Bool(true)), Some(3));
        assert_eq!(store.index_of(&Cell::Str(Cow::Borrowed("7"))), Some(0));
        assert_eq!(store.index_of(&Cell::Null), None);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn malformed_vocabularies_are_refused() {
        for bad in [
            json!({"categorical_vocab_": []}),
            json!({"categorical_vocab_": {"m": {"a": 0}}}),
            json!({"categorical_vocab_": {"m": {"a": "1"}}}),
            json!({"categorical_vocab_": {"m": {"__nf__": "mapping", "items": [[1]]}}}),
        ] {
            assert!(Vocabularies::from_config(&bad).is_err(), "{bad}");
        }
        assert!(Vocabularies::from_config(&json!({})).unwrap().is_empty());
    }
}
