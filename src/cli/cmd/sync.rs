//! `sync`: keep a replica. Server to server, only what changed since the last sync (or copy) is
//! read and written; or server to an incremental archive, with a state file recording what the
//! archives before it hold, that `import-all` applies after them.

use std::process::ExitCode;

use mlflow_archive::transfer::export::export_all;
use mlflow_archive::transfer::import::{ImportOptions, SYNC_SCOPE};
use mlflow_archive::transfer::sync::{Base, SyncOptions, SyncReport, sync};

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{
    ArchiveOutput, DstServer, ExportFlags, ImportFlags, Layout, RegistryFlags, TreeFlags,
    copy_permissions,
};
use crate::cli::output::counts_line;
use crate::cli::progress::ProgressLine;

/// Arguments of `sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: crate::cli::args::SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// Write what changed into this incremental archive (a path ending in .mlar, or - for
    /// standard output) instead of a server; needs --state. `import-all -i` applies it after the
    /// archives before it.
    #[arg(short = 'o', long = "output", value_name = "OUT", requires = "state")]
    output: Option<std::path::PathBuf>,

    /// With --output: the file that records what the archives written so far hold (made by the
    /// first sync, which then writes a full archive; updated only once an archive is sealed).
    /// One per source and chain of archives.
    #[arg(long, value_name = "FILE", requires = "output")]
    state: Option<std::path::PathBuf>,

    /// zstd level of the archive, 1 to 19 [default: 3].
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=19))]
    level: Option<i32>,

    /// Delete destination runs whose source run is gone (purged at the source), and list them.
    /// Never done without it.
    #[arg(long)]
    delete_missing: bool,

    #[command(flatten)]
    export: ExportFlags,

    #[command(flatten)]
    import: ImportFlags,

    #[command(flatten)]
    registry: RegistryFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let mut export = args.export.options(&global)?;
    if export.metadata_tags {
        return Err(crate::cli::Usage(
            "sync does not take --export-metadata-tags: the time it adds to every run would make every run look changed".into(),
        )
        .into());
    }
    if let Some(output) = &args.output {
        return to_archive(&args, output, &src, export, &global).await;
    }
    if args.dst.dst_uri.is_none() && std::env::var_os("MLFLOW_TRACKING_URI").is_none() {
        return Err(crate::cli::Usage(
            "sync needs a destination: --dst-uri URI (a server), or --output FILE --state FILE (an incremental archive)".into(),
        )
        .into());
    }
    let dst = args.dst.client()?;
    let line = ProgressLine::start(&global, "syncing");
    let mut import = ImportOptions {
        progress: Some(line.counters()),
        ..args.import.options(&global)
    };
    copy_permissions(export.permissions, &mut export, &mut import);
    let import = args.registry.apply(import, &dst)?;
    let opts = SyncOptions {
        delete_missing: args.delete_missing,
    };
    let what = format!("{} to {}", src.server(), dst.server());
    let result = sync(&src, &dst, &export, &import, &opts).await;
    drop(line);
    let report = match result {
        Ok(r) => r,
        Err(f) => {
            return crate::cli::output::finish_import(
                Err(f),
                args.import.json,
                global.quiet,
                "synced",
                &what,
            );
        }
    };
    if args.import.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !global.quiet {
        print_report(&report, &what);
    }
    crate::cli::output::uncarried_warnings(&src, None, global.quiet).await;
    Ok(ExitCode::SUCCESS)
}

