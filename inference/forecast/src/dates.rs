//! Timestamps and frequencies: parsing request `ds` values and building the
//! forecast horizon exactly as pandas offsets do (`last + freq`, then steps of
//! `freq`), which is what NeuralForecast's `make_future_dataframe` calls.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use std::fmt;

/// Why a `ds` value or a `freq` cannot be read, or a stamp cannot be stepped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("'{0}' is not an ISO 8601 date or datetime without timezone (e.g. 2024-01-31 or 2024-01-31T06:00:00)")]
    NotIso(String),
    #[error("integer freq must be a non-zero integer, got {0}")]
    ZeroIntegerFreq(String),
    #[error("freq must be a string or an integer, got {0}")]
    FreqType(String),
    #[error("bad multiple in freq '{0}'")]
    BadMultiple(String),
    #[error("freq '{0}' needs a positive multiple")]
    NonPositiveMultiple(String),
    #[error("unknown month anchor in freq '{0}'")]
    MonthAnchor(String),
    #[error("unknown weekday anchor in freq '{0}'")]
    WeekdayAnchor(String),
    #[error("unsupported freq '{0}'")]
    UnsupportedFreq(String),
    #[error("freq '{0}': a multiple above {max} is not supported for this offset", max = MAX_STEPPED_MULTIPLE)]
    MultipleTooLarge(String),
    #[error("integer ds overflows")]
    IntegerOverflow,
    #[error("ds {0} is a timestamp but the model's freq is an integer")]
    TimestampWithIntegerFreq(NaiveDateTime),
    #[error("ds {0} is an integer but the model's freq is a calendar offset")]
    IntegerWithCalendarFreq(i64),
    #[error("date {0} + freq is out of range")]
    OutOfRange(NaiveDateTime),
}

/// One `ds` value. A request uses one kind throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stamp {
    Int(i64),
    Time(NaiveDateTime),
}

impl Stamp {
    /// Parses an ISO 8601 date or datetime without timezone, strictly:
    /// `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM`,
    /// `:SS` and a 1-9 digit fraction. Two-digit fields, no whitespace.
    pub fn parse_str(s: &str) -> Result<Stamp, DateError> {
        parse_iso(s.as_bytes()).ok_or_else(|| DateError::NotIso(s.to_string()))
    }

    /// `%Y-%m-%dT%H:%M:%S` (or the integer), written without a format parser.
    pub fn write_iso(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            Stamp::Int(i) => write!(out, "{i}"),
            Stamp::Time(t) => write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        };
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(19);
        self.write_iso(&mut s);
        f.write_str(&s)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn parse_iso(b: &[u8]) -> Option<Stamp> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(Stamp::Time(date.and_time(NaiveTime::MIN)));
    }
    if rest.len() < 6 || !(rest[0] == b'T' || rest[0] == b' ') || rest[3] != b':' {
        return None;
    }
    let (hh, mm) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
    let (mut ss, mut nanos) = (0u32, 0u32);
    let tail = &rest[6..];
    if !tail.is_empty() {
        if tail.len() < 3 || tail[0] != b':' {
            return None;
        }
        ss = digits(&tail[1..3])?;
        let frac = &tail[3..];
        if !frac.is_empty() {
            if frac[0] != b'.' || frac.len() < 2 || frac.len() > 10 {
                return None;
            }
            let f = &frac[1..];
            nanos = digits(f)? * 10u32.pow(9 - f.len() as u32);
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hh, mm, ss, nanos)?;
    Some(Stamp::Time(date.and_time(time)))
}

/// The anchored and fixed offsets NeuralForecast users configure as `freq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// Integer `ds`: `last + n * step`.
    Int(i64),
    /// Fixed length (D, h, min, s, ms): pandas `Tick`.
    Tick(Duration),
    /// `W-<DAY>`: weekly, anchored on a weekday.
    Week(Weekday),
    MonthBegin,
    MonthEnd,
    /// Quarter begin/end anchored on the month (1..=12) that starts a quarter cycle.
    QuarterBegin(u32),
    QuarterEnd(u32),
    YearBegin(u32),
    YearEnd(u32),
    /// Business day (Mon-Fri).
    BusinessDay,
}

/// Largest multiple of a business-day or anchored offset (`10000B` is 40
/// years of business days; pandas data uses single digits).
pub const MAX_STEPPED_MULTIPLE: i64 = 10_000;

/// A frequency: an offset times a multiple (`2D`, `15min`, `3MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freq {
    pub n: i64,
    pub offset: Offset,
}

