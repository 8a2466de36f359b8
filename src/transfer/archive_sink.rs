//! The bridge from async sources to the sync archive writer: the writer runs on a thread of its
//! own and takes commands from a bounded channel, so artifact bodies flow through with
//! backpressure and at most a few chunks in flight.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::archive_source::Event;
use super::progress::{Counter, Progress};
use crate::error::{Error, Result};
use crate::format::model::{self as rec, Counts};
use crate::format::path::UnitId;
use crate::format::validate::Sealed;
use crate::format::{ArtifactEntry, Record, WriteSummary, WriterBuilder};

/// Commands in flight at most (each at most one body chunk, typically 64 KiB or less).
const CHANNEL: usize = 16;

/// One step for the writer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cmd {
    /// An experiment unit.
    Experiment(rec::Experiment),
    /// Open an experiment unit (its permissions follow, then [`Cmd::EndUnit`]).
    BeginExperiment(rec::Experiment),
    /// The permissions of the open experiment or registered model, right after its record.
    Permissions(rec::Permissions),
    /// Open a run unit.
    BeginRun(rec::Run),
    /// A metric chunk of the open run.
    Chunk(rec::MetricChunk),
    /// Open a logged model unit.
    BeginLoggedModel(rec::LoggedModel),
    /// Open a registered model unit.
    BeginRegisteredModel(rec::RegisteredModel),
    /// A version of the open registered model.
    ModelVersion(rec::ModelVersion),
    /// Open a trace unit (its span data and attachments follow as artifacts).
    BeginTrace(rec::Trace),
    /// Open an evaluation dataset unit.
    BeginDataset(rec::Dataset),
    /// A chunk of the open dataset's records.
    DatasetRecords(rec::DatasetRecords),
    /// Start an artifact of a size.
    BeginArtifact(String, u64),
    /// Bytes of the artifact.
    Body(Bytes),
    /// End the artifact.
    EndArtifact,
    /// Seal the open unit.
    EndUnit,
}

/// What the writer thread takes: a command, or the word to finish (so that a sink dropped
/// without [`ArchiveSink::finish`] leaves no trailer).
#[expect(
    clippy::large_enum_variant,
    reason = "the channel carries commands, as large as before; boxing would allocate per command"
)]
enum Msg {
    Cmd(Cmd),
    Finish,
}

/// An archive being written on a thread of its own, fed through a bounded channel.
///
/// Send the commands in archive order with [`send`](Self::send), then call
/// [`finish`](Self::finish): a sink dropped without it stops its writer without writing the
/// trailer, so what it wrote is not an archive (a reader refuses it).
pub struct ArchiveSink {
    tx: Option<mpsc::Sender<Msg>>,
    done: Option<oneshot::Receiver<std::thread::Result<Result<WriteSummary>>>>,
    progress: Option<Arc<Progress>>,
}

