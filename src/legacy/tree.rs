//! Where a legacy export lives: a directory, or the same tree inside a `.zip` (how the classic
//! tool wrote `export-run --output run.zip`, and how people ship trees). The readers see paths;
//! this module answers for either.
//!
//! Directories are read without following symbolic links below their top: a link (a file, a run's
//! `artifacts/`, a run's own directory) is refused, named, since it could lead out of the tree.
//!
//! Zips are read without extracting anything: entries are located through the central directory
//! and each is streamed from the file (deflated or stored), its size and CRC-32 checked as it is
//! read. Refused: names that could leave the tree (absolute, `..`, backslashes, NUL; "zip slip"),
//! duplicate names, symbolic links and other entries that are neither files nor directories (by
//! their unix mode), encrypted entries and methods other than stored and deflated, entries whose
//! data overlap another's or run past the end of the zip, and sizes no honest zip claims (more than
//! 1,000:1 above 64 MiB, for any entry and for all of them together; "zip bombs": with overlaps
//! refused, the bytes a zip can yield are bounded by its length). A zip whose only top-level entry
//! is a directory is read from inside it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A tree of files the legacy readers read.
pub trait Tree: Send + Sync {
    /// Whether a regular file exists at `p`.
    fn is_file(&self, p: &Path) -> bool;
    /// Whether a directory (with files in it, for a zip) exists at `p`.
    fn is_dir(&self, p: &Path) -> bool;
    /// Opens the file at `p`; returns its size and its bytes.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or a zip entry that is unsafe (absolute, `..`, a link) or larger
    /// than declared.
    fn open(&self, p: &Path) -> Result<(u64, Box<dyn Read + Send>)>;
    /// Every file under the directory `p`, as (path relative to `p` with `/`, full path),
    /// sorted by the relative path. Anything but regular files and directories is refused.
    ///
    /// # Errors
    ///
    /// A directory that cannot be listed.
    fn files_under(&self, p: &Path) -> Result<Vec<(String, PathBuf)>>;
    /// The tree's top.
    fn root(&self) -> &Path;
}

/// The tree at `path`: a directory, or a `.zip` file.
///
/// # Errors
///
/// A path that is neither a directory nor a readable zip file, or a zip whose central directory is
/// invalid or holds unsafe entries.
pub fn open_tree(path: &Path) -> Result<Box<dyn Tree>> {
    if path.is_dir() {
        Ok(Box::new(DirTree::new(path)))
    } else if path.is_file() {
        Ok(Box::new(ZipTree::open(path)?))
    } else {
        Err(Error::Input(format!(
            "{}: neither a directory nor a zip file",
            path.display()
        )))
    }
}

/// A directory on disk.
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    /// The tree at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirTree { root: root.into() }
    }

    /// Refuses `p` when it, or a directory on the way to it from the tree's top, is a symbolic
    /// link: a link can lead out of the tree (a run's `artifacts/`, or the run's own directory,
    /// pointing elsewhere on the machine). The top itself may be a link.
    fn refuse_links(&self, p: &Path) -> Result<()> {
        let rel = p.strip_prefix(&self.root).map_err(|_| {
            Error::Input(format!(
                "{}: not under the tree {}",
                p.display(),
                self.root.display()
            ))
        })?;
        let mut at = self.root.clone();
        for c in rel.components() {
            let Component::Normal(part) = c else {
                return Err(Error::Input(format!(
                    "{}: a path that could leave the tree (refused)",
                    p.display()
                )));
            };
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Input(format!(
                        "{}: a symbolic link (refused: it could lead out of the tree; put what it points to in its place)",
                        at.display()
                    )));
                }
                Ok(_) => {}
                Err(_) => break, // missing: what uses the path says so
            }
        }
        Ok(())
    }
}

impl Tree for DirTree {
    fn is_file(&self, p: &Path) -> bool {
        p.is_file()
    }

    fn is_dir(&self, p: &Path) -> bool {
        p.is_dir()
    }

