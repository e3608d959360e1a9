//! Plugin configuration: the JSON schema, its defaults, and its validation.
//!
//! `parse` is the only way to get a [`Config`]: the root context calls it in
//! `on_configure` and refuses the configuration (with the error's text in the
//! log) when it fails, so a request never meets an invalid configuration.

use crate::breaker::BreakerConfig;
use crate::compare::{AnswerShape, Orient};
use serde_json::{Map, Value};
use std::fmt;

pub use crate::backend::Backend;

/// Where a backend is reached: the route selects it by the routing header;
/// shadow calls (`dispatch_http_call`) go straight to `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTarget {
    /// Envoy cluster name (Istio: `outbound|PORT||SERVICE.NAMESPACE.svc.cluster.local`).
    pub cluster: String,
    /// `:authority` of shadow requests.
    pub authority: String,
}

/// What to do when both circuits are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BothOpen {
    /// Send the request to the backend the split chose anyway.
    FailOpen,
    /// Answer 503 from the filter.
    Reject,
}

/// Which primaries are mirrored to the other backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowDirection {
    Both,
    PythonToRust,
    RustToPython,
}

impl ShadowDirection {
    pub fn mirrors(self, primary: Backend) -> bool {
        match self {
            ShadowDirection::Both => true,
            ShadowDirection::PythonToRust => primary == Backend::Python,
            ShadowDirection::RustToPython => primary == Backend::Rust,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShadowConfig {
    /// Share of eligible requests mirrored, in basis points (0 = off).
    pub share_bp: u32,
    pub direction: ShadowDirection,
    /// Only requests whose `:path` starts with this are mirrored.
    pub path_prefix: String,
    /// Request and response bodies over this size are not mirrored or compared.
    pub max_body_bytes: usize,
    pub timeout_ms: u64,
    /// Comparisons waiting for their second answer, per Envoy (bounded memory).
    pub max_in_flight: usize,
    pub abs_tolerance: f64,
    pub rel_tolerance: f64,
    /// Request headers never copied to shadow requests (lowercase): the
    /// other backend must not receive the client's credentials.
    pub strip_headers: Vec<String>,
    /// Where 2xx answers hold their rows (the services' API profile).
    pub answer: AnswerShape,
}

/// Credentials stripped from shadow requests unless configured otherwise.
pub const DEFAULT_STRIP_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Request header the filter always sets to `python` or `rust`; routes match on it.
    pub routing_header: String,
    /// Response header set when a request went to the other backend: `<from>-><to>`.
    pub fallback_header: String,
    /// Share of traffic sent to Rust, in basis points (0..=10000).
    pub rust_weight_bp: u32,
    /// Header whose value pins a client to one backend (e.g. `x-user-id`).
    pub sticky_header: Option<String>,
    /// Header that forces the backend, only when enabled (testing).
    pub override_header: Option<String>,
    /// Indexed by [`Backend::index`].
    pub backends: [BackendTarget; 2],
    /// `None` when the circuit breaker is disabled.
    pub breaker: Option<BreakerConfig>,
    pub both_open: BothOpen,
    pub shadow: ShadowConfig,
}

impl Config {
    pub fn target(&self, backend: Backend) -> &BackendTarget {
        &self.backends[backend.index()]
    }
}

/// Why a configuration was refused, in words for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const DEFAULT_ROUTING_HEADER: &str = "x-nd-backend";
pub const DEFAULT_FALLBACK_HEADER: &str = "x-nd-fallback";
pub const DEFAULT_OVERRIDE_HEADER: &str = "x-nd-override";
pub const MAX_BODY_CAP: usize = 16 << 20;

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Validates an HTTP header name (RFC 9110 token) and lowercases it, as
/// Envoy stores header names lowercased.
fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return err(format!(
            "{field}: {name:?} is not a valid HTTP header name (pseudo-headers are not allowed)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn in_range<T: PartialOrd + fmt::Display>(
    field: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, ConfigError> {
    if v < lo || v > hi {
        return err(format!("{field}: {v} is outside {lo}..={hi}"));
    }
    Ok(v)
}

fn tolerance(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || v < 0.0 {
        // No float formatting: it would add kilobytes to the module for one message.
        return err(format!("{field} must be a finite number >= 0"));
    }
    Ok(v)
}

// The JSON form is read from a `serde_json::Value` by hand rather than with
// serde's derive: the derived deserializers and the float formatting their
// error messages pull in cost ~30 KB of the ~300 KB module budget. Every
// object refuses unknown fields so a typo is an error, not an ignored setting.

/// One JSON object of the configuration, with its path for error messages.
struct Obj<'a> {
    path: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(path: &'static str, v: &'a Value, allowed: &[&str]) -> Result<Obj<'a>, ConfigError> {
        let Some(map) = v.as_object() else {
            return err(format!("{} must be a JSON object", Self::name(path)));
        };
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return err(format!(
                "unknown field `{k}` in {}, expected one of: {}",
                Self::name(path),
                allowed.join(", ")
            ));
        }
        Ok(Obj { path, map })
    }

    fn name(path: &str) -> &str {
        if path.is_empty() {
            "the plugin configuration"
        } else {
            path
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; `None` when absent or null (then the default applies).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError(format!("missing field `{}`", self.field(key))))
    }

    fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => self.as_u64(key, v),
        }
    }

    fn as_u64(&self, key: &str, v: &Value) -> Result<u64, ConfigError> {
        v.as_u64().ok_or_else(|| {
            ConfigError(format!(
                "{}: {v} is not a non-negative integer",
                self.field(key)
            ))
        })
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| ConfigError(format!("{}: {v} is not a number", self.field(key)))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                ConfigError(format!("{}: {v} is not true or false", self.field(key)))
            }),
        }
    }

    fn str_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(v) => self.as_str(key, v),
        }
    }

    fn as_str(&self, key: &str, v: &Value) -> Result<String, ConfigError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| ConfigError(format!("{}: {v} is not a string", self.field(key))))
    }

    /// An integer field bounded to `lo..=hi`.
    fn bounded(
        &self,
        key: &str,
        default: Option<u64>,
        lo: u64,
        hi: u64,
    ) -> Result<u64, ConfigError> {
        let v = match default {
            Some(d) => self.u64_or(key, d)?,
            None => self.as_u64(key, self.required(key)?)?,
        };
        in_range(&self.field(key), v, lo, hi)
    }

    /// One of a fixed set of strings.
    fn choice<T: Copy>(
        &self,
        key: &str,
        default: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let v = self.str_or(key, default)?;
        match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => Ok(*t),
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                err(format!(
                    "{}: {v:?} is not one of {}",
                    self.field(key),
                    names.join(", ")
                ))
            }
        }
    }

    fn object(
        &self,
        key: &'static str,
        path: &'static str,
        allowed: &[&str],
    ) -> Result<Option<Obj<'a>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(path, v, allowed).map(Some),
        }
    }
}

