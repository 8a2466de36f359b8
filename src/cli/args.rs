//! Argument groups shared by several commands, converted once into validated settings.

use mlflow_archive::mlflow::api::workspace::NotebookFormat;
use mlflow_archive::mlflow::store::{Side, StoreSettings};
use mlflow_archive::mlflow::{Client, ClientBuilder, Env, TrackingConfig};
use mlflow_archive::transfer::archive_source::ArchiveSource;

/// The source server (`--src-uri`, else `MLFLOW_TRACKING_URI`).
#[derive(Debug, Clone, clap::Args)]
pub struct SrcServer {
    /// Tracking server to read from [default: $MLFLOW_TRACKING_URI]: http(s)://..., or a Databricks
    /// workspace as databricks[://PROFILE] (databricks-uc[://PROFILE]: with its registry in Unity
    /// Catalog). Credentials come from MLFLOW_TRACKING_TOKEN or
    /// MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (Databricks: the profile in
    /// ~/.databrickscfg, or DATABRICKS_HOST with DATABRICKS_TOKEN or
    /// DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET); artifact stores (s3://, gs://, wasbs://,
    /// ...) from their usual variables, MLFLOW_ARCHIVE_SRC_<NAME> first.
    #[arg(long = "src-uri", value_name = "URI")]
    pub src_uri: Option<String>,

    /// On a server with MLflow workspaces (--enable-workspaces), read this workspace only
    /// [default: every workspace for export-all and copy-all, else the server's default one].
    #[arg(long, value_name = "NAME")]
    pub workspace: Option<String>,
}

impl SrcServer {
    /// A client for the source server (in the workspace `--workspace` names).
    pub fn client(&self) -> mlflow_archive::Result<Client> {
        let c = client_for(self.src_uri.as_deref(), Side::Source)?;
        Ok(match &self.workspace {
            Some(ws) => c.in_workspace(ws),
            None => c,
        })
    }
}

/// The experiment `key` names on `client` (a name, else an id), or an error that says it is
/// neither.
pub async fn find_experiment(
    client: &Client,
    key: &str,
) -> anyhow::Result<mlflow_archive::mlflow::types::Experiment> {
    client.find_experiment(key).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "experiment {key:?} not found on {} (neither a name nor an id)",
            client.server()
        )
    })
}

/// How many requests each client sends at once (`--jobs`), set once by `main`.
static CONCURRENCY: std::sync::OnceLock<mlflow_archive::mlflow::Concurrency> =
    std::sync::OnceLock::new();

/// Sets the concurrency of every client made from now on (once; later calls change nothing).
pub fn set_concurrency(c: mlflow_archive::mlflow::Concurrency) {
    let _ = CONCURRENCY.set(c);
}

/// A client for `uri` (or `MLFLOW_TRACKING_URI`), with the answer timeout of
/// `MLFLOW_HTTP_REQUEST_TIMEOUT` (seconds, as MLflow's own client reads it) when it is set, and
/// the artifact-store settings of `side` (`MLFLOW_ARCHIVE_SRC_*` / `MLFLOW_ARCHIVE_DST_*` over
/// the plain variables).
fn client_for(uri: Option<&str>, side: Side) -> mlflow_archive::Result<Client> {
    let mut b = ClientBuilder::new(TrackingConfig::resolve(uri, &Env::from_process())?)
        .store_settings(StoreSettings::from_process(side))
        .concurrency(CONCURRENCY.get().copied().unwrap_or_default());
    if let Some(raw) = std::env::var_os("MLFLOW_HTTP_REQUEST_TIMEOUT") {
        let secs = raw
            .to_str()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .ok_or_else(|| {
                mlflow_archive::Error::Config(format!(
                    "MLFLOW_HTTP_REQUEST_TIMEOUT={raw:?}: expected a number of seconds"
                ))
            })?;
        b = b.answer_timeout(std::time::Duration::from_secs_f64(secs));
    }
    b.build()
}

