//! Fixtures for the pipeline's unit tests: the golden bundles and requests
//! written in the tests.

use crate::bundle::Bundle;
use crate::contract::PredictRequest;
use std::path::PathBuf;

pub(super) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A golden bundle of `tests/fixtures/bundles`.
pub(super) fn bundle(name: &str) -> Bundle {
    Bundle::load(&fixtures().join("bundles").join(name)).unwrap()
}

pub(super) fn request(body: &str) -> PredictRequest<'_> {
    PredictRequest::from_slice(body.as_bytes()).unwrap()
}

/// The error of a result whose value has no `Debug`.
pub(super) fn err<T>(r: Result<T, crate::error::ApiError>) -> crate::error::ApiError {
    match r {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}