impl Freq {
    /// Parses NeuralForecast's `freq`: an integer, or a pandas offset alias.
    pub fn from_json(v: &serde_json::Value) -> Result<Freq, DateError> {
        match v {
            serde_json::Value::Number(n) => n
                .as_i64()
                .filter(|i| *i != 0)
                .map(|i| Freq {
                    n: 1,
                    offset: Offset::Int(i),
                })
                .ok_or_else(|| DateError::ZeroIntegerFreq(n.to_string())),
            serde_json::Value::String(s) => Freq::parse_alias(s),
            other => Err(DateError::FreqType(other.to_string())),
        }
    }

    pub fn parse_alias(s: &str) -> Result<Freq, DateError> {
        let digits: String = s
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let rest = &s[digits.len()..];
        let n: i64 = if digits.is_empty() {
            1
        } else {
            digits
                .parse()
                .map_err(|_| DateError::BadMultiple(s.to_string()))?
        };
        if n < 1 {
            return Err(DateError::NonPositiveMultiple(s.to_string()));
        }
        let (base, anchor) = match rest.split_once('-') {
            Some((b, a)) => (b, Some(a)),
            None => (rest, None),
        };
        let month_anchor = |default: u32| -> Result<u32, DateError> {
            match anchor {
                None => Ok(default),
                Some(a) => {
                    month_from_abbrev(a).ok_or_else(|| DateError::MonthAnchor(s.to_string()))
                }
            }
        };
        let offset = match base {
            "D" => Offset::Tick(Duration::days(1)),
            "h" | "H" => Offset::Tick(Duration::hours(1)),
            "min" | "T" => Offset::Tick(Duration::minutes(1)),
            "s" | "S" => Offset::Tick(Duration::seconds(1)),
            "ms" | "L" => Offset::Tick(Duration::milliseconds(1)),
            "W" => Offset::Week(match anchor {
                None => Weekday::Sun,
                Some(a) => {
                    weekday_from_abbrev(a).ok_or_else(|| DateError::WeekdayAnchor(s.to_string()))?
                }
            }),
            "MS" => Offset::MonthBegin,
            "ME" | "M" => Offset::MonthEnd,
            "QS" => Offset::QuarterBegin(month_anchor(1)?),
            "QE" | "Q" => Offset::QuarterEnd(month_anchor(12)?),
            "YS" | "AS" => Offset::YearBegin(month_anchor(1)?),
            "YE" | "Y" | "A" => Offset::YearEnd(month_anchor(12)?),
            "B" => Offset::BusinessDay,
            _ => return Err(DateError::UnsupportedFreq(s.to_string())),
        };
        if anchor.is_some()
            && !matches!(
                base,
                "W" | "QS" | "QE" | "Q" | "YS" | "AS" | "YE" | "Y" | "A"
            )
        {
            return Err(DateError::UnsupportedFreq(s.to_string()));
        }
        // Business days and anchored offsets are added one step at a time:
        // bound their multiple so one future stamp stays cheap (a bundle
        // with freq '20000000B' took seconds per stamp; found by fuzzing).
        if !matches!(offset, Offset::Tick(_)) && n > MAX_STEPPED_MULTIPLE {
            return Err(DateError::MultipleTooLarge(s.to_string()));
        }
        Ok(Freq { n, offset })
    }

    pub fn is_int(&self) -> bool {
        matches!(self.offset, Offset::Int(_))
    }

    /// The `h` stamps after `last`: `last + freq`, then `freq` steps.
    pub fn horizon(&self, last: Stamp, h: usize) -> Result<Vec<Stamp>, DateError> {
        let mut out = Vec::with_capacity(h);
        let mut cur = last;
        for _ in 0..h {
            cur = self.add(cur)?;
            out.push(cur);
        }
        Ok(out)
    }

    /// `stamp + freq` with pandas semantics: anchored offsets roll forward to
    /// the next anchor first, and that roll counts as one step.
    pub fn add(&self, stamp: Stamp) -> Result<Stamp, DateError> {
        match (stamp, self.offset) {
            (Stamp::Int(i), Offset::Int(step)) => i
                .checked_add(step.saturating_mul(self.n))
                .map(Stamp::Int)
                .ok_or(DateError::IntegerOverflow),
            (Stamp::Time(t), Offset::Int(_)) => Err(DateError::TimestampWithIntegerFreq(t)),
            (Stamp::Int(i), _) => Err(DateError::IntegerWithCalendarFreq(i)),
            (Stamp::Time(t), off) => add_offset(t, off, self.n)
                .map(Stamp::Time)
                .ok_or(DateError::OutOfRange(t)),
        }
    }
}

