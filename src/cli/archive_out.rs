//! Writing an export to `-` or a `.mlar` file that appears under its name only when complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mlflow_archive::format::{WriteSummary, WriterBuilder};
use mlflow_archive::transfer::archive_sink::ArchiveSink;

/// Checks that `output` is `-` or a path ending in `.mlar`.
pub fn check_output(output: &Path) -> anyhow::Result<()> {
    if output.as_os_str() != "-" && output.extension().is_none_or(|e| e != "mlar") {
        anyhow::bail!(
            "output {}: only archives (a path ending in .mlar, or - for standard output) are supported yet; the Python tool's directory and zip layouts come later",
            output.display()
        );
    }
    Ok(())
}

/// Runs `fill` against an archive written to `output`, finishing it only if `fill` succeeded.
pub async fn write_archive(
    output: &Path,
    builder: WriterBuilder,
    global: &crate::cli::Global,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> mlflow_archive::Result<()>,
) -> anyhow::Result<WriteSummary> {
    check_output(output)?;
    let to_stdout = output.as_os_str() == "-";
    let partial = {
        let mut p = output.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    };
    let out: Box<dyn Write + Send> = if to_stdout {
        Box::new(std::io::BufWriter::with_capacity(
            256 << 10,
            std::io::stdout(),
        ))
    } else {
        let f = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        Box::new(std::io::BufWriter::with_capacity(256 << 10, f))
    };
    let line = crate::cli::progress::ProgressLine::start(global, "exporting");
    let mut sink = ArchiveSink::start(out, builder);
    sink.set_progress(line.counters());
    let result = match fill(&mut sink).await {
        Ok(()) => sink.finish().await,
        Err(e) => {
            drop(sink);
            Err(e)
        }
    };
    drop(line);
    match result {
        Ok(summary) => {
            if !to_stdout {
                std::fs::rename(&partial, output).with_context(|| {
                    format!("renaming {} to {}", partial.display(), output.display())
                })?;
            }
            Ok(summary)
        }
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&partial);
            }
            Err(e.into())
        }
    }
}

/// Copies archive bytes to `output` (`-` or a `.mlar` path that appears only when complete);
/// returns the bytes written.
pub fn copy_to_output(input: &mut dyn std::io::Read, output: &Path) -> anyhow::Result<u64> {
    check_output(output)?;
    if output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::with_capacity(256 << 10, std::io::stdout());
        let n = std::io::copy(input, &mut out)?;
        out.flush()?;
        return Ok(n);
    }
    let partial = {
        let mut p = output.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    };
    let result = (|| {
        let f = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut out = std::io::BufWriter::with_capacity(256 << 10, f);
        let n = std::io::copy(input, &mut out)?;
        out.flush()?;
        anyhow::Ok(n)
    })();
    match result {
        Ok(n) => {
            std::fs::rename(&partial, output).with_context(|| {
                format!("renaming {} to {}", partial.display(), output.display())
            })?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// How an output is named in messages.
pub fn output_name(output: &Path) -> String {
    if output.as_os_str() == "-" {
        "standard output".into()
    } else {
        output.display().to_string()
    }
}