fn target(
    backends: &Obj<'_>,
    name: &'static str,
    path: &'static str,
) -> Result<BackendTarget, ConfigError> {
    let t = Obj::new(path, backends.required(name)?, &["cluster", "authority"])?;
    let cluster = t.as_str("cluster", t.required("cluster")?)?;
    let authority = t.as_str("authority", t.required("authority")?)?;
    if cluster.trim().is_empty() {
        return err(format!("{path}.cluster must not be empty"));
    }
    if authority.trim().is_empty() || authority.chars().any(|c| c.is_ascii_whitespace()) {
        return err(format!(
            "{path}.authority {authority:?} must be a non-empty host[:port]"
        ));
    }
    Ok(BackendTarget { cluster, authority })
}

const TOP: [&str; 8] = [
    "routing_header",
    "fallback_header",
    "rust_weight_bp",
    "sticky_header",
    "override",
    "backends",
    "breaker",
    "shadow",
];
const BREAKER: [&str; 6] = [
    "enabled",
    "failure_threshold",
    "recovery_ms",
    "half_open_max_probes",
    "half_open_successes",
    "both_open",
];
const SHADOW: [&str; 10] = [
    "share_bp",
    "direction",
    "path_prefix",
    "max_body_bytes",
    "timeout_ms",
    "max_in_flight",
    "abs_tolerance",
    "rel_tolerance",
    "strip_headers",
    "answer",
];
const ANSWER: [&str; 6] = ["at", "orient", "columns", "id", "time", "model_at"];