impl ArchiveSink {
    /// Starts writing an archive to `out`, on a thread of its own. It needs no Tokio runtime;
    /// [`send`](Self::send) and [`finish`](Self::finish) are awaited on any runtime.
    pub fn start<W: Write + Send + 'static>(out: W, builder: WriterBuilder) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>(CHANNEL);
        let (done_tx, done) = oneshot::channel();
        // (If the thread cannot start, the channels close and the first send says so.)
        let _ = std::thread::Builder::new()
            .name("mlflow-archive-writer".into())
            .spawn(move || {
                let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    write(out, builder, rx)
                }));
                // A panic is passed on as it is, and raised again by the caller's wait.
                let _ = done_tx.send(written);
            });
        ArchiveSink {
            tx: Some(tx),
            done: Some(done),
            progress: None,
        }
    }

    /// A sink whose commands become archive events at once, in-process, for a reader of the
    /// same process (`compare`): no JSON, compression, tar or pipe in between. Each unit's
    /// events end with its [`Record::Sealed`](crate::format::Record::Sealed) (with no member
    /// counts); the stream has no header and no trailer. A sink dropped without
    /// [`finish`](Self::finish) ends the stream with an error.
    pub(crate) fn events(out: mpsc::Sender<Result<Event>>) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>(CHANNEL);
        let (done_tx, done) = oneshot::channel();
        let _ = std::thread::Builder::new()
            .name("mlflow-archive-events".into())
            .spawn(move || {
                let relayed =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relay(rx, &out)));
                let _ = done_tx.send(relayed);
            });
        ArchiveSink {
            tx: Some(tx),
            done: Some(done),
            progress: None,
        }
    }

    /// Counts what is written into `progress`.
    pub fn set_progress(&mut self, progress: Arc<Progress>) {
        self.progress = Some(progress);
    }

    /// Sends one command; if the writer failed, returns its error.
    ///
    /// # Errors
    ///
    /// The writer's first error (a record out of order, an invalid record, a failed write); after
    /// it the sink takes nothing more.
    pub async fn send(&mut self, cmd: Cmd) -> Result<()> {
        if let Some(p) = &self.progress {
            match &cmd {
                Cmd::Experiment(_) | Cmd::BeginExperiment(_) => p.add(Counter::Experiments, 1),
                Cmd::BeginRun(_) => p.add(Counter::Runs, 1),
                Cmd::Chunk(c) => p.add(Counter::Points, c.points.len() as u64),
                Cmd::BeginLoggedModel(_) => p.add(Counter::LoggedModels, 1),
                Cmd::ModelVersion(_) => p.add(Counter::Versions, 1),
                Cmd::BeginArtifact(..) => p.add(Counter::Files, 1),
                Cmd::Body(b) => p.add(Counter::Bytes, b.len() as u64),
                Cmd::BeginRegisteredModel(_)
                | Cmd::Permissions(_)
                | Cmd::BeginTrace(_)
                | Cmd::BeginDataset(_)
                | Cmd::DatasetRecords(_)
                | Cmd::EndArtifact
                | Cmd::EndUnit => {}
            }
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(Msg::Cmd(cmd)).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.tx = None;
        Err(self
            .join()
            .await
            .err()
            .unwrap_or_else(|| Error::Internal("the archive writer stopped early".into())))
    }

    async fn join(&mut self) -> Result<WriteSummary> {
        match self.done.take() {
            Some(done) => match done.await {
                Ok(Ok(written)) => written,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => Err(Error::Internal(
                    "the archive writer thread did not start".into(),
                )),
            },
            None => Err(Error::Usage("the archive writer already stopped".into())),
        }
    }

    /// Writes the trailer and finishes the archive; returns what was written. Dropping the sink
    /// instead leaves the output without a trailer: not an archive.
    ///
    /// # Errors
    ///
    /// The writer's first error, if it failed (an invalid record, a failed write, see
    /// [`ArchiveWriter`](crate::format::ArchiveWriter)), or the error finishing and flushing the
    /// output.
    ///
    /// # Panics
    ///
    /// When the writer thread panicked (a bug): the panic is raised again here.
    pub async fn finish(mut self) -> Result<WriteSummary> {
        if let Some(tx) = self.tx.take() {
            // (A writer that already stopped has its error waiting in `join`.)
            let _ = tx.send(Msg::Finish).await;
        }
        self.join().await
    }
}

/// The writer thread: applies the commands until told to finish.
fn write<W: Write>(
    out: W,
    builder: WriterBuilder,
    mut rx: mpsc::Receiver<Msg>,
) -> Result<WriteSummary> {
    let mut w = builder.build(out)?;
    loop {
        match rx.blocking_recv() {
            Some(Msg::Cmd(cmd)) => match cmd {
                Cmd::Experiment(e) => w.experiment(&e)?,
                Cmd::BeginExperiment(e) => w.begin_experiment(&e)?,
                Cmd::Permissions(p) => w.permissions(&p)?,
                Cmd::BeginRun(r) => w.begin_run(&r)?,
                Cmd::Chunk(c) => w.metric_chunk(&c)?,
                Cmd::BeginLoggedModel(m) => w.begin_logged_model(&m)?,
                Cmd::BeginRegisteredModel(m) => w.begin_registered_model(&m)?,
                Cmd::ModelVersion(v) => w.model_version(&v)?,
                Cmd::BeginTrace(t) => w.begin_trace(&t)?,
                Cmd::BeginDataset(d) => w.begin_dataset(&d)?,
                Cmd::DatasetRecords(c) => w.dataset_records(&c)?,
                Cmd::BeginArtifact(p, n) => w.begin_artifact(&p, n)?,
                Cmd::Body(b) => w.write_body(&b)?,
                Cmd::EndArtifact => w.end_artifact()?,
                Cmd::EndUnit => w.end_unit()?,
            },
            Some(Msg::Finish) => break,
            None => {
                return Err(Error::Usage(
                    "the archive sink was dropped before finish(); the output has no trailer"
                        .into(),
                ));
            }
        }
    }
    let (mut out, summary) = w.finish()?;
    out.flush()
        .map_err(|e| Error::io("flushing the archive", e))?;
    Ok(summary)
}

