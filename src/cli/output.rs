//! Where results go: files written whole or not at all, stdout, and error display.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::partial::Partial;

/// An output that is either stdout (`-`) or a file that appears under its name only once it is
/// complete (written as `NAME.partial`, renamed by [`Output::commit`]).
pub enum Output {
    /// Standard output.
    Stdout(BufWriter<StdoutSink>),
    /// A file being written.
    File {
        /// Buffered writer on the partial file.
        writer: BufWriter<File>,
        /// The partial file (removed unless committed).
        partial: Partial,
        /// The final name.
        path: PathBuf,
    },
}

impl Output {
    /// Opens `-` or a path.
    pub fn open(target: &Path) -> anyhow::Result<Self> {
        if target.as_os_str() == "-" {
            return Ok(Output::Stdout(stdout_sink()?));
        }
        let (partial, file) = Partial::file(target)?;
        Ok(Output::File {
            writer: BufWriter::new(file),
            partial,
            path: target.to_path_buf(),
        })
    }

    /// The name to show for this output.
    pub fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "standard output".into(),
            Output::File { path, .. } => path.display().to_string(),
        }
    }

    /// Flushes and, for a file, moves it to its final name.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().context("writing standard output"),
            Output::File {
                writer,
                partial,
                path,
            } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("writing {}", partial.path().display()))?;
                file.sync_all()
                    .with_context(|| format!("writing {}", partial.path().display()))?;
                drop(file);
                partial.commit(&path)
            }
        }
    }

    /// Removes a partial file after a failure.
    pub fn abandon(self) {
        drop(self);
    }
}

/// Standard output as the destination of an archive or a document. Its write errors are marked
/// as standard output's ([`StdoutClosed`]), so that only the reader of standard output going away
/// counts as the quiet success of a broken pipe (not the pipe to a tree writer, or a socket).
pub struct StdoutSink(io::Stdout);

/// The cause of a broken pipe on standard output.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reader of standard output went away (broken pipe)")
    }
}

impl std::error::Error for StdoutClosed {}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Standard output, buffered, for an archive or a document; refused when standard output is
/// closed (`>&-`), where everything written would be lost without an error.
pub fn stdout_sink() -> anyhow::Result<BufWriter<StdoutSink>> {
    if stdout_was_closed() {
        anyhow::bail!(
            "standard output is closed: nothing written to it would arrive; redirect it to a file or a pipe, or write to a file with -o"
        );
    }
    Ok(BufWriter::with_capacity(
        256 << 10,
        StdoutSink(io::stdout()),
    ))
}

/// Whether standard output was closed when the program started. The Rust runtime then opens
/// /dev/null read-write in its place, so that writes "succeed" into nothing; a redirection to
/// /dev/null (`> /dev/null`, a wish to discard) opens it write-only. Read from /proc (Linux);
/// false where it cannot be told.
pub fn stdout_was_closed() -> bool {
    let is_null = std::fs::read_link("/proc/self/fd/1").is_ok_and(|t| t == Path::new("/dev/null"));
    is_null
        && std::fs::read_to_string("/proc/self/fdinfo/1").is_ok_and(|info| {
            info.lines()
                .filter_map(|l| l.strip_prefix("flags:"))
                .filter_map(|f| u32::from_str_radix(f.trim(), 8).ok())
                .any(|flags| flags & 0o3 == 0o2)
        })
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { writer, .. } => writer.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { writer, .. } => writer.flush(),
        }
    }
}

/// Opens `-` (standard input) or a file for reading, buffered.
pub fn open_input(path: &Path) -> anyhow::Result<Box<dyn io::Read + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::BufReader::with_capacity(
            256 << 10,
            io::stdin(),
        )));
    }
    if path.is_dir() || path.extension().is_some_and(|e| e == "zip") {
        // A tree of the Python tool (a directory or a zip of one), read into archive bytes as
        // they are needed.
        let reader = mlflow_archive::transfer::legacy_source::archive_reader(path.to_path_buf())?;
        return Ok(Box::new(reader));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(io::BufReader::with_capacity(256 << 10, f)))
}

/// How an input is named in messages.
pub fn input_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