/// `shadow.strip_headers`: a list of header names, defaulting to the
/// credentials in [`DEFAULT_STRIP_HEADERS`]; `[]` strips nothing.
fn strip_headers(s: &Obj<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(v) = s.get("strip_headers") else {
        return Ok(DEFAULT_STRIP_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect());
    };
    let Some(items) = v.as_array() else {
        return err("shadow.strip_headers must be a list of header names");
    };
    if items.len() > 64 {
        return err("shadow.strip_headers: at most 64 header names");
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) => header_name("shadow.strip_headers", name),
            None => err(format!("shadow.strip_headers: {item} is not a string")),
        })
        .collect()
}

/// A JSON pointer field: `""` (the whole body) or starting with `/`, every
/// `~` escaping `0` or `1` (RFC 6901).
fn pointer(a: &Obj<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let p = a.str_or(key, default)?;
    let b = p.as_bytes();
    let escapes_ok = b
        .iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')));
    if !(p.is_empty() || p.starts_with('/')) || !escapes_ok {
        return err(format!(
            "{}: {p:?} is not a JSON pointer (\"\" for the whole body, else starting with '/')",
            a.field(key)
        ));
    }
    Ok(p)
}

/// A column name field, absent or null for the default rule.
fn column(a: &Obj<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match a.get(key) {
        None => Ok(None),
        Some(v) => match a.as_str(key, v)? {
            c if c.is_empty() => err(format!("{} must not be empty", a.field(key))),
            c => Ok(Some(c)),
        },
    }
}

/// `shadow.answer`: the answers' shape; absent: the default contract's.
fn answer(s: &Obj<'_>) -> Result<AnswerShape, ConfigError> {
    let Some(a) = s.object("answer", "shadow.answer", &ANSWER)? else {
        return Ok(AnswerShape::default());
    };
    #[derive(Clone, Copy)]
    enum Kind {
        Records,
        Columns,
        Split,
        Values,
    }
    let kind = a.choice(
        "orient",
        "records",
        &[
            ("records", Kind::Records),
            ("columns", Kind::Columns),
            ("list", Kind::Columns),
            ("split", Kind::Split),
            ("values", Kind::Values),
        ],
    )?;
    let columns = match a.get("columns") {
        None => None,
        Some(v) => {
            let mut names = Vec::new();
            let strings = v.as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|c| c.as_str().map(|c| names.push(c.to_string())).is_some())
            });
            if !strings || names.is_empty() {
                return err("shadow.answer.columns must be a non-empty list of column names");
            }
            Some(names)
        }
    };
    let orient = match (kind, columns) {
        (Kind::Values, Some(c)) => {
            if let Some(dup) = (0..c.len()).find_map(|i| c[..i].contains(&c[i]).then_some(&c[i])) {
                return err(format!("shadow.answer.columns: {dup:?} appears twice"));
            }
            Orient::Values(c)
        }
        (Kind::Values, None) => {
            return err(
                "shadow.answer.orient: \"values\" needs the column names in shadow.answer.columns",
            )
        }
        (_, Some(_)) => {
            return err("shadow.answer.columns: only orient \"values\" names its columns")
        }
        (Kind::Records, None) => Orient::Records,
        (Kind::Columns, None) => Orient::Columns,
        (Kind::Split, None) => Orient::Split,
    };
    let id = column(&a, "id")?;
    let time = column(&a, "time")?;
    if id.is_some() && id == time {
        return err("shadow.answer.time must differ from shadow.answer.id");
    }
    if let Orient::Values(names) = &orient {
        for (key, c) in [("id", &id), ("time", &time)] {
            if let Some(c) = c.as_ref().filter(|c| !names.contains(c)) {
                return err(format!(
                    "shadow.answer.{key}: {c:?} is not one of shadow.answer.columns"
                ));
            }
        }
    }
    let at = pointer(&a, "at", "/predictions")?;
    let model_at = pointer(&a, "model_at", "/model")?;
    if at.is_empty() && !model_at.is_empty() {
        return err(
            "shadow.answer.model_at: a bare answer (at \"\") has no place for the model name: set model_at to \"\"",
        );
    }
    Ok(AnswerShape {
        at,
        orient,
        id,
        time,
        model_at,
    })
}