fn add_offset(t: NaiveDateTime, off: Offset, n: i64) -> Option<NaiveDateTime> {
    match off {
        Offset::Int(_) => None,
        Offset::Tick(d) => t.checked_add_signed(d.checked_mul(i32::try_from(n).ok()?)?),
        Offset::BusinessDay => {
            let mut cur = t;
            let mut left = n;
            // pandas: a weekend start first rolls to Monday (counts as one step).
            while left > 0 {
                cur = cur.checked_add_signed(Duration::days(1))?;
                if cur.weekday().num_days_from_monday() < 5 {
                    left -= 1;
                }
            }
            Some(cur)
        }
        _ => {
            // Anchored offsets: walk anchor to anchor. `n` is small (a freq multiple).
            let mut cur = t;
            for _ in 0..n.max(0) {
                cur = next_anchor(cur, off)?;
            }
            Some(cur)
        }
    }
}

/// The first anchor strictly after `t`, keeping the time of day.
fn next_anchor(t: NaiveDateTime, off: Offset) -> Option<NaiveDateTime> {
    let time = t.time();
    let d = t.date();
    let date = match off {
        Offset::Week(wd) => {
            let ahead = (7 + wd.num_days_from_monday() as i64
                - d.weekday().num_days_from_monday() as i64)
                % 7;
            let ahead = if ahead == 0 { 7 } else { ahead };
            d.checked_add_signed(Duration::days(ahead))?
        }
        Offset::MonthBegin => first_of_month_after(d, 1)?,
        Offset::MonthEnd => {
            let end = last_of_month(d.year(), d.month())?;
            if d < end {
                end
            } else {
                let (y, m) = add_months(d.year(), d.month(), 1);
                last_of_month(y, m)?
            }
        }
        Offset::QuarterBegin(start) => {
            // Quarter starts are months congruent to `start` mod 3, on day 1.
            let mut cand = first_of_month_after(d, 1)?;
            while (cand.month() + 12 - start) % 3 != 0 {
                cand = first_of_month_after(cand, 1)?;
            }
            cand
        }
        Offset::QuarterEnd(end_month) => {
            let mut cand = last_of_month(d.year(), d.month())?;
            if cand <= d {
                let (y, m) = add_months(d.year(), d.month(), 1);
                cand = last_of_month(y, m)?;
            }
            while (cand.month() + 12 - end_month) % 3 != 0 {
                let (y, m) = add_months(cand.year(), cand.month(), 1);
                cand = last_of_month(y, m)?;
            }
            cand
        }
        Offset::YearBegin(month) => {
            let this = NaiveDate::from_ymd_opt(d.year(), month, 1)?;
            if this > d {
                this
            } else {
                NaiveDate::from_ymd_opt(d.year() + 1, month, 1)?
            }
        }
        Offset::YearEnd(month) => {
            let this = last_of_month(d.year(), month)?;
            if this > d {
                this
            } else {
                last_of_month(d.year() + 1, month)?
            }
        }
        Offset::Int(_) | Offset::Tick(_) | Offset::BusinessDay => return None,
    };
    Some(date.and_time(time))
}

fn add_months(y: i32, m: u32, k: u32) -> (i32, u32) {
    let idx = y as i64 * 12 + (m as i64 - 1) + k as i64;
    ((idx.div_euclid(12)) as i32, (idx.rem_euclid(12) + 1) as u32)
}