/// A byte count for people: `512 B`, `3.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// A one-line account of an archive's counts, kind by kind.
pub fn counts_line(c: &mlflow_archive::format::model::Counts) -> String {
    let permissions = match c.permissions {
        0 => String::new(),
        n => format!(", {n} permission entries"),
    };
    format!(
        "{} experiments, {} runs, {} metric points in {} chunks, {} artifacts ({}), {} logged models, {} registered models with {} versions, {} prompts with {} versions, {} traces with {} assessments, {} evaluation datasets with {} records{permissions}",
        c.experiments,
        c.runs,
        c.metric_points,
        c.metric_chunks,
        c.artifacts,
        bytes(c.artifact_bytes),
        c.logged_models,
        c.registered_models.saturating_sub(c.prompts),
        c.model_versions.saturating_sub(c.prompt_versions),
        c.prompts,
        c.prompt_versions,
        c.traces,
        c.assessments,
        c.datasets,
        c.dataset_records
    )
}

/// True when the error comes from writing to standard output after its reader went away (`|
/// head`: not our failure). A broken pipe anywhere else (to a tree writer, a socket) is a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let stdout_closed = |io: &io::Error| {
        io.kind() == io::ErrorKind::BrokenPipe
            && io.get_ref().is_some_and(|inner| inner.is::<StdoutClosed>())
    };
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(stdout_closed)
            || matches!(
                c.downcast_ref::<mlflow_archive::Error>(),
                Some(mlflow_archive::Error::Io { source, .. }) if stdout_closed(source)
            )
    })
}

/// The error and its causes on one line, each cause once, [`clean`].
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    clean(&parts.join(": ").replace('\n', " ")).into_owned()
}

/// `text` as it may reach a terminal: control characters (ESC, NUL, newlines, DEL, C1) and the
/// characters that reorder text (bidirectional overrides) escaped as `\u{1b}`. Names of members,
/// paths, models and aliases come from the input, and an archive may hold any of them.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    mlflow_archive::error::printable(text)
}

/// Reports an import's (or copy's) outcome and gives the exit code: on success the report; on
/// failure what was done before it (complete runs and versions stay complete and are listed) and
/// the error. `done` is "imported" or "copied".
pub fn finish_import(
    result: Result<
        mlflow_archive::transfer::import::ImportReport,
        mlflow_archive::transfer::import::Failed,
    >,
    json: bool,
    quiet: bool,
    done: &str,
    what: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let verb = if done == "copied" {
        "copying"
    } else {
        "importing"
    };
    let f = match result {
        Ok(report) => {
            print_import_report(&report, json, quiet, done, what)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Err(f) => f,
    };
    let error = anyhow::Error::from(f.error).context(format!("{verb} {what}"));
    let r = &f.done;
    permission_warnings(r, done);
    if json {
        let mut v = serde_json::to_value(r)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("error".into(), one_line(&error).into());
        }
        say!("{}", serde_json::to_string_pretty(&v)?);
    }
    let complete = r.runs_imported + r.runs_skipped;
    if !quiet && (complete > 0 || r.versions_imported + r.versions_skipped > 0) {
        eprintln!(
            "before the failure: {} runs {done} and complete ({} of them earlier), {} model versions; they stay as they are",
            complete,
            r.runs_skipped,
            r.versions_imported + r.versions_skipped
        );
        let mut pairs: Vec<(&String, &String)> = r.runs.iter().collect();
        pairs.sort();
        for (src, dst) in pairs.iter().take(10) {
            eprintln!("  run {src} -> {dst}");
        }
        if pairs.len() > 10 {
            eprintln!(
                "  ... and {} more (--json lists them all)",
                pairs.len() - 10
            );
        }
    }
    Err(error)
}

