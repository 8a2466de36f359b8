//! One module per subcommand.

pub mod list_registered_models;
