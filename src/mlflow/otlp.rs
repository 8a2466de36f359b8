//! A trace's spans as MLflow stores them (the document `{"spans":[...]}` of `Span.to_dict`, what
//! `get-trace-artifact` returns) turned into OTLP/HTTP JSON requests (`POST /v1/traces`), so that
//! a server stores them as its own again and gives back the same document. Pure: no I/O.
//!
//! What the server does with what it is sent decides what may be sent. It re-encodes each span
//! attribute with Python's `json.dumps` of the decoded value, derives the trace id from the spans'
//! own (`"tr-" + hex`), keeps event attributes as native values and drops a status message other
//! than an error's. A document whose spans would not come back exactly is refused with the
//! reason, before anything is sent: the caller then keeps the bytes as the artifact
//! `traces.json` instead (MLflow's own fallback). See research-traces.md §3.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};

/// Nesting deeper than this is refused (Python's own parser stops near 1000).
const MAX_DEPTH: usize = 200;

/// The OTLP request bodies (JSON, uncompressed) that carry the spans of the trace `trace_id`
/// held in `document`, each at most `max_request` bytes unless one span alone is larger (it then
/// travels alone). `Err` says why the document cannot travel by OTLP.
pub(crate) fn requests(
    trace_id: &str,
    document: &[u8],
    max_request: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let spans = spans(trace_id, document)?;
    const HEAD: &[u8] = br#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"mlflow-archive"},"spans":["#;
    const TAIL: &[u8] = b"]}]}]}";
    let mut bodies = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    for span in spans {
        let bytes = serde_json::to_vec(&span).map_err(|e| e.to_string())?;
        let open = !body.is_empty();
        if open && body.len() + 1 + bytes.len() + TAIL.len() > max_request {
            body.extend_from_slice(TAIL);
            bodies.push(std::mem::take(&mut body));
        }
        if body.is_empty() {
            body.extend_from_slice(HEAD);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(&bytes);
    }
    body.extend_from_slice(TAIL);
    bodies.push(body);
    Ok(bodies)
}

/// The OTLP JSON of each span of `document`, in its order.
pub(crate) fn spans(trace_id: &str, document: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(document)
        .map_err(|e| format!("the span document is not UTF-8 ({e})"))?;
    let doc = parse(text).map_err(|e| format!("the span document is not plain JSON: {e}"))?;
    let J::Obj(top) = doc else {
        return Err("the span document is not a JSON object".into());
    };
    let mut spans = None;
    for (key, value) in top {
        match (key.as_str(), value) {
            ("spans", J::Arr(list)) => spans = Some(list),
            ("spans", _) => return Err("the span document's \"spans\" is not a list".into()),
            (other, _) => {
                return Err(format!(
                    "the span document has a field {other:?} besides \"spans\", which OTLP does not carry"
                ));
            }
        }
    }
    let spans = spans.ok_or("the span document has no \"spans\" list")?;
    if spans.is_empty() {
        return Err("the span document holds no spans: OTLP has nothing to carry".into());
    }
    let otel_hex = trace_id
        .strip_prefix("tr-")
        .filter(|h| h.len() == 32 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| {
            format!(
                "the trace id {trace_id:?} is not \"tr-\" and 32 hex digits, the only form OTLP rebuilds"
            )
        })?;
    spans
        .into_iter()
        .enumerate()
        .map(|(n, span)| {
            convert_span(span, trace_id, otel_hex).map_err(|e| format!("span {n}: {e}"))
        })
        .collect()
}

fn convert_span(span: J, trace_id: &str, otel_hex: &str) -> Result<Value, String> {
    let J::Obj(fields) = span else {
        return Err("not a JSON object".into());
    };
    let mut out = serde_json::Map::new();
    let (mut has_start, mut has_end, mut has_trace, mut has_span, mut has_name) =
        (false, false, false, false, false);
    let mut request_id_ok = false;
    for (key, value) in fields {
        match key.as_str() {
            "trace_id" => {
                let hex = b64_id(&value, 16).map_err(|e| format!("trace_id {e}"))?;
                if hex != otel_hex {
                    return Err(format!(
                        "its trace id tr-{hex} is not the trace's {trace_id}: OTLP would file it under another trace"
                    ));
                }
                out.insert("traceId".into(), hex.into());
                has_trace = true;
            }
            "span_id" => {
                let hex = b64_id(&value, 8).map_err(|e| format!("span_id {e}"))?;
                out.insert("spanId".into(), hex.into());
                has_span = true;
            }
            "parent_span_id" => {
                if value != J::Null {
                    let hex = b64_id(&value, 8).map_err(|e| format!("parent_span_id {e}"))?;
                    out.insert("parentSpanId".into(), hex.into());
                }
            }
            "name" => {
                let J::Str(name) = value else {
                    return Err("its name is not a string".into());
                };
                out.insert("name".into(), name.into());
                has_name = true;
            }
            "start_time_unix_nano" | "end_time_unix_nano" => {
                let nanos = nanos(&value).ok_or_else(|| {
                    format!("{key} is not a whole number of nanoseconds (an unfinished span?)")
                })?;
                let (name, seen) = if key == "start_time_unix_nano" {
                    ("startTimeUnixNano", &mut has_start)
                } else {
                    ("endTimeUnixNano", &mut has_end)
                };
                out.insert(name.into(), nanos.to_string().into());
                *seen = true;
            }
            "attributes" => {
                let (attributes, ok) = span_attributes(value, trace_id)?;
                request_id_ok = ok;
                out.insert("attributes".into(), attributes.into());
            }
            "events" => {
                out.insert("events".into(), events(value)?.into());
            }
            "status" => {
                out.insert("status".into(), status(value)?);
            }
            "links" => {
                out.insert("links".into(), links(value)?.into());
            }
            "context" => {
                return Err("a span of the v2 schema (it has a \"context\" field)".into());
            }
            other => return Err(format!("a field {other:?} that OTLP does not carry")),
        }
    }
    for (present, what) in [
        (has_trace, "trace_id"),
        (has_span, "span_id"),
        (has_name, "name"),
        (has_start, "start_time_unix_nano"),
        (has_end, "end_time_unix_nano"),
    ] {
        if !present {
            return Err(format!("no {what}"));
        }
    }
    if !request_id_ok {
        // The server sets it from the trace id: a span without it would gain it.
        return Err(format!(
            "its attribute mlflow.traceRequestId does not name the trace {trace_id}"
        ));
    }
    Ok(Value::Object(out))
}

/// Span attributes: JSON texts, each sent as the typed value it encodes. The server encodes it
/// again with Python's `json.dumps`, so only texts written that way come back as they were.
/// Also says whether `mlflow.traceRequestId` names the trace.
fn span_attributes(value: J, trace_id: &str) -> Result<(Vec<Value>, bool), String> {
    let J::Obj(attributes) = value else {
        return Err("its attributes are not a JSON object".into());
    };
    let mut out = Vec::with_capacity(attributes.len());
    let mut request_id_ok = false;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in attributes {
        if !seen.insert(key.clone()) {
            return Err(format!("the attribute {key:?} appears twice"));
        }
        let J::Str(text) = value else {
            return Err(format!(
                "the attribute {key:?} is not JSON text as MLflow writes span attributes"
            ));
        };
        let decoded =
            parse(&text).map_err(|e| format!("the attribute {key:?} is not plain JSON: {e}"))?;
        let typed = any_value(&decoded).map_err(|e| format!("the attribute {key:?}: {e}"))?;
        if python_dumps(&decoded)? != text {
            return Err(format!(
                "the attribute {key:?} is not written as Python's json.dumps writes it, so it would not come back as it is"
            ));
        }
        if let J::Str(inner) = &decoded {
            string_attribute(inner).map_err(|e| format!("the attribute {key:?} {e}"))?;
        }
        if key == "mlflow.traceRequestId" {
            request_id_ok = decoded == J::Str(trace_id.to_string());
        }
        out.push(json!({ "key": key, "value": typed }));
    }
    Ok((out, request_id_ok))
}

/// Python's longest integer text (`sys.get_int_max_str_digits`): a longer one fails `json.loads`.
const PYTHON_MAX_INT_DIGITS: usize = 4300;

/// A string attribute that the server's ingest (`sanitize_attributes`, which undoes a second
/// layer of JSON encoding) would change or fail on: one whose text Python's `json.loads` reads as
/// a string, list or map (stored unwrapped), or that holds an integer too long for Python.
fn string_attribute(text: &str) -> Result<(), String> {
    let Ok(inner) = parse_python(text) else {
        return Ok(());
    };
    if has_long_int(&inner) {
        return Err(format!(
            "is a string holding an integer longer than {PYTHON_MAX_INT_DIGITS} digits, on which the server's ingest fails"
        ));
    }
    if matches!(inner, J::Str(_) | J::Arr(_) | J::Obj(_)) {
        return Err(
            "is a string holding JSON text, which the server's ingest would store decoded".into(),
        );
    }
    Ok(())
}

fn has_long_int(value: &J) -> bool {
    match value {
        J::Num(text) => {
            !text.contains(['.', 'e', 'E'])
                && text.trim_start_matches('-').len() > PYTHON_MAX_INT_DIGITS
        }
        J::Arr(items) => items.iter().any(has_long_int),
        J::Obj(entries) => entries.iter().any(|(_, v)| has_long_int(v)),
        _ => false,
    }
}

/// Event and link attributes: native JSON values.
fn native_attributes(value: J, what: &str, scalars_only: bool) -> Result<Vec<Value>, String> {
    let J::Obj(attributes) = value else {
        return Err(format!("{what} attributes are not a JSON object"));
    };
    let mut seen = std::collections::HashSet::new();
    attributes
        .into_iter()
        .map(|(key, value)| {
            if !seen.insert(key.clone()) {
                return Err(format!("the {what} attribute {key:?} appears twice"));
            }
            if scalars_only {
                let flat = |v: &J| matches!(v, J::Bool(_) | J::Num(_) | J::Str(_));
                let ok = match &value {
                    J::Arr(items) => items.iter().all(flat),
                    other => flat(other),
                };
                if !ok {
                    return Err(format!(
                        "the {what} attribute {key:?} is not a value OpenTelemetry keeps on an event (null, a map, a nested list)"
                    ));
                }
            }
            let typed =
                any_value(&value).map_err(|e| format!("the {what} attribute {key:?}: {e}"))?;
            Ok(json!({ "key": key, "value": typed }))
        })
        .collect()
}

fn events(value: J) -> Result<Vec<Value>, String> {
    let J::Arr(events) = value else {
        return Err("its events are not a list".into());
    };
    events
        .into_iter()
        .enumerate()
        .map(|(n, event)| {
            let J::Obj(fields) = event else {
                return Err(format!("event {n} is not a JSON object"));
            };
            let mut out = serde_json::Map::new();
            for (key, value) in fields {
                match key.as_str() {
                    "name" => {
                        let J::Str(name) = value else {
                            return Err(format!("event {n}'s name is not a string"));
                        };
                        out.insert("name".into(), name.into());
                    }
                    "time_unix_nano" => {
                        let t = nanos(&value).ok_or_else(|| {
                            format!("event {n}'s time is not a whole number of nanoseconds")
                        })?;
                        out.insert("timeUnixNano".into(), t.to_string().into());
                    }
                    "attributes" => {
                        let what = format!("event {n}'s");
                        let attributes = match value {
                            J::Null => Vec::new(),
                            v => native_attributes(v, &what, true)?,
                        };
                        out.insert("attributes".into(), attributes.into());
                    }
                    other => {
                        return Err(format!(
                            "event {n} has a field {other:?} that OTLP does not carry"
                        ));
                    }
                }
            }
            Ok(Value::Object(out))
        })
        .collect()
}

fn status(value: J) -> Result<Value, String> {
    let J::Obj(fields) = value else {
        return Err("its status is not a JSON object".into());
    };
    let mut code = None;
    let mut message = String::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("code", J::Str(c))
                if matches!(
                    c.as_str(),
                    "STATUS_CODE_UNSET" | "STATUS_CODE_OK" | "STATUS_CODE_ERROR"
                ) =>
            {
                code = Some(c);
            }
            ("code", other) => {
                return Err(format!(
                    "its status code {} is not one OTLP names",
                    python_dumps(&other).unwrap_or_default()
                ));
            }
            ("message", J::Str(m)) => message = m,
            ("message", J::Null) => {}
            ("message", _) => return Err("its status message is not a string".into()),
            (other, _) => {
                return Err(format!(
                    "its status has a field {other:?} that OTLP does not carry"
                ));
            }
        }
    }
    let code = code.unwrap_or_else(|| "STATUS_CODE_UNSET".into());
    if !message.is_empty() && code != "STATUS_CODE_ERROR" {
        return Err(format!(
            "its status {code} has a message, which OpenTelemetry keeps for errors only"
        ));
    }
    let mut out = json!({ "code": code });
    if !message.is_empty() {
        out["message"] = message.into();
    }
    Ok(out)
}

