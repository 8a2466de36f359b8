//! The REST calls, one file per area, each an `impl Client` block.

pub mod artifacts;
pub mod datasets;
pub mod experiments;
pub mod inventory;
pub mod logged_models;
pub mod registry;
pub mod runs;
pub mod traces;
pub mod workspace;
pub mod workspaces;
