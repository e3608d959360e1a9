//! Compares the primary's and the shadow's answers to one /predict request
//! (docs/contract.md): both bodies JSON; same status; for 2xx the same `model` and the same
//! rows by key in any order, every other column numerically within
//! tolerance; for errors the same `error.code` (messages may differ).
//!
//! A row's key is its series id and time stamp: `unique_id` and `ds` when the
//! row has both, else its first two columns as written: `nf.predict` writes
//! the bundle's `id_col` and `time_col` first, whatever they are called
//! (`airline`, `month`), and both services keep that order.
//!
//! That is the default answer shape (docs/contract.md), read in one streaming
//! pass. A service migrated from another API profile answers in another
//! shape ([`AnswerShape`]: the frame at a JSON pointer, in a pandas orient,
//! named id and time columns, the model name elsewhere or nowhere);
//! [`compare_shaped`] reads such bodies into a tree, turns the frame into the
//! same rows and compares them with the same code.

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u32,
    pub body: &'a [u8],
}

/// A pandas orient (`DataFrame.to_dict` / `to_json`) of the answer frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orient {
    /// `[{col: value, ...}, ...]`
    Records,
    /// `{col: [values...], ...}` (`to_dict("list")`), all arrays one length.
    Columns,
    /// `{"columns": [...], "index": [...], "data": [[...], ...]}`; `index` is ignored.
    Split,
    /// `[[...], ...]`, the columns named here.
    Values(Vec<String>),
}

/// Where and how a 2xx answer holds its rows (plugin configuration
/// `shadow.answer`); both services answer in the same shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerShape {
    /// JSON pointer to the frame; `""` is the whole body.
    pub at: String,
    pub orient: Orient,
    /// The series id column, required in every row. `id` and `time` both
    /// `None`: the default shape's key (module doc); one `None`: `unique_id`
    /// / `ds` when the row has it, else the row's first other column.
    pub id: Option<String>,
    /// The time column, required in every row; `None`: see `id`.
    pub time: Option<String>,
    /// JSON pointer to the model name; `""`: not compared.
    pub model_at: String,
}

impl Default for AnswerShape {
    /// docs/contract.md: `{"model": ..., "predictions": [{row}, ...]}`.
    fn default() -> AnswerShape {
        AnswerShape {
            at: "/predictions".into(),
            orient: Orient::Records,
            id: None,
            time: None,
            model_at: "/model".into(),
        }
    }
}

impl AnswerShape {
    /// The default shape, compared by the streaming [`compare`].
    pub fn is_default(&self) -> bool {
        self.at == "/predictions"
            && self.orient == Orient::Records
            && self.id.is_none()
            && self.time.is_none()
            && self.model_at == "/model"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `max_rel`: the largest relative difference of any compared number.
    Match { max_rel: f64 },
    /// `field` names the first difference in a fixed order (status, model,
    /// rows by key, columns by name); `detail` says what differs.
    Mismatch {
        field: String,
        detail: String,
        max_rel: f64,
    },
    /// The answers could not be compared: a body is not JSON (Envoy's own
    /// reply to a timeout or reset), or the primary's has not the contract's shape.
    Error(String),
}

/// `|a - b| / max(|a|, |b|)`, 0 when both are 0.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

/// A relative difference in parts per million, rounded, saturating.
pub fn ppm(rel: f64) -> u64 {
    if rel.is_nan() || rel <= 0.0 {
        0
    } else {
        (rel * 1e6).round().min(u64::MAX as f64) as u64
    }
}

/// Python's `math.isclose`: within the relative OR the absolute tolerance.
pub fn within(a: f64, b: f64, tol: Tolerance) -> bool {
    let diff = (a - b).abs();
    diff <= tol.abs || diff <= tol.rel * a.abs().max(b.abs())
}

struct Diff {
    first: Option<(String, String)>,
    max_rel: f64,
}

impl Diff {
    fn note(&mut self, field: impl FnOnce() -> String, detail: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some((field(), detail()));
        }
    }

