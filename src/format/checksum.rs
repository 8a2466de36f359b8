//! CRC-32 (ISO-HDLC, as zlib and crc32fast compute it; check value `crc32("123456789") =
//! cbf43926`), written in records as 8 lowercase hex digits.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A CRC-32 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Crc32(pub u32);

impl Crc32 {
    /// The CRC-32 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Crc32(crc32fast::hash(bytes))
    }
}

impl fmt::Display for Crc32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl std::str::FromStr for Crc32 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 8
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("{s:?} is not 8 lowercase hex digits"));
        }
        u32::from_str_radix(s, 16)
            .map(Crc32)
            .map_err(|e| e.to_string())
    }
}

impl Serialize for Crc32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Crc32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A reader that computes the CRC-32 and the count of what passes through.
#[derive(Debug)]
pub struct CrcReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    count: u64,
}

impl<R: Read> CrcReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        CrcReader {
            inner,
            hasher: crc32fast::Hasher::new(),
            count: 0,
        }
    }

    /// The CRC and byte count so far.
    pub fn sum(&self) -> (Crc32, u64) {
        (Crc32(self.hasher.clone().finalize()), self.count)
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that counts the bytes it passes on (the archive's compressed size).
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_and_text_form() {
        assert_eq!(Crc32::of(b"123456789"), Crc32(0xcbf4_3926));
        assert_eq!(Crc32(0xcbf4_3926).to_string(), "cbf43926");
        assert_eq!("0000abcd".parse::<Crc32>().unwrap(), Crc32(0xabcd));
        assert!("CBF43926".parse::<Crc32>().is_err());
        assert!("cbf4392".parse::<Crc32>().is_err());
    }
}
