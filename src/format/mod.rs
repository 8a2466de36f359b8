//! The archive format (spec/format.md) in code: sync, pure, no tokio.
//!
//! Step 2 of the plan fills this module with the record types, the streaming writer and the
//! reader; for now it holds the format's identity, which the CLI reports.

/// The media type of an archive.
pub const MEDIA_TYPE: &str = "application/vnd.mlflow-archive.v1+tar+zstd";
/// The file name suffix of an archive.
pub const EXTENSION: &str = "mlar";
