//! Writing an export to `-` or a `.mlar` file that appears under its name only when complete.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use mlflow_archive::format::{WriteSummary, WriterBuilder};
use mlflow_archive::transfer::archive_sink::ArchiveSink;

use crate::cli::args::OutputSettings;
use crate::cli::output::stdout_sink;
use crate::cli::partial::Partial;

/// Checks that `output` is `-`, a path ending in `.mlar`, or a new (or empty) directory for the
/// Python tool's layout.
pub fn check_output(output: &Path) -> anyhow::Result<()> {
    if output.as_os_str() != "-" && !is_tree(output) && output.is_dir() {
        anyhow::bail!(
            "output {}: a directory, not an archive file; give a new path ending in .mlar",
            output.display()
        );
    }
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
    if flags.layout == crate::cli::args::Layout::Classic {
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
        eprintln!(
            "dropped (the classic layout cannot hold it): {}",
            crate::cli::output::clean(d)
        );
    }
}

/// Runs `fill` into a tree of the Python tool's layout at `output`: the archive flows through an
/// in-process pipe into the tree writer (nothing staged), which writes `OUTPUT.partial/`, renamed
/// to `output` only when complete.
async fn write_tree_output<T>(
    output: &Path,
    builder: WriterBuilder,
    global: &crate::cli::Global,
    flags: &crate::cli::args::TreeFlags,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> mlflow_archive::Result<T>,
) -> anyhow::Result<(WriteSummary, T)> {
    use mlflow_archive::legacy::v2_write::Shape;
    let zip = is_zip(output);
    let partial = if zip {
        Partial::prepare(output)?
    } else {
        Partial::dir(output)?
    };
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    let target = partial.path().to_path_buf();
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
        Ok(t) => sink.finish().await.map(|summary| (summary, t)),
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
    // Either end may fail first. When the tree writer fails (a full disk), the archive's writer
    // sees only the pipe between them close: the tree's error is the cause. When the export fails
    // (the server), the tree writer sees only a truncated archive: the export's error is.
    let writing = |e: mlflow_archive::Error| {
        anyhow::Error::from(e).context(format!("writing {}", output.display()))
    };
    let (done, dropped) = match (result, written) {
        (Ok(done), Ok(dropped)) => (done, dropped),
        (Ok(_), Err(tree)) => return Err(writing(tree)),
        (Err(e), Err(tree)) if is_pipe_closed(&e) => return Err(writing(tree)),
        (Err(e), _) => return Err(e.into()),
    };
    partial.commit(output)?;
    print_dropped(&dropped, global.quiet);
    Ok(done)
}

/// Whether `e` is the in-process pipe closing under the archive writer (its reader failed).
fn is_pipe_closed(e: &mlflow_archive::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Runs `fill` against the archive (or tree) `out` asks for, the export of `scope` from `server`
/// (the header's `source`), finishing it only if `fill` succeeded; returns what was written and
/// what `fill` returned.
pub async fn write_archive<T>(
    out: &OutputSettings,
    server: &str,
    scope: &str,
    global: &crate::cli::Global,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> mlflow_archive::Result<T>,
) -> anyhow::Result<(WriteSummary, T)> {
    let output = out.path.as_path();
    let builder = out.writer(server, scope);
    check_output(output)?;
    if is_tree(output) {
        return write_tree_output(output, builder, global, &out.tree, fill).await;
    }
    let to_stdout = output.as_os_str() == "-";
    // A pipe's reader (`import -i -`) gets each unit as soon as it is whole.
    let builder = builder.flush_units(to_stdout);
    let (out, partial): (Box<dyn Write + Send>, _) = if to_stdout {
        (Box::new(stdout_sink()?), None)
    } else {
        let (partial, f) = Partial::file(output)?;
        let out = std::io::BufWriter::with_capacity(256 << 10, f);
        (Box::new(out), Some(partial))
    };
    let line = crate::cli::progress::ProgressLine::start(global, "exporting");
    let mut sink = ArchiveSink::start(out, builder);
    sink.set_progress(line.counters());
    let result = match fill(&mut sink).await {
        Ok(t) => sink.finish().await.map(|summary| (summary, t)),
        Err(e) => {
            drop(sink);
            Err(e)
        }
    };
    drop(line);
    let done = result?;
    if let Some(partial) = partial {
        partial.commit(output)?;
    }
    Ok(done)
}

/// Copies archive bytes to `output` (`-` or a `.mlar` path that appears only when complete);
/// returns the bytes written.
pub fn copy_to_output(input: &mut dyn std::io::Read, output: &Path) -> anyhow::Result<u64> {
    check_output(output)?;
    if output.as_os_str() == "-" {
        let mut out = stdout_sink()?;
        let n = copy(input, &mut out, "standard output")?;
        out.flush().context("writing standard output")?;
        return Ok(n);
    }
    let (partial, f) = Partial::file(output)?;
    let name = partial.path().display().to_string();
    let mut out = std::io::BufWriter::with_capacity(256 << 10, f);
    let n = copy(input, &mut out, &name)?;
    out.flush().with_context(|| format!("writing {name}"))?;
    drop(out);
    partial.commit(output)?;
    Ok(n)
}

/// `std::io::copy`, with an error that says which side failed.
fn copy(input: &mut dyn std::io::Read, out: &mut impl Write, name: &str) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        let got = match input.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::from(e).context("reading the input")),
        };
        out.write_all(&buf[..got])
            .with_context(|| format!("writing {name}"))?;
        n += got as u64;
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