/// The destination server (`--dst-uri`, else `MLFLOW_TRACKING_URI`).
#[derive(Debug, Clone, clap::Args)]
pub struct DstServer {
    /// Tracking server to write to [default: $MLFLOW_TRACKING_URI]: http(s)://..., or a Databricks
    /// workspace as databricks[://PROFILE] (databricks-uc[://PROFILE]: with its registry in Unity
    /// Catalog). Credentials come from MLFLOW_TRACKING_TOKEN or
    /// MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (Databricks: the profile in
    /// ~/.databrickscfg, or DATABRICKS_HOST with DATABRICKS_TOKEN or
    /// DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET); artifact stores (s3://, gs://, wasbs://,
    /// ...) from their usual variables, MLFLOW_ARCHIVE_DST_<NAME> first.
    #[arg(long = "dst-uri", value_name = "URI")]
    pub dst_uri: Option<String>,
}

impl DstServer {
    /// A client for the destination server.
    pub fn client(&self) -> mlflow_archive::Result<Client> {
        client_for(self.dst_uri.as_deref(), Side::Destination)
    }
}

/// An archive to read (`-i`): a `.mlar` path or `-` for standard input.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveInput {
    /// The archive: a path ending in .mlar, - for standard input, or a directory (or .zip) written
    /// by mlflow-export-import, of any generation.
    #[arg(
        short = 'i',
        long = "input",
        visible_alias = "input-dir",
        value_name = "IN"
    )]
    pub input: std::path::PathBuf,
}

impl ArchiveInput {
    /// Opens the archive for streaming; returns how it is named in messages and its records.
    pub fn open(&self) -> anyhow::Result<(String, ArchiveSource)> {
        let (name, reader) = self.reader()?;
        Ok((name, ArchiveSource::start(reader)))
    }

    /// How a large artifact's body is read again when its upload must be sent again: the input
    /// read again from its start (a file, a tree, a zip); none for standard input.
    pub fn replay(&self) -> Option<mlflow_archive::transfer::replay::Replay> {
        if self.input.as_os_str() == "-" {
            return None;
        }
        let path = self.input.clone();
        Some(mlflow_archive::transfer::replay::Replay::rescan(
            move || {
                crate::cli::output::open_input(&path)
                    .map_err(|e| mlflow_archive::Error::Input(format!("{e:#}")))
            },
        ))
    }

    /// The registered models (not prompts) the archive holds, read in a first pass over it, or
    /// `None` for standard input (which can be read once only).
    pub async fn model_names(&self) -> anyhow::Result<Option<Vec<String>>> {
        if self.input.as_os_str() == "-" {
            return Ok(None);
        }
        let (name, reader) = self.reader()?;
        let names = tokio::task::spawn_blocking(move || {
            let mut names = Vec::new();
            mlflow_archive::format::summary::summarize(reader, |u| {
                if let mlflow_archive::format::summary::UnitSummary::RegisteredModel {
                    name,
                    prompt: false,
                    ..
                } = u
                {
                    names.push(name.clone());
                }
            })
            .map(|_| names)
            .map_err(|e| anyhow::Error::from(e).context(format!("reading {name}")))
        })
        .await??;
        Ok(Some(names))
    }

    /// Whether the input is a tree of the Python tool (a directory or a zip).
    pub fn is_tree(&self) -> bool {
        self.input.is_dir() || self.input.extension().is_some_and(|e| e == "zip")
    }

    /// Opens the archive as bytes; returns how it is named in messages and a reader.
    pub fn reader(&self) -> anyhow::Result<(String, Box<dyn std::io::Read + Send>)> {
        if !self.is_tree()
            && self.input.as_os_str() != "-"
            && self.input.extension().is_none_or(|e| e != "mlar")
        {
            anyhow::bail!(
                "input {}: expected an archive (a path ending in .mlar, or - for standard input), or a directory or .zip written by mlflow-export-import",
                self.input.display()
            );
        }
        let name = crate::cli::output::input_name(&self.input);
        Ok((name, crate::cli::output::open_input(&self.input)?))
    }
}

/// A boolean flag's value: `true`/`false` in any case (the Python tool's `True`/`False`), `1`/`0`,
/// `yes`/`no`.
pub fn legacy_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

/// How a tree of the Python tool is written (exports to a directory or zip, and `convert`).
#[derive(Debug, Clone, clap::Args)]
pub struct TreeFlags {
    /// The layout of a directory or zip output: v2 (mlflow-export-import 1.2.0 and later, holds
    /// everything) or classic (2020-2021: one value per metric, no inputs, logged models or
    /// aliases).
    #[arg(long, value_name = "LAYOUT", value_enum, default_value_t = Layout::V2)]
    pub layout: Layout,

