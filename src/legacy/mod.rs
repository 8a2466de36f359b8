//! The Python tool `mlflow-export-import`'s layouts: its directory trees, zips and JSON files.
//!
//! For now this holds the shape of `registered_models.json` written by `list-registered-models`;
//! step 4 adds readers and writers for whole export trees.

pub mod registered_models;