/// The thread of [`ArchiveSink::events`]: each command as the events a reader of its archive
/// would see.
fn relay(mut rx: mpsc::Receiver<Msg>, out: &mpsc::Sender<Result<Event>>) -> Result<WriteSummary> {
    let closed = || Error::Internal("the reader of the export's events stopped".into());
    let send = |e: Event| out.blocking_send(Ok(e)).map_err(|_| closed());
    let record = |r: Record| send(Event::Record(r));
    let seal = |unit: UnitId| {
        record(Record::Sealed(Sealed {
            unit,
            members: 0,
            bytes: 0,
        }))
    };
    let mut unit = UnitId::Model(0);
    let mut models = 0u64;
    loop {
        let cmd = match rx.blocking_recv() {
            Some(Msg::Cmd(cmd)) => cmd,
            Some(Msg::Finish) => break,
            None => {
                let _ = out.blocking_send(Err(Error::Internal(
                    "the export stopped before its end".into(),
                )));
                return Err(closed());
            }
        };
        match cmd {
            Cmd::Experiment(e) => {
                let id = UnitId::Experiment(e.experiment_id.clone());
                record(Record::Experiment(e))?;
                seal(id)?;
            }
            Cmd::BeginExperiment(e) => {
                unit = UnitId::Experiment(e.experiment_id.clone());
                record(Record::Experiment(e))?;
            }
            Cmd::Permissions(p) => record(Record::Permissions(p))?,
            Cmd::BeginRun(r) => {
                unit = UnitId::Run(r.run_id.clone());
                record(Record::Run(r))?;
            }
            Cmd::Chunk(c) => record(Record::MetricChunk(c))?,
            Cmd::BeginLoggedModel(m) => {
                unit = UnitId::LoggedModel(m.model_id.clone());
                record(Record::LoggedModel(m))?;
            }
            Cmd::BeginRegisteredModel(m) => {
                unit = UnitId::Model(models);
                models += 1;
                record(Record::RegisteredModel(m))?;
            }
            Cmd::ModelVersion(v) => record(Record::ModelVersion(v))?,
            Cmd::BeginTrace(t) => {
                unit = UnitId::Trace(t.trace_id.clone());
                record(Record::Trace(t))?;
            }
            Cmd::BeginDataset(d) => {
                unit = UnitId::Dataset(d.dataset_id.clone());
                record(Record::Dataset(d))?;
            }
            Cmd::DatasetRecords(c) => record(Record::DatasetRecords(c))?,
            Cmd::BeginArtifact(path, size) => send(Event::Artifact(ArtifactEntry {
                unit: unit.clone(),
                path,
                size,
            }))?,
            Cmd::Body(b) => send(Event::Body(b))?,
            Cmd::EndArtifact => send(Event::ArtifactEnd)?,
            Cmd::EndUnit => seal(unit.clone())?,
        }
    }
    Ok(WriteSummary {
        counts: Counts::default(),
        tar_bytes: 0,
        archive_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ArchiveReader;
    use crate::transfer::archive_source::{ArchiveSource, Event};

    fn experiment() -> rec::Experiment {
        rec::Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            ..Default::default()
        }
    }

    /// Reads `r` to its end as an archive.
    fn read_all(r: impl std::io::Read) -> Result<u64> {
        let mut r = ArchiveReader::new(r)?;
        let mut n = 0;
        while r.next_record()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    #[tokio::test]
    async fn a_sink_dropped_without_finish_writes_no_trailer() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut sink = ArchiveSink::start(writer, WriterBuilder::new());
        sink.send(Cmd::Experiment(experiment())).await.unwrap();
        drop(sink);
        let read = tokio::task::spawn_blocking(move || read_all(reader))
            .await
            .unwrap();
        let err = read.expect_err("not an archive: its writer never finished");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[tokio::test]
    async fn an_events_sink_hands_over_each_unit_sealed_and_a_dropped_one_ends_in_an_error() {
        let (tx, rx) = mpsc::channel(64);
        let mut sink = ArchiveSink::events(tx);
        sink.send(Cmd::Experiment(experiment())).await.unwrap();
        let run = rec::Run {
            run_id: "r".into(),
            experiment_id: "1".into(),
            status: "FINISHED".into(),
            ..Default::default()
        };
        for cmd in [
            Cmd::BeginRun(run),
            Cmd::BeginArtifact("a.txt".into(), 3),
            Cmd::Body(Bytes::from_static(b"abc")),
            Cmd::EndArtifact,
            Cmd::EndUnit,
        ] {
            sink.send(cmd).await.unwrap();
        }
        sink.finish().await.unwrap();
        let mut source = ArchiveSource::from_receiver(rx);
        let mut seen = Vec::new();
        while let Some(e) = source.next().await {
            seen.push(match e.unwrap() {
                Event::Record(Record::Experiment(_)) => "experiment".to_string(),
                Event::Record(Record::Run(_)) => "run".into(),
                Event::Record(Record::Sealed(s)) => format!("sealed {:?}", s.unit),
                Event::Artifact(a) => format!("file {} {} of {:?}", a.path, a.size, a.unit),
                Event::Body(b) => format!("{} bytes", b.len()),
                Event::ArtifactEnd => "end".into(),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(
            seen,
            [
                "experiment",
                "sealed Experiment(\"1\")",
                "run",
                "file a.txt 3 of Run(\"r\")",
                "3 bytes",
                "end",
                "sealed Run(\"r\")",
            ]
        );

        let (tx, rx) = mpsc::channel(64);
        let mut sink = ArchiveSink::events(tx);
        sink.send(Cmd::Experiment(experiment())).await.unwrap();
        drop(sink);
        let mut source = ArchiveSource::from_receiver(rx);
        let mut last = None;
        while let Some(e) = source.next().await {
            last = Some(e);
        }
        let err = last
            .unwrap()
            .expect_err("an export that stopped is not a whole side");
        assert!(err.to_string().contains("stopped before its end"), "{err}");
    }

    /// Told to flush units (a pipe's writer), a sink hands the reader at the other end each unit
    /// as soon as it is whole, not once the compressor's block and the output's buffer fill (a
    /// small unit sat there until later ones pushed it out, the last ones until the export's end).
    #[tokio::test]
    async fn a_sink_that_flushes_units_lets_a_pipes_reader_see_each_one_at_once() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut sink = ArchiveSink::start(
            std::io::BufWriter::with_capacity(256 << 10, writer),
            WriterBuilder::new().flush_units(true),
        );
        let mut source = ArchiveSource::start(reader);
        sink.send(Cmd::Experiment(experiment())).await.unwrap();
        // The archive stays open: the export is waiting for its server.
        let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match source.next().await {
                    Some(Ok(Event::Record(Record::Experiment(e)))) => return e.name,
                    Some(Ok(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
        .expect("the experiment reaches the reader while the archive is still open");
        assert_eq!(seen, "e");
        let summary = sink.finish().await.unwrap();
        assert_eq!(summary.counts.experiments, 1);
        while let Some(e) = source.next().await {
            e.unwrap();
        }
    }

    #[test]
    fn sink_and_source_start_outside_a_runtime() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut sink = ArchiveSink::start(writer, WriterBuilder::new());
        let mut source = ArchiveSource::start(reader);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let events = rt.block_on(async {
            sink.send(Cmd::Experiment(experiment())).await.unwrap();
            let summary = sink.finish().await.unwrap();
            assert_eq!(summary.counts.experiments, 1);
            let mut events = Vec::new();
            while let Some(e) = source.next().await {
                events.push(e.unwrap());
            }
            events
        });
        assert!(matches!(events[0], Event::Header(_)), "{events:?}");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Record(crate::format::Record::Experiment(x)) if x.name == "e")),
            "{events:?}"
        );
    }
}
