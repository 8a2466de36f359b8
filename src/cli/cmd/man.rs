//! `man`: the manual pages (roff), generated from the command line's definition.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap_mangen::Man;

use crate::cli::Global;
use crate::cli::output::{Output, stdout_sink};

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one page per command into this directory (created if missing; pages of the same
    /// names are replaced): mlflow-archive.1, mlflow-archive-export-experiment.1, ... Default:
    /// print the main page. E.g. `mlflow-archive man ~/.local/share/man/man1`.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    // `help` has no page of its own: its text is each command's --help.
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    let Some(dir) = args.dir else {
        let page = render(&Man::new(cmd))?;
        let mut out = stdout_sink()?;
        out.write_all(&page)
            .and_then(|()| out.flush())
            .context("writing standard output")?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    cmd.build();
    let mut pages = Vec::new();
    collect(cmd, &mut pages);
    for man in &pages {
        // Each page is written as NAME.partial and renamed when whole.
        let mut out = Output::open(&dir.join(man.get_filename()))?;
        let name = out.name();
        let page = render(man)?;
        match out.write_all(&page) {
            Ok(()) => out.commit()?,
            Err(e) => {
                out.abandon();
                return Err(anyhow::Error::from(e).context(format!("writing {name}")));
            }
        }
    }
    if !global.quiet {
        eprintln!("wrote {} manual pages into {}", pages.len(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The pages of `cmd` and of each of its commands that is not hidden.
fn collect(cmd: clap::Command, pages: &mut Vec<Man>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub.clone(), pages);
    }
    pages.push(Man::new(cmd));
}

fn render(man: &Man) -> anyhow::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render(&mut page).context("rendering the manual page")?;
    Ok(page)
}
