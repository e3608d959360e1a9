//! The API profile boundary (inference/forecast/src/profile.rs). The first byte
//! chooses what the rest is: even, a profile file (TOML) for
//! `Profile::from_toml`, and a profile that loads then reads the four
//! committed example bodies and writes an answer; odd, a /predict body read
//! through each of the four committed team profiles as the service's predict
//! handler does (`serde_json::from_slice`, `Profile::model_in_body`,
//! `Profile::to_contract`, `PredictRequest::from_value`). Errors are fine;
//! a panic is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nd_forecast::contract::{Forecast, PredictRequest, SeriesId};
use nd_forecast::dates::Stamp;
use nd_forecast::profile::Profile;
use serde_json::Value;
use std::sync::OnceLock;

/// tests/profiles/*: (profile.toml, example.json).
const TEAMS: [(&str, &str); 4] = [
    (
        include_str!("../../tests/profiles/bare_list/profile.toml"),
        include_str!("../../tests/profiles/bare_list/example.json"),
    ),
    (
        include_str!("../../tests/profiles/columns_dict/profile.toml"),
        include_str!("../../tests/profiles/columns_dict/example.json"),
    ),
    (
        include_str!("../../tests/profiles/records_under_key/profile.toml"),
        include_str!("../../tests/profiles/records_under_key/example.json"),
    ),
    (
        include_str!("../../tests/profiles/split_frames/profile.toml"),
        include_str!("../../tests/profiles/split_frames/example.json"),
    ),
];

/// The bundle's time column, as the handler passes it.
const TIME_COL: &str = "ds";

fn profiles() -> &'static [Profile] {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        TEAMS
            .iter()
            .map(|(toml, _)| Profile::from_toml(toml).expect("committed profile loads"))
            .collect()
    })
}

/// The "body" member of each example.json.
fn bodies() -> &'static [Value] {
    static B: OnceLock<Vec<Value>> = OnceLock::new();
    B.get_or_init(|| {
        TEAMS
            .iter()
            .map(|(_, example)| {
                let mut v: Value = serde_json::from_str(example).expect("example.json is JSON");
                v["body"].take()
            })
            .collect()
    })
}

/// A forecast with string and integer ids, date-time and integer stamps, and
/// values no JSON number holds.
fn forecast() -> &'static Forecast {
    static F: OnceLock<Forecast> = OnceLock::new();
    F.get_or_init(|| {
        let t = |s: &str| Stamp::parse_str(s).expect("fixed stamp parses");
        Forecast {
            id_col: "unique_id".into(),
            time_col: TIME_COL.into(),
            columns: vec!["MLP".into(), "MLP-lo-80".into()],
            rows: vec![
                (SeriesId::Str("s1".into()), t("2024-02-01"), vec![1.5, -0.0]),
                (
                    SeriesId::Str("s1".into()),
                    t("2024-02-01T06:30:15"),
                    vec![f32::MAX, f32::MIN_POSITIVE],
                ),
                (SeriesId::Int(-7), Stamp::Int(i64::MIN), vec![f32::NAN, 2.0]),
                (
                    SeriesId::Int(i64::MAX),
                    Stamp::Int(i64::MAX),
                    vec![f32::INFINITY, f32::NEG_INFINITY],
                ),
            ],
        }
    })
}

/// What the predict handler does with a body under `profile`, short of the
/// forecast itself (`predict_body` fuzzes that).
fn read(profile: &Profile, value: Value) {
    let _ = profile.model_in_body(&value);
    if let Ok(contract) = profile.to_contract(value, TIME_COL) {
        let _ = PredictRequest::from_value(&contract);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(profile) = Profile::from_toml(text) else {
            return;
        };
        let _ = profile.is_default();
        for body in bodies() {
            read(&profile, body.clone());
        }
        let _ = profile.answer(forecast(), "m");
    } else {
        let Ok(value) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        for profile in profiles() {
            read(profile, value.clone());
        }
    }
});