    fn open(&self, p: &Path) -> Result<(u64, Box<dyn Read + Send>)> {
        self.refuse_links(p)?;
        let f = File::open(p).map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
        let size = f
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))?
            .len();
        Ok((size, Box::new(BufReader::with_capacity(64 << 10, f))))
    }

    fn files_under(&self, root: &Path) -> Result<Vec<(String, PathBuf)>> {
        self.refuse_links(root)?;
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        let mut files = Vec::new();
        while let Some((dir, rel)) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                let name = entry.file_name().into_string().map_err(|n| {
                    Error::Input(format!(
                        "{}: a file name that is not UTF-8: {n:?}",
                        dir.display()
                    ))
                })?;
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ty = entry
                    .file_type()
                    .map_err(|e| Error::io(format!("reading {}", entry.path().display()), e))?;
                if ty.is_dir() {
                    stack.push((entry.path(), child));
                } else if ty.is_file() {
                    files.push((child, entry.path()));
                } else {
                    return Err(Error::Input(format!(
                        "{}: not a regular file (symbolic links and devices are refused)",
                        entry.path().display()
                    )));
                }
            }
        }
        files.sort();
        Ok(files)
    }

    fn root(&self) -> &Path {
        &self.root
    }
}

/// An entry of a zip, as found in its central directory.
#[derive(Debug, Clone)]
struct Entry {
    data_start: u64,
    compressed: u64,
    size: u64,
    crc: u32,
    deflated: bool,
}

/// A `.zip` file, read in place.
pub struct ZipTree {
    /// How the zip is named in messages (its path), used as the tree's root.
    root: PathBuf,
    file: Arc<File>,
    /// Entries by name (relative to the zip's top, or to its one top-level directory).
    entries: BTreeMap<String, Entry>,
}

/// Entries larger than this must not be compressed more than [`MAX_RATIO`] to one.
const BOMB_SIZE: u64 = 64 << 20;
const MAX_RATIO: u64 = 1000;
/// Entries a zip may hold.
const MAX_ENTRIES: usize = 1_000_000;

impl ZipTree {
    /// Opens the zip at `path` and checks every entry's name, method and size.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or a zip entry that is unsafe (absolute, `..`, a link) or larger
    /// than declared.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let zip_err = |e: zip::result::ZipError| {
            Error::Input(format!("{}: not a readable zip: {e}", path.display()))
        };
        let mut archive = zip::ZipArchive::new(
            file.try_clone()
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?,
        )
        .map_err(zip_err)?;
        if archive.has_duplicate_names() {
            return Err(Error::Input(format!(
                "{}: a name appears twice in the zip (refused: which one is meant?)",
                path.display()
            )));
        }
        if archive.len() > MAX_ENTRIES {
            return Err(Error::Input(format!(
                "{}: {} entries, more than the {MAX_ENTRIES} accepted",
                path.display(),
                archive.len()
            )));
        }
        let zip_len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let mut total: u64 = 0;
        for i in 0..archive.len() {
            let f = archive.by_index_raw(i).map_err(zip_err)?;
            let name = f.name().map_err(zip_err)?.to_string();
            let bad =
                |why: &str| Error::Input(format!("{}: entry {name:?}: {why}", path.display()));
            if name.starts_with('/')
                || name.contains(['\\', '\0'])
                || name
                    .trim_end_matches('/')
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad("a name that could leave the tree (refused)"));
            }
            match f.unix_mode().map(|m| m & 0o170_000) {
                None | Some(0 | 0o100_000) => {}
                Some(0o040_000) if f.is_dir() => {}
                Some(0o120_000) => {
                    return Err(bad("a symbolic link (refused, as in directory trees)"));
                }
                Some(_) => {
                    return Err(bad(
                        "neither a regular file nor a directory (devices, FIFOs and sockets are refused)",
                    ));
                }
            }
            if f.is_dir() {
                continue;
            }
            if f.encrypted() {
                return Err(bad("encrypted (not supported)"));
            }
            let deflated = match f.compression() {
                zip::CompressionMethod::Stored => false,
                zip::CompressionMethod::Deflated => true,
                other => {
                    return Err(bad(&format!(
                        "compressed with {other:?} (only stored and deflated are read)"
                    )));
                }
            };
            let (size, compressed) = (f.size(), f.compressed_size());
            if size > BOMB_SIZE && size / compressed.max(1) > MAX_RATIO {
                return Err(bad(&format!(
                    "{size} bytes from {compressed}: a ratio no real file has (a zip bomb?)"
                )));
            }
            let entry = Entry {
                data_start: f.data_start().ok_or_else(|| bad("no data offset"))?,
                compressed,
                size,
                crc: f.crc32(),
                deflated,
            };
            if entry.data_start.saturating_add(compressed) > zip_len {
                return Err(bad("its data runs past the end of the zip (truncated?)"));
            }
            total = total.saturating_add(size);
            if entries.insert(name.clone(), entry).is_some() {
                return Err(bad("appears twice (refused)"));
            }
        }
        // Entries whose data overlap (many names for one compressed body) would let a small zip
        // yield any number of bytes; an honest zip stores each body once.
        let mut ranges: Vec<(u64, u64, &str)> = entries
            .iter()
            .map(|(n, e)| (e.data_start, e.data_start + e.compressed, n.as_str()))
            .collect();
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            let ((_, end, a), (start, _, b)) = (w[0], w[1]);
            if end > start {
                return Err(Error::Input(format!(
                    "{}: entries {a:?} and {b:?} share compressed data (refused: a zip bomb?)",
                    path.display()
                )));
            }
        }
        if total > BOMB_SIZE && total / zip_len.max(1) > MAX_RATIO {
            return Err(Error::Input(format!(
                "{}: its entries claim {total} bytes from a zip of {zip_len}: a ratio no real files have (a zip bomb?)",
                path.display()
            )));
        }
        // One top-level directory holding everything: read from inside it.
        let tops: std::collections::BTreeSet<String> = entries
            .keys()
            .map(|n| n.split('/').next().unwrap_or("").to_string())
            .collect();
        let nested = entries.keys().all(|n| n.contains('/'));
        if tops.len() == 1
            && nested
            && let Some(top) = tops.into_iter().next()
        {
            let prefix = format!("{top}/");
            entries = entries
                .into_iter()
                .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                .collect();
        }
        Ok(ZipTree {
            root: path.to_path_buf(),
            file: Arc::new(file),
            entries,
        })
    }

    /// The entry name of `p` (a path under the root).
    fn name_of(&self, p: &Path) -> Option<String> {
        let rel = p.strip_prefix(&self.root).ok()?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_str()?.to_string()),
                _ => return None,
            }
        }
        Some(parts.join("/"))
    }
}

