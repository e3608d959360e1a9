//! Bundles written before NeuralForecast 3.3 (tests/fixtures/legacy: each
//! release family's own `nf.save` and `predict`): every one either answers
//! exactly what its writer answered (1e-4 + 1e-5*|expected|) or is refused
//! with a reason naming release and class; never other numbers. That holds
//! for every column, the prediction intervals of the bundles fitted with
//! `prediction_intervals` (conformity scores pickled as a pandas DataFrame)
//! included; the one calibration served differently by 3.0+ (1.x/2.x
//! `conformal_error`) has its intervals refused, its point forecasts served. The
//! compatibility matrix in docs/compatibility.md is generated from this run
//! (`ND_UPDATE_DOCS=1 cargo test --release --test legacy` rewrites it; the
//! test fails while the committed one differs).

mod common;

use common::read_json;
use nd_forecast::bundle::conformal::Calibration;
use nd_forecast::bundle::{Bundle, Format};
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn legacy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy")
}

/// family -> class -> (bundle, outcome) of every bundle holding that class.
type Matrix = BTreeMap<String, BTreeMap<String, Vec<(String, String)>>>;

/// What the service does with one fixture bundle.
enum Outcome {
    /// Every case answered within tolerance: the worst |a-b|/tol, the cases
    /// answered, and the interval cases refused (with the reason).
    Parity(f64, usize, Option<(usize, String)>),
    Refused(String),
}

/// Whether the manifest says a bundle was fitted with prediction intervals
/// (they must then be served).
fn intervals_served(name: &str, info: &Value) -> Option<bool> {
    let pi = info.get("prediction_intervals")?;
    assert!(pi["method"].is_string(), "{name}: method");
    // Every release's intervals are served as that release computed them
    // (1.x/2.x: `intervals::Style::Before3`).
    Some(true)
}

/// Runs every case of `name` and returns the outcome; panics on an answer
/// that differs from the writer's (the one thing that must never happen).
fn run_bundle(name: &str, info: &Value, dir: &Path, cases: &[PathBuf]) -> Outcome {
    let bundle = match Bundle::load(dir) {
        Ok(b) => b,
        Err(e) => return Outcome::Refused(e.message),
    };
    assert!(
        matches!(bundle.format, Format::Pickle { .. }),
        "{name}: read as {:?}",
        bundle.format
    );
    if let Some(why) = bundle.unsupported_reason() {
        return Outcome::Refused(why);
    }
    assert!(!cases.is_empty(), "{name}: no golden case");
    let served = intervals_served(name, info);
    match (&bundle.intervals, served) {
        (Calibration::None, None) | (Calibration::Conformal(_), Some(true)) => {}
        (c, _) => panic!("{name}: calibration {c:?}, the manifest says {served:?}"),
    }
    let mut worst = 0.0f64;
    let mut refused: Option<(usize, String)> = None;
    let mut answered = 0;
    for path in cases {
        let case = read_json(path);
        let body = serde_json::to_vec(&case["request"]).unwrap();
        let req = PredictRequest::from_slice(&body).unwrap();
        let asks_intervals = req.level.is_some() || req.quantiles.is_some();
        let got = match pipeline::predict(&bundle, &req) {
            Ok(p) => p,
            Err(e) if asks_intervals && served == Some(false) => {
                assert_eq!(e.code.as_str(), "invalid_level", "{}: {e}", path.display());
                let why = e.to_string();
                let n = refused.as_ref().map_or(0, |(n, _)| *n);
                refused = Some((n + 1, why));
                continue;
            }
            Err(e) => panic!(
                "{}: the bundle loads but its writer's request is refused: {e}",
                path.display()
            ),
        };
        if asks_intervals && served == Some(true) {
            // The writer's answer holds interval columns: compared below.
            let want = &case["expected"]["predictions"][0];
            assert!(
                want.as_object()
                    .is_some_and(|r| r.keys().any(|k| k.contains("-lo-") || k.contains("-ql"))),
                "{}: no interval column expected",
                path.display()
            );
        }
        answered += 1;
        let text = got.to_json(name);
        common::assert_column_order(path, &text);
        let got: Value = serde_json::from_str(&text).unwrap();
        worst = worst.max(
            common::assert_predictions_match(
                path,
                &got["predictions"],
                &case["expected"]["predictions"],
                "the writer (a legacy bundle must answer its writer's numbers)",
            )
            .ratio,
        );
    }
    Outcome::Parity(worst, answered, refused)
}

