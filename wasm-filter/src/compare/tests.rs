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

// ---------------------------------------------------------------- other answer shapes

/// A profile's shape: the frame at `/forecast`, keyed by `series` and `timestamp`.
fn shape(orient: Orient) -> AnswerShape {
    AnswerShape {
        at: "/forecast".into(),
        orient,
        id: Some("series".into()),
        time: Some("timestamp".into()),
        model_at: "/model".into(),
    }
}

fn values_orient() -> Orient {
    Orient::Values(vec![
        "series".into(),
        "timestamp".into(),
        "y_hat".into(),
        "lo".into(),
    ])
}

/// The same three rows in each orient, and again with the rows (and in the
/// object orients the columns) in another order.
fn orients() -> Vec<(AnswerShape, &'static str, &'static str)> {
    vec![
        (
            shape(Orient::Records),
            r#"{"model": "air", "forecast": [
              {"series": "a", "timestamp": "2024-01-31", "y_hat": 1.5, "lo": 1.0},
              {"series": "a", "timestamp": "2024-02-29", "y_hat": 2.5, "lo": 2.0},
              {"series": "b", "timestamp": "2024-01-31", "y_hat": -3.25, "lo": -4.0}]}"#,
            r#"{"forecast": [
              {"lo": -4.0, "y_hat": -3.25, "timestamp": "2024-01-31", "series": "b"},
              {"series": "a", "timestamp": "2024-02-29", "lo": 2.0, "y_hat": 2.5},
              {"timestamp": "2024-01-31", "series": "a", "y_hat": 1.5, "lo": 1}], "model": "air"}"#,
        ),
        (
            shape(Orient::Columns),
            r#"{"model": "air", "forecast": {
              "series": ["a", "a", "b"],
              "timestamp": ["2024-01-31", "2024-02-29", "2024-01-31"],
              "y_hat": [1.5, 2.5, -3.25],
              "lo": [1.0, 2.0, -4.0]}}"#,
            r#"{"model": "air", "forecast": {
              "lo": [-4.0, 2.0, 1.0],
              "timestamp": ["2024-01-31", "2024-02-29", "2024-01-31"],
              "series": ["b", "a", "a"],
              "y_hat": [-3.25, 2.5, 1.5]}}"#,
        ),
        (
            shape(Orient::Split),
            r#"{"model": "air", "forecast": {
              "columns": ["series", "timestamp", "y_hat", "lo"],
              "index": [0, 1, 2],
              "data": [["a", "2024-01-31", 1.5, 1.0], ["a", "2024-02-29", 2.5, 2.0], ["b", "2024-01-31", -3.25, -4.0]]}}"#,
            r#"{"model": "air", "forecast": {
              "data": [["b", -4.0, "2024-01-31", -3.25], ["a", 1.0, "2024-01-31", 1.5], ["a", 2.0, "2024-02-29", 2.5]],
              "index": [7, 3, 5],
              "columns": ["series", "lo", "timestamp", "y_hat"]}}"#,
        ),
        (
            shape(values_orient()),
            r#"{"model": "air", "forecast": [
              ["a", "2024-01-31", 1.5, 1.0], ["a", "2024-02-29", 2.5, 2.0], ["b", "2024-01-31", -3.25, -4.0]]}"#,
            r#"{"model": "air", "forecast": [
              ["b", "2024-01-31", -3.25, -4.0], ["a", "2024-02-29", 2.5, 2.0], ["a", "2024-01-31", 1.5, 1.0]]}"#,
        ),
    ]
}

#[test]
fn every_orient_matches_itself_and_its_rows_in_any_order() {
    for (shape, body, shuffled) in orients() {
        assert!(!shape.is_default());
        let o = &shape.orient;
        assert_eq!(
            compare_shaped(ok(body), ok(body), TOL, &shape),
            Outcome::Match { max_rel: 0.0 },
            "{o:?}"
        );
        assert_eq!(
            compare_shaped(ok(body), ok(shuffled), TOL, &shape),
            Outcome::Match { max_rel: 0.0 },
            "{o:?}"
        );
        assert_eq!(
            compare_shaped(ok(shuffled), ok(body), TOL, &shape),
            Outcome::Match { max_rel: 0.0 },
            "{o:?}"
        );
    }
}

