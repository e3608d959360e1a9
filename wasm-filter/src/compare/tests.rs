use super::*;

const TOL: Tolerance = Tolerance {
    abs: 1e-6,
    rel: 1e-4,
};

fn ok(body: &str) -> Answer<'_> {
    Answer {
        status: 200,
        body: body.as_bytes(),
    }
}

const BASE: &str = r#"{"model": "air", "predictions": [
  {"unique_id": "s1", "ds": "2024-02-29T00:00:00", "MLP": 118.3, "NHITS": 120.0},
  {"unique_id": "s1", "ds": "2024-03-31T00:00:00", "MLP": 119.0, "NHITS": 121.5},
  {"unique_id": "s2", "ds": "2024-02-29T00:00:00", "MLP": 0.0, "NHITS": -3.25}]}"#;

fn mismatch_field(o: &Outcome) -> &str {
    match o {
        Outcome::Mismatch { field, .. } => field,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn identical_answers_match_with_zero_divergence() {
    assert_eq!(
        compare(ok(BASE), ok(BASE), TOL),
        Outcome::Match { max_rel: 0.0 }
    );
}

#[test]
fn reordered_rows_and_keys_match() {
    let shuffled = r#"{"predictions": [
      {"NHITS": -3.25, "MLP": 0.0, "ds": "2024-02-29T00:00:00", "unique_id": "s2"},
      {"unique_id": "s1", "ds": "2024-03-31T00:00:00", "NHITS": 121.5, "MLP": 119.0},
      {"MLP": 118.3, "unique_id": "s1", "ds": "2024-02-29T00:00:00", "NHITS": 120}], "model": "air"}"#;
    assert_eq!(
        compare(ok(BASE), ok(shuffled), TOL),
        Outcome::Match { max_rel: 0.0 }
    );
}

#[test]
fn differences_inside_tolerance_match_and_report_the_largest() {
    // 118.3 -> 118.30118 is 1e-5 relative (inside rel_tol 1e-4).
    let near = BASE.replace("118.3,", "118.30118,");
    match compare(ok(BASE), ok(&near), TOL) {
        Outcome::Match { max_rel } => assert!((max_rel - 1e-5).abs() < 1e-7, "{max_rel}"),
        other => panic!("{other:?}"),
    }
    // 0 -> 5e-7 is relative difference 1, yet inside the absolute tolerance.
    let tiny = BASE.replace("\"MLP\": 0.0", "\"MLP\": 5e-7");
    assert_eq!(
        compare(ok(BASE), ok(&tiny), TOL),
        Outcome::Match { max_rel: 1.0 }
    );
}