#[test]
fn legacy_bundles_answer_as_their_writer_or_are_refused() {
    let manifest = read_json(&legacy().join("manifest.json"));
    // Sorted by name: the generated table must not depend on the JSON map's order.
    let bundles: BTreeMap<&String, &Value> = manifest["bundles"]
        .as_object()
        .expect("manifest.bundles")
        .iter()
        .collect();
    let mut cases: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(legacy().join("cases")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if let Some((b, _)) = stem.split_once("__") {
            cases.entry(b.to_string()).or_default().push(p);
        }
    }
    // family -> class -> outcomes
    let mut matrix: Matrix = BTreeMap::new();
    let mut rows = Vec::new();
    let mut worst = (0.0f64, String::new());
    let mut n_cases = 0;
    for (name, info) in bundles {
        let family = info["family"].as_str().unwrap_or("?").to_string();
        let classes: Vec<String> = info["classes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let dir = legacy().join("bundles").join(name);
        if !dir.is_dir() {
            // Listed as skipped by the generator (the old release could not write it).
            let why = info["skipped"]
                .as_str()
                .unwrap_or("not written")
                .to_string();
            record(
                &mut matrix,
                &family,
                &classes,
                name,
                format!("not written: {why}"),
            );
            continue;
        }
        let mut mine = cases.remove(name).unwrap_or_default();
        mine.sort();
        let outcome = run_bundle(name, info, &dir, &mine);
        let cell = match &outcome {
            Outcome::Parity(w, n, refused) => {
                n_cases += n;
                if *w > worst.0 {
                    worst = (*w, name.clone());
                }
                match refused {
                    None => "parity".to_string(),
                    Some(_) => "parity (its conformal_error intervals refused)".to_string(),
                }
            }
            Outcome::Refused(why) => {
                assert!(
                    classes.iter().any(|c| why.contains(c.as_str())),
                    "{name}: a refusal must name the class ({classes:?}): {why}"
                );
                format!("refused: {why}")
            }
        };
        record(&mut matrix, &family, &classes, name, cell);
        rows.push(format!(
            "| `{name}` | {} | {} | {} |",
            info["writer_version"].as_str().unwrap_or("?"),
            classes.join(" + "),
            match &outcome {
                Outcome::Parity(w, n, None) =>
                    format!("parity ({n} cases, worst {w:.3} of tolerance)"),
                Outcome::Parity(w, n, Some((k, why))) => format!(
                    "parity ({n} cases, worst {w:.3} of tolerance); {k} interval cases refused: {}",
                    why.replace('|', "\\|")
                ),
                Outcome::Refused(why) => format!("refused: {}", why.replace('|', "\\|")),
            }
        ));
    }
    assert!(
        cases.is_empty(),
        "cases without a bundle: {:?}",
        cases.keys()
    );
    println!(
        "{} legacy bundles, {n_cases} cases, worst |a-b|/tol = {:.4} ({})",
        rows.len(),
        worst.0,
        worst.1
    );
    check_doc(&render(&matrix, &rows));
}

/// One bundle's outcome under each of its classes.
fn record(matrix: &mut Matrix, family: &str, classes: &[String], bundle: &str, cell: String) {
    for c in classes {
        matrix
            .entry(family.to_string())
            .or_default()
            .entry(c.clone())
            .or_default()
            .push((bundle.to_string(), cell.clone()));
    }
}

fn render(matrix: &Matrix, rows: &[String]) -> String {
    let families: Vec<&String> = matrix.keys().rev().collect();
    let mut classes: Vec<&String> = matrix.values().flat_map(|m| m.keys()).collect();
    classes.sort();
    classes.dedup();
    let mut out = String::new();
    out.push_str("| class |");
    for f in &families {
        out.push_str(&format!(" {f} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(families.len()));
    out.push('\n');
    for c in classes {
        out.push_str(&format!("| {c} |"));
        for f in &families {
            let cell = match matrix[*f].get(c) {
                None => "-".to_string(),
                Some(v) if v.iter().all(|(_, s)| s == "parity") => "parity".to_string(),
                Some(v) => v
                    .iter()
                    .filter(|(_, s)| s != "parity")
                    .map(|(b, s)| format!("{s} (`{b}`)"))
                    .collect::<Vec<_>>()
                    .join("; ")
                    .replace('|', "\\|"),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out.push_str(
        "\nPer bundle:\n\n| bundle | written by | models | outcome |\n|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

const BEGIN: &str = "<!-- BEGIN generated by inference/forecast/tests/legacy.rs -->";
const END: &str = "<!-- END generated -->";

/// The generated part of docs/compatibility.md must be what this run found.
fn check_doc(generated: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/compatibility.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("{} lacks the {BEGIN} ... {END} markers", path.display());
    };
    let current = &doc[b + BEGIN.len()..e];
    let wanted = format!("\n{generated}");
    if current == wanted {
        return;
    }
    if std::env::var_os("ND_UPDATE_DOCS").is_some() {
        let new = format!("{}{BEGIN}{wanted}{}", &doc[..b], &doc[e..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    panic!(
        "docs/compatibility.md is not what the legacy fixtures give; regenerate it with \
         `ND_UPDATE_DOCS=1 cargo test --release -p neuro-divergent --test legacy`. Generated:\n{wanted}"
    );
}

/// NeuralForecast 1.x/2.x `predict` took `level` only, and raised for it on
/// a bundle fitted without prediction intervals whatever the models' losses
/// (3.x lets an MQLoss model ignore it).
#[test]
fn releases_before_3_refuse_what_their_predict_refused() {
    let ask = |bundle: &str, case: &str, extra: serde_json::Value| {
        let b = Bundle::load(&legacy().join("bundles").join(bundle)).unwrap();
        let mut body = read_json(
            &legacy()
                .join("cases")
                .join(format!("{bundle}__{case}.json")),
        )["request"]
            .clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        pipeline::predict(&b, &PredictRequest::from_slice(&bytes).unwrap()).map(|_| ())
    };
    let e = ask(
        "v17_mlp_conformal_dist",
        "level",
        serde_json::json!({"level": null, "quantiles": [0.1]}),
    )
    .unwrap_err();
    assert_eq!(e.code.as_str(), "invalid_level", "{e}");
    assert!(e.message.contains("no quantiles"), "{e}");
    for bundle in ["v17_nhits_mq", "v20_nhits_mq"] {
        let e = ask(bundle, "tail", serde_json::json!({"level": [80]})).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_level", "{bundle}: {e}");
        assert!(
            ask(bundle, "tail", serde_json::json!({})).is_ok(),
            "{bundle}"
        );
    }
    // 3.x: the MQLoss model ignores level.
    assert!(ask("v32_nhits_mq", "tail", serde_json::json!({"level": [80]})).is_ok());
}
