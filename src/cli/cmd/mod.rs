//! One module per subcommand.

pub mod inspect;
pub mod list_registered_models;
pub mod verify;