#[test]
fn outside_tolerance_is_a_mismatch_naming_the_first_field() {
    let far = BASE.replace("121.5", "121.6").replace("-3.25", "-3.5");
    match compare(ok(BASE), ok(&far), TOL) {
        Outcome::Mismatch {
            field,
            detail,
            max_rel,
        } => {
            assert_eq!(
                field,
                "predictions[unique_id=s1,ds=2024-03-31T00:00:00].NHITS"
            );
            assert_eq!(detail, "primary 121.5 shadow 121.6 (rel 822 ppm)");
            assert!(
                (max_rel - 0.25 / 3.5).abs() < 1e-12,
                "max over all rows: {max_rel}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn absolute_tolerance_alone_can_accept() {
    let tol = Tolerance { abs: 0.2, rel: 0.0 };
    let far = BASE.replace("121.5", "121.6");
    assert!(matches!(
        compare(ok(BASE), ok(&far), tol),
        Outcome::Match { .. }
    ));
    let tol = Tolerance { abs: 0.0, rel: 0.0 };
    assert!(matches!(
        compare(ok(BASE), ok(&far), tol),
        Outcome::Mismatch { .. }
    ));
}

#[test]
fn missing_and_extra_columns_and_rows_are_mismatches() {
    let no_nhits = BASE.replace(", \"NHITS\": 121.5", "");
    assert_eq!(
        mismatch_field(&compare(ok(BASE), ok(&no_nhits), TOL)),
        "predictions[unique_id=s1,ds=2024-03-31T00:00:00].NHITS"
    );
    assert!(matches!(&compare(ok(&no_nhits), ok(BASE), TOL),
        Outcome::Mismatch { detail, .. } if detail == "column missing in primary"));
    let extra = BASE.replace("\"NHITS\": 120.0", "\"NHITS\": 120.0, \"LSTM\": 1.0");
    assert_eq!(
        mismatch_field(&compare(ok(BASE), ok(&extra), TOL)),
        "predictions[unique_id=s1,ds=2024-02-29T00:00:00].LSTM"
    );
    let fewer = r#"{"model": "air", "predictions": [
      {"unique_id": "s1", "ds": "2024-02-29T00:00:00", "MLP": 118.3, "NHITS": 120.0},
      {"unique_id": "s2", "ds": "2024-02-29T00:00:00", "MLP": 0.0, "NHITS": -3.25}]}"#;
    assert!(matches!(&compare(ok(BASE), ok(fewer), TOL),
        Outcome::Mismatch { field, detail, .. }
            if field == "predictions[unique_id=s1,ds=2024-03-31T00:00:00]" && detail == "row missing in shadow"));
}

#[test]
fn ids_and_ds_compare_exactly_by_type() {
    let a = r#"{"predictions": [{"unique_id": 1, "ds": 10, "MLP": 1.0}]}"#;
    let b = r#"{"predictions": [{"unique_id": "1", "ds": 10, "MLP": 1.0}]}"#;
    assert!(matches!(
        compare(ok(a), ok(b), TOL),
        Outcome::Mismatch { .. }
    ));
    assert!(matches!(compare(ok(a), ok(a), TOL), Outcome::Match { .. }));
    let c = r#"{"predictions": [{"unique_id": 1, "ds": 10, "MLP": 1}]}"#;
    assert!(
        matches!(compare(ok(a), ok(c), TOL), Outcome::Match { .. }),
        "1 and 1.0 are the same number"
    );
}

#[test]
fn model_name_must_agree() {
    let other = BASE.replace("\"air\"", "\"other\"");
    assert_eq!(mismatch_field(&compare(ok(BASE), ok(&other), TOL)), "model");
}

#[test]
fn non_number_values_must_be_equal() {
    let a = r#"{"predictions": [{"unique_id": "a", "ds": 1, "MLP": null}]}"#;
    let b = r#"{"predictions": [{"unique_id": "a", "ds": 1, "MLP": 2.0}]}"#;
    assert!(matches!(
        compare(ok(a), ok(b), TOL),
        Outcome::Mismatch { .. }
    ));
    assert!(matches!(compare(ok(a), ok(a), TOL), Outcome::Match { .. }));
}

#[test]
fn status_difference_comes_before_the_bodies() {
    let err = Answer {
        status: 500,
        body: br#"{"error": {"code": "internal_error", "message": "x"}}"#,
    };
    let o = compare(ok(BASE), err, TOL);
    assert!(
        matches!(&o, Outcome::Mismatch { field, detail, .. } if field == "status" && detail == "primary 200 shadow 500")
    );
}

#[test]
fn envoy_local_replies_are_errors_not_mismatches() {
    // What a shadow call returns on timeout or reset.
    let timeout = Answer {
        status: 504,
        body: b"upstream request timeout",
    };
    assert!(
        matches!(compare(ok(BASE), timeout, TOL), Outcome::Error(e) if e.starts_with("shadow body (status 504) is not JSON"))
    );
}

#[test]
fn non_json_bodies_are_errors() {
    assert!(
        matches!(compare(ok("<html>"), ok(BASE), TOL), Outcome::Error(e) if e.starts_with("primary body (status 200) is not JSON"))
    );
    assert!(
        matches!(compare(ok(BASE), ok(""), TOL), Outcome::Error(e) if e.starts_with("shadow body (status 200) is not JSON"))
    );
    assert!(matches!(
        compare(ok(BASE), ok("{\"predictions\": [1,"), TOL),
        Outcome::Error(_)
    ));
}

#[test]
fn malformed_primary_is_an_error_malformed_shadow_a_mismatch() {
    assert!(
        matches!(compare(ok("{}"), ok(BASE), TOL), Outcome::Error(e) if e.contains("no \"predictions\" array"))
    );
    assert_eq!(
        mismatch_field(&compare(ok(BASE), ok("{\"predictions\": {}}"), TOL)),
        "predictions"
    );
    let dup = r#"{"predictions": [{"unique_id": "a", "ds": 1}, {"unique_id": "a", "ds": 1}]}"#;
    assert!(
        matches!(compare(ok(BASE), ok(dup), TOL), Outcome::Mismatch { detail, .. } if detail.contains("repeats"))
    );
    let nokey = r#"{"predictions": [{"ds": 1}]}"#;
    assert!(
        matches!(compare(ok(nokey), ok(BASE), TOL), Outcome::Error(e) if e.contains("lacks unique_id"))
    );
}

#[test]
fn error_answers_compare_by_code_not_message() {
    let a = Answer {
        status: 422,
        body: br#"{"error": {"code": "empty_df", "message": "df is empty"}}"#,
    };
    let b = Answer {
        status: 422,
        body: br#"{"error": {"code": "empty_df", "message": "no rows in df"}}"#,
    };
    let c = Answer {
        status: 422,
        body: br#"{"error": {"code": "missing_column", "message": "df is empty"}}"#,
    };
    assert_eq!(compare(a, b, TOL), Outcome::Match { max_rel: 0.0 });
    assert_eq!(mismatch_field(&compare(a, c, TOL)), "error.code");
}

#[test]
fn rel_diff_and_within_edge_cases() {
    assert_eq!(rel_diff(0.0, 0.0), 0.0);
    assert_eq!(rel_diff(1.0, -1.0), 2.0);
    assert!(within(1e9, 1e9 + 1.0, TOL));
    assert!(!within(1.0, 1.001, TOL));
    assert!(within(0.0, 1e-7, TOL));
}

const CUSTOM: &str = r#"{"model": "air", "predictions": [
  {"airline": "a1", "month": "2024-01-31T00:00:00", "TiDE": 112.0, "TiDE-lo-80": 101.5},
  {"airline": "a1", "month": "2024-02-29T00:00:00", "TiDE": 118.25, "TiDE-lo-80": 104.0},
  {"airline": "a2", "month": "2024-01-31T00:00:00", "TiDE": 212.0, "TiDE-lo-80": 200.0}]}"#;

