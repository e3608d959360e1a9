//! Reading one cell of a request table: a finite float32, an exogenous value
//! (a category's vocabulary number), a series id or a stamp, with the error
//! each wrong value gets.

use crate::bundle::vocab::Vocab;
use crate::contract::{Cell, Row, SeriesId};
use crate::dates::Stamp;
use crate::error::{ApiError, ErrorCode};

pub(super) fn missing(col: &str, table: &str, i: usize) -> ApiError {
    ApiError::new(
        ErrorCode::MissingColumn,
        format!("{table}[{i}] has no '{col}' column"),
    )
}

/// A finite float32 from a JSON value; `null` and values that overflow
/// float32 are non-finite, other types are the wrong type.
pub(super) fn number(v: &Cell, col: &str, table: &str, i: usize) -> Result<f32, ApiError> {
    match v {
        Cell::Int(_) | Cell::Float(_) => {
            let n = match v {
                Cell::Int(k) => *k as f64,
                Cell::Float(x) => *x,
                _ => f64::NAN,
            };
            let f = n as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(ApiError::new(
                    ErrorCode::NonFiniteValue,
                    format!("{table}[{i}].{col} = {n} is outside the float32 range"),
                ))
            }
        }
        Cell::Null => Err(ApiError::new(
            ErrorCode::NonFiniteValue,
            format!("{table}[{i}].{col} is null; values must be finite numbers"),
        )),
        other => Err(ApiError::invalid_request(format!(
            "{table}[{i}].{col} must be a number, got {}",
            kind_of(other)
        ))),
    }
}

/// An exogenous value as the network reads it: a categorical column's value
/// is its vocabulary number (0 for one the fit never saw, as `nf.predict`
/// maps it), any other column's a finite number.
pub(super) fn exog_value(
    v: &Cell,
    col: &str,
    table: &str,
    i: usize,
    vocab: Option<&Vocab>,
) -> Result<f32, ApiError> {
    let Some(vocab) = vocab else {
        return number(v, col, table, i);
    };
    if matches!(v, Cell::Null) {
        return number(v, col, table, i);
    }
    vocab.index_of(v).map(|n| n as f32).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "{table}[{i}].{col} is {}: a categorical column takes strings, numbers or booleans",
            kind_of(v)
        ))
    })
}

pub(super) fn kind_of(v: &Cell) -> &'static str {
    v.kind()
}

/// Checks that ids and stamps keep one kind across the request.
#[derive(Default)]
pub(super) struct Kinds {
    id_int: Option<bool>,
    ds_int: Option<bool>,
}

impl Kinds {
    pub(super) fn id(
        &mut self,
        row: &Row,
        col: &str,
        table: &str,
        i: usize,
    ) -> Result<SeriesId, ApiError> {
        let v = row.get(col).ok_or_else(|| missing(col, table, i))?;
        let id = SeriesId::from_cell(v).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "{table}[{i}].{col} must be a string or an integer, got {}",
                kind_of(v)
            ))
        })?;
        let is_int = matches!(id, SeriesId::Int(_));
        if *self.id_int.get_or_insert(is_int) != is_int {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                format!("{table}[{i}].{col} mixes integer and string ids in one request"),
            ));
        }
        Ok(id)
    }

    pub(super) fn ds(
        &mut self,
        row: &Row,
        col: &str,
        table: &str,
        i: usize,
        int_freq: bool,
    ) -> Result<Stamp, ApiError> {
        let v = row.get(col).ok_or_else(|| missing(col, table, i))?;
        let stamp = stamp_of(v, col, table, i)?;
        let is_int = matches!(stamp, Stamp::Int(_));
        if *self.ds_int.get_or_insert(is_int) != is_int {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                format!("{table}[{i}].{col} mixes integer and date ds in one request"),
            ));
        }
        if is_int != int_freq {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                if int_freq {
                    format!("{table}[{i}].{col}: the model's freq is an integer, so ds must be integers")
                } else {
                    format!("{table}[{i}].{col}: the model's freq is a calendar offset, so ds must be dates")
                },
            ));
        }
        Ok(stamp)
    }
}

