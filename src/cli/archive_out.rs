//! Writing an export to `-` or a `.mlar` file that appears under its name only when complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mlflow_archive::format::{WriteSummary, WriterBuilder};
use mlflow_archive::transfer::archive_sink::ArchiveSink;

/// Checks that `output` is `-`, a path ending in `.mlar`, or a new (or empty) directory for the
/// Python tool's layout.
pub fn check_output(output: &Path) -> anyhow::Result<()> {
    if is_zip(output) {
        if output.is_dir() {
            anyhow::bail!("output {}: a directory, not a zip file", output.display());
        }
        return Ok(());
    }
    if is_tree(output)
        && output.exists()
        && std::fs::read_dir(output).map_or(true, |mut d| d.next().is_some())
    {
        anyhow::bail!(
            "output {}: exists and is not an empty directory; give a new directory for the Python tool's layout, or a path ending in .mlar",
            output.display()
        );
    }
    Ok(())
}

/// Whether `output` names a zip of the Python tool's layout.
pub fn is_zip(output: &Path) -> bool {
    output.extension().is_some_and(|e| e == "zip")
}

/// Whether `output` names the Python tool's layout (a directory, or a zip) rather than an
/// archive.
pub fn is_tree(output: &Path) -> bool {
    output.as_os_str() != "-" && output.extension().is_none_or(|e| e != "mlar")
}

/// `path` with `.partial` appended to its last part.
fn partial_of(output: &Path) -> PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Runs `fill` into a tree of the Python tool's layout at `output`: the archive flows through an
/// in-process pipe into the tree writer (nothing staged), which writes `OUTPUT.partial/`, renamed
/// to `output` only when complete.
/// Writes the archive read by `r` as a tree of the Python tool at `target` (a new directory, or a
/// zip file when `zip`), in the layout `flags` ask for; returns what the classic layout dropped.
pub fn write_tree_from<R: std::io::Read>(
    r: &mut mlflow_archive::format::ArchiveReader<R>,
    target: &Path,
    zip: bool,
    shape: mlflow_archive::legacy::v2_write::Shape,
    flags: &crate::cli::args::TreeFlags,
) -> mlflow_archive::Result<(mlflow_archive::legacy::v2_write::TreeSummary, Vec<String>)> {
    use mlflow_archive::legacy::{classic_write, v2_write};
    if flags.layout == "classic" {
        let mut lossy = classic_write::Lossy {
            allowed: flags.allow_lossy,
            dropped: Vec::new(),
        };
        let summary = classic_write::write_classic(r, target, zip, shape, &mut lossy)?;
        return Ok((summary, lossy.dropped));
    }
    let summary = if zip {
        v2_write::write_tree_zip(r, target, shape)?
    } else {
        v2_write::write_tree(r, target, shape)?
    };
    Ok((summary, Vec::new()))
}

/// Prints what a classic tree dropped.
pub fn print_dropped(dropped: &[String], quiet: bool) {
    if quiet {
        return;
    }
    for d in dropped {
        eprintln!("dropped (the classic layout cannot hold it): {d}");
    }
}

async fn write_tree_output(
    output: &Path,
    builder: WriterBuilder,
    global: &crate::cli::Global,
    flags: &crate::cli::args::TreeFlags,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> mlflow_archive::Result<()>,
) -> anyhow::Result<WriteSummary> {
    use mlflow_archive::legacy::v2_write::Shape;
    let partial = partial_of(output);
    let zip = is_zip(output);
    if partial.is_dir() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the leftover {}", partial.display()))?;
    }
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    let target = partial.clone();
    let flags_for_thread = flags.clone();
    let tree = std::thread::spawn(move || -> mlflow_archive::Result<Vec<String>> {
        let mut r = mlflow_archive::format::ArchiveReader::new(std::io::BufReader::with_capacity(
            256 << 10,
            reader,
        ))?;
        let shape = Shape::for_scope(r.header().source.as_ref().and_then(|s| s.scope.as_deref()));
        write_tree_from(&mut r, &target, zip, shape, &flags_for_thread).map(|(_, d)| d)
    });
    let line = crate::cli::progress::ProgressLine::start(global, "exporting");
    let mut sink = ArchiveSink::start(
        std::io::BufWriter::with_capacity(256 << 10, writer),
        builder.level(1),
    );
    sink.set_progress(line.counters());
    let result = match fill(&mut sink).await {
        Ok(()) => sink.finish().await,
        Err(e) => {
            drop(sink);
            Err(e)
        }
    };
    drop(line);
    let written = tokio::task::spawn_blocking(move || tree.join())
        .await
        .map_err(|e| anyhow::anyhow!("the tree writer failed: {e}"))?
        .map_err(|_| anyhow::anyhow!("the tree writer panicked"))?;
    let summary = result?;
    let dropped = match written {
        Ok(d) => d,
        Err(e) => {
            if zip {
                let _ = std::fs::remove_file(&partial);
            } else {
                let _ = std::fs::remove_dir_all(&partial);
            }
            return Err(anyhow::Error::from(e).context(format!("writing {}", output.display())));
        }
    };
    print_dropped(&dropped, global.quiet);
    if !zip && output.exists() {
        std::fs::remove_dir(output)
            .with_context(|| format!("replacing the empty {}", output.display()))?;
    }
    std::fs::rename(&partial, output)
        .with_context(|| format!("renaming {} to {}", partial.display(), output.display()))?;
    Ok(summary)
}

/// Runs `fill` against an archive written to `output`, finishing it only if `fill` succeeded.
pub async fn write_archive(
    output: &Path,
    builder: WriterBuilder,
    global: &crate::cli::Global,
    flags: &crate::cli::args::TreeFlags,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> mlflow_archive::Result<()>,
) -> anyhow::Result<WriteSummary> {
    check_output(output)?;
    if is_tree(output) {
        return write_tree_output(output, builder, global, flags, fill).await;
    }
    let to_stdout = output.as_os_str() == "-";
    let partial = partial_of(output);
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
    let partial = partial_of(output);
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
