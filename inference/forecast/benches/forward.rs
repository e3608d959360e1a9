//! Forward passes of each served model (1 series and a batch of 64), and the
//! whole pipeline (parse + validate + scale + forward + serialise) for one
//! golden request (also in another service's shape, docs/profiles.md), and
//! loading one bundle in each format. Run: `make bench`
//! (numbers in BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::models::{Layout, WindowBatch};
use nd_forecast::pipeline;
use nd_forecast::profile::Profile;
use ndarray::{Array2, Array3};
use std::hint::black_box;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A deterministic batch shaped for the model (values in a typical scaled range).
/// Rows are series: separate windows, or the series of one multivariate window.
fn batch(b: &Bundle, series: usize) -> WindowBatch {
    let m = &b.models[0];
    let spec = m.spec.as_ref().expect("spec");
    // Recurrent models read one step more than input_size.
    let l = m
        .net
        .as_ref()
        .ok()
        .and_then(|n| n.insample_steps())
        .unwrap_or(spec.input_size);
    let val = |i: usize| ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
    WindowBatch {
        insample_y: Array2::from_shape_fn((series, l), |(i, t)| val(i * l + t)),
        insample_mask: Array2::ones((series, l)),
        hist_exog: (!spec.hist_exog.is_empty()).then(|| {
            Array3::from_shape_fn((series, l, spec.hist_exog.len()), |(i, t, c)| {
                val(i + t + c)
            })
        }),
        futr_exog: (!spec.futr_exog.is_empty()).then(|| {
            Array3::from_shape_fn((series, l + b.h, spec.futr_exog.len()), |(i, t, c)| {
                val(i * 3 + t + c)
            })
        }),
        stat_exog: (!spec.stat_exog.is_empty())
            .then(|| Array2::from_shape_fn((series, spec.stat_exog.len()), |(i, c)| val(i + c))),
    }
}

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    for name in [
        "mlp_d_standard",
        "dlinear_d_identity",
        "nlinear_d_robust",
        "mlp_exog",
        "mlp_cat",
        "mlp_me_mq",
        "tide_d_standard",
        "tide_h_exog",
        "mlpmv_w_exog",
        "tsmixer_h_revin",
        "tsmixerx_d_exog",
        "itransformer_me_air",
        "itransformer_d_futr_mq",
        "nbeats_d_its",
        "nbeats_h_mq",
        "nbeatsx_d_exog",
        "nhits_h_max_linear",
        "nhits_d_avg_nearest_exog",
        "nhits_me_cubic",
        "rnn_d_direct",
        "rnn_h_relu_rec",
        "lstm_d_exog",
        "lstm_w_rec_mq",
        "gru_d_rec_exog",
        "gru_int_direct",
        "dilated_rnn_d_exog",
        "dilated_rnn_ms_cells",
        "tcn_h_exog_mq",
        "bitcn_d_exog",
        "bitcn_ms_revin",
        "softs_h_norm",
        "softs_d_mq",
        "softssharp_h_norm",
        "softssharp_d_mq",
        "kan_d_exog",
        "kan_ms_mq",
        "timemixer_h_movavg",
        "timemixer_d_dft_mq",
        "timexer_d_exog",
        "timexer_h_mq",
        "rmok_d_mexican",
        "rmok_w_wavelets_mq",
        "xlinear_d_exog",
        "xlinear_ms_mq",
        "stemgnn_d_robust",
        "stemgnn_ms_mq",
        "timesnet_d_batches",
        "timesnet_h_futr_mq",
        "deepnpts_d_exog",
        "deepnpts_w_nobn",
        "tft_d_exog",
        "tft_h_gru_mq",
        "tft_ms_hist",
        "patchtst_d_revin",
        "patchtst_h_norevin_mq",
        "patchtst_w_affine",
        "vanilla_d_futr",
        "vanilla_ms_mq",
        "informer_d_futr",
        "informer_h_mq",
        "autoformer_d_futr",
        "autoformer_w_mq",
        "fedformer_d_futr",
        "fedformer_h_low_mq",
    ] {
        let b = Bundle::load(&fixtures().join("bundles").join(name)).expect("bundle");
        let net = b.models[0].net.as_ref().expect("supported").clone();
        // A multivariate model takes one window of exactly its n_series series.
        let sizes = match net.layout() {
            Layout::Multivariate { n_series } => vec![n_series],
            Layout::Univariate => vec![1usize, 64],
        };
        for series in sizes {
            let x = batch(&b, series);
            g.bench_with_input(BenchmarkId::new(name, series), &x, |bench, x| {
                bench.iter(|| black_box(net.forward(black_box(x)).expect("forward")))
            });
        }
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    for case in [
        "mlp_d_standard__tail",
        "multi_d__tail",
        "mlp_exog__rescaled",
        // Categorical futr/hist/static columns (string values, vocabularies, embeddings).
        "mlp_cat__rescaled",
    ] {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("cases").join(format!("{case}.json"))).expect("case"),
        )
        .expect("json");
        let bundle = Bundle::load(
            &fixtures()
                .join("bundles")
                .join(v["bundle"].as_str().expect("name")),
        )
        .expect("bundle");
        let body = serde_json::to_vec(&v["request"]).expect("body");
        g.bench_function(format!("{case}/parse_only"), |bench| {
            bench.iter(|| black_box(PredictRequest::from_slice(black_box(&body)).expect("parse")))
        });
        g.bench_function(case, |bench| {
            bench.iter(|| {
                let req = PredictRequest::from_slice(black_box(&body)).expect("parse");
                black_box(
                    pipeline::predict(&bundle, &req)
                        .expect("predict")
                        .to_json("m"),
                )
            })
        });
        // The same request in another service's shape (docs/profiles.md):
        // rows under "data"/"future"/"static", the team's column names.
        let (profile, shaped) = team_shape(&v["request"]);
        let reshape = |body: &[u8]| -> serde_json::Value {
            let value: serde_json::Value = serde_json::from_slice(body).expect("json");
            profile.to_contract(value, "ds").expect("profile")
        };
        g.bench_function(format!("{case}/profile_parse_only"), |bench| {
            bench.iter(|| {
                let contract = reshape(black_box(&shaped));
                black_box(
                    PredictRequest::from_value(&contract)
                        .map(|r| r.df.len())
                        .expect("parse"),
                )
            })
        });
        g.bench_function(format!("{case}/profile"), |bench| {
            bench.iter(|| {
                let contract = reshape(black_box(&shaped));
                let req = PredictRequest::from_value(&contract).expect("parse");
                let forecast = pipeline::predict(&bundle, &req).expect("predict");
                black_box(profile.answer(&forecast, "m"))
            })
        });
    }
    g.finish();
}

