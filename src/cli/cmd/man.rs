//! `man`: the manual pages (roff), generated from the command line's definition.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::cli::output::stdout_sink;
use crate::cli::partial::Partial;

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one page per command into this new directory (mlflow-archive.1,
    /// mlflow-archive-export-experiment.1, ...) instead of printing the main page; e.g.
    /// `mlflow-archive man ~/.local/share/man/man1`. It appears only when complete.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(crate::cli::command())
            .render(&mut page)
            .context("rendering the manual page")?;
        let mut out = stdout_sink()?;
        out.write_all(&page)
            .and_then(|()| out.flush())
            .context("writing standard output")?;
        return Ok(ExitCode::SUCCESS);
    };
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        anyhow::bail!(
            "{}: exists and is not an empty directory; give a new directory for the manual pages",
            dir.display()
        );
    }
    // Written as DIR.partial, renamed when complete, removed on failure.
    let partial = Partial::dir(&dir)?;
    clap_mangen::generate_to(crate::cli::command(), partial.path())
        .with_context(|| format!("writing the manual pages into {}", partial.path().display()))?;
    let pages = std::fs::read_dir(partial.path())
        .with_context(|| format!("reading {}", partial.path().display()))?
        .count();
    partial.commit(&dir)?;
    if !global.quiet {
        eprintln!("wrote {pages} manual pages into {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