/// Parses and validates the plugin configuration (JSON).
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return err("the plugin configuration is empty; it must be a JSON object");
    }
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| ConfigError(format!("invalid plugin configuration JSON: {e}")))?;
    let top = Obj::new("", &json, &TOP)?;

    let routing_header = header_name(
        "routing_header",
        &top.str_or("routing_header", DEFAULT_ROUTING_HEADER)?,
    )?;
    let fallback_header = header_name(
        "fallback_header",
        &top.str_or("fallback_header", DEFAULT_FALLBACK_HEADER)?,
    )?;
    let rust_weight_bp = top.bounded("rust_weight_bp", None, 0, 10_000)? as u32;
    let sticky_header = match top.str_or("sticky_header", "")?.as_str() {
        "" => None,
        h => Some(header_name("sticky_header", h)?),
    };
    let override_header = match top.object("override", "override", &["enabled", "header"])? {
        Some(o) if o.bool_or("enabled", false)? => Some(header_name(
            "override.header",
            &o.str_or("header", DEFAULT_OVERRIDE_HEADER)?,
        )?),
        _ => None,
    };
    for (field, h) in [
        ("sticky_header", sticky_header.as_ref()),
        ("override.header", override_header.as_ref()),
    ] {
        if h == Some(&routing_header) {
            return err(format!(
                "{field} must differ from routing_header {routing_header:?}: the routing header is always overwritten"
            ));
        }
    }
    let backends = Obj::new("backends", top.required("backends")?, &["python", "rust"])?;
    let backends = [
        target(&backends, "python", "backends.python")?,
        target(&backends, "rust", "backends.rust")?,
    ];

    let empty = Value::Object(Map::new());
    let b = Obj::new("breaker", top.get("breaker").unwrap_or(&empty), &BREAKER)?;
    let both_open = b.choice(
        "both_open",
        "fail_open",
        &[
            ("fail_open", BothOpen::FailOpen),
            ("reject", BothOpen::Reject),
        ],
    )?;
    let breaker = if b.bool_or("enabled", true)? {
        Some(BreakerConfig {
            failure_threshold: b.bounded("failure_threshold", Some(5), 1, 1_000_000)? as u32,
            recovery_ms: b.bounded("recovery_ms", Some(10_000), 1, 86_400_000)?,
            half_open_max_probes: b.bounded("half_open_max_probes", Some(1), 1, 10_000)? as u32,
            half_open_successes: b.bounded("half_open_successes", Some(1), 1, 10_000)? as u32,
        })
    } else {
        None
    };

    let s = Obj::new("shadow", top.get("shadow").unwrap_or(&empty), &SHADOW)?;
    let direction = s.choice(
        "direction",
        "both",
        &[
            ("both", ShadowDirection::Both),
            ("python_to_rust", ShadowDirection::PythonToRust),
            ("rust_to_python", ShadowDirection::RustToPython),
        ],
    )?;
    let path_prefix = s.str_or("path_prefix", "/predict")?;
    if !path_prefix.starts_with('/') {
        return err(format!(
            "shadow.path_prefix {path_prefix:?} must start with '/'"
        ));
    }
    let shadow = ShadowConfig {
        share_bp: s.bounded("share_bp", Some(0), 0, 10_000)? as u32,
        direction,
        path_prefix,
        max_body_bytes: s.bounded("max_body_bytes", Some(64 * 1024), 1, MAX_BODY_CAP as u64)?
            as usize,
        timeout_ms: s.bounded("timeout_ms", Some(5_000), 1, 600_000)?,
        max_in_flight: s.bounded("max_in_flight", Some(64), 1, 100_000)? as usize,
        abs_tolerance: tolerance("shadow.abs_tolerance", s.f64_or("abs_tolerance", 1e-6)?)?,
        rel_tolerance: tolerance("shadow.rel_tolerance", s.f64_or("rel_tolerance", 1e-4)?)?,
        strip_headers: strip_headers(&s)?,
        answer: answer(&s)?,
    };

    Ok(Config {
        routing_header,
        fallback_header,
        rust_weight_bp,
        sticky_header,
        override_header,
        backends,
        breaker,
        both_open,
        shadow,
    })
}

#[cfg(test)]
mod tests;
