//! mlflow-archive moves MLflow experiments, runs and registered models (every version) between
//! tracking servers, through a versioned single-file streaming archive or directly.
//!
//! The layers, each ignorant of the next:
//! - [`format`](mod@format): the archive specification ([`spec`]) in code; sync, pure, no tokio;
//! - [`legacy`]: the layouts written by the Python tool `mlflow-export-import`;
//! - [`mlflow`]: an async REST client for the tracking server; knows nothing of archives;
//! - [`transfer`]: sources, sinks and the pipeline between them.
//!
//! The command-line interface lives in the binary (`src/cli`), behind the default `cli` feature;
//! a library user can leave it out (`default-features = false`), and with it clap, indicatif and
//! anyhow.
//!
//! # Quick start
//!
//! Write an archive: an experiment, a run with a metric and a file. Records are plain structs;
//! build them with `..Default::default()`, so that the optional fields a later minor version of
//! the format adds do not break your code. [`finish`](format::ArchiveWriter::finish) is required:
//! it writes the trailer without which a reader refuses the archive.
//!
//! ```
//! use mlflow_archive::format::WriterBuilder;
//! use mlflow_archive::format::model::{Experiment, MetricChunk, Point, Run, Tag};
//!
//! # fn main() -> mlflow_archive::Result<()> {
//! let mut w = WriterBuilder::new().build(Vec::new())?;
//! w.experiment(&Experiment {
//!     experiment_id: "1".into(),
//!     name: "demo".into(),
//!     ..Default::default()
//! })?;
//! w.begin_run(&Run {
//!     run_id: "a1b2".into(),
//!     experiment_id: "1".into(),
//!     status: "FINISHED".into(),
//!     params: vec![Tag::new("alpha", "0.5")],
//!     ..Default::default()
//! })?;
//! w.metric_chunk(&MetricChunk {
//!     key: "loss".into(),
//!     points: vec![Point { step: 0, timestamp: 1_700_000_000_000, value: 0.25 }],
//!     ..Default::default()
//! })?;
//! let body = b"hello";
//! w.artifact("notes/readme.txt", body.len() as u64, &body[..])?;
//! w.end_unit()?; // seals the run
//! let (bytes, summary) = w.finish()?;
//! assert_eq!(summary.counts.runs, 1);
//! assert!(!bytes.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! Read it back, front to back: each artifact's bytes are read (or skipped) before the next
//! record, and every byte is checked against its unit's seal before the unit is reported
//! [`Sealed`](format::Record::Sealed).
//!
//! ```
//! use std::io::Read;
//!
//! use mlflow_archive::format::{ArchiveReader, Record};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join("mlflow-archive-doctest-read.mlar");
//! # {
//! #     let mut w = mlflow_archive::format::WriterBuilder::new().build(std::fs::File::create(&path)?)?;
//! #     w.experiment(&mlflow_archive::format::model::Experiment {
//! #         experiment_id: "1".into(), name: "demo".into(), ..Default::default()
//! #     })?;
//! #     w.begin_run(&mlflow_archive::format::model::Run {
//! #         run_id: "a1b2".into(), experiment_id: "1".into(), status: "FINISHED".into(),
//! #         ..Default::default()
//! #     })?;
//! #     w.artifact("notes/readme.txt", 5, &b"hello"[..])?;
//! #     w.end_unit()?;
//! #     w.finish()?;
//! # }
//! let mut r = ArchiveReader::new(std::io::BufReader::new(std::fs::File::open(&path)?))?;
//! while let Some(record) = r.next_record()? {
//!     match record {
//!         Record::Run(run) => println!("run {} ({})", run.run_id, run.status),
//!         Record::Artifact(a) => {
//!             let mut text = String::new();
//!             r.body().read_to_string(&mut text)?;
//!             println!("  {}: {text:?}", a.path);
//!         }
//!         Record::Sealed(s) => println!("  {:?} sealed: every byte checked", s.unit),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Copy an experiment from one server to another, nothing staged (the export streams into the
//! import through an in-process pipe, with every check of an archive on the way):
//!
//! ```no_run
//! use mlflow_archive::mlflow::{Client, TrackingConfig};
//! use mlflow_archive::transfer::copy::copy_experiments;
//! use mlflow_archive::transfer::export::ExportOptions;
//! use mlflow_archive::transfer::import::ImportOptions;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let src = Client::new(TrackingConfig::for_uri("http://old-server:5000")?)?;
//! let dst = Client::new(TrackingConfig::for_uri("http://new-server:5000")?)?;
//! let experiment = src
//!     .get_experiment_by_name("churn")
//!     .await?
//!     .ok_or("no experiment named churn")?;
//! let report = copy_experiments(
//!     &src,
//!     &dst,
//!     &[experiment],
//!     &ExportOptions::default(),
//!     &ImportOptions::default(),
//! )
//! .await?;
//! println!("{} runs copied", report.runs_imported);
//! # Ok(())
//! # }
//! ```
//!
//! # Diagnostics
//!
//! The library reports what it does as [`tracing`](https://docs.rs/tracing) events: each
//! request at `DEBUG` (method, path without the query, status, milliseconds), each retry at
//! `INFO`. Install any subscriber to see them; the command line shows them under `RUST_LOG` or
//! `MLFLOW_ARCHIVE_DEBUG=1`.

#![warn(missing_docs)]

pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod legacy;
pub mod mlflow;
pub mod transfer;

/// The archive format's specification (`spec/format.md`), the authority on the format: what
/// [`format`](mod@format) implements, section by section (errors cite its sections as §N).
///
/// ---
///
#[doc = include_str!("../spec/format.md")]
// (The spec's JSON examples are tagged `json record=<Type>` for the test that parses them.)
#[allow(rustdoc::invalid_codeblock_attributes)]
pub mod spec {}

pub use error::{Error, Result};