    fn finish(self) -> Outcome {
        match self.first {
            None => Outcome::Match {
                max_rel: self.max_rel,
            },
            Some((field, detail)) => Outcome::Mismatch {
                field,
                detail,
                max_rel: self.max_rel,
            },
        }
    }
}

/// Compares two answers in the default shape (docs/contract.md), reading
/// each body in one pass.
pub fn compare(primary: Answer<'_>, shadow: Answer<'_>, tol: Tolerance) -> Outcome {
    compare_bodies(
        primary,
        shadow,
        |b: Body| {
            b.error
                .as_ref()
                .and_then(|e| e.get("code"))
                .cloned()
                .unwrap_or(Value::Null)
        },
        |p: Body, s: Body, diff| {
            compare_rows(
                Side::of_body(&p),
                Side::of_body(&s),
                &PREDICTIONS,
                tol,
                diff,
            )
        },
    )
}

/// Compares two answers in `shape`: [`compare`] for the default shape,
/// else each body read into a tree and its frame turned into rows.
pub fn compare_shaped(
    primary: Answer<'_>,
    shadow: Answer<'_>,
    tol: Tolerance,
    shape: &AnswerShape,
) -> Outcome {
    if shape.is_default() {
        return compare(primary, shadow, tol);
    }
    let name = match shape.at.get(1..) {
        Some(n) if !n.is_empty() => n,
        _ => "body",
    };
    let frame = Frame {
        name,
        keys: match (&shape.id, &shape.time) {
            (None, None) => Keys::Auto,
            (id, time) => Keys::Named {
                id: id.as_deref(),
                time: time.as_deref(),
            },
        },
    };
    compare_bodies(
        primary,
        shadow,
        Node::error_code,
        |p: Node, s: Node, diff| {
            let (p, s) = (Shaped::of(p, shape, name), Shaped::of(s, shape, name));
            compare_rows(p.side(), s.side(), &frame, tol, diff)
        },
    )
}

/// What both shapes share: both bodies JSON, then the status, then for 2xx
/// `rows` and for errors `error.code`.
fn compare_bodies<'a, B: Deserialize<'a>>(
    primary: Answer<'a>,
    shadow: Answer<'a>,
    error_code: impl Fn(B) -> Value,
    rows: impl FnOnce(B, B, &mut Diff) -> Result<(), String>,
) -> Outcome {
    // Bodies first: both services answer JSON, errors included, so a body
    // that is not JSON is no answer of theirs (typically Envoy's own 503/504
    // for a reset or a timeout): a shadow error, not a difference.
    let p: B = match serde_json::from_slice(primary.body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(format!(
                "primary body (status {}) is not JSON: {e}",
                primary.status
            ))
        }
    };
    let s: B = match serde_json::from_slice(shadow.body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(format!(
                "shadow body (status {}) is not JSON: {e}",
                shadow.status
            ))
        }
    };
    if primary.status != shadow.status {
        return Outcome::Mismatch {
            field: "status".into(),
            detail: format!("primary {} shadow {}", primary.status, shadow.status),
            max_rel: 0.0,
        };
    }
    let mut diff = Diff {
        first: None,
        max_rel: 0.0,
    };
    if (200..300).contains(&primary.status) {
        if let Err(e) = rows(p, s, &mut diff) {
            return Outcome::Error(e);
        }
    } else {
        let (pc, sc) = (error_code(p), error_code(s));
        if pc != sc {
            diff.note(
                || "error.code".into(),
                || format!("primary {pc} shadow {sc}"),
            );
        }
    }
    diff.finish()
}

/// What the comparison reads of a body, in one pass over it.
#[derive(Default)]
struct Body {
    model: Option<Value>,
    /// `None`: no `predictions` member; `Some(Err)`: not an array of objects.
    predictions: Option<Result<Vec<Row>, String>>,
    error: Option<Value>,
}