    /// Write the classic layout even when it cannot hold everything; what is dropped is listed,
    /// object by object. Without it, the first such object stops the export, named.
    #[arg(long)]
    pub allow_lossy: bool,
}

/// Where an export goes and how it is written: `-o`, `--level`, `--zstd-threads`, `--layout`,
/// `--allow-lossy`, for every command that writes a server's objects out.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveOutput {
    /// Where to write: an archive (a path ending in .mlar, or - for standard output), or a new
    /// directory in the layout of mlflow-export-import (export file version 2), or a .zip of one.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "output-dir",
        value_name = "OUT"
    )]
    pub output: std::path::PathBuf,

    /// zstd level of an archive output, 1 (fastest) to 19 (smallest) [default: 3].
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: Option<i32>,

    /// zstd worker threads of an archive output (0: compress on the writer thread) [default: 0].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=256))]
    pub zstd_threads: Option<u32>,

    #[command(flatten)]
    pub tree: TreeFlags,
}

impl ArchiveOutput {
    /// The settings these arguments ask for, checked: the compression settings apply to an archive
    /// only, the layout settings to a tree only, and the output must be one that can be written
    /// ([`check_output`](crate::cli::archive_out::check_output)).
    pub fn settings(&self) -> anyhow::Result<OutputSettings> {
        let tree = crate::cli::archive_out::is_tree(&self.output);
        let name = crate::cli::archive_out::output_name(&self.output);
        if tree && (self.level.is_some() || self.zstd_threads.is_some()) {
            return Err(crate::cli::Usage(format!(
                "--level and --zstd-threads apply to an archive output (a path ending in .mlar, or -), and {name} is a directory or zip of mlflow-export-import"
            ))
            .into());
        }
        if !tree && (self.tree.layout != Layout::V2 || self.tree.allow_lossy) {
            return Err(crate::cli::Usage(format!(
                "--layout classic and --allow-lossy apply to a directory or zip output, and {name} is an archive"
            ))
            .into());
        }
        crate::cli::archive_out::check_output(&self.output)?;
        Ok(OutputSettings {
            path: self.output.clone(),
            level: self.level.unwrap_or(3),
            threads: self.zstd_threads.unwrap_or(0),
            tree: self.tree.clone(),
        })
    }
}

/// An export's output, checked ([`ArchiveOutput::settings`]).
#[derive(Debug, Clone)]
pub struct OutputSettings {
    /// `-`, a `.mlar` path, a directory or a `.zip`.
    pub path: std::path::PathBuf,
    /// zstd level of an archive output.
    pub level: i32,
    /// zstd worker threads of an archive output.
    pub threads: u32,
    /// How a tree is written.
    pub tree: TreeFlags,
}

impl OutputSettings {
    /// The archive writer for an export of `scope` (the header's `source.scope`) from `server`.
    pub fn writer(&self, server: &str, scope: &str) -> mlflow_archive::format::WriterBuilder {
        mlflow_archive::format::WriterBuilder::new()
            .level(self.level)
            .threads(self.threads)
            .source(mlflow_archive::format::model::Source {
                tracking_uri: Some(server.to_string()),
                scope: Some(scope.to_string()),
            })
    }

    /// How the output is named in messages.
    pub fn name(&self) -> String {
        crate::cli::archive_out::output_name(&self.path)
    }
}

/// `--layout`: which generation of the Python tool's layout a tree is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    // (the values are described in `--layout`'s own help)
    V2,
    Classic,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => Ok(()),
        }
    }
}

/// `--notebook-formats`, for every export.
#[derive(Debug, Clone, clap::Args)]
pub struct NotebookFlag {
    /// Also export the Databricks notebook each run was logged from (tags
    /// mlflow.databricks.notebookPath and notebookRevisionID), in these formats: a comma-separated
    /// list of SOURCE, HTML, JUPYTER, DBC. Stored as the run's artifacts notebooks/<name>.<format>
    /// with notebooks/manifest.json, as the Python tool does. Only Databricks workspaces have
    /// notebooks; elsewhere there is nothing to export, and a note says so.
    #[arg(long, value_name = "FORMATS", value_parser = parse_notebook_formats, default_value = "")]
    pub notebook_formats: NotebookFormats,
}

/// A parsed `--notebook-formats` list.
#[derive(Debug, Clone, Default)]
pub struct NotebookFormats(pub Vec<NotebookFormat>);

