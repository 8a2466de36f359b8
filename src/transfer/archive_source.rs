//! The bridge from the sync archive reader to async sinks: the reader runs on a thread of its own
//! and sends records and artifact body chunks through a bounded channel, in archive order.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::format::model::Header;
use crate::format::{ArchiveReader, ArtifactEntry, Record};

/// Events in flight at most (a body chunk is at most 64 KiB).
pub(crate) const CHANNEL: usize = 16;
const CHUNK: usize = 64 << 10;

/// One step of an archive, as a sink sees it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The header (first).
    Header(Header),
    /// A record other than an artifact.
    Record(Record),
    /// An artifact starts; its bytes follow as [`Event::Body`], then [`Event::ArtifactEnd`].
    Artifact(ArtifactEntry),
    /// Bytes of the current artifact.
    Body(Bytes),
    /// The current artifact's bytes are complete (its CRC is checked at the unit's seal).
    ArtifactEnd,
}

/// Reads an archive on a thread of its own; events arrive through [`ArchiveSource::next`], in
/// archive order. Dropping the source stops the reader at its next event.
pub struct ArchiveSource {
    rx: mpsc::Receiver<Result<Event>>,
    /// The reader thread's panic, raised again in [`ArchiveSource::next`].
    panic: Arc<Mutex<Option<Box<dyn std::any::Any + Send>>>>,
}

type Panic = Arc<Mutex<Option<Box<dyn std::any::Any + Send>>>>;

impl ArchiveSource {
    /// Starts reading `input`, on a thread of its own. It needs no Tokio runtime;
    /// [`next`](Self::next) is awaited on any runtime.
    pub fn start<R: Read + Send + 'static>(input: R) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let failed = tx.clone();
        let panic: Panic = Arc::default();
        let slot = Arc::clone(&panic);
        let started = std::thread::Builder::new()
            .name("mlflow-archive-reader".into())
            .spawn(move || {
                let read =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pump(input, &tx)));
                match read {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        let _ = tx.blocking_send(Err(e));
                    }
                    // Kept for `next`, which raises it again; the channel then closes.
                    Err(payload) => {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(payload);
                    }
                }
            });
        if let Err(e) = started {
            let _ = failed.try_send(Err(Error::io("starting the archive reader thread", e)));
        }
        ArchiveSource { rx, panic }
    }

    /// The next event; `None` after the archive's end was verified (or after an error was given).
    ///
    /// # Errors
    ///
    /// An event is an error when the archive is not sound (see
    /// [`ArchiveReader`]: the error names the member and the spec
    /// section) or cannot be read; no event follows it.
    ///
    /// # Panics
    ///
    /// When the reader thread panicked (a bug): the panic is raised again here.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        let next = self.rx.recv().await;
        if next.is_none()
            && let Some(payload) = self.panic.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            std::panic::resume_unwind(payload);
        }
        next
    }

    /// A source whose events come from `rx` (an adapter over another source).
    pub(crate) fn from_receiver(rx: mpsc::Receiver<Result<Event>>) -> Self {
        ArchiveSource {
            rx,
            panic: Arc::default(),
        }
    }
}

fn pump<R: Read>(input: R, tx: &mpsc::Sender<Result<Event>>) -> Result<()> {
    let closed = || Error::Internal("the archive's reader was abandoned".into());
    let mut r = ArchiveReader::new(input)?;
    tx.blocking_send(Ok(Event::Header(r.header().clone())))
        .map_err(|_| closed())?;
    while let Some(rec) = r.next_record()? {
        match rec {
            Record::Artifact(a) => {
                tx.blocking_send(Ok(Event::Artifact(a)))
                    .map_err(|_| closed())?;
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let n = read_some(&mut r.body(), &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    tx.blocking_send(Ok(Event::Body(Bytes::from(buf))))
                        .map_err(|_| closed())?;
                }
                tx.blocking_send(Ok(Event::ArtifactEnd))
                    .map_err(|_| closed())?;
            }
            other => tx
                .blocking_send(Ok(Event::Record(other)))
                .map_err(|_| closed())?,
        }
    }
    Ok(())
}

fn read_some(body: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match body.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // The reader wraps its own errors (offset, member, unit) in io::Error.
                return Err(match e.into_inner().map(|i| i.downcast::<Error>()) {
                    Some(Ok(inner)) => *inner,
                    Some(Err(other)) => {
                        Error::io("reading the archive", std::io::Error::other(other))
                    }
                    None => Error::Internal("reading the archive failed without a cause".into()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ArchiveSource;

    struct Panics;

    impl std::io::Read for Panics {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("a bug in a reader")
        }
    }

    #[tokio::test]
    #[should_panic(expected = "a bug in a reader")]
    async fn a_reader_thread_that_panicked_raises_its_panic_again() {
        let mut source = ArchiveSource::start(Panics);
        while source.next().await.is_some() {}
    }
}