/// A prediction row as written: columns in document order.
struct Row(Vec<(String, Value)>);

impl Row {
    fn get(&self, col: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == col).map(|(_, v)| v)
    }
}

/// Visits any JSON value; `Some` only for what `on_map`/`on_seq` keep.
/// Anything else is skipped.
trait Shape<'de>: Sized {
    type Out;
    const WHAT: &'static str;
    fn other() -> Self::Out;
    fn on_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Out, A::Error>;
    fn on_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
}

struct ShapeVisitor<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeVisitor<S> {
    type Value = S::Out;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(S::WHAT)
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<S::Out, A::Error> {
        self.0.on_map(a)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<S::Out, A::Error> {
        self.0.on_seq(a)
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_i64<E>(self, _: i64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_u64<E>(self, _: u64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_f64<E>(self, _: f64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_str<E>(self, _: &str) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(S::other())
    }
}

/// The whole body: a non-object body reads as empty.
struct BodyShape;

impl<'de> Shape<'de> for BodyShape {
    type Out = Body;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Body {
        Body::default()
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Body, A::Error> {
        let mut body = Body::default();
        while let Some(key) = a.next_key::<String>()? {
            match key.as_str() {
                "model" => body.model = Some(a.next_value()?),
                "error" => body.error = Some(a.next_value()?),
                "predictions" => {
                    body.predictions = Some(a.next_value_seed(Seed(PredictionsShape))?)
                }
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(body)
    }
}

/// `predictions`: an array of rows, else the shape error.
struct PredictionsShape;

impl<'de> Shape<'de> for PredictionsShape {
    type Out = Result<Vec<Row>, String>;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Self::Out {
        Err("no \"predictions\" array".into())
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
    fn on_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        let mut rows = Vec::new();
        let mut bad = None;
        while let Some(row) = a.next_element_seed(Seed(RowShape))? {
            match row {
                Some(r) => rows.push(r),
                None => bad = bad.or(Some(rows.len())),
            }
        }
        Ok(match bad {
            Some(i) => Err(format!("predictions[{i}] is not an object")),
            None => Ok(rows),
        })
    }
}

/// One element of `predictions`: `None` when it is not an object.
struct RowShape;

impl<'de> Shape<'de> for RowShape {
    type Out = Option<Row>;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Option<Row> {
        None
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Option<Row>, A::Error> {
        let mut cols = Vec::new();
        while let Some(entry) = a.next_entry::<String, Value>()? {
            cols.push(entry);
        }
        Ok(Some(Row(cols)))
    }
}

struct Seed<S>(S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Out, D::Error> {
        d.deserialize_any(ShapeVisitor(self.0))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        Seed(BodyShape).deserialize(d)
    }
}

/// A row's key columns and values, each value written as JSON so `1` and
/// `"1"` differ.
type RowKey = Vec<(String, String)>;

/// How the rows of one shape are named (in field names and errors) and keyed.
struct Frame<'a> {
    name: &'a str,
    keys: Keys<'a>,
}

/// Which columns key a row.
#[derive(Clone, Copy)]
enum Keys<'a> {
    /// `unique_id` and `ds` when the row has both, else its first two columns.
    Auto,
    /// Named columns, the row must have them; an unnamed one: `unique_id` /
    /// `ds` when the row has it, else the row's first other column.
    Named {
        id: Option<&'a str>,
        time: Option<&'a str>,
    },
}

/// The default shape's frame.
const PREDICTIONS: Frame<'static> = Frame {
    name: "predictions",
    keys: Keys::Auto,
};

/// The key columns of a row (see the module doc), or what it lacks.
fn key_columns<'a>(row: &'a Row, keys: Keys<'a>) -> Result<[&'a str; 2], String> {
    let (id, time) = match keys {
        Keys::Auto => {
            if row.get("unique_id").is_some() && row.get("ds").is_some() {
                return Ok(["unique_id", "ds"]);
            }
            return match row.0.as_slice() {
                [(a, _), (b, _), ..] => Ok([a.as_str(), b.as_str()]),
                _ => Err("lacks unique_id or ds (or any two columns)".into()),
            };
        }
        Keys::Named { id, time } => (id, time),
    };
    let has = |c: &str| row.get(c).is_some();
    let other = |not: Option<&str>| {
        row.0
            .iter()
            .map(|(c, _)| c.as_str())
            .find(|c| Some(*c) != not)
    };
    let id = match id {
        Some(c) if has(c) => c,
        Some(c) => return Err(format!("lacks the id column {c:?}")),
        None if has("unique_id") && time != Some("unique_id") => "unique_id",
        None => other(time).ok_or("lacks an id column")?,
    };
    let time = match time {
        Some(c) if has(c) => c,
        Some(c) => return Err(format!("lacks the time column {c:?}")),
        None if has("ds") && id != "ds" => "ds",
        None => other(Some(id)).ok_or("lacks a time column")?,
    };
    Ok([id, time])
}

/// Rows by key. `Err` names the first row without a key or a duplicated key.
fn rows_by_key<'r>(
    rows: Result<&'r [Row], &str>,
    frame: &Frame<'_>,
) -> Result<BTreeMap<RowKey, &'r Row>, String> {
    let rows = rows.map_err(str::to_string)?;
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let cols = key_columns(row, frame.keys).map_err(|e| format!("{}[{i}] {e}", frame.name))?;
        let key: RowKey = cols
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    row.get(c).map(Value::to_string).unwrap_or_default(),
                )
            })
            .collect();
        if out.contains_key(&key) {
            return Err(format!(
                "{}[{i}] repeats {}",
                frame.name,
                row_name(&key, frame.name)
            ));
        }
        out.insert(key, row);
    }
    Ok(out)
}

