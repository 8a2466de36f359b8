//! `inspect`: what an archive holds, unit by unit, as text or JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::summary::{UnitSummary, summarize};

use crate::cli::Global;
use crate::cli::output::{bytes, clean, counts_line, input_name, open_input};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive (`-` for standard input).
    #[arg(value_name = "IN")]
    input: PathBuf,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

fn short(id: &str) -> &str {
    if id.len() > 12 { &id[..12] } else { id }
}

/// `, N permission entries` when there are any.
fn permission_note(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => ", 1 permission entry".into(),
        n => format!(", {n} permission entries"),
    }
}

/// The line that lists a unit, [`clean`]: names are the archive's.
pub fn line(u: &UnitSummary) -> String {
    clean(&raw_line(u)).into_owned()
}

fn raw_line(u: &UnitSummary) -> String {
    match u {
        UnitSummary::Experiment {
            id,
            name,
            lifecycle_stage,
            permissions,
        } => {
            let deleted = if lifecycle_stage == "deleted" {
                " (deleted)"
            } else {
                ""
            };
            format!(
                "experiment {id} {name:?}{deleted}{}",
                permission_note(*permissions)
            )
        }
        UnitSummary::Run {
            id,
            experiment_id,
            name,
            status,
            lifecycle_stage,
            parent_run_id,
            params,
            tags,
            metric_keys,
            metric_points,
            artifacts,
            artifact_bytes,
        } => {
            let mut s = format!(
                "  run {} {name:?} in experiment {experiment_id}: {status}, {params} params, {tags} tags, {metric_keys} metrics ({metric_points} points), {artifacts} artifacts ({})",
                short(id),
                bytes(*artifact_bytes)
            );
            if let Some(p) = parent_run_id {
                s.push_str(&format!(", child of {}", short(p)));
            }
            if lifecycle_stage == "deleted" {
                s.push_str(", deleted");
            }
            s
        }
        UnitSummary::LoggedModel {
            id,
            name,
            source_run_id,
            artifacts,
            artifact_bytes,
        } => format!(
            "  logged model {id} {name:?} from run {}: {artifacts} artifacts ({})",
            short(source_run_id),
            bytes(*artifact_bytes)
        ),
        UnitSummary::RegisteredModel {
            name,
            prompt,
            versions,
            aliases,
            permissions,
        } => {
            let v: Vec<String> = versions.iter().map(u64::to_string).collect();
            let kind = if *prompt {
                "prompt"
            } else {
                "registered model"
            };
            let mut s = format!(
                "{kind} {name:?}: {} versions [{}]",
                versions.len(),
                v.join(", ")
            );
            if !aliases.is_empty() {
                s.push_str(&format!(", aliases {}", aliases.join(", ")));
            }
            s.push_str(&permission_note(*permissions));
            s
        }
        UnitSummary::Trace {
            id,
            experiment_id,
            name,
            state,
            assessments,
            artifacts,
            artifact_bytes,
        } => format!(
            "  trace {id} {name:?} in experiment {experiment_id}: {state}, {assessments} assessments, {artifacts} files ({})",
            bytes(*artifact_bytes)
        ),
        UnitSummary::Dataset {
            id,
            name,
            experiment_ids,
            records,
        } => format!(
            "dataset {id} {name:?}: {records} records, experiments [{}]",
            experiment_ids.join(", ")
        ),
        UnitSummary::Unknown { unit, members } => {
            format!("unit {unit} of a kind this version does not know: {members} members, checked")
        }
        other => format!("{other:?}"),
    }
}

pub fn run(args: Args, _global: Global) -> anyhow::Result<ExitCode> {
    let name = input_name(&args.input);
    let input = open_input(&args.input)?;
    // Marked as standard output's, so its reader going away is a quiet success.
    let mut out = crate::cli::output::stdout_sink()?;
    let mut units = Vec::new();
    let mut write_err = None;
    let result = summarize(input, |u| {
        if args.json {
            units.push(u.clone());
        } else if write_err.is_none()
            && let Err(e) = writeln!(out, "{}", line(u))
        {
            write_err = Some(e);
        }
    });
    if let Some(e) = write_err {
        return Err(e.into());
    }
    match result {
        Ok(summary) => {
            if args.json {
                let doc = serde_json::json!({
                    "archive": name,
                    "sound": true,
                    "header": summary.header,
                    "units": units,
                    "counts": summary.counts,
                    "tar_bytes": summary.tar_bytes,
                    "archive_bytes": summary.archive_bytes,
                });
                // (Written as text, so a broken pipe stays an I/O error that says so.)
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                let from = summary
                    .header
                    .source
                    .as_ref()
                    .and_then(|s| s.tracking_uri.as_deref())
                    .map(|u| format!(" from {u}"))
                    .unwrap_or_default();
                let head = format!(
                    "{name}: format {}, written by {}{from}",
                    summary.header.version, summary.header.generator
                );
                writeln!(
                    out,
                    "{}\n{}\n{} compressed, {} uncompressed; every checksum verified",
                    clean(&head),
                    counts_line(&summary.counts),
                    bytes(summary.archive_bytes),
                    bytes(summary.tar_bytes)
                )?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.flush()?;
            let msg = format!(
                "mlflow-archive: inspect: {name} is not sound (what is listed above was read before the fault): {e}"
            );
            eprintln!("{}", clean(&msg));
            Ok(ExitCode::FAILURE)
        }
    }
}
