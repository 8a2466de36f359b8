//! The streaming reader: a `.mlar` stream in, records out, one at a time, front to back (a pipe
//! is enough). JSON members are read whole (bounded by [`Limits`]); artifact bodies are read
//! through [`ArchiveReader::body`] and never held. Every member's CRC-32 is checked against its
//! unit's seal before the reader reports the unit [`Record::Sealed`]: a consumer commits a unit's
//! effects only then. The archive is sound only once [`Record::End`] was returned.
//!
//! Consume records in order: asking for the next record skips (and checks) whatever is left of
//! the current artifact body.

use std::io::{self, BufReader, Read};

use super::checksum::Crc32;
use super::limits::Limits;
use super::model::{
    Dataset, DatasetRecords, Experiment, Header, LoggedModel, MetricChunk, ModelVersion,
    Permissions, RegisteredModel, Run, Seal, Trace, Trailer,
};
use super::path::{self, Member, Part, UnitId};
use super::tarfmt::{self, Found, ReadError};
use super::validate::{Listed, Sealed, Validator};
use crate::error::{Error, Result};

/// One step of an archive.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// An experiment (its unit is sealed right after).
    Experiment(Experiment),
    /// A run; its metric chunks and artifacts follow, then [`Record::Sealed`].
    Run(Run),
    /// A piece of a metric's history of the open run.
    MetricChunk(MetricChunk),
    /// An artifact of the open run or logged model; its bytes are read with
    /// [`ArchiveReader::body`].
    Artifact(ArtifactEntry),
    /// A logged model; its artifacts follow, then [`Record::Sealed`].
    LoggedModel(LoggedModel),
    /// A registered model; its versions follow, then [`Record::Sealed`].
    RegisteredModel(RegisteredModel),
    /// A version of the open registered model.
    ModelVersion(ModelVersion),
    /// A trace (1.1); its span data and attachments follow as artifacts, then
    /// [`Record::Sealed`].
    Trace(Trace),
    /// An evaluation dataset (1.1); chunks of its records follow, then [`Record::Sealed`].
    Dataset(Dataset),
    /// A chunk of the open dataset's records.
    DatasetRecords(DatasetRecords),
    /// The permissions of the open experiment or registered model (1.2), right after its
    /// record. Like every record, they are sound only once the unit is [`Record::Sealed`].
    Permissions(Permissions),
    /// The unit just read is complete and every byte of it matched its seal.
    Sealed(Sealed),
    /// The trailer matched everything read: the archive is sound and complete.
    End(Trailer),
}

/// An artifact member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The run or logged model it belongs to.
    pub unit: UnitId,
    /// Its path relative to the artifact root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Options of [`ArchiveReader`].
#[derive(Debug, Clone, Default)]
pub struct ReaderBuilder {
    limits: Limits,
}

impl ReaderBuilder {
    /// Default options ([`Limits::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Opens an archive: reads and checks its header.
    ///
    /// # Errors
    ///
    /// [`Error::Format`] when the input does not start with a valid header of
    /// a known major version (§5, §10), [`Error::Io`] when it cannot be read.
    pub fn build<R: Read>(self, input: R) -> Result<ArchiveReader<R>> {
        let counted = Counting {
            inner: input,
            count: 0,
            failed: false,
        };
        let mut dec = zstd::stream::read::Decoder::new(counted)
            .map_err(|e| Error::io("starting the zstd decoder", e))?;
        dec.window_log_max(self.limits.zstd_window_log_max)
            .map_err(|e| Error::io("configuring the zstd decoder", e))?;
        let mut r = ArchiveReader {
            // Decompress in large steps: tar headers and small members are read in small pieces.
            input: BufReader::with_capacity(32 << 10, dec),
            pos: 0,
            max_name: self.limits.max_name_bytes,
            window_log_max: self.limits.zstd_window_log_max,
            v: Validator::new(self.limits),
            pending: None,
            finished: false,
            header: None,
            current: None,
            scratch: Vec::new(),
        };
        match r.read_member()? {
            Step::Header(h) => r.header = Some(h),
            _ => unreachable!("the validator admits only the header first"),
        }
        Ok(r)
    }
}

struct Counting<R> {
    inner: R,
    count: u64,
    /// The input itself failed to read (as opposed to its bytes failing to decode).
    failed: bool,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.failed = e.kind() != io::ErrorKind::Interrupted;
        })?;
        self.count += n as u64;
        Ok(n)
    }
}

