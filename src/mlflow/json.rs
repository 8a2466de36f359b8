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
}
