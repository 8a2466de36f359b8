//! A legacy tree as a source: a blocking thread reads the tree into an archive written at zstd
//! level 1 into an in-process pipe, and the other end is an ordinary [`ArchiveSource`]. So every
//! sink reads a legacy tree exactly as it reads an archive, nothing is staged on disk, and the tree
//! passes every check of the format (names, sizes, CRCs, seals) on its way.

use std::io::{BufWriter, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::archive_source::ArchiveSource;
use crate::error::{Error, Result};
use crate::format::WriterBuilder;
use crate::format::model::Source;
use crate::legacy::v2;

/// Starts reading the tree at `root` (a directory written by `mlflow-export-import`, or a zip of
/// one).
///
/// # Errors
///
/// As [`archive_reader`].
pub fn start(root: PathBuf) -> Result<ArchiveSource> {
    Ok(ArchiveSource::start(archive_reader(root)?))
}

/// The tree at `root` as the bytes of an archive, produced by a thread of its own as they are
/// read.
///
/// # Errors
///
/// When `root` cannot be opened as a tree (see [`open_tree`](crate::legacy::tree::open_tree)) or is
/// not an export of the Python tool. Problems inside the tree come later, as read errors of the
/// returned reader.
pub fn archive_reader(root: PathBuf) -> Result<impl Read + Send + 'static> {
    let tree = crate::legacy::tree::open_tree(&root)?;
    let Some(kind) = v2::detect(&*tree, &root) else {
        return Err(v2::not_an_export(&root));
    };
    // The scope a tree of this kind would have had as an archive (converting back gives the same
    // kind of tree).
    let scope = match kind {
        v2::Kind::Experiment => "experiment",
        v2::Kind::Model => "model",
        v2::Kind::Run => "run",
        v2::Kind::Bulk => "all",
        v2::Kind::Experiments | v2::Kind::ClassicList => "experiments",
        v2::Kind::Models => "models",
    };
    let (reader, writer) = std::io::pipe().map_err(|e| Error::io("creating a pipe", e))?;
    // Held open until a failure is recorded, so the reading side sees the cause, not just the end.
    let keep = writer
        .try_clone()
        .map_err(|e| Error::io("creating a pipe", e))?;
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let slot = Arc::clone(&failure);
    std::thread::spawn(move || {
        let builder = WriterBuilder::new().level(1).source(Source {
            tracking_uri: None,
            scope: Some(scope.into()),
        });
        let result = (|| {
            let mut w = builder.build(BufWriter::with_capacity(256 << 10, writer))?;
            v2::read_tree_in(&*tree, &root, &mut w)?;
            let (mut out, _) = w.finish()?;
            std::io::Write::flush(&mut out).map_err(|e| Error::io("writing the pipe", e))
        })();
        if let Err(e) = result {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
        drop(keep);
    });
    Ok(Failing {
        inner: reader,
        failure,
    })
}

/// The pipe's reading end: at its end, the tree reader's failure (if any) instead of a clean end.
struct Failing<R> {
    inner: R,
    failure: Arc<Mutex<Option<String>>>,
}

impl<R: Read> Read for Failing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(why) = failure.as_ref() {
                return Err(std::io::Error::other(why.clone()));
            }
        }
        Ok(n)
    }
}