fn parse_notebook_formats(s: &str) -> Result<NotebookFormats, String> {
    NotebookFormat::parse_list(s)
        .map(NotebookFormats)
        .map_err(|e| e.to_string())
}

impl NotebookFlag {
    /// Puts the formats into `opts`.
    pub fn apply(
        &self,
        mut opts: mlflow_archive::transfer::export::ExportOptions,
    ) -> mlflow_archive::transfer::export::ExportOptions {
        opts.notebook_formats = self.notebook_formats.0.clone();
        opts
    }
}

/// What to export, shared by every command that reads a server into an archive.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportFlags {
    /// Export deleted runs too (also accepts the Python tool's `--export-deleted-runs True`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub export_deleted_runs: bool,

    /// Add provenance tags `mlflow_tools.metadata.*` (export time, source experiment, tracking URI,
    /// run id) to every run.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub export_metadata_tags: bool,

    /// Leave out the experiments' traces (MLflow 3 tracing: spans, assessments, attachments),
    /// which are exported with their experiment by default.
    #[arg(long)]
    pub no_traces: bool,

    /// Leave out evaluation datasets (MLflow 3.4+), which are exported with the experiments they
    /// are linked to by default (every one of the server's with export-all).
    #[arg(long)]
    pub no_datasets: bool,

    #[command(flatten)]
    pub notebooks: NotebookFlag,

    #[command(flatten)]
    pub permissions: PermissionsFlag,

    #[command(flatten)]
    pub window: WindowFlags,
}

/// `--since`/`--until`: runs started in a time window (the Python tool's `--run-start-time`
/// and `--runs-until`).
#[derive(Debug, Clone, clap::Args)]
pub struct WindowFlags {
    /// Only runs started at or after this time: milliseconds since the epoch, or ISO 8601
    /// (2026-11-30, 2026-11-30T12:00:00Z, 2026-11-30T12:00:00+01:00; UTC without an offset).
    #[arg(long, visible_alias = "run-start-time", value_name = "TIME", value_parser = parse_since)]
    pub since: Option<i64>,

    /// Only runs started before this time (same forms as --since).
    #[arg(long, visible_alias = "runs-until", value_name = "TIME", value_parser = parse_until)]
    pub until: Option<i64>,
}

fn parse_since(s: &str) -> Result<i64, String> {
    mlflow_archive::transfer::sync::Window::parse_time("--since", s).map_err(|e| e.to_string())
}

fn parse_until(s: &str) -> Result<i64, String> {
    mlflow_archive::transfer::sync::Window::parse_time("--until", s).map_err(|e| e.to_string())
}

impl WindowFlags {
    /// The window asked for.
    pub fn window(&self) -> mlflow_archive::transfer::sync::Window {
        mlflow_archive::transfer::sync::Window {
            since: self.since,
            until: self.until,
        }
    }
}

/// `--export-permissions`, for every export of experiments or registered models.
#[derive(Debug, Clone, clap::Args)]
pub struct PermissionsFlag {
    /// Also export what was granted on each experiment and registered model itself: on a
    /// Databricks workspace, the access control list (users, groups and service principals with
    /// their levels) or, in Unity Catalog, the grants; what a folder or catalog passes down is not
    /// exported. Other servers keep no permissions, and a note says so. In a copy, carries them
    /// (as --import-permissions does).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub export_permissions: bool,
}

/// Whether a copy carries permissions (`--export-permissions` or `--import-permissions`), set on
/// both sides.
pub fn copy_permissions(
    export_flag: bool,
    export: &mut mlflow_archive::transfer::export::ExportOptions,
    import: &mut mlflow_archive::transfer::import::ImportOptions,
) {
    let on = export_flag || import.permissions;
    export.permissions = on;
    import.permissions = on;
}

impl ExportFlags {
    /// The export options these flags ask for.
    ///
    /// # Errors
    ///
    /// A [`Usage`](crate::cli::Usage) error for a window that holds no time (`--since` not
    /// before `--until`).
    pub fn options(
        &self,
        g: &crate::cli::Global,
    ) -> anyhow::Result<mlflow_archive::transfer::export::ExportOptions> {
        let mut opts = g.export_options();
        opts.export_deleted_runs = self.export_deleted_runs;
        opts.metadata_tags = self.export_metadata_tags;
        opts.traces = !self.no_traces;
        opts.datasets = !self.no_datasets;
        opts.permissions = self.permissions.export_permissions;
        let window = self.window.window();
        if let (Some(since), Some(until)) = (window.since, window.until)
            && since >= until
        {
            return Err(crate::cli::Usage(format!(
                "--since ({since}) is not before --until ({until}): no run starts in that window"
            ))
            .into());
        }
        if window != mlflow_archive::transfer::sync::Window::default() {
            opts.base = Some(std::sync::Arc::new(
                mlflow_archive::transfer::sync::Base::window(window),
            ));
        }
        Ok(self.notebooks.apply(opts))
    }
}