/// Links: `{trace_id: "tr-<hex>", span_id: "<hex>", attributes}`. The server reads a link's ids
/// as proto JSON bytes (base64), unlike a span's own (hex).
fn links(value: J) -> Result<Vec<Value>, String> {
    let J::Arr(links) = value else {
        return Err("its links are not a list".into());
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    links
        .into_iter()
        .enumerate()
        .map(|(n, link)| {
            let J::Obj(fields) = link else {
                return Err(format!("link {n} is not a JSON object"));
            };
            let mut out = serde_json::Map::new();
            let mut has_ids = (false, false);
            for (key, value) in fields {
                match (key.as_str(), value) {
                    ("trace_id", J::Str(id)) => {
                        let bytes = id
                            .strip_prefix("tr-")
                            .and_then(|h| hex_bytes(h, 16))
                            .ok_or_else(|| {
                                format!(
                                    "link {n}'s trace id {id:?} is not \"tr-\" and 32 hex digits"
                                )
                            })?;
                        out.insert("traceId".into(), b64.encode(bytes).into());
                        has_ids.0 = true;
                    }
                    ("span_id", J::Str(id)) => {
                        let bytes = hex_bytes(&id, 8).ok_or_else(|| {
                            format!("link {n}'s span id {id:?} is not 16 hex digits")
                        })?;
                        out.insert("spanId".into(), b64.encode(bytes).into());
                        has_ids.1 = true;
                    }
                    ("attributes", J::Null) => {}
                    ("attributes", J::Obj(a)) if a.is_empty() => {
                        return Err(format!(
                            "link {n} has empty attributes, which come back as none"
                        ));
                    }
                    ("attributes", a) => {
                        let what = format!("link {n}'s");
                        out.insert(
                            "attributes".into(),
                            native_attributes(a, &what, false)?.into(),
                        );
                    }
                    (other, _) => {
                        return Err(format!(
                            "link {n} has a field {other:?} that OTLP does not carry as it is"
                        ));
                    }
                }
            }
            if has_ids != (true, true) {
                return Err(format!("link {n} lacks its trace id or span id"));
            }
            Ok(Value::Object(out))
        })
        .collect()
}

/// A base64 id of `len` bytes as lowercase hex.
fn b64_id(value: &J, len: usize) -> Result<String, String> {
    let J::Str(text) = value else {
        return Err("is not a string".into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| format!("{text:?} is not base64"))?;
    if bytes.len() != len {
        return Err(format!("{text:?} is not {len} bytes"));
    }
    Ok(bytes
        .iter()
        .fold(String::with_capacity(len * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }))
}

fn hex_bytes(hex: &str, len: usize) -> Option<Vec<u8>> {
    if hex.len() != len * 2 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..len)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn nanos(value: &J) -> Option<u64> {
    match value {
        J::Num(text) if text.bytes().all(|c| c.is_ascii_digit()) => text.parse().ok(),
        _ => None,
    }
}

/// A number as Python's `json.loads` reads it: an integer (OTLP's int64) or a float.
enum Number {
    Int(i64),
    Float(f64),
}

fn number(text: &str) -> Result<Number, String> {
    if text.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        return text
            .parse()
            .map(Number::Int)
            .map_err(|_| format!("the integer {text} does not fit OTLP's 64 bits"));
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Number::Float(f)),
        _ => Err(format!("the number {text} is out of a double's range")),
    }
}