/// Prints an import's (or copy's) outcome: the JSON report on stdout with `--json`, and unless
/// `--quiet` one summary line (plus notes) on stderr. `done` is "imported" or "copied".
pub fn print_import_report(
    report: &mlflow_archive::transfer::import::ImportReport,
    json: bool,
    quiet: bool,
    done: &str,
    what: &str,
) -> anyhow::Result<()> {
    if json {
        say!("{}", serde_json::to_string_pretty(report)?);
    }
    permission_warnings(report, done);
    if quiet {
        return Ok(());
    }
    eprintln!(
        "{done} {what}: {} runs {done}, {} already complete, {} redone; {} metric points, {} artifacts ({} bytes), {} logged models; {} models, {} versions created, {} already there",
        report.runs_imported,
        report.runs_skipped,
        report.runs_redone,
        report.metric_points,
        report.artifacts,
        report.artifact_bytes,
        report.logged_models.len(),
        report.models.len(),
        report.versions_imported,
        report.versions_skipped
    );
    if report.runs_updated + report.versions_updated > 0 {
        eprintln!(
            "{done}: {} runs and {} versions of earlier imports brought up to date",
            report.runs_updated, report.versions_updated
        );
    }
    if report.traces_imported + report.traces_skipped + report.datasets.len() as u64 > 0 {
        eprintln!(
            "{done}: {} traces ({} assessments), {} already complete; {} evaluation datasets ({} records)",
            report.traces_imported,
            report.assessments,
            report.traces_skipped,
            report.datasets.len(),
            report.dataset_records
        );
    }
    if !report.workspaces.is_empty() {
        eprintln!(
            "{done} into workspaces: {}",
            report
                .workspaces
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !report.workspaces_merged.is_empty() {
        eprintln!(
            "warning: the archive's objects came from MLflow workspaces {} of their source; the destination has no workspaces, so they were imported into its one namespace together (objects of the same name were merged)",
            report
                .workspaces_merged
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.left_out > 0 {
        eprintln!(
            "note: {} traces and evaluation datasets of the archive left out, as asked (--no-traces, --no-datasets)",
            report.left_out
        );
    }
    for (kind, n) in &report.skipped_units {
        eprintln!(
            "warning: skipped {n} units of kind {kind:?}, which a later version of the archive format defines and this mlflow-archive does not know (--skip-unknown-kinds)"
        );
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    if report.notebooks_placed > 0 {
        eprintln!(
            "{done}: {} notebooks into the workspace (--dst-notebook-dir)",
            report.notebooks_placed
        );
    }
    for f in &report.notebook_failures {
        eprintln!("warning: notebook of {}", clean(f));
    }
    if !report.missing_parents.is_empty() {
        eprintln!(
            "note: {} nested runs have a parent that was not in the archive; the parent's source id is in tag mlflow_archive.source.parent_run_id",
            report.missing_parents.len()
        );
    }
    if report.version_files > 0 {
        eprintln!(
            "{done}: {} files into Unity Catalog's storage for new model versions ({} renewals of its temporary credentials)",
            report.version_files, report.credential_renewals
        );
    }
    if report.aliases_not_set > 0 {
        eprintln!(
            "warning: {} aliases not set: the destination's registry (a Databricks workspace model registry) has no aliases",
            report.aliases_not_set
        );
    }
    if !report.prompts_left_out.is_empty() {
        eprintln!(
            "warning: {} prompts left out ({}): Unity Catalog keeps prompts apart from registered models, and mlflow-archive does not write them there",
            report.prompts_left_out.len(),
            clean(&report.prompts_left_out.join(", "))
        );
    }
    if !report.unchecked_signatures.is_empty() {
        eprintln!(
            "note: {} model versions registered into Unity Catalog without the signature check, as asked (--skip-signature-check)",
            report.unchecked_signatures.len()
        );
    }
    for (model, src, dst) in &report.renumbered_versions {
        eprintln!(
            "note: model {model:?} version {src} became version {dst} (the model already had later versions)"
        );
    }
    let missing = &report.permissions_missing;
    if report.permissions_applied > 0 || !missing.is_empty() {
        let mut names: Vec<String> = missing
            .iter()
            .map(|m| principal_name(&m.principal_type, &m.principal))
            .collect();
        names.sort();
        names.dedup();
        let list = if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        };
        let principals = if names.len() == 1 {
            "principal"
        } else {
            "principals"
        };
        eprintln!(
            "{}",
            clean(&format!(
                "permissions: {} applied, {} {principals} not found at the destination{list}",
                report.permissions_applied,
                names.len()
            ))
        );
    }
    if report.permissions_left_out > 0 {
        eprintln!(
            "note: the archive holds {} permission entries, not applied: give --import-permissions to apply them",
            report.permissions_left_out
        );
    }
    if report.permissions_not_kept > 0 {
        eprintln!(
            "note: --import-permissions: the destination is not a Databricks workspace and keeps no permissions; the archive's {} permission entries were not applied",
            report.permissions_not_kept
        );
    }
    Ok(())
}

/// `user ann@example.com`; a Unity Catalog principal has no kind.
fn principal_name(kind: &str, principal: &str) -> String {
    match kind {
        "" => principal.to_string(),
        "service_principal" => format!("service principal {principal}"),
        k => format!("{k} {principal}"),
    }
}

/// One warning per object with principals the destination does not know, and one per permission
/// entry that has no counterpart there; said even with `--quiet` (what was asked for was not all
/// done).
fn permission_warnings(report: &mlflow_archive::transfer::import::ImportReport, done: &str) {
    let mut by_object: Vec<(&str, Vec<String>)> = Vec::new();
    for m in &report.permissions_missing {
        let name = principal_name(&m.principal_type, &m.principal);
        match by_object.iter_mut().find(|(o, _)| *o == m.object) {
            Some((_, names)) => names.push(name),
            None => by_object.push((&m.object, vec![name])),
        }
    }
    for (object, names) in by_object {
        eprintln!(
            "{}",
            clean(&format!(
                "warning: {object}: principals not found at the destination, their permissions not {done}: {}",
                names.join(", ")
            ))
        );
    }
    for u in &report.permissions_unmapped {
        eprintln!("{}", clean(&format!("warning: {u}; not {done}")));
    }
}

/// After an export with `--notebook-formats`: how many notebooks were written, or that the runs
/// had none (a server that is not a Databricks workspace), and every notebook that failed.
pub fn notebook_notes(
    opts: &mlflow_archive::transfer::export::ExportOptions,
    report: &mlflow_archive::transfer::export::ExportReport,
    quiet: bool,
) {
    if opts.notebook_formats.is_empty() {
        return;
    }
    let log = &report.notebooks;
    let runs = log.runs;
    let failures = &log.failures;
    for f in failures {
        eprintln!("warning: {}", clean(f));
    }
    if quiet {
        return;
    }
    if runs == 0 {
        eprintln!(
            "note: --notebook-formats: no exported run was logged from a Databricks notebook (tag mlflow.databricks.notebookPath); there were no notebooks to export"
        );
    } else {
        eprintln!(
            "notebooks: {} files written for {runs} runs logged from Databricks notebooks; {} could not be exported",
            log.exported,
            failures.len()
        );
        eprintln!(
            "note: --notebook-formats: each notebook was asked for at the revision of its run (mlflow.databricks.notebookRevisionID), but Databricks publishes no API for revisions: a workspace that ignores the request gives the notebook as it is now"
        );
    }
}

/// After an export (or copy): with `--export-permissions` from a server that keeps no permissions
/// (not a Databricks workspace), a note that there were none to export; without it from a
/// Databricks workspace, a note that its permissions were left behind.
pub fn permissions_note(
    opts: &mlflow_archive::transfer::export::ExportOptions,
    client: &mlflow_archive::mlflow::Client,
    quiet: bool,
) {
    if quiet {
        return;
    }
    let databricks = client.config().is_databricks();
    if opts.permissions && !databricks {
        eprintln!(
            "note: --export-permissions: {} is not a Databricks workspace and keeps no permissions; there were none to export",
            clean(client.server())
        );
    } else if !opts.permissions && databricks {
        eprintln!(
            "note: {} is a Databricks workspace: the permissions of its experiments and registered models were not carried (--export-permissions carries them on an export, --import-permissions on a copy)",
            clean(client.server())
        );
    }
}

/// Writes one line to standard output for [`say!`]: exit 0 when its reader went away, exit 1 on
/// any other failure.
pub fn say_line(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("mlflow-archive: error: writing standard output: {e}");
        std::process::exit(1);
    }
}

/// After an export or a copy from `client`: one warning per kind of object the server holds that
/// mlflow-archive does not carry, with its count (`experiment_ids` `None`: the whole server; else
/// the objects of those experiments). A failure to count is a warning too: what was asked for is
/// done. With `--quiet`, nothing is counted or said.
pub async fn uncarried_warnings(
    client: &mlflow_archive::mlflow::Client,
    experiment_ids: Option<&[String]>,
    quiet: bool,
) {
    if quiet {
        return;
    }
    match client.uncarried(experiment_ids).await {
        Ok(kinds) => {
            for u in kinds {
                eprintln!(
                    "warning: {} holds {} {}, which mlflow-archive does not carry ({}; README \"What is not carried\")",
                    clean(client.server()),
                    u.count,
                    u.noun(),
                    u.why
                );
            }
        }
        Err(e) => eprintln!(
            "warning: could not count what mlflow-archive does not carry: {}",
            one_line(&anyhow::Error::from(e))
        ),
    }
}
