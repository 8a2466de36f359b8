//! The Python tool `mlflow-export-import`'s layouts: its directory trees, zips and JSON files.
//!
//! Readers turn a tree into archive records written into an [`crate::format::ArchiveWriter`], so
//! an import from a tree, and a conversion to `.mlar`, go through the archive's own checks.
//! `registered_models.json` is written by `list-registered-models`.

#![warn(clippy::missing_errors_doc)]

pub mod classic_write;
pub mod registered_models;
pub mod tree;
pub mod v2;
pub mod v2_write;
