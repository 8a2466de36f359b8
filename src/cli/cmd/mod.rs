//! One module per subcommand.

pub mod compare;
pub mod completions;
pub mod convert;
pub mod copy_all;
pub mod copy_experiment;
pub mod copy_model;
pub mod copy_run;
pub mod export_all;
pub mod export_experiment;
pub mod export_experiment_list;
pub mod export_model;
pub mod export_prompts;
pub mod export_run;
pub mod import_all;
pub mod import_experiment;
pub mod import_model;
pub mod import_prompts;
pub mod import_run;
pub mod inspect;
pub mod list_registered_models;
pub mod man;
pub mod sync;
pub mod verify;
