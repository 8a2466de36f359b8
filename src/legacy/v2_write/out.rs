//! Where the tree goes: a directory or a `.zip` written file by file, each file created fresh,
//! and a target refused when it holds something already.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::json::write_json;
use crate::error::{Error, Result};

/// Refuses to write into a non-empty directory, or through a symbolic link; creates `out`.
pub(crate) fn prepare(out: &Path) -> Result<()> {
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Config(format!(
            "{}: a symbolic link; trees are not written through links, choose a new directory",
            out.display()
        ))),
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(out)
                .map_err(|e| Error::io(format!("reading {}", out.display()), e))?;
            if entries.next().is_some() {
                return Err(Error::Config(format!(
                    "{}: exists and is not empty; choose a new directory",
                    out.display()
                )));
            }
            Ok(())
        }
        Ok(_) => Err(Error::Config(format!(
            "{}: exists and is not a directory; choose a new directory",
            out.display()
        ))),
        Err(_) => mkdir(out),
    }
}

/// Creates the file at `path` afresh: what is there (a leftover, or a symbolic link planted to
/// make the writer overwrite its target) is removed without being followed, and the file is
/// created exclusively, so that nothing put there in between is followed either.
pub(crate) fn create_fresh(path: &Path) -> Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::Config(format!(
                "{}: a directory, not a file",
                path.display()
            )));
        }
        Ok(_) => std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))?,
        Err(_) => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
}

/// Where the tree's files go, one at a time: a directory, or entries of a zip.
pub(crate) struct Out {
    /// Paths are built under this (the directory, or the zip's path) and stored relative to it.
    pub(crate) root: PathBuf,
    kind: OutKind,
}

enum OutKind {
    Dir(Option<BufWriter<File>>),
    /// `None` once finished; the flag abandons its file (see [`ZipFile`]).
    Zip(Option<Box<zip::ZipWriter<ZipFile>>>, Arc<AtomicBool>),
}

/// The file under a zip being written. After a failure (its own, or the caller's: see `Drop for
/// Out`) it is abandoned: it writes nothing more, and only keeps the position as if it did. The
/// zip writer's drop completes an unfinished zip, and prints to stderr when it cannot (a full
/// disk): an abandoned file lets it complete into nothing, and the caller reports the failure
/// and removes the file.
struct ZipFile {
    file: BufWriter<File>,
    pos: u64,
    len: u64,
    abandoned: Arc<AtomicBool>,
}

impl ZipFile {
    fn failed<T>(&mut self, e: std::io::Error) -> std::io::Result<T> {
        self.abandoned.store(true, Ordering::Relaxed);
        Err(e)
    }

    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

impl Write for ZipFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = if self.abandoned() {
            buf.len()
        } else {
            match self.file.write(buf) {
                Ok(n) => n,
                Err(e) => return self.failed(e),
            }
        };
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.abandoned() {
            return Ok(());
        }
        match self.file.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.failed(e),
        }
    }
}

impl Seek for ZipFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        if !self.abandoned() {
            match self.file.seek(to) {
                Ok(p) => self.pos = p,
                Err(e) => return self.failed(e),
            }
        } else {
            let p = match to {
                SeekFrom::Start(p) => Some(p),
                SeekFrom::End(d) => self.len.checked_add_signed(d),
                SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            };
            self.pos = p.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        }
        self.len = self.len.max(self.pos);
        Ok(self.pos)
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // Not closed: a failure part-way. Nothing more is written (see ZipFile).
        if let OutKind::Zip(Some(_), abandoned) = &self.kind {
            abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl Out {
    pub(crate) fn dir(root: &Path) -> Self {
        Out {
            root: root.to_path_buf(),
            kind: OutKind::Dir(None),
        }
    }

    pub(crate) fn zip(path: &Path) -> Result<Self> {
        let f = create_fresh(path)?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let file = ZipFile {
            file: BufWriter::with_capacity(256 << 10, f),
            pos: 0,
            len: 0,
            abandoned: Arc::clone(&abandoned),
        };
        Ok(Out {
            root: path.to_path_buf(),
            kind: OutKind::Zip(Some(Box::new(zip::ZipWriter::new(file))), abandoned),
        })
    }

    /// Starts the file at `p` (under the root); the previous one must be ended.
    pub(crate) fn start(&mut self, p: &Path) -> Result<()> {
        match &mut self.kind {
            OutKind::Dir(current) => {
                if let Some(parent) = p.parent() {
                    mkdir(parent)?;
                }
                let f = File::create(p)
                    .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
                *current = Some(BufWriter::with_capacity(64 << 10, f));
                Ok(())
            }
            OutKind::Zip(None, _) => Err(Error::Usage("the zip is finished".into())),
            OutKind::Zip(Some(z), _) => {
                let rel = p
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|r| r.to_str())
                    .ok_or_else(|| {
                        Error::Input(format!("{}: not a name for a zip entry", p.display()))
                    })?;
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(true);
                z.start_file(rel, options).map_err(|e| {
                    Error::io(
                        format!("{}: entry {rel:?}", self.root.display()),
                        std::io::Error::other(e),
                    )
                })
            }
        }
    }

    /// Writes the whole file at `p`: `v` as indented JSON.
    pub(crate) fn json_file(&mut self, p: &Path, v: &Value) -> Result<()> {
        self.start(p)?;
        write_json(self, v, p)?;
        self.end_file(p)
    }

    /// Ends the file at `p`.
    pub(crate) fn end_file(&mut self, p: &Path) -> Result<()> {
        if let OutKind::Dir(current) = &mut self.kind
            && let Some(mut f) = current.take()
        {
            f.flush()
                .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Completes the output (a zip's central directory).
    pub(crate) fn close(&mut self) -> Result<()> {
        if let OutKind::Zip(slot, _) = &mut self.kind
            && let Some(z) = slot.take()
        {
            let mut f = z.finish().map_err(|e| {
                Error::io(
                    format!("{}: finishing the zip", self.root.display()),
                    std::io::Error::other(e),
                )
            })?;
            f.file
                .flush()
                .map_err(|e| Error::io(format!("writing {}", self.root.display()), e))?;
        }
        Ok(())
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.kind {
            OutKind::Dir(Some(f)) => f.write(buf),
            OutKind::Dir(None) => Err(std::io::Error::other("no file is open")),
            OutKind::Zip(Some(z), _) => z.write(buf),
            OutKind::Zip(None, _) => Err(std::io::Error::other("the zip is finished")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.kind {
            OutKind::Dir(Some(f)) => f.flush(),
            OutKind::Dir(None) => Ok(()),
            OutKind::Zip(Some(z), _) => z.flush(),
            OutKind::Zip(None, _) => Ok(()),
        }
    }
}
