//! The streaming writer: records and artifact bodies in, a `.mlar` stream out, front to back, with
//! nothing held but the open unit's member list. Every call is checked against the format's rules
//! ([`super::validate`]), so a writer cannot produce an archive a reader would refuse; a failure
//! poisons the writer, and only [`ArchiveWriter::finish`] makes the output a complete archive.

use std::io::{self, Read, Write};

use super::checksum::{CountingWriter, Crc32};
use super::limits::Limits;
use super::model::{
    Counts, Dataset, DatasetRecords, Experiment, FORMAT_NAME, Header, LoggedModel, MetricChunk,
    ModelVersion, Permissions, RegisteredModel, Run, Seal, SealEntry, Source, Trace,
};
use super::path::{self, Member, Part, UnitId};
use super::tarfmt;
use super::validate::{Listed, Validator, current_version};
use crate::error::{Error, Result};

mod builder;

pub use builder::WriterBuilder;

struct Body {
    name: String,
    size: u64,
    written: u64,
    hasher: crc32fast::Hasher,
}

/// Writes an archive. See the module documentation; **[`ArchiveWriter::finish`] is required**: an
/// archive without its trailer is refused by every reader.
pub struct ArchiveWriter<W: Write> {
    out: Option<zstd::stream::write::Encoder<'static, CountingWriter<W>>>,
    pos: u64,
    v: Validator,
    body: Option<Body>,
    next_chunk: u64,
    next_model: u64,
    poisoned: bool,
    /// Flush at each unit's end ([`WriterBuilder::flush_units`]).
    flush_units: bool,
    scratch: Vec<u8>,
    /// The open unit's members, for its seal (the validator keeps only hashes of their names).
    entries: Vec<SealEntry>,
}

/// What [`ArchiveWriter::finish`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteSummary {
    /// What the archive holds.
    pub counts: Counts,
    /// Bytes of the tar stream (before compression).
    pub tar_bytes: u64,
    /// Bytes written to the output (after compression).
    pub archive_bytes: u64,
}

