//! `compare`: prove a migration. Every object of the source against the destination, by kind:
//! equal, missing, extra, different (with the first differences named). Exit 0 when nothing
//! differs, 1 otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::TryStreamExt;
use mlflow_archive::mlflow::Client;
use mlflow_archive::mlflow::api::registry::PROMPT_FILTER;
use mlflow_archive::mlflow::types::ViewType;
use mlflow_archive::transfer::archive_source::ArchiveSource;
use mlflow_archive::transfer::compare::{
    CompareOptions, CompareReport, Renames, Scope, Side, compare,
};
use mlflow_archive::transfer::import::ModelNames;

use crate::cli::args::{DstServer, SrcServer, find_experiment};
use crate::cli::output::{clean, input_name, open_input};
use crate::cli::{Global, Usage};

/// Arguments of `compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Archives (or directories and zips of mlflow-export-import) instead of servers: one is the
    /// source (compared with --dst-uri), two are the source and the destination. `-` is standard
    /// input.
    #[arg(value_name = "ARCHIVE", num_args = 0..=2)]
    inputs: Vec<PathBuf>,

    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// Compare these experiments only (comma-separated names or ids at a source server, names
    /// in an archive, or `all`): their runs, logged models and traces, no registry. A
    /// destination server is read for the same names.
    #[arg(long, value_name = "A,B|all", conflicts_with = "models")]
    experiments: Option<String>,

    /// Compare these registered models and prompts only (comma-separated names, or `all`), with
    /// every version and, between two servers, the runs and logged models behind them.
    #[arg(long, value_name = "A,B|all")]
    models: Option<String>,

    /// Compare deleted runs too (on both sides).
    #[arg(long)]
    include_deleted_runs: bool,

    /// Leave traces out (on both sides).
    #[arg(long)]
    no_traces: bool,

    /// Leave evaluation datasets out (on both sides).
    #[arg(long)]
    no_datasets: bool,

    /// The import put this before every experiment's name (its --experiment-name-prefix):
    /// destination experiments are known by their names without it.
    #[arg(long, value_name = "PREFIX")]
    experiment_name_prefix: Option<String>,

    /// The import gave a source registered model or prompt another name (its
    /// --model-name-map, repeatable): the destination's DST is the source's SRC.
    #[arg(long = "model-name-map", value_name = "SRC=DST")]
    model_name_map: Vec<String>,

    /// Differences named per kind (all are counted).
    #[arg(long, value_name = "N", default_value_t = 5)]
    examples: usize,

    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    if args.inputs.len() == 2 && args.dst.dst_uri.is_some() {
        return Err(Usage(
            "two archives are the source and the destination: --dst-uri is not used with them"
                .into(),
        )
        .into());
    }
    if !args.inputs.is_empty() && args.src.src_uri.is_some() {
        return Err(Usage("an archive is the source: --src-uri is not used with it".into()).into());
    }
    if args.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(Usage("only one side can be standard input".into()).into());
    }
    let mut renames = Renames {
        experiment_prefix: args.experiment_name_prefix.clone(),
        models: ModelNames::parse(&args.model_name_map, None)?,
        ..Renames::default()
    };
    let mut export = global.export_options();
    export.export_deleted_runs = args.include_deleted_runs;
    export.traces = !args.no_traces;
    export.datasets = !args.no_datasets;

    let (src, src_name) = match args.inputs.first() {
        Some(p) => archive(p)?,
        None => {
            let c = args.src.client()?;
            let scope = scope(&c, &args, None, None).await?;
            let names = match &scope {
                Scope::Experiments(e) => Some(e.iter().map(|e| e.name.clone()).collect()),
                _ => None,
            };
            let name = c.server().to_string();
            ((Side::Server(c, scope), names), name)
        }
    };
    let (src, src_names) = src;
    let (dst, dst_name) = match args.inputs.get(1) {
        Some(p) => (archive(p)?.0.0, input_name(p)),
        None => {
            let c = args.dst.client()?;
            renames.registry = c.registry_kind();
            let scope = scope(&c, &args, Some(&renames), src_names.as_deref()).await?;
            let name = c.server().to_string();
            (Side::Server(c, scope), name)
        }
    };
    let names = |s: &Option<String>| {
        s.as_deref().filter(|s| s.trim() != "all").map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        })
    };
    let opts = CompareOptions {
        examples: args.examples,
        // An archive is filtered as it is read; a server is exported for the scope already
        // (by the source's names when ids were given).
        experiments: src_names.clone().or_else(|| names(&args.experiments)),
        models: names(&args.models),
        registry_only: !args.inputs.is_empty(),
        traces: !args.no_traces,
        datasets: !args.no_datasets,
        deleted_runs: args.include_deleted_runs,
        renames,
        ..CompareOptions::default()
    };
    let report = compare(src, dst, &export, &opts)
        .await
        .map_err(|e| anyhow::anyhow!("comparing {src_name} with {dst_name}: {e}"))?;
    let code = if report.is_equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if global.quiet {
        String::new()
    } else {
        print(&report, &src_name, &dst_name)
    };
    // A reader that went away (`compare … | head`) does not change the verdict.
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("writing standard output: {e}"))
        }
        _ => Ok(code),
    }
}

