use super::*;

const MINIMAL: &str = r#"{"rust_weight_bp": 1000,
  "backends": {"python": {"cluster": "py", "authority": "py.local"},
               "rust": {"cluster": "rs", "authority": "rs.local:8080"}}}"#;

fn with(patch: &str) -> String {
    // Inserts top-level fields into MINIMAL.
    format!("{{{patch}, {}", &MINIMAL[1..])
}

fn error_of(json: &str) -> String {
    match parse(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.0,
    }
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = parse(MINIMAL.as_bytes()).unwrap();
    assert_eq!(c.routing_header, "x-nd-backend");
    assert_eq!(c.fallback_header, "x-nd-fallback");
    assert_eq!(c.rust_weight_bp, 1000);
    assert_eq!(c.sticky_header, None);
    assert_eq!(c.override_header, None);
    assert_eq!(c.target(Backend::Rust).cluster, "rs");
    assert_eq!(c.target(Backend::Python).authority, "py.local");
    let b = c.breaker.unwrap();
    assert_eq!(
        (
            b.failure_threshold,
            b.recovery_ms,
            b.half_open_max_probes,
            b.half_open_successes
        ),
        (5, 10_000, 1, 1)
    );
    assert_eq!(c.both_open, BothOpen::FailOpen);
    assert_eq!(c.shadow.share_bp, 0);
    assert_eq!(c.shadow.direction, ShadowDirection::Both);
    assert_eq!(c.shadow.path_prefix, "/predict");
    assert_eq!(c.shadow.max_body_bytes, 65536);
    assert_eq!(
        c.shadow.strip_headers,
        vec!["authorization", "cookie", "proxy-authorization"]
    );
}

