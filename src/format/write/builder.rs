//! The options of an [`ArchiveWriter`], each with its default, and the writer they build.

use super::*;

/// Options of [`ArchiveWriter`].
#[derive(Debug, Clone)]
pub struct WriterBuilder {
    level: i32,
    threads: u32,
    generator: String,
    source: Option<Source>,
    flush_units: bool,
}

impl Default for WriterBuilder {
    fn default() -> Self {
        WriterBuilder {
            level: 3,
            threads: 0,
            generator: concat!("mlflow-archive ", env!("CARGO_PKG_VERSION")).into(),
            source: None,
            flush_units: false,
        }
    }
}

impl WriterBuilder {
    /// Options with their defaults: zstd level 3, no zstd worker threads.
    pub fn new() -> Self {
        Self::default()
    }

    /// The zstd level, 1 to 19 (default 3). Levels above 19 would need windows larger than
    /// readers accept (§4) and are refused.
    pub fn level(mut self, level: i32) -> Self {
        self.level = level;
        self
    }

    /// zstd worker threads (default 0: compress on the calling thread).
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }

    /// The header's `generator` (default `mlflow-archive <version>`).
    pub fn generator(mut self, generator: impl Into<String>) -> Self {
        self.generator = generator.into();
        self
    }

    /// The header's `source`.
    pub fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Whether the writer flushes the archive (compressor and output) at the end of each unit
    /// (default: no). For a reader at the other end of a pipe: each unit is readable as soon as it is
    /// whole, not once the compressor's block and the output's buffer fill. Each flush ends a
    /// zstd block (the frame goes on): a few bytes, and a write, per unit. The flushes follow
    /// the units, not the clock, so the same content still gives the same bytes.
    pub fn flush_units(mut self, yes: bool) -> Self {
        self.flush_units = yes;
        self
    }

    /// Starts an archive on `out`, writing its header.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a zstd level outside 1..=19;
    /// [`Error::Io`] when the encoder refuses its settings (worker threads) or
    /// the header cannot be written.
    pub fn build<W: Write>(self, out: W) -> Result<ArchiveWriter<W>> {
        if !(1..=19).contains(&self.level) {
            return Err(Error::Config(format!(
                "zstd level {} is outside 1..=19",
                self.level
            )));
        }
        let mut enc = zstd::stream::write::Encoder::new(CountingWriter::new(out), self.level)
            .map_err(|e| Error::io("starting the zstd encoder", e))?;
        enc.include_checksum(true)
            .map_err(|e| Error::io("configuring the zstd encoder", e))?;
        if self.threads > 0 {
            enc.multithread(self.threads)
                .map_err(|e| Error::io("configuring zstd worker threads", e))?;
        }
        let mut w = ArchiveWriter {
            out: Some(enc),
            pos: 0,
            v: Validator::new(Limits {
                max_artifact_bytes: u64::MAX,
                ..Limits::default()
            }),
            body: None,
            next_chunk: 0,
            next_model: 0,
            poisoned: false,
            flush_units: self.flush_units,
            scratch: Vec::new(),
            entries: Vec::new(),
        };
        let header = Header {
            format: FORMAT_NAME.into(),
            version: current_version(),
            generator: self.generator,
            source: self.source,
        };
        let bytes = json(&header, true, "the header")?;
        let crc = w.json_member(path::HEADER, &Member::Header, &bytes)?;
        w.check(|v| v.header(&header, crc))?;
        Ok(w)
    }
}
