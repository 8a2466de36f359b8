//! The tar profile (spec/format.md §5): GNU-format headers for regular files, a GNU long-name
//! entry (`././@LongLink`, type `L`) before a member whose name exceeds 100 bytes, mode 0644,
//! uid/gid 0, mtime 0, zero padding to 512 bytes, and two zero blocks at the end. Nothing else is
//! written, and a reader accepts nothing else: no links, devices, directories or PAX headers.

use std::io::{self, Read, Write};

/// The tar block size.
pub const BLOCK: u64 = 512;
/// The longest name that fits in a header's name field.
pub const NAME_FIELD: usize = 100;
const LONG_LINK: &str = "././@LongLink";

/// Bytes of zero padding after a body of `size` bytes.
pub fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn header(name: &[u8], size: u64, kind: tar::EntryType) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(NAME_FIELD);
        old.name[..n].copy_from_slice(&name[..n]);
    }
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_cksum();
    *h.as_bytes()
}

/// Writes the header(s) of a regular-file member; returns the bytes written.
pub fn write_header<W: Write>(out: &mut W, name: &str, size: u64) -> io::Result<u64> {
    let bytes = name.as_bytes();
    let mut written = 0;
    if bytes.len() > NAME_FIELD {
        let len = bytes.len() as u64 + 1;
        out.write_all(&header(
            LONG_LINK.as_bytes(),
            len,
            tar::EntryType::GNULongName,
        ))?;
        out.write_all(bytes)?;
        out.write_all(&[0])?;
        write_zeros(out, padding(len))?;
        written += BLOCK + len + padding(len);
    }
    out.write_all(&header(bytes, size, tar::EntryType::Regular))?;
    Ok(written + BLOCK)
}

/// Writes `n` zero bytes.
pub fn write_zeros<W: Write>(out: &mut W, n: u64) -> io::Result<()> {
    const Z: [u8; 512] = [0; 512];
    let mut left = n;
    while left > 0 {
        let k = left.min(512) as usize;
        out.write_all(&Z[..k])?;
        left -= k as u64;
    }
    Ok(())
}

/// What a reader found at a header position.
#[derive(Debug)]
pub enum Found {
    /// A regular-file member: its name and size, and the offset of its (first) header.
    Member {
        /// The member's name.
        name: String,
        /// Its size.
        size: u64,
        /// Where its first header starts.
        offset: u64,
    },
    /// The end-of-archive marker (two zero blocks).
    End,
}

/// Reads exactly `buf.len()` bytes, or reports where the stream ended.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads the next member's header(s) at offset `*pos`, advancing it. Errors are `(offset, detail)`.
pub fn read_header<R: Read>(r: &mut R, pos: &mut u64, max_name: usize) -> Result<Found, ReadError> {
    let start = *pos;
    let mut long_name: Option<Vec<u8>> = None;
    loop {
        let mut block = [0u8; 512];
        let at = *pos;
        let n = read_full(r, &mut block).map_err(ReadError::Io)?;
        if n == 0 && long_name.is_none() {
            return Err(ReadError::Format(
                at,
                "the archive ends without an end-of-archive marker (truncated?)".into(),
            ));
        }
        if n < 512 {
            return Err(ReadError::Format(
                at,
                format!("truncated tar header ({n} of 512 bytes)"),
            ));
        }
        *pos += BLOCK;
        if block.iter().all(|b| *b == 0) {
            if long_name.is_some() {
                return Err(ReadError::Format(
                    at,
                    "a long name is not followed by its member".into(),
                ));
            }
            let mut second = [0u8; 512];
            let n = read_full(r, &mut second).map_err(ReadError::Io)?;
            if n < 512 || second.iter().any(|b| *b != 0) {
                return Err(ReadError::Format(
                    *pos,
                    "a zero block not followed by a second one".into(),
                ));
            }
            *pos += BLOCK;
            return Ok(Found::End);
        }
        let h = tar::Header::from_byte_slice(&block);
        let stored = h
            .cksum()
            .map_err(|_| ReadError::Format(at, "unreadable header checksum".into()))?;
        let computed: u32 = block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    u32::from(b' ')
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        if stored != computed {
            return Err(ReadError::Format(
                at,
                format!("tar header checksum mismatch (stored {stored}, computed {computed})"),
            ));
        }
        let size = h
            .entry_size()
            .map_err(|_| ReadError::Format(at, "unreadable member size".into()))?;
        match h.entry_type() {
            tar::EntryType::GNULongName => {
                if long_name.is_some() {
                    return Err(ReadError::Format(at, "two long names in a row".into()));
                }
                if size == 0 || size > max_name as u64 + 1 {
                    return Err(ReadError::Format(
                        at,
                        format!("long name of {size} bytes (limit {max_name})"),
                    ));
                }
                let mut name = vec![0u8; size as usize];
                let n = read_full(r, &mut name).map_err(ReadError::Io)?;
                if n < name.len() {
                    return Err(ReadError::Format(*pos, "truncated long name".into()));
                }
                *pos += size;
                skip_padding(r, pos, size)?;
                while name.last() == Some(&0) {
                    name.pop();
                }
                long_name = Some(name);
            }
            tar::EntryType::Regular => {
                let raw = match long_name.take() {
                    Some(n) => n,
                    None => h.path_bytes().into_owned(),
                };
                if raw.len() > max_name {
                    return Err(ReadError::Format(
                        at,
                        format!("member name longer than {max_name} bytes"),
                    ));
                }
                let name = String::from_utf8(raw)
                    .map_err(|_| ReadError::Format(at, "member name is not UTF-8".into()))?;
                return Ok(Found::Member {
                    name,
                    size,
                    offset: start,
                });
            }
            other => {
                return Err(ReadError::Format(
                    at,
                    format!(
                        "tar entry type {:?} is not allowed: only regular files (§5; links, devices, directories and PAX headers are refused)",
                        other
                    ),
                ));
            }
        }
    }
}

/// Reads and checks the zero padding after a body of `size` bytes.
pub fn skip_padding<R: Read>(r: &mut R, pos: &mut u64, size: u64) -> Result<(), ReadError> {
    let pad = padding(size) as usize;
    if pad == 0 {
        return Ok(());
    }
    let mut buf = [0u8; 512];
    let n = read_full(r, &mut buf[..pad]).map_err(ReadError::Io)?;
    if n < pad {
        return Err(ReadError::Format(
            *pos + n as u64,
            "truncated member padding".into(),
        ));
    }
    if buf[..pad].iter().any(|b| *b != 0) {
        return Err(ReadError::Format(*pos, "member padding is not zero".into()));
    }
    *pos += pad as u64;
    Ok(())
}

/// A failure while reading tar structure.
#[derive(Debug)]
pub enum ReadError {
    /// The underlying stream failed (including zstd errors).
    Io(io::Error),
    /// The structure is wrong at this offset.
    Format(u64, String),
}
