//! Load a bundle directory, forecast a frame: the library without the server.
//!
//!   cargo run --release -p nd-forecast --example forecast -- \
//!       tests/fixtures/bundles/mlp_d_standard examples/predict-request.json
//!
//! The request is the body `POST /predict` takes (docs/contract.md); the
//! answer is printed as the service would send it.

use nd_forecast::bundle::Bundle;
use nd_forecast::contract::PredictRequest;
use nd_forecast::pipeline;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [bundle_dir, request] = args.as_slice() else {
        eprintln!("usage: forecast <bundle directory> <request.json>");
        return ExitCode::from(2);
    };
    match run(bundle_dir, request) {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("forecast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(bundle_dir: &Path, request: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let bundle = Bundle::load(bundle_dir)?;
    let body = std::fs::read(request)?;
    let request = PredictRequest::from_slice(&body)?;
    let forecast = pipeline::predict(&bundle, &request)?;
    Ok(forecast.to_json(&bundle.name))
}
