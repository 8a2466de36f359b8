//! `verify`: read a whole archive, check every CRC, seal and the trailer.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::ArchiveReader;

use crate::cli::Global;
use crate::cli::output::{bytes, clean, counts_line, input_name, open_input};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive (`-` for standard input).
    #[arg(value_name = "IN")]
    input: PathBuf,
}

pub fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let name = input_name(&args.input);
    let input = open_input(&args.input)?;
    match ArchiveReader::new(input).and_then(|r| r.verify()) {
        Ok(report) => {
            if !global.quiet {
                let line = format!(
                    "{name}: sound: format {} by {}; {}; {} compressed, {} uncompressed",
                    report.header.version,
                    report.header.generator,
                    counts_line(&report.trailer.counts),
                    bytes(report.archive_bytes),
                    bytes(report.tar_bytes)
                );
                say!("{}", clean(&line));
                for (kind, n) in &report.unknown_units {
                    let line = format!(
                        "{name}: {n} units of kind {kind:?}, which format {} defines and this mlflow-archive does not know: checked (sizes, CRCs, seals), not read",
                        report.header.version
                    );
                    say!("{}", clean(&line));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let line = format!("mlflow-archive: verify: {name} is not sound: {e}");
            eprintln!("{}", clean(&line));
            Ok(ExitCode::FAILURE)
        }
    }
}