/// Where a whole archive's or server's objects go: `import-all`, `import-experiment-list` and
/// `copy-all`.
#[derive(Debug, clap::Args)]
pub struct AllTargets {
    /// Prefix every experiment's name with this.
    #[arg(long, value_name = "PREFIX")]
    pub experiment_name_prefix: Option<String>,

    /// Delete existing registered models of the same names first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub delete_model: bool,
}

/// How to import, shared by every command that writes into a server.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportFlags {
    /// Keep the source's `mlflow.user` tag (ignored, with a note, into a Databricks workspace:
    /// there the token decides the user).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub use_src_user_id: bool,

    /// Keep `mlflow.*` tags (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = legacy_bool)]
    pub import_mlflow_tags: bool,

    /// Keep provenance tags written by exporters (`mlflow_tools.metadata.*`); default false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub import_metadata_tags: bool,

    /// Print a JSON report (counts and the source → destination id maps) on standard output.
    #[arg(long)]
    pub json: bool,

    /// Bring runs that an earlier import completed up to date with the archive, in place
    /// (status, end time, name, tags, params, new metric points and files, deletion), instead of
    /// skipping them. Always on for an incremental archive written by `sync`.
    #[arg(long)]
    pub update: bool,

    /// Skip units of kinds that a later version of the archive format defines (with a warning
    /// naming each kind and count) instead of refusing the archive.
    #[arg(long)]
    pub skip_unknown_kinds: bool,

    /// On a server with MLflow workspaces, import everything into this workspace (made when
    /// missing) [default: the workspaces the archive's objects came from, else the default one].
    #[arg(long, value_name = "NAME")]
    pub dst_workspace: Option<String>,

    /// Apply the permissions the archive holds (--export-permissions) to the experiments and
    /// registered models imported, on a Databricks workspace: one principal at a time, added or
    /// updated, never replacing the list. A principal the workspace does not know is reported,
    /// not fatal. Levels are mapped between the workspace registry and Unity Catalog (README
    /// "Permissions"). In a copy, carries them (as --export-permissions does).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    pub import_permissions: bool,

    /// Into a Databricks workspace: import each run's notebook (exported with --notebook-formats)
    /// into this workspace directory (made when missing; a notebook of the same name there is
    /// replaced), and point the run's tags mlflow.databricks.notebookPath and notebookID at it.
    #[arg(long, value_name = "DIR")]
    pub dst_notebook_dir: Option<String>,

    /// With --dst-notebook-dir: put each run's notebook in a subdirectory named by the new run id.
    #[arg(long)]
    pub dst_notebook_dir_add_run_id: bool,
}

/// Where registered models go and what becomes of their stages: `import-model`, `import-all`,
/// `copy-model`, `copy-all`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryFlags {
    /// Give a source registered model another name on the destination, SOURCE=DESTINATION
    /// (repeatable). Into Unity Catalog DESTINATION is CATALOG.SCHEMA.MODEL.
    #[arg(long = "model-name-map", value_name = "SRC=DST")]
    pub model_name_map: Vec<String>,

    /// Into Unity Catalog: put every model without a --model-name-map into this catalog and
    /// schema, as CATALOG.SCHEMA.<name>: a Unity Catalog source's last level, any other name
    /// whole, in lower case, with `.`, spaces, `/` and control characters replaced by `_`.
    #[arg(long, value_name = "CATALOG.SCHEMA")]
    pub uc_schema: Option<String>,

    /// What becomes of a version's stage: `stage` (the same stage), `alias` (tag
    /// mlflow_archive.source.stage on every staged version, and alias production / staging on
    /// the newest version in Production / Staging), `tag` (the tag alone) or `none` [default:
    /// stage; alias into Unity Catalog, which has no stages].
    #[arg(long, value_name = "HOW", value_parser = ["stage", "alias", "tag", "none"])]
    pub stage_to: Option<String>,

    /// Register versions into Unity Catalog without checking that their MLmodel has a
    /// signature with inputs and outputs (which Unity Catalog requires; MLflow's own bypass for
    /// migrations is MLFLOW_SKIP_SIGNATURE_CHECK_FOR_UC_REGISTRY_MIGRATION).
    #[arg(long)]
    pub skip_signature_check: bool,
}

