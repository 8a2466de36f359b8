//! Outputs written as `NAME.partial` and renamed to `NAME` only when complete: created afresh
//! (never through a link someone put there), and removed on every failure, and on interruption
//! (SIGINT, SIGTERM: see [`on_signal`]).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

/// The partial outputs that exist now, for the signal handler.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// `output` with `.partial` appended to its last part.
pub fn partial_of(output: &Path) -> PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// An output being written under its partial name. Dropping it without [`Partial::commit`]
/// removes what was written.
#[derive(Debug)]
pub struct Partial {
    path: PathBuf,
    committed: bool,
}

impl Partial {
    /// Prepares `output`'s partial name: whatever is there (a leftover of an earlier run, or a
    /// symbolic link) is removed without following it; the caller creates the output, exclusively.
    pub fn prepare(output: &Path) -> anyhow::Result<Partial> {
        let path = partial_of(output);
        remove(&path).with_context(|| format!("removing the leftover {}", path.display()))?;
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.clone());
        Ok(Partial {
            path,
            committed: false,
        })
    }

    /// Prepares `output`'s partial name and creates it as a new file.
    pub fn file(output: &Path) -> anyhow::Result<(Partial, File)> {
        let partial = Partial::prepare(output)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial.path)
            .with_context(|| format!("cannot create {}", partial.path.display()))?;
        Ok((partial, f))
    }

    /// Prepares `output`'s partial name and creates it as a new, empty directory.
    pub fn dir(output: &Path) -> anyhow::Result<Partial> {
        let partial = Partial::prepare(output)?;
        std::fs::create_dir(&partial.path)
            .with_context(|| format!("cannot create {}", partial.path.display()))?;
        Ok(partial)
    }

    /// The partial name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the complete output to `output` (an empty directory there is replaced). On failure
    /// the partial output is removed.
    pub fn commit(mut self, output: &Path) -> anyhow::Result<()> {
        if self.path.is_dir() && std::fs::symlink_metadata(output).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(output)
                .with_context(|| format!("replacing the empty {}", output.display()))?;
        }
        std::fs::rename(&self.path, output)
            .with_context(|| format!("renaming {} to {}", self.path.display(), output.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove(&self.path);
        }
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p != &self.path);
    }
}

/// Removes a file, a link or a directory tree at `path`, never following a link.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Waits for SIGINT or SIGTERM, then removes every partial output and exits with 128 + the
/// signal's number (130, 143), as a shell reports a process killed by it. Registered before any
/// output exists (the streams are created by the caller, in the runtime's context), and run on
/// a worker of the runtime, so it acts even while a command blocks its own thread.
pub async fn on_signal(
    mut interrupt: tokio::signal::unix::Signal,
    mut terminate: tokio::signal::unix::Signal,
) {
    let code = tokio::select! {
        _ = interrupt.recv() => 130,
        _ = terminate.recv() => 143,
    };
    let live: Vec<PathBuf> = LIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for p in &live {
        // A tree may still be growing under a writer thread: try again if it was.
        for _ in 0..3 {
            if remove(p).is_ok() {
                break;
            }
        }
    }
    eprintln!("mlflow-archive: interrupted");
    std::process::exit(code);
}
