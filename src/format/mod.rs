//! The archive format (spec/format.md) in code: sync, pure, no tokio.
//!
//! - [`model`]: the records (experiments, runs, metric chunks, logged models, registered models,
//!   versions, seals, the trailer);
//! - [`path`]: member names and their grammar;
//! - [`validate`]: the structural rules, shared by writer and reader;
//! - [`write`](mod@write): [`ArchiveWriter`], streaming, exact sizes, **`finish()` required**;
//! - [`read`]: [`ArchiveReader`], streaming, every byte checked before a unit is reported sealed.

#![warn(clippy::missing_errors_doc)]

pub mod checksum;
pub mod limits;
pub mod model;
pub mod path;
pub mod read;
pub mod summary;
mod tarfmt;
pub mod validate;
pub mod write;

pub use checksum::Crc32;
pub use limits::Limits;
pub use read::{ArchiveReader, ArtifactEntry, ReaderBuilder, Record, VerifyReport};
pub use write::{ArchiveWriter, WriteSummary, WriterBuilder};

/// The format's major version: readers refuse any other.
pub const FORMAT_MAJOR: u32 = 1;
/// The minor version this library writes; readers accept any minor of their major.
pub const FORMAT_MINOR: u32 = 2;
/// The media type of an archive.
pub const MEDIA_TYPE: &str = "application/vnd.mlflow-archive.v1+tar+zstd";
/// The file name suffix of an archive.
pub const EXTENSION: &str = "mlar";