struct Pending {
    kind: Listed,
    size: u64,
    remaining: u64,
    hasher: crc32fast::Hasher,
}

enum Step {
    Header(Header),
    Record(Record),
    Skipped,
}

/// Reads an archive. See the module documentation.
pub struct ArchiveReader<R: Read> {
    input: BufReader<zstd::stream::read::Decoder<'static, BufReader<Counting<R>>>>,
    pos: u64,
    max_name: usize,
    window_log_max: u32,
    v: Validator,
    pending: Option<Pending>,
    finished: bool,
    header: Option<Header>,
    current: Option<String>,
    scratch: Vec<u8>,
}

/// What [`ArchiveReader::verify`] found in a sound archive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The header.
    pub header: Header,
    /// The trailer (its counts equal what was read).
    pub trailer: Trailer,
    /// Bytes of the tar stream.
    pub tar_bytes: u64,
    /// Bytes of the archive as read.
    pub archive_bytes: u64,
    /// Units of kinds a later minor version defines, checked but not understood: kind → count
    /// (§10).
    pub unknown_units: std::collections::BTreeMap<String, u64>,
}

impl<R: Read> ArchiveReader<R> {
    /// Opens an archive with default limits.
    ///
    /// # Errors
    ///
    /// As [`ReaderBuilder::build`].
    pub fn new(input: R) -> Result<Self> {
        ReaderBuilder::new().build(input)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        self.header.as_ref().expect("read in build()")
    }

    /// The offset in the tar stream.
    pub fn tar_offset(&self) -> u64 {
        self.pos
    }

    /// Bytes of the archive consumed so far.
    pub fn archive_offset(&self) -> u64 {
        self.input.get_ref().get_ref().get_ref().count
    }

    fn fail(&self, offset: u64, detail: impl Into<String>) -> Error {
        Error::Format {
            offset: Some(offset),
            member: self.current.clone(),
            object: self
                .current
                .as_deref()
                .and_then(|n| match path::parse(n) {
                    Ok(Member::Unit(u, _)) => Some(u.to_string()),
                    _ => None,
                })
                .or_else(|| self.v.open_unit().map(ToString::to_string)),
            detail: detail.into(),
        }
    }

    fn stream_err(&self, offset: u64, e: io::Error) -> Error {
        if self.input.get_ref().get_ref().get_ref().failed {
            // Not the archive's fault: what it is read from failed (a file, a pipe, a tree of the
            // Python tool being read into it), and says why.
            return Error::io("reading the archive's input", e);
        }
        let text = e.to_string();
        if text.contains("too much memory") {
            return self.fail(
                offset,
                format!("the compressed stream needs a zstd window larger than the limit of 2^{} bytes (§11): {text}", self.window_log_max),
            );
        }
        self.fail(
            offset,
            format!("the compressed stream is corrupt or truncated: {text}"),
        )
    }

    fn tar_err(&self, e: ReadError) -> Error {
        match e {
            ReadError::Io(e) => self.stream_err(self.pos, e),
            ReadError::Format(at, d) => self.fail(at, d),
        }
    }