fn json<T: serde::Serialize>(v: &T, pretty: bool, what: &str) -> Result<Vec<u8>> {
    let r = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    };
    r.map_err(|e| Error::Json {
        what: format!("encoding {what}"),
        source: e,
    })
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive with default options.
    ///
    /// # Errors
    ///
    /// As [`WriterBuilder::build`].
    pub fn new(out: W) -> Result<Self> {
        WriterBuilder::new().build(out)
    }

    fn enc(&mut self) -> Result<&mut zstd::stream::write::Encoder<'static, CountingWriter<W>>> {
        if self.poisoned {
            return Err(Error::Usage(
                "the archive writer failed earlier; the output is not a valid archive".into(),
            ));
        }
        self.out
            .as_mut()
            .ok_or_else(|| Error::Usage("the archive writer is finished".into()))
    }

    fn poison<T>(&mut self, e: Error) -> Result<T> {
        self.poisoned = true;
        Err(e)
    }

    fn check(
        &mut self,
        f: impl FnOnce(&mut Validator) -> std::result::Result<(), super::validate::Violation>,
    ) -> Result<()> {
        let unit = self.v.open_unit().map(ToString::to_string);
        match f(&mut self.v) {
            Ok(()) => Ok(()),
            Err(detail) => self.poison(Error::Format {
                offset: Some(self.pos),
                member: None,
                object: unit,
                detail: format!("refusing to write an invalid archive: {detail}"),
            }),
        }
    }

    fn io_err(&mut self, what: &str, e: io::Error) -> Error {
        self.poisoned = true;
        Error::io(format!("writing the archive ({what})"), e)
    }

    /// Writes a whole JSON member; returns its CRC.
    fn json_member(&mut self, name: &str, member: &Member, bytes: &[u8]) -> Result<Crc32> {
        if self.body.is_some() {
            return self.poison(Error::Usage(format!(
                "{name}: the previous artifact body is not complete"
            )));
        }
        let size = bytes.len() as u64;
        self.check(|v| v.begin(name, member, size))?;
        let crc = Crc32::of(bytes);
        let enc = self.enc()?;
        let r = tarfmt::write_header(enc, name, size).and_then(|n| {
            enc.write_all(bytes)?;
            tarfmt::write_zeros(enc, tarfmt::padding(size))?;
            Ok(n)
        });
        match r {
            Ok(n) => self.pos += n + size + tarfmt::padding(size),
            Err(e) => return Err(self.io_err(name, e)),
        }
        self.ended(name, Listed::of(member), size, crc);
        Ok(crc)
    }

    /// Pushes what was written so far through the compressor and flushes the output, so that a
    /// reader at the other end of a pipe can read it now. The archive stays open: a flush ends a
    /// zstd block, not the frame.
    fn flush(&mut self) -> Result<()> {
        let r = self.enc()?.flush();
        r.map_err(|e| self.io_err("flushing", e))
    }

    /// Writes an experiment (a unit of its own: record and seal).
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn experiment(&mut self, e: &Experiment) -> Result<()> {
        self.begin_experiment(e)?;
        self.end_unit()
    }

    /// Opens an experiment's unit with its record; its [`permissions`](Self::permissions) may
    /// follow, then [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_experiment(&mut self, e: &Experiment) -> Result<()> {
        self.record(
            UnitId::Experiment(e.experiment_id.clone()),
            e,
            "an experiment",
        )?;
        self.check(|v| v.experiment(e))
    }

    /// Writes the permissions of the open experiment or registered model (format 1.2), directly
    /// after its record.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn permissions(&mut self, p: &Permissions) -> Result<()> {
        let Some(unit @ (UnitId::Experiment(_) | UnitId::Model(_))) = self.v.open_unit().cloned()
        else {
            return self.poison(Error::Usage(
                "permissions need an open experiment or registered model".into(),
            ));
        };
        let bytes = json(p, true, "permissions")?;
        self.check(|v| v.json_values(&bytes, "the permissions record"))?;
        self.json_member(
            &path::permissions_path(&unit),
            &Member::Unit(unit, Part::Permissions),
            &bytes,
        )?;
        self.check(|v| v.permissions(p))
    }

    /// Opens unit `id` with its record `r` (`what` names it in errors).
    fn record<T: serde::Serialize>(&mut self, id: UnitId, r: &T, what: &str) -> Result<()> {
        let unit = self.unit_id(id)?;
        let bytes = json(r, true, what)?;
        if let UnitId::Trace(_) = unit {
            // A free-form record: bounded before a reader parses it (§11).
            self.check(|v| v.json_values(&bytes, "the trace record"))?;
        }
        self.json_member(
            &unit.record_path(),
            &Member::Unit(unit, Part::Record),
            &bytes,
        )?;
        Ok(())
    }

    fn unit_id(&mut self, id: UnitId) -> Result<UnitId> {
        if let UnitId::Experiment(s)
        | UnitId::Run(s)
        | UnitId::LoggedModel(s)
        | UnitId::Trace(s)
        | UnitId::Dataset(s) = &id
            && let Err(detail) = path::check_id(s)
        {
            return self.poison(Error::Format {
                offset: Some(self.pos),
                member: None,
                object: Some(id.to_string()),
                detail,
            });
        }
        Ok(id)
    }

    /// Opens a run's unit with its record; metric chunks and artifacts follow, then
    /// [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_run(&mut self, r: &Run) -> Result<()> {
        self.record(UnitId::Run(r.run_id.clone()), r, "a run")?;
        self.next_chunk = 0;
        self.check(|v| v.run(r))
    }

    /// Writes a chunk of metric history into the open run.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn metric_chunk(&mut self, c: &MetricChunk) -> Result<()> {
        let Some(UnitId::Run(run_id)) = self.v.open_unit().cloned() else {
            return self.poison(Error::Usage("a metric chunk needs an open run".into()));
        };
        let seq = self.next_chunk;
        let name = path::metric_chunk_path(&run_id, seq);
        let bytes = json(c, false, "a metric chunk")?;
        self.json_member(
            &name,
            &Member::Unit(UnitId::Run(run_id), Part::MetricChunk(seq)),
            &bytes,
        )?;
        self.next_chunk += 1;
        self.check(|v| v.metric_chunk(c))
    }

    /// Opens a logged model's unit with its record; artifacts follow, then
    /// [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_logged_model(&mut self, m: &LoggedModel) -> Result<()> {
        self.record(UnitId::LoggedModel(m.model_id.clone()), m, "a logged model")?;
        self.check(|v| v.logged_model(m))
    }

    /// Opens a registered model's unit; its versions follow in increasing order, then
    /// [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_registered_model(&mut self, m: &RegisteredModel) -> Result<()> {
        self.record(UnitId::Model(self.next_model), m, "a registered model")?;
        self.check(|v| v.registered_model(m))
    }

    /// Writes a version of the open registered model.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn model_version(&mut self, mv: &ModelVersion) -> Result<()> {
        let Some(unit @ UnitId::Model(_)) = self.v.open_unit().cloned() else {
            return self.poison(Error::Usage(
                "a model version needs an open registered model".into(),
            ));
        };
        let name = path::version_path(&unit, mv.version);
        let bytes = json(mv, true, "a model version")?;
        self.json_member(
            &name,
            &Member::Unit(unit, Part::ModelVersion(mv.version)),
            &bytes,
        )?;
        self.check(|v| v.model_version(mv, mv.version))
    }

    /// Opens a trace's unit with its record (format 1.1); its span data (`traces.json`) and
    /// attachments follow as artifacts, then [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_trace(&mut self, t: &Trace) -> Result<()> {
        self.record(UnitId::Trace(t.trace_id.clone()), t, "a trace")?;
        self.check(|v| v.trace(t))
    }

    /// Opens an evaluation dataset's unit with its record (format 1.1); its records follow
    /// through [`ArchiveWriter::dataset_records`], then [`ArchiveWriter::end_unit`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_dataset(&mut self, d: &Dataset) -> Result<()> {
        self.record(UnitId::Dataset(d.dataset_id.clone()), d, "a dataset")?;
        self.next_chunk = 0;
        self.check(|v| v.dataset(d))
    }

    /// Writes a chunk of records into the open dataset.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn dataset_records(&mut self, c: &DatasetRecords) -> Result<()> {
        let Some(UnitId::Dataset(id)) = self.v.open_unit().cloned() else {
            return self.poison(Error::Usage("dataset records need an open dataset".into()));
        };
        let seq = self.next_chunk;
        let name = path::dataset_records_path(&id, seq);
        let bytes = json(c, false, "dataset records")?;
        self.check(|v| v.json_values(&bytes, "the dataset records chunk"))?;
        self.json_member(
            &name,
            &Member::Unit(UnitId::Dataset(id), Part::DatasetRecords(seq)),
            &bytes,
        )?;
        self.next_chunk += 1;
        self.check(|v| v.dataset_records(c))
    }

    /// Starts an artifact of exactly `size` bytes in the open run, logged model or trace; its bytes
    /// follow through [`ArchiveWriter::write_body`], then [`ArchiveWriter::end_artifact`].
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn begin_artifact(&mut self, rel: &str, size: u64) -> Result<()> {
        let unit = match self.v.open_unit().cloned() {
            Some(u @ (UnitId::Run(_) | UnitId::LoggedModel(_) | UnitId::Trace(_))) => u,
            _ => {
                return self.poison(Error::Usage(format!(
                    "artifact {rel:?} needs an open run, logged model or trace"
                )));
            }
        };
        if let Err(detail) = path::check_relpath(rel) {
            return self.poison(Error::Format {
                offset: Some(self.pos),
                member: None,
                object: Some(unit.to_string()),
                detail: format!("artifact path: {detail}"),
            });
        }
        let name = path::artifact_path(&unit, rel);
        let member = Member::Unit(unit, Part::Artifact(rel.to_string()));
        if self.body.is_some() {
            return self.poison(Error::Usage(format!(
                "{name}: the previous artifact body is not complete"
            )));
        }
        self.check(|v| v.begin(&name, &member, size))?;
        let enc = self.enc()?;
        match tarfmt::write_header(enc, &name, size) {
            Ok(n) => self.pos += n,
            Err(e) => return Err(self.io_err(&name, e)),
        }
        self.body = Some(Body {
            name,
            size,
            written: 0,
            hasher: crc32fast::Hasher::new(),
        });
        Ok(())
    }

    /// Writes bytes of the artifact begun last; more than its declared size is an error.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn write_body(&mut self, data: &[u8]) -> Result<()> {
        let Some(b) = self.body.as_mut() else {
            return self.poison(Error::Usage("no artifact body is open".into()));
        };
        if b.written + data.len() as u64 > b.size {
            let msg = format!(
                "{}: the body is longer than its declared {} bytes",
                b.name, b.size
            );
            return self.poison(Error::io(
                msg,
                io::Error::new(io::ErrorKind::InvalidData, "too long"),
            ));
        }
        b.written += data.len() as u64;
        b.hasher.update(data);
        let name = b.name.clone();
        let enc = self.enc()?;
        if let Err(e) = enc.write_all(data) {
            return Err(self.io_err(&name, e));
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Ends the artifact begun last; fewer bytes than declared is an error.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn end_artifact(&mut self) -> Result<()> {
        let Some(b) = self.body.take() else {
            return self.poison(Error::Usage("no artifact body is open".into()));
        };
        if b.written != b.size {
            let msg = format!(
                "{}: the body is shorter ({} bytes) than its declared {} bytes",
                b.name, b.written, b.size
            );
            return self.poison(Error::io(
                msg,
                io::Error::new(io::ErrorKind::UnexpectedEof, "too short"),
            ));
        }
        let enc = self.enc()?;
        if let Err(e) = tarfmt::write_zeros(enc, tarfmt::padding(b.size)) {
            return Err(self.io_err(&b.name, e));
        }
        self.pos += tarfmt::padding(b.size);
        self.ended(
            &b.name,
            Listed::Artifact,
            b.size,
            Crc32(b.hasher.finalize()),
        );
        Ok(())
    }

    /// Writes a whole artifact of exactly `size` bytes from a reader; a reader that ends early or
    /// has bytes left over is an error.
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn artifact(&mut self, rel: &str, size: u64, mut body: impl Read) -> Result<()> {
        // (the copy loop reuses one buffer across artifacts: thousands of small files are common)
        self.begin_artifact(rel, size)?;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(64 * 1024, 0);
        let r = self.copy_body(rel, size, &mut body, &mut buf);
        self.scratch = buf;
        r?;
        self.end_artifact()
    }

    fn copy_body(
        &mut self,
        rel: &str,
        size: u64,
        body: &mut impl Read,
        buf: &mut [u8],
    ) -> Result<()> {
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = match body.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return self.poison(Error::io(
                        format!("reading the body of artifact {rel:?}"),
                        e,
                    ));
                }
            };
            self.write_body(&buf[..n])?;
            left -= n as u64;
        }
        if left == 0 {
            let mut probe = [0u8; 1];
            loop {
                match body.read(&mut probe) {
                    Ok(0) => break,
                    Ok(_) => {
                        return self.poison(Error::io(
                            format!("artifact {rel:?}: the body is longer than its declared {size} bytes"),
                            io::Error::new(io::ErrorKind::InvalidData, "too long"),
                        ));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return self.poison(Error::io(
                            format!("reading the body of artifact {rel:?}"),
                            e,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals the open unit (run, logged model or registered model).
    ///
    /// # Errors
    ///
    /// A record or call that breaks the format's rules (wrong order, unsafe path, wrong size; the
    /// message cites the spec section), or a failed write of the output. After an error the writer
    /// refuses every further call.
    pub fn end_unit(&mut self) -> Result<()> {
        let Some(unit) = self.v.open_unit().cloned() else {
            return self.poison(Error::Usage("no unit is open".into()));
        };
        if self.body.is_some() {
            return self.poison(Error::Usage(format!(
                "{unit}: an artifact body is not complete"
            )));
        }
        let seal = Seal {
            unit: unit.prefix(),
            members: std::mem::take(&mut self.entries),
        };
        let bytes = json(&seal, false, "a seal")?; // compact: a seal may list millions of members
        let name = unit.seal_path();
        self.json_member(&name, &Member::Unit(unit.clone(), Part::Seal), &bytes)?;
        let sealed = self.v.seal(&seal, &bytes);
        if let Err(detail) = sealed {
            return self.poison(Error::Format {
                offset: Some(self.pos),
                member: Some(name),
                object: Some(unit.to_string()),
                detail: detail.into(),
            });
        }
        if let UnitId::Model(_) = unit {
            self.next_model += 1;
        }
        if self.flush_units {
            // A whole unit: the reader at the other end may take it now.
            self.flush()?;
        }
        Ok(())
    }

    /// A member was written whole: the validator counts it, and the open unit's seal will list it.
    fn ended(&mut self, name: &str, kind: Listed, size: u64, crc: Crc32) {
        self.v.end(name, kind, size, crc);
        if matches!(kind, Listed::Member | Listed::Artifact) && self.v.open_unit().is_some() {
            self.entries.push(SealEntry {
                path: name.to_string(),
                size,
                crc32: crc,
            });
        }
    }

    /// Writes the trailer and the end of the tar stream, finishes the zstd frame, flushes, and
    /// returns the output. **Required**: without it the output is not an archive.
    ///
    /// # Errors
    ///
    /// A unit still open (not sealed by [`end_unit`](Self::end_unit)), an earlier error of this
    /// writer, or a failed write or flush of the trailer and the end of the zstd stream.
    pub fn finish(mut self) -> Result<(W, WriteSummary)> {
        if let Some(u) = self.v.open_unit() {
            let msg = format!("{u} is not sealed");
            return self.poison(Error::Usage(msg));
        }
        let trailer = self.v.expected_trailer();
        let bytes = json(&trailer, true, "the trailer")?;
        self.check(|v| v.begin(path::TRAILER, &Member::Trailer, bytes.len() as u64))?;
        self.check(|v| v.trailer(&trailer))?;
        let size = bytes.len() as u64;
        let enc = self.enc()?;
        let r = tarfmt::write_header(enc, path::TRAILER, size).and_then(|n| {
            enc.write_all(&bytes)?;
            tarfmt::write_zeros(enc, tarfmt::padding(size) + 2 * tarfmt::BLOCK)?;
            Ok(n)
        });
        match r {
            Ok(n) => self.pos += n + size + tarfmt::padding(size) + 2 * tarfmt::BLOCK,
            Err(e) => return Err(self.io_err("the trailer", e)),
        }
        let enc = self.out.take().expect("checked by enc()");
        let mut counting = enc
            .finish()
            .map_err(|e| Error::io("finishing the zstd stream", e))?;
        counting
            .flush()
            .map_err(|e| Error::io("flushing the archive", e))?;
        let summary = WriteSummary {
            counts: trailer.counts,
            tar_bytes: self.pos,
            archive_bytes: counting.count(),
        };
        Ok((counting.into_inner(), summary))
    }
}
