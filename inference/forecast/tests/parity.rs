//! Every golden case under tests/fixtures (NeuralForecast 3.3.0's own
//! `predict()` on the loaded bundle) through the Rust pipeline: same rows in
//! the same order, same columns, every value within 1e-4 + 1e-5*|expected|.

mod common;

use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

#[test]
fn every_golden_case_matches_pytorch() {
    let cases_dir = fixtures().join("cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .expect("fixtures/cases")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 30,
        "expected the golden cases, found {}",
        paths.len()
    );
    let mut bundles: BTreeMap<String, Bundle> = BTreeMap::new();
    let mut worst = common::Worst::default();
    for path in &paths {
        let case = common::read_json(path);
        let name = case["bundle"].as_str().unwrap().to_string();
        let bundle = bundles
            .entry(name.clone())
            .or_insert_with(|| Bundle::load(&fixtures().join("bundles").join(&name)).unwrap());
        let body = serde_json::to_vec(&case["request"]).unwrap();
        let req = PredictRequest::from_slice(&body).unwrap();
        let text = pipeline::predict(bundle, &req)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_json(&name);
        common::assert_column_order(path, &text);
        let got: Value = serde_json::from_str(&text).unwrap();
        let want = &case["expected"];
        assert_eq!(got["model"], want["model"]);
        worst.merge(common::assert_predictions_match(
            path,
            &got["predictions"],
            &want["predictions"],
            "torch",
        ));
    }
    println!(
        "{} cases, worst |a-b|/tol = {:.4} at {}",
        paths.len(),
        worst.ratio,
        worst.at
    );
}

#[test]
fn every_fixture_bundle_loads_and_is_supported() {
    for e in std::fs::read_dir(fixtures().join("bundles")).unwrap() {
        let dir = e.unwrap().path();
        let b = Bundle::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            b.unsupported_reason().is_none(),
            "{}: {:?}",
            b.name,
            b.unsupported_reason()
        );
        assert!(b.content_hash.starts_with("sha256:") && b.content_hash.len() == 71);
    }
}

#[test]
fn multivariate_models_refuse_another_series_count() {
    let name = "tsmixer_h_revin";
    let bundle = Bundle::load(&fixtures().join("bundles").join(name)).unwrap();
    let path = fixtures().join("cases").join(format!("{name}__tail.json"));
    let case: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let rows = case["request"]["df"].as_array().unwrap();
    let without_s3: Vec<&Value> = rows.iter().filter(|r| r["unique_id"] != "s3").collect();
    let body = serde_json::to_vec(&serde_json::json!({ "df": without_s3 })).unwrap();
    let err = pipeline::predict(&bundle, &PredictRequest::from_slice(&body).unwrap()).unwrap_err();
    assert_eq!((err.status(), err.code.as_str()), (422, "invalid_series"));
    assert!(
        err.message.contains("exactly the 3 series"),
        "{}",
        err.message
    );
}