/// One `ds` cell: a date string or an integer.
fn stamp_of(v: &Cell, col: &str, table: &str, i: usize) -> Result<Stamp, ApiError> {
    match v {
        Cell::Str(s) => Stamp::parse_str(s)
            .map_err(|m| ApiError::new(ErrorCode::InvalidDs, format!("{table}[{i}].{col}: {m}"))),
        Cell::Int(k) => Ok(Stamp::Int(*k)),
        Cell::Float(x) => Err(ApiError::new(
            ErrorCode::InvalidDs,
            format!("{table}[{i}].{col} = {x} is not an integer"),
        )),
        other => Err(ApiError::invalid_request(format!(
            "{table}[{i}].{col} must be a date string or an integer, got {}",
            kind_of(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::PredictRequest;
    use std::borrow::Cow;

    fn request(body: &str) -> PredictRequest<'_> {
        PredictRequest::from_slice(body.as_bytes()).unwrap()
    }

    #[test]
    fn numbers_are_finite_float32() {
        assert_eq!(number(&Cell::Int(3), "y", "df", 0).unwrap(), 3.0);
        assert_eq!(number(&Cell::Float(0.5), "y", "df", 0).unwrap(), 0.5);
        let e = number(&Cell::Float(1e300), "y", "df", 4).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        assert!(e.message.contains("df[4].y"), "{}", e.message);
        let e = number(&Cell::Null, "y", "df", 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        let e = number(&Cell::Str(Cow::Borrowed("1")), "y", "df", 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("got a string"), "{}", e.message);
    }

    #[test]
    fn categories_read_through_the_vocabulary() {
        let v = |c: &Cell| exog_value(c, "x", "df", 0, None);
        assert_eq!(v(&Cell::Int(7)).unwrap(), 7.0);
        assert_eq!(
            v(&Cell::Bool(true)).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let vocab = Vocab::default();
        let cat = |c: &Cell| exog_value(c, "x", "df", 0, Some(&vocab));
        // A value the fit never saw is 0, as nf.predict's fillna(0).
        assert_eq!(cat(&Cell::Str(Cow::Borrowed("new"))).unwrap(), 0.0);
        assert_eq!(cat(&Cell::Bool(true)).unwrap(), 0.0);
        assert_eq!(
            cat(&Cell::Null).unwrap_err().code,
            ErrorCode::NonFiniteValue
        );
        assert_eq!(
            cat(&Cell::Array).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn ids_keep_one_kind() {
        let req = request(r#"{"df": [{"id": "a"}, {"id": 2}, {"id": 1.5}, {}]}"#);
        let mut k = Kinds::default();
        assert_eq!(
            k.id(&req.df[0], "id", "df", 0).unwrap(),
            SeriesId::Str("a".into())
        );
        let e = k.id(&req.df[1], "id", "df", 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidDs);
        assert!(e.message.contains("mixes integer and string ids"));
        let e = k.id(&req.df[2], "id", "df", 2).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = k.id(&req.df[3], "id", "df", 3).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingColumn);
        assert_eq!(e.message, "df[3] has no 'id' column");
    }

    #[test]
    fn stamps_match_the_freq_and_keep_one_kind() {
        let req = request(
            r#"{"df": [{"ds": "2024-01-02"}, {"ds": 3}, {"ds": 3.5}, {"ds": true}, {"ds": "x"}]}"#,
        );
        let ds = |k: &mut Kinds, i: usize, int_freq| k.ds(&req.df[i], "ds", "df", i, int_freq);
        let mut k = Kinds::default();
        assert!(matches!(ds(&mut k, 0, false).unwrap(), Stamp::Time(_)));
        let e = ds(&mut k, 1, false).unwrap_err();
        assert!(
            e.message.contains("mixes integer and date ds"),
            "{}",
            e.message
        );
        let mut k = Kinds::default();
        assert_eq!(ds(&mut k, 1, true).unwrap(), Stamp::Int(3));
        let mut k = Kinds::default();
        let e = ds(&mut k, 1, false).unwrap_err();
        assert!(e.message.contains("calendar offset"), "{}", e.message);
        let mut k = Kinds::default();
        let e = ds(&mut k, 0, true).unwrap_err();
        assert!(e.message.contains("freq is an integer"), "{}", e.message);
        let codes: Vec<ErrorCode> = [2, 3, 4]
            .iter()
            .map(|&i| ds(&mut Kinds::default(), i, false).unwrap_err().code)
            .collect();
        assert_eq!(
            codes,
            [
                ErrorCode::InvalidDs,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidDs
            ]
        );
    }
}