fn row_name(key: &RowKey, frame: &str) -> String {
    let cols: Vec<String> = key
        .iter()
        .map(|(c, v)| format!("{c}={}", v.trim_matches('"')))
        .collect();
    format!("{frame}[{}]", cols.join(","))
}

/// One answer's rows (or why it has none) and model name, whatever its shape.
struct Side<'a> {
    rows: Result<&'a [Row], &'a str>,
    model: Option<&'a Value>,
}

impl<'a> Side<'a> {
    fn of_body(b: &'a Body) -> Side<'a> {
        Side {
            rows: match &b.predictions {
                None => Err("no \"predictions\" array"),
                Some(Err(e)) => Err(e),
                Some(Ok(rows)) => Ok(rows),
            },
            model: b.model.as_ref(),
        }
    }
}

fn compare_rows(
    p: Side<'_>,
    s: Side<'_>,
    frame: &Frame<'_>,
    tol: Tolerance,
    diff: &mut Diff,
) -> Result<(), String> {
    let prows = rows_by_key(p.rows, frame).map_err(|e| format!("primary body: {e}"))?;
    let srows = match rows_by_key(s.rows, frame) {
        Ok(r) => r,
        Err(e) => {
            diff.note(|| frame.name.into(), || format!("shadow body: {e}"));
            return Ok(());
        }
    };
    if p.model != s.model {
        let show = |m: Option<&Value>| m.map_or("(none)".to_string(), Value::to_string);
        diff.note(
            || "model".into(),
            || format!("primary {} shadow {}", show(p.model), show(s.model)),
        );
    }
    let mut keys: Vec<&RowKey> = prows.keys().chain(srows.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (pr, sr) = match (prows.get(key), srows.get(key)) {
            (Some(pr), Some(sr)) => (*pr, *sr),
            (Some(_), None) => {
                diff.note(
                    || row_name(key, frame.name),
                    || "row missing in shadow".into(),
                );
                continue;
            }
            (None, _) => {
                diff.note(
                    || row_name(key, frame.name),
                    || "row missing in primary".into(),
                );
                continue;
            }
        };
        let is_key = |c: &str| key.iter().any(|(k, _)| k == c);
        let mut cols: Vec<&String> =
            pr.0.iter()
                .chain(sr.0.iter())
                .map(|(c, _)| c)
                .filter(|c| !is_key(c))
                .collect();
        cols.sort();
        cols.dedup();
        for col in cols {
            let field = || format!("{}.{col}", row_name(key, frame.name));
            match (pr.get(col), sr.get(col)) {
                (Some(a), Some(b)) => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => {
                        let rel = rel_diff(x, y);
                        diff.max_rel = diff.max_rel.max(rel);
                        if !within(x, y, tol) {
                            // Numbers are shown as they came (JSON text), the
                            // difference in ppm: no float formatting code in the module.
                            diff.note(field, || {
                                format!("primary {a} shadow {b} (rel {} ppm)", ppm(rel))
                            });
                        }
                    }
                    _ if a != b => diff.note(field, || format!("primary {a} shadow {b}")),
                    _ => {}
                },
                (Some(_), None) => diff.note(field, || "column missing in shadow".into()),
                (None, _) => diff.note(field, || "column missing in primary".into()),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- other shapes

/// A JSON value with object members in document order (a `Value`'s map is
/// sorted, and "first column" means the first as written).
enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Leaf(Value),
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Map(m) => {
                // Inserted one by one: collecting would sort (more module code).
                let mut map = serde_json::Map::new();
                for (k, v) in m {
                    map.insert(k, v.into_value());
                }
                Value::Object(map)
            }
            Node::Seq(s) => {
                let mut items = Vec::with_capacity(s.len());
                for v in s {
                    items.push(v.into_value());
                }
                Value::Array(items)
            }
            Node::Leaf(v) => v,
        }
    }

    /// The member of an object (the last of equal names, as a `Value` keeps).
    fn member(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(m) => m.iter_mut().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// RFC 6901 JSON pointer (validated by the configuration); `""` is the
    /// node itself.
    fn pointer(&mut self, p: &str) -> Option<&mut Node> {
        let mut at = self;
        let mut rest = p;
        while !rest.is_empty() {
            // rest = "/token..."; a token ends at the next '/'.
            let end = rest
                .bytes()
                .skip(1)
                .position(|b| b == b'/')
                .map_or(rest.len(), |i| i + 1);
            let tok = unescape(rest.get(1..end)?);
            rest = rest.get(end..)?;
            at = match at {
                Node::Seq(s) => {
                    let digits = !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit());
                    if !digits || (tok.len() > 1 && tok.starts_with('0')) {
                        return None;
                    }
                    s.get_mut(tok.parse::<usize>().ok()?)?
                }
                node => node.member(&tok)?,
            };
        }
        Some(at)
    }

    /// Takes the node at `p` out of the tree, leaving `null`.
    fn take(&mut self, p: &str) -> Option<Node> {
        self.pointer(p)
            .map(|n| std::mem::replace(n, Node::Leaf(Value::Null)))
    }

    /// `error.code` of an object body, as [`Body`] reads it.
    fn error_code(mut self) -> Value {
        self.take("/error/code")
            .map_or(Value::Null, Node::into_value)
    }
}

/// A pointer token's text: `~1` is `/`, `~0` is `~`.
fn unescape(tok: &str) -> String {
    let mut out = String::with_capacity(tok.len());
    let mut tilde = false;
    for c in tok.chars() {
        match (tilde, c) {
            (false, '~') => tilde = true,
            (false, c) => out.push(c),
            (true, c) => {
                out.push(if c == '1' { '/' } else { '~' });
                tilde = false;
            }
        }
    }
    out
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut m = Vec::new();
        while let Some(entry) = a.next_entry::<String, Node>()? {
            m.push(entry);
        }
        Ok(Node::Map(m))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut s = Vec::new();
        while let Some(item) = a.next_element::<Node>()? {
            s.push(item);
        }
        Ok(Node::Seq(s))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Leaf(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Leaf(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Leaf(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Leaf(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Leaf(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Leaf(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf(Value::Null))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A body in a custom shape: its rows (or why it has none) and model name.
struct Shaped {
    rows: Result<Vec<Row>, String>,
    model: Option<Value>,
}

impl Shaped {
    fn of(mut body: Node, shape: &AnswerShape, name: &str) -> Shaped {
        let model = match shape.model_at.as_str() {
            "" => None,
            at => body.take(at).map(Node::into_value),
        };
        let rows = match body.take(&shape.at) {
            None => Err(format!("no answer frame at {:?}", shape.at)),
            Some(frame) => frame_rows(frame, &shape.orient, name),
        };
        Shaped { rows, model }
    }

    fn side(&self) -> Side<'_> {
        Side {
            rows: self.rows.as_deref().map_err(String::as_str),
            model: self.model.as_ref(),
        }
    }
}

/// The frame's rows, columns in the order written.
fn frame_rows(frame: Node, orient: &Orient, name: &str) -> Result<Vec<Row>, String> {
    match orient {
        Orient::Records => {
            let Node::Seq(items) = frame else {
                return Err(format!("{name} is not an array (orient records)"));
            };
            let mut rows = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let Node::Map(cols) = item else {
                    return Err(format!("{name}[{i}] is not an object"));
                };
                let mut row = Vec::with_capacity(cols.len());
                for (c, v) in cols {
                    row.push((c, v.into_value()));
                }
                rows.push(Row(row));
            }
            Ok(rows)
        }
        Orient::Columns => {
            let Node::Map(cols) = frame else {
                return Err(format!("{name} is not an object (orient columns)"));
            };
            let mut rows: Vec<Row> = Vec::new();
            let mut first: Option<(String, usize)> = None;
            for (c, v) in cols {
                let Node::Seq(values) = v else {
                    return Err(format!("{name}.{c} is not an array"));
                };
                match &first {
                    None => {
                        rows.resize_with(values.len(), || Row(Vec::new()));
                        first = Some((c.clone(), values.len()));
                    }
                    Some((f, n)) if *n != values.len() => {
                        return Err(format!(
                            "{name}.{c} has {} values, {name}.{f} {n}",
                            values.len()
                        ))
                    }
                    Some(_) => {}
                }
                for (row, v) in rows.iter_mut().zip(values) {
                    row.0.push((c.clone(), v.into_value()));
                }
            }
            Ok(rows)
        }
        Orient::Split => {
            let mut frame = frame;
            if !matches!(frame, Node::Map(_)) {
                return Err(format!("{name} is not an object (orient split)"));
            }
            let mut columns = Vec::new();
            let names_ok = match frame.member("columns") {
                Some(Node::Seq(names)) => names.iter().all(|c| match c {
                    Node::Leaf(Value::String(c)) => {
                        columns.push(c.clone());
                        true
                    }
                    _ => false,
                }),
                _ => false,
            };
            if !names_ok {
                return Err(format!("{name}.columns is not an array of column names"));
            }
            let data = frame.take("/data").unwrap_or(Node::Leaf(Value::Null));
            named(&columns, data, &format!("{name}.data"))
        }
        Orient::Values(columns) => named(columns, frame, name),
    }
}

/// Rows written as arrays of cells, the columns named apart.
fn named(columns: &[String], rows: Node, name: &str) -> Result<Vec<Row>, String> {
    let Node::Seq(items) = rows else {
        return Err(format!("{name} is not an array of rows"));
    };
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Node::Seq(cells) = item else {
            return Err(format!("{name}[{i}] is not an array"));
        };
        if cells.len() != columns.len() {
            return Err(format!(
                "{name}[{i}] has {} values for {} columns",
                cells.len(),
                columns.len()
            ));
        }
        let mut row = Vec::with_capacity(cells.len());
        for (c, v) in columns.iter().zip(cells) {
            row.push((c.clone(), v.into_value()));
        }
        rows.push(Row(row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;
