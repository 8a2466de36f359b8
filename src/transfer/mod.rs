//! Sources, sinks and the pipeline between them: where `mlflow` (the server) meets `format` (the
//! archive) and `legacy` (the Python tool's layouts). `map` is the one place that knows both the
//! REST types and the records.

#![warn(clippy::missing_errors_doc)]

pub mod archive_sink;
pub mod archive_source;
pub mod compare;
pub mod copy;
pub mod destination;
pub mod export;
pub mod import;
pub(crate) mod lease;
pub mod legacy_source;
pub mod list_models;
pub mod map;
pub mod memory;
pub(crate) mod ordered;
pub mod progress;
pub mod replay;
pub mod select;
pub mod source;
pub mod sync;