/// tests/profiles/records_under_key's profile and the request in its shape.
fn team_shape(request: &serde_json::Value) -> (Profile, Vec<u8>) {
    let dir = fixtures().join("../profiles/records_under_key/profile.toml");
    let profile = Profile::load(&dir).expect("profile");
    let rename = |rows: &serde_json::Value| -> serde_json::Value {
        let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        rows.iter()
            .map(|r| -> serde_json::Value {
                let m = r.as_object().expect("row");
                m.iter()
                    .map(|(k, x)| {
                        let k = match k.as_str() {
                            "unique_id" => "series",
                            "ds" => "timestamp",
                            "y" => "value",
                            other => other,
                        };
                        (k.to_string(), x.clone())
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            })
            .collect::<Vec<_>>()
            .into()
    };
    let mut body = serde_json::Map::new();
    for (from, to) in [
        ("df", "data"),
        ("futr_df", "future"),
        ("static_df", "static"),
    ] {
        if let Some(rows) = request.get(from) {
            body.insert(to.into(), rename(rows));
        }
    }
    (profile, serde_json::to_vec(&body).expect("body"))
}

/// `Bundle::load` of the same weights in the pickle format NeuralForecast
/// wrote before 3.3 (v1) and in 3.3's safetensors format (v2), as
/// `bench/legacy_formats.py` writes them (`make bench` runs it first).
fn load(c: &mut Criterion) {
    let Some((dir, names)) = listed(
        "ND_BENCH_FORMATS",
        "formats",
        ".",
        "load",
        "bench/legacy_formats.py",
    ) else {
        return;
    };
    let mut g = c.benchmark_group("load");
    for name in &names {
        for format in ["v1", "v2"] {
            let path = dir.join(name).join(format);
            g.bench_with_input(BenchmarkId::new(format, name), &path, |b, p| {
                b.iter(|| Bundle::load(black_box(p)).expect("load"))
            });
        }
    }
    g.finish();
}

/// `level=[80, 95]` against the point forecast, whole pipeline, on the
/// bundles `bench/intervals.py` writes (conformal intervals calibrated on 1
/// and 64 series, IQLoss; `make bench` runs it first).
fn intervals(c: &mut Criterion) {
    let Some((dir, names)) = listed(
        "ND_BENCH_INTERVALS",
        "intervals",
        "bundles",
        "intervals",
        "bench/intervals.py",
    ) else {
        return;
    };
    let mut g = c.benchmark_group("intervals");
    for name in &names {
        let bundle = Bundle::load(&dir.join("bundles").join(name)).expect("bundle");
        let point =
            std::fs::read(dir.join("requests").join(format!("{name}.json"))).expect("request");
        let mut v: serde_json::Value = serde_json::from_slice(&point).expect("json");
        v["level"] = serde_json::json!([80, 95]);
        let level = serde_json::to_vec(&v).expect("body");
        for (what, body) in [("point", &point), ("level_80_95", &level)] {
            g.bench_with_input(BenchmarkId::new(what, name), body, |bench, body| {
                bench.iter(|| {
                    let req = PredictRequest::from_slice(black_box(body)).expect("parse");
                    black_box(
                        pipeline::predict(&bundle, &req)
                            .expect("predict")
                            .to_json("m"),
                    )
                })
            });
        }
    }
    g.finish();
}

/// The directory `$env` (else bench/results/<default>) and the sorted names
/// in its `sub` folder, which `script` writes; None (with a note) without it.
fn listed(
    env: &str,
    default: &str,
    sub: &str,
    group: &str,
    script: &str,
) -> Option<(PathBuf, Vec<String>)> {
    let dir = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../bench/results")
            .join(default)
    });
    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
        eprintln!("{group}: {} is missing; run {script}", dir.display());
        return None;
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Some((dir, names))
}

criterion_group!(benches, forward, end_to_end, load, intervals);
criterion_main!(benches);
