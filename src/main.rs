//! The `mlflow-archive` command. Exit codes: 0 success, 1 failure (for `verify`: the archive is
//! not sound), 2 bad usage.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
