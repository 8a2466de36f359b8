//! The files' JSON as the Python tool writes it: the `system` section, the `system`/`info`/
//! `mlflow` document, tags as a dict, metric values with bare `NaN` and `Infinity`.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::out::Out;
use crate::error::{Error, Result};
use crate::format::model as rec;

/// The `system` section the Python tool writes in every file.
pub(super) fn system(h: &rec::Header) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "package_version": h.generator,
        "script": "mlflow-archive",
        "export_file_version": "2",
        "export_time": now,
        "mlflow_tracking_uri": h.source.as_ref().and_then(|s| s.tracking_uri.clone()),
    })
}

/// Writes a file the way the Python tool does: `system`, `info`, `mlflow`, indented.
pub(super) fn write_doc(
    w: &mut Out,
    path: &Path,
    system: &Value,
    info: Option<Value>,
    mlflow: Value,
) -> Result<()> {
    let mut doc = serde_json::Map::new();
    doc.insert("system".into(), system.clone());
    if let Some(i) = info {
        doc.insert("info".into(), i);
    }
    doc.insert("mlflow".into(), mlflow);
    w.json_file(path, &Value::Object(doc))
}

pub(crate) fn write_json(f: &mut impl Write, v: &Value, path: &Path) -> Result<()> {
    serde_json::to_writer_pretty(&mut *f, v).map_err(|e| Error::Json {
        what: format!("writing {}", path.display()),
        source: e,
    })
}

pub(crate) fn tags_map(tags: &[rec::Tag]) -> Value {
    Value::Object(
        tags.iter()
            .map(|t| (t.key.clone(), Value::String(t.value.clone())))
            .collect(),
    )
}

/// A metric value as Python's `json` writes it: a number, or a bare `NaN`, `Infinity`,
/// `-Infinity`.
pub(crate) fn value_token(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::to_string(&v).unwrap_or_else(|_| "NaN".into())
    }
}
