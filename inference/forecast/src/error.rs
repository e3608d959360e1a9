//! The contract's errors: `{"error": {"code", "message"}}`, each code with the
//! status docs/contract.md gives it. [`ErrorCode`] is the one list of codes:
//! `docs/error-codes.json` is written from it (and a test fails when that file
//! is stale), and the contract table, the OpenAPI enum, the Python reference
//! and the filter are checked against that file. Client mistakes are 4xx,
//! never 500. The status is a number here; the server maps it to HTTP.

/// Every code the services answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MalformedJson,
    InvalidRequest,
    ModelRequired,
    UnknownModel,
    NotFound,
    MethodNotAllowed,
    BodyTooLarge,
    UnsupportedMediaType,
    EmptyDf,
    MissingColumn,
    NonFiniteValue,
    InvalidDs,
    DuplicateRows,
    InvalidExogenous,
    InvalidValue,
    InvalidLevel,
    InvalidSeries,
    InvalidHorizon,
    TooManySeries,
    UnsupportedModel,
    Overloaded,
    NotReady,
    Timeout,
    InternalError,
}

impl ErrorCode {
    /// In docs/contract.md's order.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidRequest,
        ErrorCode::ModelRequired,
        ErrorCode::UnknownModel,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::EmptyDf,
        ErrorCode::MissingColumn,
        ErrorCode::NonFiniteValue,
        ErrorCode::InvalidDs,
        ErrorCode::DuplicateRows,
        ErrorCode::InvalidExogenous,
        ErrorCode::InvalidValue,
        ErrorCode::InvalidLevel,
        ErrorCode::InvalidSeries,
        ErrorCode::InvalidHorizon,
        ErrorCode::TooManySeries,
        ErrorCode::UnsupportedModel,
        ErrorCode::Overloaded,
        ErrorCode::NotReady,
        ErrorCode::Timeout,
        ErrorCode::InternalError,
    ];

    /// The code string clients see.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ModelRequired => "model_required",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::EmptyDf => "empty_df",
            ErrorCode::MissingColumn => "missing_column",
            ErrorCode::NonFiniteValue => "non_finite_value",
            ErrorCode::InvalidDs => "invalid_ds",
            ErrorCode::DuplicateRows => "duplicate_rows",
            ErrorCode::InvalidExogenous => "invalid_exogenous",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidLevel => "invalid_level",
            ErrorCode::InvalidSeries => "invalid_series",
            ErrorCode::InvalidHorizon => "invalid_horizon",
            ErrorCode::TooManySeries => "too_many_series",
            ErrorCode::UnsupportedModel => "unsupported_model",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Timeout => "timeout",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status docs/contract.md gives the code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidRequest | ErrorCode::ModelRequired => 400,
            ErrorCode::UnknownModel | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::EmptyDf
            | ErrorCode::MissingColumn
            | ErrorCode::NonFiniteValue
            | ErrorCode::InvalidDs
            | ErrorCode::DuplicateRows
            | ErrorCode::InvalidExogenous
            | ErrorCode::InvalidValue
            | ErrorCode::InvalidLevel
            | ErrorCode::InvalidSeries
            | ErrorCode::InvalidHorizon
            | ErrorCode::TooManySeries
            | ErrorCode::UnsupportedModel => 422,
            ErrorCode::Overloaded | ErrorCode::NotReady => 503,
            ErrorCode::Timeout => 504,
            ErrorCode::InternalError => 500,
        }
    }

    /// Whether the same request may succeed elsewhere or later: the service's
    /// state (load, shutdown, time, a bug), not the request, caused it. The
    /// filter's circuit breaker counts exactly these as a backend's failures.
    pub const fn backend_fault(self) -> bool {
        self.status() >= 500
    }

    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// `docs/error-codes.json`: `[{"code", "status", "backend_fault"}]` in
    /// [`ErrorCode::ALL`]'s order, what the checks outside Rust read.
    pub fn table_json() -> String {
        let rows: Vec<serde_json::Value> = ErrorCode::ALL
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c.as_str(),
                    "status": c.status(),
                    "backend_fault": c.backend_fault(),
                })
            })
            .collect();
        let mut out = serde_json::to_string_pretty(&rows).unwrap_or_default();
        out.push('\n');
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contract error: its code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {code}: {message}", code.status())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn malformed_json(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedJson, m)
    }
    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, m)
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn body(&self) -> String {
        serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}})
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn client_mistakes_are_4xx_and_never_backend_faults() {
        for c in ErrorCode::ALL {
            let s = c.status();
            assert!((400..600).contains(&s), "{c}: {s}");
            assert_eq!(c.backend_fault(), s >= 500, "{c}");
        }
        assert!(!ErrorCode::InvalidLevel.backend_fault());
        assert!(ErrorCode::Overloaded.backend_fault());
    }

    /// `docs/error-codes.json` is written from the enum; set
    /// `ND_UPDATE_ERROR_CODES=1` to rewrite it after changing the enum.
    #[test]
    fn error_codes_file_is_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-codes.json");
        let want = ErrorCode::table_json();
        if std::env::var_os("ND_UPDATE_ERROR_CODES").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `ND_UPDATE_ERROR_CODES=1 cargo test -p nd-forecast error_codes_file` and commit it",
            path.display()
        );
    }
}
