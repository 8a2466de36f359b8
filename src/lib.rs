//! mlflow-archive moves MLflow experiments, runs and registered models (every version) between
//! tracking servers, through a versioned single-file streaming archive or directly.
//!
//! The layers, each ignorant of the next:
//! - [`format`]: the archive specification (`spec/format.md`) in code; sync, pure, no tokio;
//! - [`legacy`]: the layouts written by the Python tool `mlflow-export-import`;
//! - [`mlflow`]: an async REST client for the tracking server; knows nothing of archives;
//! - [`transfer`]: sources, sinks and the pipeline between them.
//!
//! The command-line interface lives in the binary (`src/cli`).

#![warn(missing_docs)]

pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod legacy;
pub mod mlflow;
pub mod transfer;

pub use error::{Error, Result};