#[test]
fn every_orient_catches_a_changed_number_and_names_its_row_and_column() {
    for (shape, body, shuffled) in orients() {
        let o = &shape.orient;
        for primary in [body, shuffled] {
            let off = body.replace("2.5", "2.6");
            assert_eq!(
                compare_shaped(ok(primary), ok(&off), TOL, &shape),
                Outcome::Mismatch {
                    field: "forecast[series=a,timestamp=2024-02-29].y_hat".into(),
                    detail: "primary 2.5 shadow 2.6 (rel 38462 ppm)".into(),
                    max_rel: rel_diff(2.5, 2.6),
                },
                "{o:?}"
            );
            // Inside the tolerance: a match reporting the difference.
            let near = body.replace("1.5,", "1.50001,");
            assert!(
                matches!(compare_shaped(ok(primary), ok(&near), TOL, &shape),
                Outcome::Match { max_rel } if max_rel > 0.0),
                "{o:?}"
            );
            let other_model = body.replace("\"air\"", "\"sea\"");
            assert_eq!(
                mismatch_field(&compare_shaped(ok(primary), ok(&other_model), TOL, &shape)),
                "model",
                "{o:?}"
            );
        }
    }
}

#[test]
fn rows_missing_in_either_side_are_named() {
    let (shape, body, _) = orients().swap_remove(3);
    let fewer = r#"{"model": "air", "forecast": [["a", "2024-01-31", 1.5, 1.0], ["b", "2024-01-31", -3.25, -4.0]]}"#;
    assert!(matches!(compare_shaped(ok(body), ok(fewer), TOL, &shape),
        Outcome::Mismatch { field, detail, .. }
            if field == "forecast[series=a,timestamp=2024-02-29]" && detail == "row missing in shadow"));
    assert!(matches!(compare_shaped(ok(fewer), ok(body), TOL, &shape),
        Outcome::Mismatch { detail, .. } if detail == "row missing in primary"));
}

#[test]
fn a_missing_id_or_time_column_is_an_error_in_the_primary_a_mismatch_in_the_shadow() {
    let shape = shape(Orient::Records);
    let good = r#"{"model": "m", "forecast": [{"series": "a", "timestamp": 1, "y": 1.0}]}"#;
    let no_id = r#"{"model": "m", "forecast": [{"unique_id": "a", "timestamp": 1, "y": 1.0}]}"#;
    let no_time = r#"{"model": "m", "forecast": [{"series": "a", "ds": 1, "y": 1.0}]}"#;
    assert_eq!(
        compare_shaped(ok(no_id), ok(good), TOL, &shape),
        Outcome::Error("primary body: forecast[0] lacks the id column \"series\"".into())
    );
    assert_eq!(
        compare_shaped(ok(good), ok(no_time), TOL, &shape),
        Outcome::Mismatch {
            field: "forecast".into(),
            detail: "shadow body: forecast[0] lacks the time column \"timestamp\"".into(),
            max_rel: 0.0,
        }
    );
    let (values, body, _) = orients().swap_remove(3);
    let short = body.replace(
        "[\"a\", \"2024-02-29\", 2.5, 2.0]",
        "[\"a\", \"2024-02-29\", 2.5]",
    );
    assert_eq!(
        compare_shaped(ok(&short), ok(body), TOL, &values),
        Outcome::Error("primary body: forecast[1] has 3 values for 4 columns".into())
    );
}