/// The OTLP `AnyValue` of a decoded value.
fn any_value(value: &J) -> Result<Value, String> {
    Ok(match value {
        J::Null => json!({}),
        J::Bool(b) => json!({ "boolValue": b }),
        J::Num(text) => match number(text)? {
            Number::Int(i) => json!({ "intValue": i.to_string() }),
            Number::Float(f) => json!({ "doubleValue": f }),
        },
        J::Str(s) => json!({ "stringValue": s }),
        J::Arr(items) => {
            let values = items.iter().map(any_value).collect::<Result<Vec<_>, _>>()?;
            json!({ "arrayValue": { "values": values } })
        }
        J::Obj(entries) => {
            let mut seen = std::collections::HashSet::new();
            let mut values = Vec::with_capacity(entries.len());
            for (key, v) in entries {
                if !seen.insert(key) {
                    return Err(format!("the key {key:?} appears twice in one map"));
                }
                values.push(json!({ "key": key, "value": any_value(v)? }));
            }
            json!({ "kvlistValue": { "values": values } })
        }
    })
}

/// What Python's `json.dumps(value, ensure_ascii=False)` writes for a decoded value.
fn python_dumps(value: &J) -> Result<String, String> {
    let mut out = String::new();
    dumps_into(value, &mut out)?;
    Ok(out)
}