    /// The next record, or `None` after [`Record::End`].
    ///
    /// # Errors
    ///
    /// [`Error::Format`], naming the offset, member and unit, when the
    /// archive breaks a rule of the spec, is truncated or corrupt (a CRC or seal mismatch, a
    /// missing trailer) or exceeds a [`Limits`];
    /// [`Error::Io`] when the input cannot be read. After an error, the reader
    /// returns no further record.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            match self.read_member()? {
                Step::Record(r) => return Ok(Some(r)),
                Step::Skipped => continue,
                Step::Header(_) => unreachable!("the validator admits one header"),
            }
        }
    }

    /// Reads the body of the artifact returned last. Reading past its end gives 0 bytes.
    pub fn body(&mut self) -> Body<'_, R> {
        Body { reader: self }
    }

    fn finish_pending(&mut self) -> Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.scratch);
        if p.remaining > 0 {
            buf.resize(64 * 1024, 0);
        }
        let r = self.drain_into(&mut p, &mut buf);
        self.scratch = buf;
        r?;
        tarfmt::skip_padding(&mut self.input, &mut self.pos, p.size)
            .map_err(|e| self.tar_err(e))?;
        let name = self.current.as_deref().unwrap_or_default();
        self.v.end(name, p.kind, p.size, Crc32(p.hasher.finalize()));
        Ok(())
    }

    fn drain_into(&mut self, p: &mut Pending, buf: &mut [u8]) -> Result<()> {
        while p.remaining > 0 {
            let want = p.remaining.min(buf.len() as u64) as usize;
            let n = self.read_raw(&mut buf[..want])?;
            p.hasher.update(&buf[..n]);
            p.remaining -= n as u64;
        }
        Ok(())
    }

    /// Reads up to `buf.len()` body bytes; a stream that ends inside a body is an error.
    fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize> {
        let at = self.pos;
        let n = tarfmt::read_full(&mut self.input, buf).map_err(|e| self.stream_err(at, e))?;
        self.pos += n as u64;
        if n < buf.len() {
            return Err(self.fail(self.pos, "the archive ends inside a member (truncated)"));
        }
        Ok(n)
    }

    fn read_member(&mut self) -> Result<Step> {
        self.finish_pending()?;
        self.current = None;
        let found = tarfmt::read_header(&mut self.input, &mut self.pos, self.max_name)
            .map_err(|e| self.tar_err(e))?;
        let (name, size, offset) = match found {
            Found::End => {
                return Err(self.fail(
                    self.pos,
                    if self.header.is_none() {
                        "an empty archive (§8.1)".to_string()
                    } else {
                        "the tar stream ends before the trailer (truncated?) (§8.3)".to_string()
                    },
                ));
            }
            Found::Member { name, size, offset } => (name, size, offset),
        };
        self.current = Some(name.clone());
        let member = path::parse(&name)
            .map_err(|d| self.fail(offset, format!("member name {name:?}: {d}")))?
            .as_of_minor(self.v.minor());
        self.v
            .begin(&name, &member, size)
            .map_err(|d| self.fail(offset, d))?;
        if let Member::Unit(_, Part::Artifact(_) | Part::Unknown(_)) = &member {
            let kind = Listed::of(&member);
            let step = match member {
                Member::Unit(unit, Part::Artifact(path)) => {
                    Step::Record(Record::Artifact(ArtifactEntry { unit, path, size }))
                }
                _ => Step::Skipped,
            };
            self.pending = Some(Pending {
                kind,
                size,
                remaining: size,
                hasher: crc32fast::Hasher::new(),
            });
            return Ok(step);
        }
        let mut bytes = vec![0u8; size as usize];
        self.read_raw(&mut bytes)?;
        tarfmt::skip_padding(&mut self.input, &mut self.pos, size).map_err(|e| self.tar_err(e))?;
        let crc = Crc32::of(&bytes);
        let at = offset;
        if !matches!(member, Member::Trailer) {
            self.v.end(&name, Listed::of(&member), size, crc);
        }
        let bad_json =
            |me: &Self, e: serde_json::Error| me.fail(at, format!("malformed JSON: {e} (§7)"));
        let step = match &member {
            Member::Header => {
                let h: Header = serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.header(&h, crc).map_err(|d| self.fail(at, d))?;
                Step::Header(h)
            }
            Member::Trailer => {
                let mut t: Trailer =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.trailer(&t).map_err(|d| self.fail(at, d))?;
                // A count the archive's version does not define is a field it does not know:
                // ignored (§7, §8.3), not passed on as if it counted something read.
                t.counts = t.counts.as_of_minor(self.v.minor());
                self.read_end()?;
                Step::Record(Record::End(t))
            }
            Member::Unit(_, Part::Seal) => {
                let s: Seal = serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                let sealed = self.v.seal(&s, &bytes).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Sealed(sealed))
            }
            Member::Unit(UnitId::Experiment(_), Part::Record) => {
                let e: Experiment =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.experiment(&e).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Experiment(e))
            }
            Member::Unit(UnitId::Run(_), Part::Record) => {
                let r: Run = serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.run(&r).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Run(r))
            }
            Member::Unit(UnitId::LoggedModel(_), Part::Record) => {
                let m: LoggedModel =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.logged_model(&m).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::LoggedModel(m))
            }
            Member::Unit(UnitId::Model(_), Part::Record) => {
                let m: RegisteredModel =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.registered_model(&m).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::RegisteredModel(m))
            }
            Member::Unit(_, Part::MetricChunk(_)) => {
                let c: MetricChunk =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.metric_chunk(&c).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::MetricChunk(c))
            }
            Member::Unit(UnitId::Trace(_), Part::Record) => {
                self.v
                    .json_values(&bytes, "the trace record")
                    .map_err(|d| self.fail(at, d))?;
                let t: Trace = serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.trace(&t).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Trace(t))
            }
            Member::Unit(UnitId::Dataset(_), Part::Record) => {
                let d: Dataset = serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.dataset(&d).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Dataset(d))
            }
            Member::Unit(_, Part::DatasetRecords(_)) => {
                self.v
                    .json_values(&bytes, "the dataset records chunk")
                    .map_err(|d| self.fail(at, d))?;
                let c: DatasetRecords =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.dataset_records(&c).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::DatasetRecords(c))
            }
            Member::Unit(_, Part::Permissions) => {
                self.v
                    .json_values(&bytes, "the permissions record")
                    .map_err(|d| self.fail(at, d))?;
                let p: Permissions =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.permissions(&p).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::Permissions(p))
            }
            Member::Unit(UnitId::Other { .. }, Part::Record) => {
                return Err(self.fail(
                    at,
                    "a unit of an unknown kind has no record (§10)".to_string(),
                ));
            }
            Member::Unit(_, Part::ModelVersion(n)) => {
                let v: ModelVersion =
                    serde_json::from_slice(&bytes).map_err(|e| bad_json(self, e))?;
                self.v.model_version(&v, *n).map_err(|d| self.fail(at, d))?;
                Step::Record(Record::ModelVersion(v))
            }
            Member::Unit(_, Part::Artifact(_) | Part::Unknown(_)) => unreachable!("handled above"),
        };
        Ok(step)
    }

    /// After the trailer: the end-of-archive marker, then only zero bytes up to the end.
    fn read_end(&mut self) -> Result<()> {
        self.current = None;
        match tarfmt::read_header(&mut self.input, &mut self.pos, self.max_name)
            .map_err(|e| self.tar_err(e))?
        {
            Found::End => {}
            Found::Member { offset, name, .. } => {
                return Err(self.fail(offset, format!("member {name:?} after the trailer (§8.3)")));
            }
        }
        let mut buf = [0u8; 8192];
        loop {
            let at = self.pos;
            let n = self
                .input
                .read(&mut buf)
                .map_err(|e| self.stream_err(at, e))?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|b| *b != 0) {
                return Err(self.fail(at, "data after the end of the archive (§5)"));
            }
            self.pos += n as u64;
        }
        self.finished = true;
        Ok(())
    }

    /// Reads everything, checking every CRC, seal and the trailer.
    ///
    /// # Errors
    ///
    /// The first problem [`next_record`](Self::next_record) or an artifact body meets.
    pub fn verify(mut self) -> Result<VerifyReport> {
        let mut trailer = None;
        let mut unknown_units = std::collections::BTreeMap::new();
        while let Some(r) = self.next_record()? {
            match r {
                Record::End(t) => trailer = Some(t),
                Record::Sealed(s) if matches!(s.unit, UnitId::Other { .. }) => {
                    *unknown_units.entry(s.unit.kind().to_string()).or_default() += 1;
                }
                _ => {}
            }
        }
        Ok(VerifyReport {
            header: self.header().clone(),
            trailer: trailer.expect("next_record ends only after the trailer"),
            tar_bytes: self.pos,
            archive_bytes: self.archive_offset(),
            unknown_units,
        })
    }
}

/// The body of the artifact returned last by [`ArchiveReader::next_record`].
pub struct Body<'a, R: Read> {
    reader: &'a mut ArchiveReader<R>,
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        let Some(p) = r.pending.as_mut() else {
            return Ok(0);
        };
        let want = p.remaining.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let at = r.pos;
        let n = match r.input.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    r.stream_err(at, e),
                ));
            }
        };
        if n == 0 {
            let e = r.fail(at, "the archive ends inside a member (truncated)");
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e));
        }
        let p = r.pending.as_mut().expect("checked above");
        p.hasher.update(&buf[..n]);
        p.remaining -= n as u64;
        r.pos += n as u64;
        Ok(n)
    }
}
