//! MLflow's JSON dialect: the server writes non-finite metric values as the bare tokens `NaN`,
//! `Infinity` and `-Infinity`, which strict JSON parsers refuse. [`parse`] turns those tokens into
//! strings before handing the bytes to serde, and [`float`] reads and writes such values.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

/// Parses an MLflow JSON answer, accepting bare `NaN`/`Infinity`/`-Infinity` tokens.
///
/// # Errors
///
/// The JSON error, with its position, when `bytes` is not JSON of `T`'s shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(&quote_non_finite(bytes))
}

/// Returns `bytes` with every bare `NaN`, `Infinity` and `-Infinity` outside strings replaced by the
/// same word in quotes; borrows when there is none.
pub fn quote_non_finite(bytes: &[u8]) -> Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"NaN", b"-Infinity", b"Infinity"];
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if (b == b'N' || b == b'I' || b == b'-')
            && let Some(tok) = TOKENS.iter().find(|t| bytes[i..].starts_with(t))
        {
            let o = out.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(bytes.len() + 16);
                v.extend_from_slice(&bytes[..i]);
                v
            });
            o.push(b'"');
            o.extend_from_slice(tok);
            o.push(b'"');
            i += tok.len();
            continue;
        }
        if let Some(o) = out.as_mut() {
            o.push(b);
        }
        i += 1;
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(bytes),
    }
}

/// A reader that quotes bare `NaN`, `Infinity` and `-Infinity` tokens as it reads, for JSON too
/// large to hold (the Python tool's `run.json` keeps whole metric histories in one document).
pub struct QuoteNonFinite<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    out_pos: usize,
    in_string: bool,
    escaped: bool,
    /// Inside a bare word outside strings (`true`, `NaN`, ...), and whether it is being quoted.
    word: Option<bool>,
    /// A `-` outside strings whose next byte decides: a number or `-Infinity`.
    minus: bool,
    eof: bool,
}

impl<R: std::io::Read> QuoteNonFinite<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        QuoteNonFinite {
            inner,
            buf: vec![0; 64 << 10],
            pos: 0,
            out: Vec::with_capacity(66 << 10),
            out_pos: 0,
            in_string: false,
            escaped: false,
            word: None,
            minus: false,
            eof: false,
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() && !self.eof {
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
                if self.minus {
                    self.out.push(b'-');
                    self.minus = false;
                }
                if self.word == Some(true) {
                    self.out.push(b'"');
                }
                self.word = None;
                break;
            }
            self.pos = 0;
            while self.pos < n {
                let b = self.buf[self.pos];
                self.pos += 1;
                self.step(b);
            }
        }
        Ok(())
    }

    fn step(&mut self, b: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            self.out.push(b);
            return;
        }
        if let Some(quoted) = self.word {
            if b.is_ascii_alphabetic() {
                self.out.push(b);
                return;
            }
            if quoted {
                self.out.push(b'"');
            }
            self.word = None;
        }
        if self.minus {
            self.minus = false;
            if b == b'I' {
                self.out.extend_from_slice(b"\"-I");
                self.word = Some(true);
                return;
            }
            self.out.push(b'-');
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.out.push(b);
            }
            b'-' => self.minus = true,
            b'N' | b'I' => {
                self.out.push(b'"');
                self.out.push(b);
                self.word = Some(true);
            }
            b if b.is_ascii_alphabetic() => {
                self.out.push(b);
                self.word = Some(false);
            }
            b => self.out.push(b),
        }
    }
}

impl<R: std::io::Read> std::io::Read for QuoteNonFinite<R> {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        if self.out_pos == self.out.len() {
            self.fill()?;
        }
        let n = (self.out.len() - self.out_pos).min(dst.len());
        dst[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Serde helpers for `f64` values that may be non-finite: finite values are JSON numbers,
/// NaN and the infinities are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (what the
/// MLflow server accepts in `log-batch`).
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes a float as MLflow expects it.
    ///
    /// # Errors
    ///
    /// The serializer's error.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }

    /// Reads a float written as a number or as one of the non-finite words.
    ///
    /// # Errors
    ///
    /// When the value is neither a number nor a string naming one (`"NaN"`, `"Infinity"`,
    /// `"-Infinity"`, or a number as text).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum F {
            N(f64),
            S(String),
        }
        match F::deserialize(d)? {
            F::N(v) => Ok(v),
            F::S(s) => parse_word(&s).ok_or_else(|| {
                de::Error::custom(format!("expected a number, got the string {s:?}"))
            }),
        }
    }

    fn parse_word(s: &str) -> Option<f64> {
        match s.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "infinity" | "inf" | "+infinity" | "+inf" => Some(f64::INFINITY),
            "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        }
    }
}