#[test]
fn malformed_frames_are_errors_in_the_primary_mismatches_in_the_shadow() {
    let (columns, body, _) = orients().swap_remove(1);
    let ragged = body.replace("\"lo\": [1.0, 2.0, -4.0]", "\"lo\": [1.0, 2.0]");
    assert_eq!(
        compare_shaped(ok(&ragged), ok(body), TOL, &columns),
        Outcome::Error("primary body: forecast.lo has 2 values, forecast.series 3".into())
    );
    assert_eq!(
        mismatch_field(&compare_shaped(ok(body), ok(&ragged), TOL, &columns)),
        "forecast"
    );
    let not_array = body.replace("\"lo\": [1.0, 2.0, -4.0]", "\"lo\": 1.0");
    assert!(
        matches!(compare_shaped(ok(&not_array), ok(body), TOL, &columns), Outcome::Error(e) if e.ends_with("forecast.lo is not an array"))
    );
    let (split, body, _) = orients().swap_remove(2);
    let long = body.replace(
        "[\"b\", \"2024-01-31\", -3.25, -4.0]",
        "[\"b\", \"2024-01-31\", -3.25, -4.0, 0]",
    );
    assert_eq!(
        compare_shaped(ok(&long), ok(body), TOL, &split),
        Outcome::Error("primary body: forecast.data[2] has 5 values for 4 columns".into())
    );
    let no_columns = r#"{"model": "air", "forecast": {"data": []}}"#;
    assert_eq!(
        compare_shaped(ok(no_columns), ok(body), TOL, &split),
        Outcome::Error("primary body: forecast.columns is not an array of column names".into())
    );
    // The frame missing or of the wrong kind, per orient.
    for (shape, body, _) in orients() {
        let elsewhere = body.replace("\"forecast\"", "\"prediction\"");
        assert!(
            matches!(compare_shaped(ok(&elsewhere), ok(body), TOL, &shape), Outcome::Error(e) if e == "primary body: no answer frame at \"/forecast\""),
            "{:?}",
            shape.orient
        );
        let scalar = r#"{"model": "air", "forecast": 3}"#;
        assert_eq!(
            mismatch_field(&compare_shaped(ok(body), ok(scalar), TOL, &shape)),
            "forecast",
            "{:?}",
            shape.orient
        );
    }
    let (records, body, _) = orients().swap_remove(0);
    assert!(
        matches!(compare_shaped(ok(r#"{"model": "air", "forecast": [1]}"#), ok(body), TOL, &records), Outcome::Error(e) if e.ends_with("forecast[0] is not an object"))
    );
}

#[test]
fn epoch_millisecond_stamps_compare_as_written() {
    // A bare records answer (pandas `to_json(orient="records")`), default key columns.
    let bare = AnswerShape {
        at: String::new(),
        orient: Orient::Records,
        id: None,
        time: None,
        model_at: String::new(),
    };
    let a = r#"[{"unique_id": "a", "ds": 1706659200000, "y": 1.0}, {"unique_id": "a", "ds": 1709164800000, "y": 2.0}]"#;
    let b = r#"[{"unique_id": "a", "ds": 1709164800000, "y": 2.0}, {"unique_id": "a", "ds": 1706659200000, "y": 1.0}]"#;
    assert_eq!(
        compare_shaped(ok(a), ok(b), TOL, &bare),
        Outcome::Match { max_rel: 0.0 }
    );
    let off = a.replace("1.0}", "1.5}");
    assert_eq!(
        mismatch_field(&compare_shaped(ok(a), ok(&off), TOL, &bare)),
        "body[unique_id=a,ds=1706659200000].y"
    );
    // One millisecond later, or the same number as text, is another row.
    for other in [
        a.replace("1706659200000", "1706659200001"),
        a.replace("1706659200000", "\"1706659200000\""),
    ] {
        assert!(
            matches!(compare_shaped(ok(a), ok(&other), TOL, &bare),
            Outcome::Mismatch { field, detail, .. }
                if field == "body[unique_id=a,ds=1706659200000]" && detail.starts_with("row missing in ")),
            "{other}"
        );
    }
}

#[test]
fn model_at_empty_ignores_the_model_and_model_at_a_pointer_reads_it_there() {
    let mut shape = shape(Orient::Records);
    shape.model_at = String::new();
    let a = r#"{"model": "air", "forecast": [{"series": "a", "timestamp": 1, "y": 1.0}]}"#;
    let b = r#"{"model": "sea", "forecast": [{"series": "a", "timestamp": 1, "y": 1.0}]}"#;
    let none = r#"{"forecast": [{"series": "a", "timestamp": 1, "y": 1.0}]}"#;
    for other in [b, none] {
        assert_eq!(
            compare_shaped(ok(a), ok(other), TOL, &shape),
            Outcome::Match { max_rel: 0.0 }
        );
    }
    shape.model_at = "/meta/model".into();
    let nested = |m: &str| {
        format!(
            r#"{{"meta": {{"model": {m}}}, "forecast": [{{"series": "a", "timestamp": 1, "y": 1.0}}]}}"#
        )
    };
    assert_eq!(
        compare_shaped(ok(&nested("\"air\"")), ok(&nested("\"air\"")), TOL, &shape),
        Outcome::Match { max_rel: 0.0 }
    );
    // The top-level "model" is not where this profile keeps it.
    assert_eq!(
        compare_shaped(ok(a), ok(b), TOL, &shape),
        Outcome::Match { max_rel: 0.0 }
    );
    assert_eq!(
        compare_shaped(ok(&nested("\"air\"")), ok(&nested("\"sea\"")), TOL, &shape),
        Outcome::Mismatch {
            field: "model".into(),
            detail: "primary \"air\" shadow \"sea\"".into(),
            max_rel: 0.0,
        }
    );
    // As in the default shape, one side without a model name differs.
    assert!(matches!(
        compare_shaped(ok(&nested("\"air\"")), ok(none), TOL, &shape),
        Outcome::Mismatch { field, detail, .. } if field == "model" && detail == "primary \"air\" shadow (none)"
    ));
}

#[test]
fn unnamed_key_columns_follow_the_default_rule_per_row() {
    let mut shape = shape(Orient::Records);
    shape.time = None;
    // `ds` when the row has it, else the first column other than the id.
    let with_ds = r#"{"model": "m", "forecast": [{"y": 1.0, "series": "a", "ds": 1}]}"#;
    let off = with_ds.replace("1.0", "2.0");
    assert_eq!(
        mismatch_field(&compare_shaped(ok(with_ds), ok(&off), TOL, &shape)),
        "forecast[series=a,ds=1].y"
    );
    let first_other = r#"{"model": "m", "forecast": [{"series": "a", "week": 3, "y": 1.0}]}"#;
    let off = first_other.replace("1.0", "2.0");
    assert_eq!(
        mismatch_field(&compare_shaped(ok(first_other), ok(&off), TOL, &shape)),
        "forecast[series=a,week=3].y"
    );
    shape.id = None;
    shape.time = Some("week".into());
    assert_eq!(
        mismatch_field(&compare_shaped(ok(first_other), ok(&off), TOL, &shape)),
        "forecast[series=a,week=3].y"
    );
    // Columns orient: "first" is the first written, not the first by name.
    let columns = AnswerShape {
        at: "/forecast".into(),
        orient: Orient::Columns,
        id: None,
        time: None,
        model_at: "/model".into(),
    };
    let a = r#"{"model": "m", "forecast": {"zone": ["z1"], "month": [1], "TiDE": [1.0]}}"#;
    let off = a.replace("[1.0]", "[2.0]");
    assert_eq!(
        mismatch_field(&compare_shaped(ok(a), ok(&off), TOL, &columns)),
        "forecast[zone=z1,month=1].TiDE"
    );
}

#[test]
fn frames_under_nested_pointers_are_found() {
    let shape = AnswerShape {
        at: "/out/frames/0/rows~1v1".into(),
        orient: Orient::Split,
        id: None,
        time: None,
        model_at: "/out/model".into(),
    };
    let body = r#"{"out": {"model": "m", "frames": [{"rows/v1": {"columns": ["unique_id", "ds", "MLP"], "data": [["a", "2024-01-31", 1.0]]}}]}}"#;
    assert_eq!(
        compare_shaped(ok(body), ok(body), TOL, &shape),
        Outcome::Match { max_rel: 0.0 }
    );
    let off = body.replace("1.0", "1.1");
    assert_eq!(
        mismatch_field(&compare_shaped(ok(body), ok(&off), TOL, &shape)),
        "out/frames/0/rows~1v1[unique_id=a,ds=2024-01-31].MLP"
    );
}

#[test]
fn other_shapes_keep_status_error_code_and_non_json_rules() {
    let (shape, body, _) = orients().swap_remove(1);
    let e1 = Answer {
        status: 422,
        body: br#"{"error": {"code": "empty_df", "message": "a"}}"#,
    };
    let e2 = Answer {
        status: 422,
        body: br#"{"error": {"code": "empty_df", "message": "b"}}"#,
    };
    let e3 = Answer {
        status: 422,
        body: br#"{"error": {"code": "missing_column"}}"#,
    };
    assert_eq!(
        compare_shaped(e1, e2, TOL, &shape),
        Outcome::Match { max_rel: 0.0 }
    );
    assert_eq!(
        compare_shaped(e1, e3, TOL, &shape),
        Outcome::Mismatch {
            field: "error.code".into(),
            detail: "primary \"empty_df\" shadow \"missing_column\"".into(),
            max_rel: 0.0,
        }
    );
    assert_eq!(
        mismatch_field(&compare_shaped(ok(body), e1, TOL, &shape)),
        "status"
    );
    let timeout = Answer {
        status: 504,
        body: b"upstream request timeout",
    };
    assert!(
        matches!(compare_shaped(ok(body), timeout, TOL, &shape), Outcome::Error(e) if e.starts_with("shadow body (status 504) is not JSON"))
    );
}

#[test]
fn the_default_shape_is_the_streaming_comparison() {
    let default = AnswerShape::default();
    assert!(default.is_default());
    let far = BASE.replace("121.5", "121.6");
    let pairs: Vec<(Answer<'_>, Answer<'_>)> = vec![
        (ok(BASE), ok(BASE)),
        (ok(BASE), ok(&far)),
        (ok(CUSTOM), ok(CUSTOM)),
        (ok("{}"), ok(BASE)),
        (ok(BASE), ok("{\"predictions\": {}}")),
        (ok(BASE), ok("not json")),
    ];
    for (a, b) in &pairs {
        assert_eq!(compare_shaped(*a, *b, TOL, &default), compare(*a, *b, TOL));
    }
    // The same rows read through the tree (named key columns, so not the
    // default shape) give the same verdicts and the same field names.
    let named = AnswerShape {
        id: Some("unique_id".into()),
        time: Some("ds".into()),
        ..AnswerShape::default()
    };
    assert!(!named.is_default());
    let shuffled = r#"{"predictions": [
      {"NHITS": -3.25, "MLP": 0.0, "ds": "2024-02-29T00:00:00", "unique_id": "s2"},
      {"unique_id": "s1", "ds": "2024-03-31T00:00:00", "NHITS": 121.5, "MLP": 119.0},
      {"MLP": 118.3, "unique_id": "s1", "ds": "2024-02-29T00:00:00", "NHITS": 120}], "model": "air"}"#;
    let other_model = BASE.replace("\"air\"", "\"other\"");
    for (a, b) in [
        (BASE, BASE),
        (BASE, far.as_str()),
        (far.as_str(), BASE),
        (BASE, shuffled),
        (BASE, other_model.as_str()),
    ] {
        assert_eq!(
            compare_shaped(ok(a), ok(b), TOL, &named),
            compare(ok(a), ok(b), TOL),
            "{b}"
        );
    }
    // Today's key rule (unique_id and ds, else the first two columns)
    // through the tree too, the model name ignored.
    let auto = AnswerShape {
        model_at: String::new(),
        ..AnswerShape::default()
    };
    assert!(!auto.is_default());
    let off = CUSTOM.replace("104.0", "105.0");
    assert_eq!(
        compare_shaped(ok(CUSTOM), ok(&off), TOL, &auto),
        compare(ok(CUSTOM), ok(&off), TOL)
    );
}