fn first_of_month_after(d: NaiveDate, k: u32) -> Option<NaiveDate> {
    let (y, m) = add_months(d.year(), d.month(), k);
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn last_of_month(y: i32, m: u32) -> Option<NaiveDate> {
    let (ny, nm) = add_months(y, m, 1);
    NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt()
}

fn month_from_abbrev(a: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    MONTHS.iter().position(|m| *m == a).map(|i| i as u32 + 1)
}

fn weekday_from_abbrev(a: &str) -> Option<Weekday> {
    Some(match a {
        "MON" => Weekday::Mon,
        "TUE" => Weekday::Tue,
        "WED" => Weekday::Wed,
        "THU" => Weekday::Thu,
        "FRI" => Weekday::Fri,
        "SAT" => Weekday::Sat,
        "SUN" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Stamp {
        Stamp::parse_str(s).unwrap()
    }
    fn hz(freq: &str, last: &str, h: usize) -> Vec<String> {
        Freq::parse_alias(freq)
            .unwrap()
            .horizon(t(last), h)
            .unwrap()
            .into_iter()
            .map(|s| s.to_string()[..10].to_string())
            .collect()
    }

    #[test]
    fn month_end_rolls_forward_then_steps() {
        assert_eq!(hz("ME", "2024-01-31", 2), ["2024-02-29", "2024-03-31"]);
        assert_eq!(hz("ME", "2024-01-15", 2), ["2024-01-31", "2024-02-29"]);
    }

    #[test]
    fn month_begin_and_quarter_begin() {
        assert_eq!(hz("MS", "2024-01-01", 2), ["2024-02-01", "2024-03-01"]);
        assert_eq!(hz("MS", "2024-01-15", 1), ["2024-02-01"]);
        assert_eq!(
            hz("QS", "2024-01-01", 3),
            ["2024-04-01", "2024-07-01", "2024-10-01"]
        );
        assert_eq!(hz("QS", "2024-02-10", 1), ["2024-04-01"]);
        assert_eq!(hz("QS-FEB", "2024-02-01", 1), ["2024-05-01"]);
    }

    #[test]
    fn weeks_anchor_on_sunday_by_default() {
        // 2024-01-07 is a Sunday.
        assert_eq!(hz("W", "2024-01-07", 2), ["2024-01-14", "2024-01-21"]);
        assert_eq!(hz("W", "2024-01-03", 1), ["2024-01-07"]);
        assert_eq!(hz("W-MON", "2024-01-07", 1), ["2024-01-08"]);
    }

    #[test]
    fn huge_or_negative_multiples_are_refused() {
        assert!(Freq::parse_alias("20111100B").is_err());
        assert!(Freq::parse_alias("99999999MS").is_err());
        assert!(Freq::parse_alias("-1D").is_err());
        assert!(Freq::parse_alias("0h").is_err());
        assert!(Freq::parse_alias("10000B").is_ok());
        // Ticks are one multiplication: a large multiple is fine.
        assert!(Freq::parse_alias("86400s").is_ok());
    }

    #[test]
    fn ticks_keep_time_and_multiples() {
        let out = Freq::parse_alias("h")
            .unwrap()
            .horizon(t("2024-01-01T23:00:00"), 2)
            .unwrap();
        assert_eq!(out[0].to_string(), "2024-01-02T00:00:00");
        assert_eq!(out[1].to_string(), "2024-01-02T01:00:00");
        assert_eq!(hz("2D", "2024-02-28", 2), ["2024-03-01", "2024-03-03"]);
        let m = Freq::parse_alias("15min")
            .unwrap()
            .horizon(t("2024-01-01 10:50:00"), 1)
            .unwrap();
        assert_eq!(m[0].to_string(), "2024-01-01T11:05:00");
    }

    #[test]
    fn quarter_and_year_ends() {
        assert_eq!(hz("QE", "2024-03-31", 2), ["2024-06-30", "2024-09-30"]);
        assert_eq!(hz("QE", "2024-02-10", 1), ["2024-03-31"]);
        assert_eq!(hz("YE", "2023-12-31", 1), ["2024-12-31"]);
        assert_eq!(hz("YS", "2023-06-01", 1), ["2024-01-01"]);
    }

    #[test]
    fn integers_and_kind_mismatch() {
        let f = Freq::from_json(&serde_json::json!(1)).unwrap();
        assert_eq!(
            f.horizon(Stamp::Int(10), 2).unwrap(),
            vec![Stamp::Int(11), Stamp::Int(12)]
        );
        assert!(f.add(t("2024-01-01")).is_err());
        assert!(Freq::parse_alias("D").unwrap().add(Stamp::Int(3)).is_err());
        assert!(Freq::parse_alias("fortnight").is_err());
    }

    #[test]
    fn parses_date_and_datetime_forms() {
        assert_eq!(t("2024-01-31").to_string(), "2024-01-31T00:00:00");
        assert_eq!(t("2024-01-31 06:30:00").to_string(), "2024-01-31T06:30:00");
        assert!(Stamp::parse_str("2024-13-01").is_err());
        assert!(Stamp::parse_str("2024-01-01T00:00:00+02:00").is_err());
        assert!(Stamp::parse_str("yesterday").is_err());
        assert!(Stamp::parse_str("2024-1-31").is_err());
        assert!(Stamp::parse_str(" 2024-01-31").is_err());
        assert!(Stamp::parse_str("2024-01-31T6:00").is_err());
        assert!(Stamp::parse_str("2024-02-30").is_err());
        assert_eq!(t("2024-01-31T06:07").to_string(), "2024-01-31T06:07:00");
        assert_eq!(
            t("2024-01-31T06:07:08.5"),
            Stamp::Time(
                NaiveDate::from_ymd_opt(2024, 1, 31)
                    .unwrap()
                    .and_hms_milli_opt(6, 7, 8, 500)
                    .unwrap()
            )
        );
    }
}