/// Serde helper for int64 fields, which proto JSON may write as numbers or as strings.
pub mod int64 {
    use serde::{Deserialize, Deserializer, de};

    /// Reads an integer written as a number or as a decimal string.
    ///
    /// # Errors
    ///
    /// When the value is neither an integer nor a string holding one.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum I {
            N(i64),
            F(f64),
            S(String),
        }
        match Option::<I>::deserialize(d)? {
            None => Ok(None),
            Some(I::N(v)) => Ok(Some(v)),
            Some(I::F(v)) if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(Some(v as i64)),
            Some(I::F(v)) => Err(de::Error::custom(format!("expected an integer, got {v}"))),
            Some(I::S(s)) if s.is_empty() => Ok(None),
            Some(I::S(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| de::Error::custom(format!("expected an integer, got {s:?}"))),
        }
    }
}

/// Proto JSON `Timestamp` values (RFC 3339 text, `"2026-12-01T06:02:27.111Z"`) as milliseconds
/// since the epoch, which is all MLflow keeps of them.
pub mod timestamp {
    /// Reads an RFC 3339 time (`T` or `t`, `Z` or an offset, 0 to 9 fraction digits); the
    /// milliseconds are floored as the server's `ToMilliseconds` does. `None` when it is not one.
    pub fn parse_ms(text: &str) -> Option<i64> {
        let b = text.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let (hour, minute, second) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &b[19..];
        let mut nanos = 0i64;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            nanos = digits(&frac[..n])? * 10i64.pow(9 - n as u32);
            rest = &frac[n..];
        }
        let offset_minutes = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if h > 23 || m > 59 {
                    return None;
                }
                if *sign == b'+' {
                    h * 60 + m
                } else {
                    -(h * 60 + m)
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Some(seconds * 1000 + nanos / 1_000_000)
    }

    /// Writes milliseconds since the epoch as RFC 3339 UTC text with exactly three fraction
    /// digits (`"2026-12-01T06:02:27.111Z"`), which proto JSON parsers accept.
    pub fn format_ms(ms: i64) -> String {
        let seconds = ms.div_euclid(1000);
        let milli = ms.rem_euclid(1000);
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )
    }

    fn digits(b: &[u8]) -> Option<i64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    }

    fn days_in_month(y: i64, m: i64) -> i64 {
        match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }
}

/// Proto JSON `Duration` values (`"1.234s"`, `"0s"`, `"-0.5s"`) as milliseconds, which is all
/// MLflow keeps of them.
pub mod duration {
    /// Reads a duration: an optional `-`, seconds, 0 to 9 fraction digits, `s`; the milliseconds
    /// are floored as the server's `ToMilliseconds` does. `None` when it is not one.
    pub fn parse_ms(text: &str) -> Option<i64> {
        let body = text.strip_suffix('s')?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
        if secs.is_empty() || !secs.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if body.contains('.') && (frac.is_empty() || frac.len() > 9) {
            return None;
        }
        if !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let secs: i128 = secs.parse().ok()?;
        let nanos: i128 = if frac.is_empty() {
            0
        } else {
            frac.parse::<i128>().ok()? * 10i128.pow(9 - frac.len() as u32)
        };
        let total = secs.checked_mul(1_000_000_000)? + nanos;
        let total = if negative { -total } else { total };
        i64::try_from(total.div_euclid(1_000_000)).ok()
    }