impl RegistryFlags {
    /// Applies these choices to `opts`, checked against the destination `dst`.
    pub fn apply(
        &self,
        opts: mlflow_archive::transfer::import::ImportOptions,
        dst: &Client,
    ) -> mlflow_archive::Result<mlflow_archive::transfer::import::ImportOptions> {
        use mlflow_archive::transfer::import::{ModelNames, StageTo};
        let model_names = ModelNames::parse(&self.model_name_map, self.uc_schema.as_deref())?;
        model_names.check_registry(dst.registry_kind(), dst.server())?;
        let stage_to = self.stage_to.as_deref().map(StageTo::parse).transpose()?;
        if stage_to == Some(StageTo::Stage) && !dst.registry_kind().has_stages() {
            return Err(mlflow_archive::Error::Config(format!(
                "--stage-to stage: the registry of {} (Unity Catalog) has no stages; choose alias, tag or none",
                dst.server()
            )));
        }
        Ok(mlflow_archive::transfer::import::ImportOptions {
            model_names,
            stage_to,
            skip_signature_check: self.skip_signature_check,
            ..opts
        })
    }

    /// [`RegistryFlags::apply`] for an import of `input`: into Unity Catalog, the names of the
    /// archive's models are checked before anything is written (from standard input, as each
    /// model comes).
    pub async fn apply_for(
        &self,
        opts: mlflow_archive::transfer::import::ImportOptions,
        dst: &Client,
        input: &ArchiveInput,
    ) -> anyhow::Result<mlflow_archive::transfer::import::ImportOptions> {
        let opts = self.apply(opts, dst)?;
        if dst.registry_kind() == mlflow_archive::mlflow::api::registry::RegistryKind::UnityCatalog
            && let Some(names) = input.model_names().await?
        {
            Self::check_names(&opts, &names, dst)?;
        }
        Ok(opts)
    }

    /// Checks, before anything is written, the destination names of the source models `names`
    /// (`explicit`: the command's own name for its one model): into Unity Catalog each must have
    /// three levels and no two may land on one name.
    pub fn check_names(
        opts: &mlflow_archive::transfer::import::ImportOptions,
        names: &[String],
        dst: &Client,
    ) -> mlflow_archive::Result<()> {
        opts.model_names
            .check_all(names, opts.model_name.as_deref(), dst.registry_kind())
            .map(drop)
    }
}

/// What of an archive an import leaves out (copies choose on their export side instead).
#[derive(Debug, Clone, clap::Args)]
pub struct LeaveOut {
    /// Leave out the archive's traces (for example to import an archive a second time into the
    /// server it came from: MLflow keeps one trace per id on a server).
    #[arg(long)]
    pub no_traces: bool,

    /// Leave out the archive's evaluation datasets.
    #[arg(long)]
    pub no_datasets: bool,
}

impl LeaveOut {
    /// Applies these choices to `opts`.
    pub fn apply(
        &self,
        mut opts: mlflow_archive::transfer::import::ImportOptions,
    ) -> mlflow_archive::transfer::import::ImportOptions {
        opts.traces = !self.no_traces;
        opts.datasets = !self.no_datasets;
        opts
    }
}

impl ImportFlags {
    /// The import options these flags ask for.
    pub fn options(
        &self,
        g: &crate::cli::Global,
    ) -> mlflow_archive::transfer::import::ImportOptions {
        mlflow_archive::transfer::import::ImportOptions {
            jobs: g.jobs,
            use_src_user_id: self.use_src_user_id,
            import_mlflow_tags: self.import_mlflow_tags,
            import_metadata_tags: self.import_metadata_tags,
            skip_unknown_kinds: self.skip_unknown_kinds,
            dst_workspace: self.dst_workspace.clone(),
            permissions: self.import_permissions,
            dst_notebook_dir: self.dst_notebook_dir.clone(),
            notebook_dir_add_run_id: self.dst_notebook_dir_add_run_id,
            update: self.update,
            ..Default::default()
        }
    }
}
