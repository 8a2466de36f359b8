//! Metric histories: `run.json` read a second time, its `metrics` streamed point by point into
//! chunks so no history is held whole (a classic file's single value per metric included).

use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::legacy::tree::Tree;
use crate::mlflow::json::QuoteNonFinite;

/// Points per metric chunk written.
const CHUNK_POINTS: usize = 10_000;
/// Reads `run.json` again and writes its `metrics` (under `mlflow` in file version 2, at the top
/// in older files) as chunks, point by point.
pub(super) fn stream_metrics<W: Write>(
    t: &dyn Tree,
    path: &Path,
    when: i64,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    let (_, f) = t.open(path)?;
    let mut de = serde_json::Deserializer::from_reader(QuoteNonFinite::new(f));
    let mut scan = Scan {
        sink: &mut |c: rec::MetricChunk| w.metric_chunk(&c),
        failure: None,
        when,
    };
    let parsed = Object(&mut scan).deserialize(&mut de);
    if let Some(e) = scan.failure {
        return Err(e);
    }
    parsed.map_err(|e| Error::Json {
        what: format!("{}: reading the metric history", path.display()),
        source: e,
    })
}

/// Where the chunks of a streamed `run.json` go, and what a classic single value is timed at.
struct Scan<'s> {
    sink: &'s mut dyn FnMut(rec::MetricChunk) -> Result<()>,
    /// The sink's own error (serde carries only text).
    failure: Option<Error>,
    /// The time given to a classic file's one value per metric.
    when: i64,
}

impl Scan<'_> {
    fn emit<E: serde::de::Error>(&mut self, chunk: rec::MetricChunk) -> std::result::Result<(), E> {
        if chunk.points.is_empty() {
            return Ok(());
        }
        (self.sink)(chunk).map_err(|e| {
            let msg = e.to_string();
            self.failure = Some(e);
            E::custom(msg)
        })
    }
}

/// An object of `run.json`: its `metrics` are read, `mlflow` is looked into, the rest skipped.
struct Object<'c, 's>(&'c mut Scan<'s>);

impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a run.json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "mlflow" => map.next_value_seed(Object(&mut *self.0))?,
                "metrics" => map.next_value_seed(Metrics(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `metrics`: key → history.
struct Metrics<'c, 's>(&'c mut Scan<'s>);

impl<'de> DeserializeSeed<'de> for Metrics<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Metrics<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("metrics: an object of metric histories")
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(History {
                key,
                scan: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

/// One metric's history: a list of points, or (classic `run.json`) a single latest value.
struct History<'c, 's> {
    key: String,
    scan: &'c mut Scan<'s>,
}

#[derive(Deserialize)]
struct LegacyPoint {
    #[serde(with = "crate::mlflow::json::float")]
    value: f64,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    step: i64,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
}

impl<'de> DeserializeSeed<'de> for History<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for History<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the history of metric {:?}: a list of points, or one value",
            self.key
        )
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        let chunk = rec::MetricChunk {
            key: self.key,
            points: vec![rec::Point {
                step: 0,
                timestamp: self.scan.when,
                value: v,
            }],
            ..rec::MetricChunk::default()
        };
        self.scan.emit(chunk)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<(), E> {
        match v {
            "NaN" => self.visit_f64(f64::NAN),
            "Infinity" => self.visit_f64(f64::INFINITY),
            "-Infinity" => self.visit_f64(f64::NEG_INFINITY),
            other => Err(E::custom(format!(
                "metric {:?}: {other:?} is not a value",
                self.key
            ))),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut chunk: Option<rec::MetricChunk> = None;
        while let Some(p) = seq.next_element::<LegacyPoint>()? {
            let same = chunk.as_ref().is_some_and(|c| {
                c.model_id == p.model_id
                    && c.dataset_name == p.dataset_name
                    && c.dataset_digest == p.dataset_digest
                    && c.points.len() < CHUNK_POINTS
            });
            if !same {
                if let Some(c) = chunk.take() {
                    self.scan.emit(c)?;
                }
                chunk = Some(rec::MetricChunk {
                    key: self.key.clone(),
                    model_id: p.model_id,
                    dataset_name: p.dataset_name,
                    dataset_digest: p.dataset_digest,
                    points: Vec::new(),
                });
            }
            if let Some(c) = chunk.as_mut() {
                c.points.push(rec::Point {
                    step: p.step,
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
        }
        if let Some(c) = chunk {
            self.scan.emit(c)?;
        }
        Ok(())
    }
}