impl Tree for ZipTree {
    fn is_file(&self, p: &Path) -> bool {
        self.name_of(p)
            .is_some_and(|n| self.entries.contains_key(&n))
    }

    fn is_dir(&self, p: &Path) -> bool {
        self.name_of(p).is_some_and(|n| {
            let prefix = if n.is_empty() { n } else { format!("{n}/") };
            self.entries.keys().any(|k| k.starts_with(&prefix))
        })
    }

    fn open(&self, p: &Path) -> Result<(u64, Box<dyn Read + Send>)> {
        let e = self
            .name_of(p)
            .and_then(|n| self.entries.get(&n))
            .ok_or_else(|| Error::Input(format!("{}: not in the zip", p.display())))?
            .clone();
        let raw = Positioned {
            file: Arc::clone(&self.file),
            pos: e.data_start,
            end: e.data_start + e.compressed,
        };
        let body: Box<dyn Read + Send> = if e.deflated {
            Box::new(flate2::read::DeflateDecoder::new(BufReader::with_capacity(
                64 << 10,
                raw,
            )))
        } else {
            Box::new(BufReader::with_capacity(64 << 10, raw))
        };
        Ok((
            e.size,
            Box::new(Checked {
                inner: body,
                left: e.size,
                crc: e.crc,
                hasher: crc32fast::Hasher::new(),
                name: p.display().to_string(),
                done: false,
            }),
        ))
    }

    fn files_under(&self, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
        let Some(n) = self.name_of(dir) else {
            return Ok(Vec::new());
        };
        let prefix = if n.is_empty() { n } else { format!("{n}/") };
        Ok(self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rel| (rel.to_string(), dir.join(rel)))
            .collect())
    }

    fn root(&self) -> &Path {
        &self.root
    }
}

/// A byte range of the zip file, read with positioned reads (each open entry has its own).
struct Positioned {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for Positioned {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the zip ends inside an entry",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// An entry's bytes, checked: exactly its size, then its CRC-32.
struct Checked {
    inner: Box<dyn Read + Send>,
    left: u64,
    crc: u32,
    hasher: crc32fast::Hasher,
    name: String,
    done: bool,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            // One more byte would be more than the entry claims.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(bad(format!("{}: longer than the zip says", self.name)));
            }
            let got = std::mem::take(&mut self.hasher).finalize();
            if got != self.crc {
                return Err(bad(format!(
                    "{}: CRC-32 {got:08x}, the zip says {:08x}",
                    self.name, self.crc
                )));
            }
            self.done = true;
            return Ok(0);
        }
        let want = self.left.min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad(format!("{}: shorter than the zip says", self.name)));
        }
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}