fn dumps_into(value: &J, out: &mut String) -> Result<(), String> {
    match value {
        J::Null => out.push_str("null"),
        J::Bool(true) => out.push_str("true"),
        J::Bool(false) => out.push_str("false"),
        J::Num(text) => match number(text)? {
            Number::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Number::Float(f) => out.push_str(&python_float_repr(f)),
        },
        J::Str(s) => python_string(s, out),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_into(item, out)?;
            }
            out.push(']');
        }
        J::Obj(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(key, out);
                out.push_str(": ");
                dumps_into(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr` of a finite float: the shortest digits that read back as the same double,
/// positional when the decimal exponent is in -4..16, else `1e+16` / `1e-05`.
fn python_float_repr(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exponent + 1;
    let n = digits.len() as i32;
    let body = if -4 < point && point <= 16 {
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (whole, frac) = digits.split_at(point as usize);
            format!("{whole}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let e = point - 1;
        format!(
            "{first}{dot}{rest}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.abs()
        )
    };
    format!("{sign}{body}")
}

/// A JSON value with its maps in document order and its numbers as written.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// Parses strict JSON (RFC 8259) keeping what Python's reader would see. The tokens `NaN` and
/// `Infinity` that Python also reads are refused: OTLP JSON has no number for them.
fn parse(text: &str) -> Result<J, String> {
    parse_with(text, false)
}

/// Parses as Python's `json.loads` does: also the tokens `NaN`, `Infinity` and `-Infinity`, and
/// lone surrogate escapes (read as U+FFFD).
fn parse_python(text: &str) -> Result<J, String> {
    parse_with(text, true)
}

fn parse_with(text: &str, python: bool) -> Result<J, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        python,
    };
    let value = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.i));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// Read what Python reads besides JSON.
    python: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn value(&mut self, depth: usize) -> Result<J, String> {
        if depth > MAX_DEPTH {
            return self.fail(&format!("nesting deeper than {MAX_DEPTH}"));
        }
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.fail("unexpected end");
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(J::Obj(entries));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return self.fail("expected a key");
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return self.fail("expected ':'");
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        return Ok(J::Obj(entries));
                    }
                    return self.fail("expected ',' or '}'");
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        return Ok(J::Arr(items));
                    }
                    return self.fail("expected ',' or ']'");
                }
            }
            b'"' => self.string().map(J::Str),
            b't' if self.eat("true") => Ok(J::Bool(true)),
            b'f' if self.eat("false") => Ok(J::Bool(false)),
            b'n' if self.eat("null") => Ok(J::Null),
            b'N' | b'I' | b'-' if self.python => {
                match ["NaN", "Infinity", "-Infinity"]
                    .into_iter()
                    .find(|w| self.eat(w))
                {
                    Some(w) => Ok(J::Num(w.to_string())),
                    None if c == b'-' => self.number(),
                    None => self.fail("unexpected character"),
                }
            }
            b'N' | b'I' => self.fail("a NaN or Infinity value, which OTLP JSON cannot carry"),
            b'-' if self.s[self.i..].starts_with(b"-Infinity") => {
                self.fail("a NaN or Infinity value, which OTLP JSON cannot carry")
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.fail("unexpected character"),
        }
    }

    fn number(&mut self) -> Result<J, String> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - from
        };
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return self.fail("malformed number");
        }
        if self.eat(".") && digits(self) == 0 {
            return self.fail("malformed number");
        }
        if self.i < self.s.len() && matches!(self.s[self.i], b'e' | b'E') {
            self.i += 1;
            if self.i < self.s.len() && matches!(self.s[self.i], b'+' | b'-') {
                self.i += 1;
            }
            if digits(self) == 0 {
                return self.fail("malformed number");
            }
        }
        Ok(J::Num(self.text[start..self.i].to_string()))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.fail("unterminated string");
            };
            match c {
                b'"' => {
                    out.push_str(&self.text[run..self.i]);
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&self.text[run..self.i]);
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.fail("unterminated string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if self.python && (0xD800..0xE000).contains(&high) {
                                let rest = self.s.get(self.i..).unwrap_or_default();
                                let low = rest
                                    .strip_prefix(b"\\u")
                                    .and_then(|h| h.get(..4))
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .filter(|l| (0xDC00..0xE000).contains(l));
                                match low {
                                    Some(low) if high < 0xDC00 => {
                                        self.i += 6;
                                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                                    }
                                    _ => 0xFFFD,
                                }
                            } else if (0xD800..0xDC00).contains(&high) {
                                if !self.eat("\\u") {
                                    return self.fail("a lone surrogate");
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return self.fail("a lone surrogate");
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&high) {
                                return self.fail("a lone surrogate");
                            } else {
                                high
                            };
                            match char::from_u32(code) {
                                Some(ch) => out.push(ch),
                                None => return self.fail("a bad \\u escape"),
                            }
                        }
                        _ => return self.fail("a bad escape"),
                    }
                    run = self.i;
                }
                c if c < 0x20 => return self.fail("a control character in a string"),
                _ => self.i += 1,
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.fail("a bad \\u escape");
        };
        let text = std::str::from_utf8(h).unwrap_or("");
        if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
            return self.fail("a bad \\u escape");
        }
        self.i += 4;
        u32::from_str_radix(text, 16).or_else(|_| self.fail("a bad \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "tr-49ec1793d63c2a840d2dfec2d0d7c0e6";

    /// A span as `Span.to_dict` writes it, with `extra` spliced into its fields.
    fn span(span_id: &str, parent: Option<&str>, attributes: &str, extra: &str) -> String {
        let parent = parent.map_or("null".to_string(), |p| format!("\"{p}\""));
        format!(
            r#"{{"trace_id": "SewXk9Y8KoQNLf7C0NfA5g==", "span_id": "{span_id}", "parent_span_id": {parent}, "name": "boom", "start_time_unix_nano": 1796104946703412417, "end_time_unix_nano": 1796104946704673880, "events": [], "status": {{"code": "STATUS_CODE_OK", "message": ""}}, "attributes": {{"mlflow.traceRequestId": "\"{TRACE}\""{attributes}}}, "links": []{extra}}}"#
        )
    }

    fn doc(spans: &[String]) -> Vec<u8> {
        format!(r#"{{"spans": [{}]}}"#, spans.join(", ")).into_bytes()
    }

    fn one(span_json: String) -> Result<Value, String> {
        spans(TRACE, &doc(&[span_json])).map(|mut v| v.remove(0))
    }

    fn attr(span: &Value, key: &str) -> Value {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .unwrap_or_else(|| panic!("no attribute {key} in {span}"))["value"]
            .clone()
    }

    #[test]
    fn ids_become_hex_and_times_strings() {
        let s = one(span("1pbkLC1E8T8=", Some("nNL8Nd8Vf6I="), "", "")).unwrap();
        assert_eq!(s["traceId"], "49ec1793d63c2a840d2dfec2d0d7c0e6");
        assert_eq!(s["spanId"], "d696e42c2d44f13f");
        assert_eq!(s["parentSpanId"], "9cd2fc35df157fa2");
        assert_eq!(s["startTimeUnixNano"], "1796104946703412417");
        assert_eq!(s["endTimeUnixNano"], "1796104946704673880");
        assert_eq!(s["name"], "boom");
        let root = one(span("1pbkLC1E8T8=", None, "", "")).unwrap();
        assert!(root.get("parentSpanId").is_none(), "{root}");
    }

    #[test]
    fn attributes_are_sent_as_the_typed_values_they_encode() {
        let attributes = r#", "s": "\"hello \\\"w\\\" é\"", "i": "3", "neg": "-9223372036854775808", "f": "1.0", "g": "2.5e-08", "b": "true", "n": "null", "nested": "{\"b\": {\"a\": [1, null, true]}, \"a\": []}", "uni": "\"é\\n\"""#;
        let s = one(span("1pbkLC1E8T8=", None, attributes, "")).unwrap();
        assert_eq!(
            attr(&s, "mlflow.traceRequestId"),
            json!({ "stringValue": TRACE })
        );
        assert_eq!(
            attr(&s, "s"),
            json!({ "stringValue": "hello \"w\" \u{e9}" })
        );
        assert_eq!(attr(&s, "i"), json!({ "intValue": "3" }));
        assert_eq!(
            attr(&s, "neg"),
            json!({ "intValue": "-9223372036854775808" })
        );
        // 1.0 stays a double: the server writes it back as "1.0", not "1".
        assert_eq!(attr(&s, "f"), json!({ "doubleValue": 1.0 }));
        assert!(
            serde_json::to_string(&attr(&s, "f"))
                .unwrap()
                .contains("1.0")
        );
        assert_eq!(attr(&s, "g"), json!({ "doubleValue": 2.5e-8 }));
        assert_eq!(attr(&s, "b"), json!({ "boolValue": true }));
        assert_eq!(attr(&s, "n"), json!({}));
        assert_eq!(
            attr(&s, "nested"),
            json!({ "kvlistValue": { "values": [
                { "key": "b", "value": { "kvlistValue": { "values": [
                    { "key": "a", "value": { "arrayValue": { "values": [
                        { "intValue": "1" }, {}, { "boolValue": true } ] } } } ] } } },
                { "key": "a", "value": { "arrayValue": { "values": [] } } } ] } })
        );
        assert_eq!(attr(&s, "uni"), json!({ "stringValue": "é\n" }));
        // Document order is kept.
        let keys: Vec<_> = s["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "mlflow.traceRequestId",
                "s",
                "i",
                "neg",
                "f",
                "g",
                "b",
                "n",
                "nested",
                "uni"
            ]
        );
    }

    #[test]
    fn events_keep_native_attributes_and_the_status_its_message() {
        let extra = "";
        let text = span("1pbkLC1E8T8=", None, "", extra)
            .replace(
                r#""events": []"#,
                r#""events": [{"name": "exception", "time_unix_nano": 1796104946704588032, "attributes": {"exception.message": "bad input", "exception.type": "ValueError", "n": 3, "x": 1.0, "ok": false, "l": ["a", "b"]}}]"#,
            )
            .replace(
                r#"{"code": "STATUS_CODE_OK", "message": ""}"#,
                r#"{"code": "STATUS_CODE_ERROR", "message": "ValueError: bad input"}"#,
            );
        let s = one(text).unwrap();
        assert_eq!(
            s["events"],
            json!([{ "name": "exception", "timeUnixNano": "1796104946704588032", "attributes": [
                { "key": "exception.message", "value": { "stringValue": "bad input" } },
                { "key": "exception.type", "value": { "stringValue": "ValueError" } },
                { "key": "n", "value": { "intValue": "3" } },
                { "key": "x", "value": { "doubleValue": 1.0 } },
                { "key": "ok", "value": { "boolValue": false } },
                { "key": "l", "value": { "arrayValue": { "values": [
                    { "stringValue": "a" }, { "stringValue": "b" } ] } } } ] }])
        );
        assert_eq!(
            s["status"],
            json!({ "code": "STATUS_CODE_ERROR", "message": "ValueError: bad input" })
        );
        let ok = one(span("1pbkLC1E8T8=", None, "", "")).unwrap();
        assert_eq!(ok["status"], json!({ "code": "STATUS_CODE_OK" }));
    }

    #[test]
    fn links_carry_base64_ids() {
        let text = span("1pbkLC1E8T8=", None, "", "").replace(
            r#""links": []"#,
            r#""links": [{"trace_id": "tr-0123456789abcdef0123456789abcdef", "span_id": "0123456789abcdef", "attributes": {"r": "s", "k": 2}}]"#,
        );
        let s = one(text).unwrap();
        assert_eq!(
            s["links"],
            json!([{ "traceId": "ASNFZ4mrze8BI0VniavN7w==", "spanId": "ASNFZ4mrze8=", "attributes": [
                { "key": "r", "value": { "stringValue": "s" } },
                { "key": "k", "value": { "intValue": "2" } } ] }])
        );
    }

    #[test]
    fn documents_otlp_cannot_carry_are_refused_with_the_reason() {
        let refused = |text: String, want: &str| {
            let e = one(text.clone()).unwrap_err();
            assert!(e.contains(want), "{e:?} should say {want:?} for {text}");
        };
        // The trace id is not "tr-" + the spans' own.
        let e = spans(
            "tr-00000000000000000000000000000000",
            &doc(&[span("1pbkLC1E8T8=", None, "", "")]),
        )
        .unwrap_err();
        assert!(e.contains("file it under another trace"), "{e}");
        let e = spans("6a3f0e", &doc(&[span("1pbkLC1E8T8=", None, "", "")])).unwrap_err();
        assert!(e.contains("the only form OTLP rebuilds"), "{e}");
        // Integers beyond 64 bits, non-finite numbers.
        refused(
            span(
                "1pbkLC1E8T8=",
                None,
                r#", "big": "1180591620717411303424""#,
                "",
            ),
            "does not fit OTLP's 64 bits",
        );
        refused(
            span(
                "1pbkLC1E8T8=",
                None,
                r#", "big": "9223372036854775808""#,
                "",
            ),
            "does not fit OTLP's 64 bits",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "nan": "NaN""#, ""),
            "NaN or Infinity",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "inf": "[1, -Infinity]""#, ""),
            "NaN or Infinity",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "huge": "1e400""#, ""),
            "out of a double's range",
        );
        // A v2-schema span.
        refused(
            span(
                "1pbkLC1E8T8=",
                None,
                "",
                r#", "context": {"span_id": "0x1"}"#,
            ),
            "v2 schema",
        );
        // Attribute texts the server would write differently.
        refused(
            span("1pbkLC1E8T8=", None, r#", "k": "{\"a\":1}""#, ""),
            "json.dumps",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "f": "1.50""#, ""),
            "json.dumps",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "k": "\"\\u00e9\"""#, ""),
            "json.dumps",
        );
        refused(
            span("1pbkLC1E8T8=", None, r#", "k": "hello""#, ""),
            "plain JSON",
        );
        // Strings the server's ingest would decode again, or fail on.
        for inner in [
            r#"{\\\"a\\\": 1}"#,
            r#"[1, NaN]"#,
            r#"\\\"x\\\""#,
            r#" [] "#,
        ] {
            refused(
                span(
                    "1pbkLC1E8T8=",
                    None,
                    &format!(r#", "k": "\"{inner}\"""#),
                    "",
                ),
                "store decoded",
            );
        }
        let long = "1".repeat(4301);
        refused(
            span("1pbkLC1E8T8=", None, &format!(r#", "k": "\"{long}\"""#), ""),
            "longer than 4300 digits",
        );
        let fine = format!(
            r#", "a": "\"{}\"", "b": "\"12\"", "c": "\"[INFO] started\"", "d": "\"null\"", "e": "\"{}\"""#,
            "1".repeat(4300),
            "0".repeat(5000)
        );
        assert!(one(span("1pbkLC1E8T8=", None, &fine, "")).is_ok());
        refused(span("1pbkLC1E8T8=", None, r#", "k": 3"#, ""), "JSON text");
        refused(
            span("1pbkLC1E8T8=", None, r#", "k": "{\"a\": 1, \"a\": 2}""#, ""),
            "appears twice",
        );
        // Spans the server would complete or change.
        refused(
            span("1pbkLC1E8T8=", None, "", "").replace(
                r#""mlflow.traceRequestId": "\"tr-49ec1793d63c2a840d2dfec2d0d7c0e6\"""#,
                r#""x": "1""#,
            ),
            "mlflow.traceRequestId",
        );
        refused(
            span("1pbkLC1E8T8=", None, "", "").replace(
                "\"end_time_unix_nano\": 1796104946704673880",
                "\"end_time_unix_nano\": null",
            ),
            "unfinished span",
        );
        refused(
            span("1pbkLC1E8T8=", None, "", "").replace(r#""message": """#, r#""message": "fine""#),
            "errors only",
        );
        refused(span("AAAA", None, "", ""), "is not 8 bytes");
        refused(span("1pbkLC1E8T8=", None, "", r#", "kind": 1"#), "\"kind\"");
        refused(
            span("1pbkLC1E8T8=", None, "", "").replace(
                r#""events": []"#,
                r#""events": [{"name": "e", "time_unix_nano": 1, "attributes": {"m": {"a": 1}}}]"#,
            ),
            "OpenTelemetry keeps on an event",
        );
        refused(
            span("1pbkLC1E8T8=", None, "", "").replace(
                r#""links": []"#,
                r#""links": [{"trace_id": "trace:/loc/0123", "span_id": "0123456789abcdef", "attributes": null}]"#,
            ),
            "32 hex digits",
        );
        // Whole documents.
        for (text, want) in [
            (&b"{\"spans\": []}"[..], "holds no spans"),
            (b"{\"spans\": [], \"request\": \"{}\"}", "besides"),
            (b"[1]", "not a JSON object"),
            (b"{\"spans\": [", "not plain JSON"),
            (b"{\"spans\": \xff}", "not UTF-8"),
        ] {
            let e = spans(TRACE, text).unwrap_err();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = spans(TRACE, deep.as_bytes()).unwrap_err();
        assert!(e.contains("nesting deeper"), "{e}");
    }

    #[test]
    fn requests_are_split_by_size_and_keep_every_span() {
        let big = format!(r#", "big": "\"{}\"""#, "x".repeat(3000));
        let spans_json: Vec<String> = [
            "1pbkLC1E8T8=",
            "nNL8Nd8Vf6I=",
            "AAAAAAAAAAE=",
            "AAAAAAAAAAI=",
        ]
        .iter()
        .map(|id| span(id, None, &big, ""))
        .collect();
        let document = doc(&spans_json);
        let one_request = requests(TRACE, &document, 4 << 20).unwrap();
        assert_eq!(one_request.len(), 1);
        let split = requests(TRACE, &document, 7000).unwrap();
        assert_eq!(split.len(), 2, "two spans of ~3.4 kB a request");
        let tiny = requests(TRACE, &document, 10).unwrap();
        assert_eq!(tiny.len(), 4, "a span larger than the limit travels alone");
        for bodies in [one_request, split, tiny] {
            let mut ids = Vec::new();
            for b in &bodies {
                let v: Value = serde_json::from_slice(b).unwrap();
                for s in v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .unwrap()
                {
                    ids.push(s["spanId"].as_str().unwrap().to_string());
                }
            }
            assert_eq!(
                ids,
                [
                    "d696e42c2d44f13f",
                    "9cd2fc35df157fa2",
                    "0000000000000001",
                    "0000000000000002"
                ]
            );
        }
    }

    #[test]
    fn floats_are_written_as_python_writes_them() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-8, "1.5e-08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.125, "123456789.125"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-2.5e22, "-2.5e+22"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(python_float_repr(f), want, "{f:e}");
        }
        let mut s = String::new();
        python_string("a\"\\\n\u{1}\u{7f}é😀", &mut s);
        assert_eq!(s, "\"a\\\"\\\\\\n\\u0001\u{7f}é😀\"");
        assert_eq!(
            python_dumps(&parse(r#"{"a":[1,2.0,"x",null,true,{}]}"#).unwrap()).unwrap(),
            r#"{"a": [1, 2.0, "x", null, true, {}]}"#
        );
        assert_eq!(parse(r#""\ud83d\ude00""#).unwrap(), J::Str("😀".into()));
        assert_eq!(
            parse_python(r#""\ud83d""#).unwrap(),
            J::Str("\u{fffd}".into())
        );
        assert_eq!(
            parse_python(r#"["\ud83d\ude00", NaN, -Infinity, -1]"#).unwrap(),
            J::Arr(vec![
                J::Str("😀".into()),
                J::Num("NaN".into()),
                J::Num("-Infinity".into()),
                J::Num("-1".into())
            ])
        );
        for bad in [
            r#""\ud83d""#,
            "01",
            "1.",
            "-",
            "[1,]",
            "{\"a\" 1}",
            "\"\u{1}\"",
            "tru",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