type Opened = ((Side, Option<Vec<String>>), String);

fn archive(p: &std::path::Path) -> anyhow::Result<Opened> {
    let input = open_input(p)?;
    Ok((
        (Side::Archive(ArchiveSource::start(input)), None),
        input_name(p),
    ))
}

/// What to export of a server side: `--experiments` resolved on it (the source's names, on a
/// destination (`dst`, with the names the import gave): `names`), `--models` (on a
/// destination, those it has: the others are missing there), or everything.
async fn scope(
    c: &Client,
    args: &Args,
    dst: Option<&Renames>,
    names: Option<&[String]>,
) -> anyhow::Result<Scope> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect()
    };
    if let Some(m) = &args.models {
        if m.trim() == "all" {
            // Every registered model and every prompt (searches leave prompts out unless asked).
            let mut names: Vec<String> = Vec::new();
            for filter in [None, Some(PROMPT_FILTER)] {
                let found: Vec<String> = c
                    .search_registered_models(filter)
                    .map_ok(|m| m.name)
                    .try_collect()
                    .await?;
                names.extend(found);
            }
            return Ok(Scope::Models(names));
        }
        let mut names = Vec::new();
        for n in list(m) {
            let n = dst.map_or_else(|| n.clone(), |r| r.dst_model(&n));
            match c.get_registered_model(&n).await {
                Err(e) if dst.is_some() && e.is_not_found() => {}
                Err(e) => return Err(e.into()),
                Ok(_) => names.push(n),
            }
        }
        return Ok(Scope::Models(names));
    }
    let Some(e) = &args.experiments else {
        return Ok(Scope::All);
    };
    let all = || async {
        c.search_experiments(ViewType::ActiveOnly, None)
            .try_collect::<Vec<_>>()
            .await
    };
    if e.trim() == "all" {
        return Ok(Scope::Experiments(all().await?));
    }
    let Some(names) = names else {
        let mut v = Vec::new();
        for key in list(e) {
            match dst {
                // An archive's names, at the destination under the import's names; one the
                // destination lacks is missing there.
                Some(r) => v.extend(c.find_experiment(&r.dst_experiment(&key)).await?),
                None => v.push(find_experiment(c, &key).await?),
            }
        }
        return Ok(Scope::Experiments(v));
    };
    // The destination: the source's experiments by name; one it lacks is missing there.
    let mut v = Vec::new();
    let renames = dst.cloned().unwrap_or_default();
    for n in names {
        if let Some(x) = c.find_experiment(&renames.dst_experiment(n)).await? {
            v.push(x);
        }
    }
    Ok(Scope::Experiments(v))
}

/// The report for people.
fn print(r: &CompareReport, src: &str, dst: &str) -> String {
    let mut out = String::new();
    let mut say = |line: String| {
        out.push_str(&clean(&line));
        out.push('\n');
    };
    say(format!("compared {src} (source) with {dst} (destination)"));
    for (kind, c) in &r.kinds {
        say(format!(
            "  {kind}: {} equal, {} missing, {} extra, {} different",
            c.equal, c.missing, c.extra, c.different
        ));
    }
    if r.kinds.is_empty() {
        say("  nothing on either side".into());
    }
    for d in &r.differences {
        say(format!("{} {}: {}", d.what, d.kind, d.object));
        for f in &d.fields {
            let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(absent)".into());
            say(format!(
                "    {}: source {} | destination {}",
                f.field,
                v(&f.source),
                v(&f.destination)
            ));
        }
    }
    if r.outside_scope > 0 {
        say(format!(
            "  {} destination objects are in experiments or models the source does not hold: not compared",
            r.outside_scope
        ));
    }
    let verdict = if r.is_equal() {
        "equal: nothing missing, extra or different"
    } else {
        "NOT equal"
    };
    say(verdict.to_string());
    say("not compared (an import cannot carry them; README \"What is not carried\"):".into());
    for n in &r.not_compared {
        say(format!("  - {n}"));
    }
    out
}