/// The report a person reads: one line of cost, then per kind what was new, updated,
/// unchanged and deleted.
fn print_report(r: &SyncReport, what: &str) {
    eprintln!(
        "synced {what} in {:.1} s: {} requests to the source, {} to the destination, {} metric points, {} files ({})",
        r.seconds,
        r.requests_source,
        r.requests_destination,
        r.metric_points,
        r.artifacts,
        crate::cli::output::bytes(r.artifact_bytes),
    );
    eprintln!(
        "  {:<16} {:>8} {:>8} {:>10} {:>8}",
        "", "new", "updated", "unchanged", "deleted"
    );
    let row = |kind: &str, new: u64, updated: Option<u64>, unchanged: u64, deleted: Option<u64>| {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        eprintln!(
            "  {kind:<16} {new:>8} {:>8} {unchanged:>10} {:>8}",
            opt(updated),
            opt(deleted)
        );
    };
    row(
        "runs",
        r.runs_new,
        Some(r.runs_updated),
        r.runs_unchanged,
        Some(r.runs_deleted.len() as u64),
    );
    row(
        "logged models",
        r.logged_models_new,
        None,
        r.logged_models_unchanged,
        None,
    );
    row("traces", r.traces_new, None, r.traces_unchanged, None);
    row(
        "model versions",
        r.versions_new,
        Some(r.versions_updated),
        r.versions_unchanged,
        None,
    );
    if r.runs_outside > 0 {
        eprintln!(
            "  {} runs started outside --since/--until were left out",
            r.runs_outside
        );
    }
    if r.runs_relinked > 0 {
        eprintln!(
            "  {} runs copied without their parent were pointed at its copy",
            r.runs_relinked
        );
    }
    for d in &r.runs_deleted {
        eprintln!(
            "  deleted run {} (its source run {} is gone)",
            d.destination, d.source
        );
    }
    for n in &r.import.notes {
        eprintln!("note: {n}");
    }
}

/// Server → incremental archive: what changed since the state file's archives, then the state
/// file updated (only once the archive is sealed).
async fn to_archive(
    args: &Args,
    output: &std::path::Path,
    src: &mlflow_archive::mlflow::Client,
    mut export: mlflow_archive::transfer::export::ExportOptions,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let Some(state) = &args.state else {
        return Err(crate::cli::Usage("--output needs --state FILE".into()).into());
    };
    if output.as_os_str() == "-" {
        return Err(crate::cli::Usage(
            "sync writes its incremental archive to a file, not to standard output: the state file records the changes as carried once the archive is written, and the other end of a pipe may never apply them".into(),
        )
        .into());
    }
    if crate::cli::archive_out::is_tree(output) {
        return Err(crate::cli::Usage(format!(
            "sync writes an archive (a path ending in .mlar, or -), and {} is a directory or zip of mlflow-export-import",
            crate::cli::archive_out::output_name(output)
        ))
        .into());
    }
    // The state is written once the archive is sealed: a place it cannot go is refused first.
    let dir = match state.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(crate::cli::Usage(format!(
            "--state {}: its directory {} does not exist",
            state.display(),
            dir.display()
        ))
        .into());
    }
    let started = std::time::Instant::now();
    let requests_before = src.requests_sent();
    let window = export
        .base
        .as_ref()
        .map(|b| b.window_of())
        .unwrap_or_default();
    let base = std::sync::Arc::new(Base::load(state, src.server())?.with_window(window));
    export.base = Some(std::sync::Arc::clone(&base));
    export.export_deleted_runs = true;
    let out = ArchiveOutput {
        output: output.to_path_buf(),
        level: args.level,
        zstd_threads: None,
        tree: TreeFlags {
            layout: Layout::V2,
            allow_lossy: false,
        },
    }
    .settings()?;
    let (summary, _) = write_archive(&out, src.server(), SYNC_SCOPE, global, async |sink| {
        export_all(src, sink, &export).await
    })
    .await
    .map_err(|e| {
        e.context(
            "syncing into an archive failed; no archive was written and the state is as it was",
        )
    })?;
    base.save(state, src.server())?;
    let seen = base.seen();
    if args.import.json {
        let report = serde_json::json!({
            "archive": out.name(),
            "state": state.display().to_string(),
            "runs_new": seen.runs_new,
            "runs_updated": seen.runs_changed,
            "runs_unchanged": seen.runs_unchanged,
            "runs_outside": seen.runs_outside,
            "logged_models_unchanged": seen.logged_models_unchanged,
            "traces_unchanged": seen.traces_unchanged,
            "counts": summary.counts,
            "requests_source": src.requests_sent() - requests_before,
            "seconds": started.elapsed().as_secs_f64(),
        });
        say!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !global.quiet {
        eprintln!(
            "synced {} to {}: {}; runs: {} new, {} changed, {} unchanged (not read); state in {}",
            src.server(),
            out.name(),
            counts_line(&summary.counts),
            seen.runs_new,
            seen.runs_changed,
            seen.runs_unchanged,
            state.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
