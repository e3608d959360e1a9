"""The contract's error envelope: every error is {"error": {"code", "message"}}."""

from __future__ import annotations

from fastapi.responses import JSONResponse

# status per code, exactly docs/contract.md's table.
STATUS = {
    "malformed_json": 400,
    "invalid_request": 400,
    "model_required": 400,
    "unknown_model": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "empty_df": 422,
    "missing_column": 422,
    "non_finite_value": 422,
    "invalid_ds": 422,
    "duplicate_rows": 422,
    "invalid_exogenous": 422,
    "invalid_value": 422,
    "invalid_level": 422,
    "invalid_series": 422,
    "invalid_horizon": 422,
    "too_many_series": 422,
    "unsupported_model": 422,
    "overloaded": 503,
    "not_ready": 503,
    "timeout": 504,
    "internal_error": 500,
}


class ApiError(Exception):
    """A contract error; raise it anywhere in a handler."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.message = message
        self.headers = headers


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": err.code, "message": err.message}},
        status_code=err.status,
        headers=err.headers,
    )
