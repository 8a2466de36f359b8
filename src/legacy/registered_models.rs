//! `registered_models.json`, as the Python tool's `list-registered-models` writes it: the answer of
//! `registered-models/search` (`{"registered_models": [...]}`, indented by 2), with one addition
//! that tool lacks: each model carries `versions`, every version in numeric order.
//!
//! The writer streams: it holds one model at a time.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `registered_models.json` one model at a time.
#[derive(Debug)]
pub struct RegisteredModelsWriter<W: Write> {
    out: W,
    count: usize,
    what: String,
}

impl<W: Write> RegisteredModelsWriter<W> {
    /// Prepares the document; `what` names the destination in errors. Nothing is written before
    /// the first model (or [`RegisteredModelsWriter::finish`]), so a failure before any model was
    /// found leaves the output untouched.
    ///
    /// # Errors
    ///
    /// A failed write of the document's opening.
    pub fn new(out: W, what: impl Into<String>) -> Result<Self> {
        Ok(RegisteredModelsWriter {
            out,
            count: 0,
            what: what.into(),
        })
    }

    const HEAD: &'static str = "{\n  \"registered_models\": [";

    /// Appends one model (any serialisable object).
    ///
    /// # Errors
    ///
    /// A failed write, or a model that cannot be serialised.
    pub fn write_model<T: Serialize>(&mut self, model: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(model).map_err(|e| Error::Json {
            what: format!("encoding a model for {}", self.what),
            source: e,
        })?;
        let mut chunk = String::with_capacity(text.len() + text.len() / 8 + 8);
        chunk.push_str(if self.count == 0 { Self::HEAD } else { "," });
        chunk.push('\n');
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                chunk.push('\n');
            }
            chunk.push_str("    ");
            chunk.push_str(line);
        }
        self.out
            .write_all(chunk.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", self.what), e))?;
        self.count += 1;
        Ok(())
    }

    /// Ends the document, flushes, and returns the writer and the number of models written.
    ///
    /// # Errors
    ///
    /// A failed write or flush of the document's end.
    pub fn finish(mut self) -> Result<(W, usize)> {
        let end = if self.count == 0 {
            format!("{}]\n}}\n", Self::HEAD)
        } else {
            "\n  ]\n}\n".to_string()
        };
        self.out
            .write_all(end.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(format!("writing {}", self.what), e))?;
        Ok((self.out, self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_indented_json() {
        let mut w = RegisteredModelsWriter::new(Vec::new(), "test").unwrap();
        w.write_model(&serde_json::json!({"name": "a", "versions": [{"version": "1"}]}))
            .unwrap();
        w.write_model(&serde_json::json!({"name": "b"})).unwrap();
        let (bytes, n) = w.finish().unwrap();
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["registered_models"][1]["name"], "b");
        assert_eq!(v["registered_models"][0]["versions"][0]["version"], "1");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\n    {\n      \"name\": \"a\""), "{text}");

        let (empty, n) = RegisteredModelsWriter::new(Vec::new(), "t")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(n, 0);
        let v: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v["registered_models"].as_array().unwrap().len(), 0);
    }
}