#[test]
fn custom_id_and_time_columns_key_the_rows() {
    // The bundle's id_col/time_col come first in each row, whatever their names.
    assert_eq!(
        compare(ok(CUSTOM), ok(CUSTOM), TOL),
        Outcome::Match { max_rel: 0.0 }
    );
    let reordered = r#"{"model": "air", "predictions": [
      {"airline": "a2", "month": "2024-01-31T00:00:00", "TiDE-lo-80": 200.0, "TiDE": 212.0},
      {"airline": "a1", "month": "2024-02-29T00:00:00", "TiDE": 118.25, "TiDE-lo-80": 104.0},
      {"airline": "a1", "month": "2024-01-31T00:00:00", "TiDE": 112.0, "TiDE-lo-80": 101.5}]}"#;
    assert!(matches!(
        compare(ok(CUSTOM), ok(reordered), TOL),
        Outcome::Match { .. }
    ));
    let off = CUSTOM.replace("104.0", "105.0");
    assert_eq!(
        mismatch_field(&compare(ok(CUSTOM), ok(&off), TOL)),
        "predictions[airline=a1,month=2024-02-29T00:00:00].TiDE-lo-80"
    );
    // Integer ids and stamps under custom names are keys too, compared exactly.
    let ints = r#"{"predictions": [{"store": 7, "week": 202401, "MLP": 1.5}, {"store": 7, "week": 202402, "MLP": 2.5}]}"#;
    let shifted = r#"{"predictions": [{"store": 7, "week": 202402, "MLP": 1.5}, {"store": 7, "week": 202403, "MLP": 2.5}]}"#;
    assert!(matches!(
        compare(ok(ints), ok(ints), TOL),
        Outcome::Match { .. }
    ));
    assert!(
        matches!(compare(ok(ints), ok(shifted), TOL), Outcome::Mismatch { detail, .. } if detail.starts_with("row missing"))
    );
}

#[test]
fn other_key_names_are_other_rows() {
    let default_names = CUSTOM
        .replace("\"airline\"", "\"unique_id\"")
        .replace("\"month\"", "\"ds\"");
    assert!(matches!(
        compare(ok(CUSTOM), ok(&default_names), TOL),
        Outcome::Mismatch { detail, .. } if detail.starts_with("row missing")
    ));
}
