//! Sources, sinks and the pipeline between them: where `mlflow` (the server) meets `format` (the
//! archive) and `legacy` (the Python tool's layouts).

pub mod list_models;