#[test]
fn strip_headers_are_validated_and_lowercased() {
    let c =
        parse(with(r#""shadow": {"strip_headers": ["X-Api-Key", "Cookie"]}"#).as_bytes()).unwrap();
    assert_eq!(c.shadow.strip_headers, vec!["x-api-key", "cookie"]);
    let none = parse(with(r#""shadow": {"strip_headers": []}"#).as_bytes()).unwrap();
    assert!(none.shadow.strip_headers.is_empty());
}

#[test]
fn shipped_example_is_valid() {
    let c = parse(include_bytes!("../../config.example.json")).unwrap();
    assert_eq!(c.rust_weight_bp, 2500);
    assert_eq!(c.sticky_header.as_deref(), Some("x-user-id"));
    assert_eq!(c.shadow.direction, ShadowDirection::PythonToRust);
    assert!(c
        .target(Backend::Rust)
        .cluster
        .starts_with("outbound|8080||"));
}

#[test]
fn header_names_are_lowercased_and_override_needs_enabling() {
    let c = parse(
        with(r#""sticky_header": "X-User-Id", "override": {"header": "X-Force"}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(c.sticky_header.as_deref(), Some("x-user-id"));
    assert_eq!(c.override_header, None);
    let c =
        parse(with(r#""override": {"enabled": true, "header": "X-Force"}"#).as_bytes()).unwrap();
    assert_eq!(c.override_header.as_deref(), Some("x-force"));
    let c = parse(with(r#""sticky_header": """#).as_bytes()).unwrap();
    assert_eq!(c.sticky_header, None);
}

#[test]
fn breaker_can_be_disabled_and_both_open_rejects() {
    let c =
        parse(with(r#""breaker": {"enabled": false, "both_open": "reject"}"#).as_bytes()).unwrap();
    assert!(c.breaker.is_none());
    assert_eq!(c.both_open, BothOpen::Reject);
}

#[test]
fn errors_say_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("not json", "invalid plugin configuration JSON"),
        ("[]", "the plugin configuration must be a JSON object"),
        (
            r#"{"backends": {"python": {"cluster": "a", "authority": "a"}, "rust": {"cluster": "b", "authority": "b"}}}"#,
            "missing field `rust_weight_bp`",
        ),
        (
            &with(r#""rust_weigth_bp": 5"#),
            "unknown field `rust_weigth_bp`",
        ),
        (&with(r#""shadow": {"share": 5}"#), "unknown field `share`"),
        (
            r#"{"rust_weight_bp": 10001, "backends": {"python": {"cluster": "a", "authority": "a"}, "rust": {"cluster": "b", "authority": "b"}}}"#,
            "rust_weight_bp: 10001 is outside 0..=10000",
        ),
        (
            r#"{"rust_weight_bp": -1, "backends": {}}"#,
            "rust_weight_bp: -1 is not a non-negative integer",
        ),
        (
            r#"{"rust_weight_bp": 2.5, "backends": {}}"#,
            "rust_weight_bp: 2.5 is not a non-negative integer",
        ),
        (
            &with(r#""breaker": {"enabled": "yes"}"#),
            "breaker.enabled: \"yes\" is not true or false",
        ),
        (&with(r#""shadow": []"#), "shadow must be a JSON object"),
        (
            &with(r#""routing_header": 7"#),
            "routing_header: 7 is not a string",
        ),
        (
            r#"{"rust_weight_bp": 1, "backends": {"python": {"cluster": "", "authority": "a"}, "rust": {"cluster": "b", "authority": "b"}}}"#,
            "backends.python.cluster must not be empty",
        ),
        (
            r#"{"rust_weight_bp": 1, "backends": {"python": {"cluster": "a", "authority": "a"}, "rust": {"cluster": "b", "authority": "b c"}}}"#,
            "backends.rust.authority",
        ),
        (
            r#"{"rust_weight_bp": 1, "backends": {"python": {"cluster": "a", "authority": "a"}}}"#,
            "missing field `backends.rust`",
        ),
        (
            &with(r#""routing_header": ":authority""#),
            "routing_header: \":authority\" is not a valid HTTP header name",
        ),
        (&with(r#""sticky_header": "x y""#), "sticky_header"),
        (
            &with(r#""sticky_header": "X-ND-Backend""#),
            "sticky_header must differ from routing_header",
        ),
        (
            &with(r#""override": {"enabled": true, "header": "x-nd-backend"}"#),
            "override.header must differ from routing_header",
        ),
        (
            &with(r#""breaker": {"failure_threshold": 0}"#),
            "breaker.failure_threshold: 0 is outside 1..=1000000",
        ),
        (
            &with(r#""breaker": {"recovery_ms": 0}"#),
            "breaker.recovery_ms",
        ),
        (
            &with(r#""breaker": {"half_open_max_probes": 0}"#),
            "breaker.half_open_max_probes",
        ),
        (
            &with(r#""breaker": {"both_open": "panic"}"#),
            "breaker.both_open: \"panic\" is not one of",
        ),
        (&with(r#""shadow": {"share_bp": 20000}"#), "shadow.share_bp"),
        (
            &with(r#""shadow": {"direction": "sideways"}"#),
            "shadow.direction",
        ),
        (
            &with(r#""shadow": {"path_prefix": "predict"}"#),
            "shadow.path_prefix",
        ),
        (
            &with(r#""shadow": {"max_body_bytes": 0}"#),
            "shadow.max_body_bytes: 0 is outside",
        ),
        (
            &with(r#""shadow": {"max_in_flight": 0}"#),
            "shadow.max_in_flight",
        ),
        (
            &with(r#""shadow": {"rel_tolerance": -1}"#),
            "shadow.rel_tolerance must be a finite number",
        ),
        (
            &with(r#""shadow": {"strip_headers": "authorization"}"#),
            "shadow.strip_headers must be a list",
        ),
        (
            &with(r#""shadow": {"strip_headers": [":path"]}"#),
            "shadow.strip_headers: \":path\" is not a valid HTTP header name",
        ),
        (
            &with(r#""shadow": {"strip_headers": [7]}"#),
            "shadow.strip_headers: 7 is not a string",
        ),
    ];
    for (json, want) in cases {
        let got = error_of(json);
        assert!(
            got.contains(want),
            "config {json:?}: error {got:?} does not contain {want:?}"
        );
    }
}

#[test]
fn backend_header_values_parse_loosely_but_only_two_names() {
    assert_eq!(Backend::parse(b"rust"), Some(Backend::Rust));
    assert_eq!(Backend::parse(b" Python "), Some(Backend::Python));
    assert_eq!(Backend::parse(b"RUST"), Some(Backend::Rust));
    assert_eq!(Backend::parse(b"go"), None);
    assert_eq!(Backend::parse(b""), None);
    assert_eq!(Backend::parse(&[0xff, 0xfe]), None);
    for b in Backend::ALL {
        assert_eq!(b.other().other(), b);
        assert_eq!(Backend::parse(b.as_str().as_bytes()), Some(b));
    }
}

fn answer_of(answer: &str) -> crate::compare::AnswerShape {
    parse(with(&format!(r#""shadow": {{"answer": {answer}}}"#)).as_bytes())
        .unwrap()
        .shadow
        .answer
}

#[test]
fn answer_shape_defaults_to_the_contract_and_explicit_defaults_are_the_default() {
    use crate::compare::AnswerShape;
    let c = parse(MINIMAL.as_bytes()).unwrap();
    assert_eq!(c.shadow.answer, AnswerShape::default());
    assert!(c.shadow.answer.is_default());
    for same in [
        "{}",
        "null",
        r#"{"at": "/predictions", "orient": "records", "model_at": "/model"}"#,
        r#"{"at": null, "id": null, "time": null}"#,
    ] {
        assert!(answer_of(same).is_default(), "{same}");
    }
    // Naming the default columns makes them required: no longer the default shape.
    assert!(!answer_of(r#"{"id": "unique_id", "time": "ds"}"#).is_default());
}

#[test]
fn answer_shape_reads_every_field() {
    use crate::compare::{AnswerShape, Orient};
    let a = answer_of(
        r#"{"at": "/forecast", "orient": "values", "columns": ["series", "timestamp", "y_hat"],
            "id": "series", "time": "timestamp", "model_at": "/meta/model"}"#,
    );
    assert_eq!(
        a,
        AnswerShape {
            at: "/forecast".into(),
            orient: Orient::Values(vec!["series".into(), "timestamp".into(), "y_hat".into()]),
            id: Some("series".into()),
            time: Some("timestamp".into()),
            model_at: "/meta/model".into(),
        }
    );
    assert_eq!(
        answer_of(r#"{"orient": "columns"}"#).orient,
        Orient::Columns
    );
    assert_eq!(answer_of(r#"{"orient": "list"}"#).orient, Orient::Columns);
    assert_eq!(answer_of(r#"{"orient": "split"}"#).orient, Orient::Split);
    let bare = answer_of(r#"{"at": "", "model_at": ""}"#);
    assert_eq!((bare.at.as_str(), bare.model_at.as_str()), ("", ""));
    assert_eq!(answer_of(r#"{"at": "/a~1b/0"}"#).at, "/a~1b/0");
}

#[test]
fn answer_shape_errors_name_the_key() {
    let shadow = |answer: &str| with(&format!(r#""shadow": {{"answer": {answer}}}"#));
    let cases: &[(&str, &str)] = &[
        (
            r#"{"orinet": "records"}"#,
            "unknown field `orinet` in shadow.answer, expected one of: at, orient, columns, id, time, model_at",
        ),
        (r#"[]"#, "shadow.answer must be a JSON object"),
        (
            r#"{"orient": "table"}"#,
            "shadow.answer.orient: \"table\" is not one of \"records\", \"columns\", \"list\", \"split\", \"values\"",
        ),
        (r#"{"orient": 1}"#, "shadow.answer.orient: 1 is not a string"),
        (
            r#"{"at": "forecast"}"#,
            "shadow.answer.at: \"forecast\" is not a JSON pointer",
        ),
        (
            r#"{"at": "/a~2"}"#,
            "shadow.answer.at: \"/a~2\" is not a JSON pointer",
        ),
        (
            r#"{"model_at": "model"}"#,
            "shadow.answer.model_at: \"model\" is not a JSON pointer",
        ),
        (
            r#"{"orient": "values"}"#,
            "shadow.answer.orient: \"values\" needs the column names in shadow.answer.columns",
        ),
        (
            r#"{"orient": "records", "columns": ["a", "b"]}"#,
            "shadow.answer.columns: only orient \"values\" names its columns",
        ),
        (
            r#"{"columns": ["a", "b"]}"#,
            "shadow.answer.columns: only orient \"values\"",
        ),
        (
            r#"{"orient": "values", "columns": []}"#,
            "shadow.answer.columns must be a non-empty list of column names",
        ),
        (
            r#"{"orient": "values", "columns": ["a", 1]}"#,
            "shadow.answer.columns must be a non-empty list",
        ),
        (
            r#"{"orient": "values", "columns": ["a", "b", "a"]}"#,
            "shadow.answer.columns: \"a\" appears twice",
        ),
        (
            r#"{"orient": "values", "columns": ["a", "b"], "id": "series"}"#,
            "shadow.answer.id: \"series\" is not one of shadow.answer.columns",
        ),
        (
            r#"{"orient": "values", "columns": ["a", "b"], "time": "c"}"#,
            "shadow.answer.time: \"c\" is not one of shadow.answer.columns",
        ),
        (r#"{"id": 3}"#, "shadow.answer.id: 3 is not a string"),
        (r#"{"time": ""}"#, "shadow.answer.time must not be empty"),
        (
            r#"{"id": "t", "time": "t"}"#,
            "shadow.answer.time must differ from shadow.answer.id",
        ),
        (
            r#"{"at": ""}"#,
            "shadow.answer.model_at: a bare answer (at \"\") has no place for the model name",
        ),
    ];
    for (answer, want) in cases {
        let got = error_of(&shadow(answer));
        assert!(
            got.contains(want),
            "answer {answer}: error {got:?} does not contain {want:?}"
        );
    }
}

#[test]
fn documented_answer_examples_are_valid() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Answer shapes")
        .nth(1)
        .and_then(|s| s.split("```jsonc").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README: Answer shapes has a jsonc block");
    let code: String = section
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let examples: Vec<&str> = code.split("\"answer\":").skip(1).collect();
    assert_eq!(examples.len(), 4, "one example per orient");
    let mut orients = Vec::new();
    for e in examples {
        let a = answer_of(e.trim());
        assert!(!a.is_default());
        orients.push(format!("{:?}", a.orient));
    }
    assert_eq!(orients[..3], ["Records", "Columns", "Split"]);
    assert!(orients[3].starts_with("Values"));
}
