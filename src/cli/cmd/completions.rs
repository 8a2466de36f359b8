//! `completions`: a shell's completion script, generated from the command line's definition.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::cli::output::stdout_sink;

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell. Install the script where the shell looks for completions, e.g. bash:
    /// `mlflow-archive completions bash > ~/.local/share/bash-completion/completions/mlflow-archive`;
    /// zsh: a file `_mlflow-archive` in a directory of `$fpath`; fish:
    /// `~/.config/fish/completions/mlflow-archive.fish`.
    #[arg(value_name = "SHELL", value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: Args, _global: Global) -> anyhow::Result<ExitCode> {
    // Generated whole first: the generators cannot report a failed write (they panic on one).
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut crate::cli::command(),
        "mlflow-archive",
        &mut script,
    );
    if args.shell == clap_complete::Shell::Bash {
        script = fix_bash_labels(script);
    }
    let mut out = stdout_sink()?;
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// clap_complete (4.6.12) spells a subcommand's state in two ways in a bash script when the
/// command's name has a hyphen: the loop that reads the words arrives at
/// `mlflow__archive__subcmd__convert`, while the case arm that completes its options is labelled
/// `mlflow__subcmd__archive__subcmd__convert`, so no option of any command would ever complete
/// (clap-rs/clap issue 6421). The arms are relabelled the way the loop spells them; once clap
/// spells them alike, this changes nothing.
fn fix_bash_labels(script: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(script) {
        Ok(text) => text
            .replace(
                "mlflow__subcmd__archive__subcmd__",
                "mlflow__archive__subcmd__",
            )
            .into_bytes(),
        Err(e) => e.into_bytes(),
    }
}