    /// Writes milliseconds as a proto JSON duration: `"1.234s"`, or `"2s"` for whole seconds.
    pub fn format_ms(ms: i64) -> String {
        let sign = if ms < 0 { "-" } else { "" };
        let magnitude = ms.unsigned_abs();
        match magnitude % 1000 {
            0 => format!("{sign}{}s", magnitude / 1000),
            frac => format!("{sign}{}.{frac:03}s", magnitude / 1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, serde::Serialize, Debug)]
    struct M {
        #[serde(with = "float")]
        value: f64,
        #[serde(default, deserialize_with = "int64::deserialize", skip_serializing)]
        ts: Option<i64>,
    }

    #[test]
    fn bare_tokens_are_read_outside_strings_only() {
        let raw = br#"[{"value": NaN, "ts": "12"}, {"value": -Infinity}, {"value": Infinity, "ts": 3}, {"value": 1.5}]"#;
        let v: Vec<M> = parse(raw).unwrap();
        assert!(v[0].value.is_nan());
        assert_eq!(v[0].ts, Some(12));
        assert_eq!(v[1].value, f64::NEG_INFINITY);
        assert_eq!(v[2].value, f64::INFINITY);
        assert_eq!(v[3].value, 1.5);
        let s = br#"{"k": "NaN \" Infinity", "v": 1}"#;
        assert!(matches!(quote_non_finite(s), Cow::Borrowed(_)));
    }

    #[test]
    fn non_finite_values_are_written_as_words() {
        let out = serde_json::to_string(&[
            M {
                value: f64::NAN,
                ts: None,
            },
            M {
                value: f64::INFINITY,
                ts: None,
            },
            M {
                value: f64::NEG_INFINITY,
                ts: None,
            },
            M {
                value: 0.25,
                ts: None,
            },
        ])
        .unwrap();
        assert_eq!(
            out,
            r#"[{"value":"NaN"},{"value":"Infinity"},{"value":"-Infinity"},{"value":0.25}]"#
        );
    }

    #[test]
    fn the_reader_quotes_like_the_slice_version_at_any_chunking() {
        use std::io::Read;
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(self.0.len()).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = br#"{"a": NaN, "b": [-Infinity, Infinity, -1.5, true, null, false], "s": "NaN \" Infinity", "c": -2e-3, "d":NaN}"#;
        let want = super::quote_non_finite(text).into_owned();
        for step in [1, 2, 3, 7, 1000] {
            let mut got = Vec::new();
            super::QuoteNonFinite::new(Trickle(text, step))
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "step {step}"
            );
        }
    }

    #[test]
    fn proto_timestamps_round_trip_in_milliseconds() {
        use super::timestamp::{format_ms, parse_ms};
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_ms("2026-12-01T06:02:27.111Z"),
            Some(1_796_104_947_111)
        );
        assert_eq!(format_ms(1_796_104_947_111), "2026-12-01T06:02:27.111Z");
        assert_eq!(parse_ms("2026-12-01T06:02:27Z"), Some(1_796_104_947_000));
        assert_eq!(
            parse_ms("2019-05-05T05:05:05.5Z"),
            parse_ms("2019-05-05T05:05:05.500Z")
        );
        assert_eq!(
            parse_ms("2019-05-05T05:05:05.123999999Z"),
            parse_ms("2019-05-05T05:05:05.123Z")
        );
        assert_eq!(
            parse_ms("2019-05-05T07:05:05.123+02:00"),
            parse_ms("2019-05-05T05:05:05.123Z")
        );
        assert_eq!(
            parse_ms("2024-02-29T00:00:00Z").map(format_ms).as_deref(),
            Some("2024-02-29T00:00:00.000Z")
        );
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        for ms in [
            0,
            1,
            999,
            86_399_999,
            951_782_400_000,
            4_102_444_799_999,
            -86_400_001,
        ] {
            assert_eq!(parse_ms(&format_ms(ms)), Some(ms), "{ms}");
        }
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01 06:02:27Z",
            "2026-12-01T06:02:27",
            "2026-12-01T06:02:27.Z",
            "2026-12-01T06:02:27.1234567890Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T06:02:27.111+0200",
            "1796104947111",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn proto_durations_round_trip_in_milliseconds() {
        use super::duration::{format_ms, parse_ms};
        assert_eq!(parse_ms("0s"), Some(0));
        assert_eq!(parse_ms("0.037s"), Some(37));
        assert_eq!(parse_ms("1.5s"), Some(1500));
        assert_eq!(parse_ms("1.000500s"), Some(1000));
        assert_eq!(parse_ms("-1.5005s"), Some(-1501));
        assert_eq!(format_ms(37), "0.037s");
        assert_eq!(format_ms(2000), "2s");
        assert_eq!(format_ms(-1500), "-1.500s");
        for ms in [
            0,
            1,
            999,
            1000,
            1001,
            123_456_789,
            -1,
            -1000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            assert_eq!(parse_ms(&format_ms(ms)), Some(ms), "{ms}");
        }
        for bad in [
            "",
            "s",
            "1",
            "1.s",
            ".5s",
            "1.2.3s",
            "+1s",
            "1e3s",
            "1.0000000001s",
            "--1s",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
