//! `compare`: every object of a migration's source against its destination, kind by kind. Both
//! ends are read as archive events: a server is exported on the fly, its records handed over
//! in-process (the export's code paths and concurrency; no archive encoded, nothing written to
//! disk), an archive or a tree of the Python tool is read as it is. Each side's objects become [`print`]s (values, digests of files
//! and histories, ids to map), matched by identity in the source's terms: a destination object
//! by the lineage tags its import set. A print waits in memory only until its twin from the
//! other side arrives; both sides are read in step, so when the two export in the same order
//! (a fresh copy does) few wait.

mod print;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

pub use print::Kind;
use print::{Print, Printer, Ref, Role, Val, cut};

use super::archive_sink::ArchiveSink;
use super::archive_source::{ArchiveSource, Event};
use super::export::{ExportOptions, export_all, export_experiments, export_models};
use super::import::ModelNames;
use crate::error::{Error, Result};
use crate::mlflow::Client;
use crate::mlflow::api::registry::RegistryKind;
use crate::mlflow::types::Experiment;

/// What is never compared, because an import cannot carry it (README, "What is not carried"):
/// listed in every report.
pub const NOT_COMPARED: &[&str] = &[
    "ids of runs, experiments, logged models and datasets (objects are matched through the lineage tags `mlflow_archive.source.*`)",
    "times set by the server: experiment creation and update times, logged-model, registered-model, version and dataset timestamps",
    "artifact locations (files are compared under their roots; `MLmodel` files without the run_id, model_id, model_uuid and artifact_path lines an import rewrites, those ids compared in the source's terms)",
    "a run's user_id and `mlflow.user` tag, a version's user_id, status and status message, a logged model's `mlflow.modelVersions` tag",
    "this tool's own tags (`mlflow_archive.*`), trace tags the server sets (`mlflow.artifactLocation`, `mlflow.trace.*Location`)",
    "which metric points are linked to a logged model",
    "dataset record ids, times and order, a dataset's digest",
    "permissions, workspaces' settings",
];

/// Options of [`compare`].
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Differences named per kind (every one is counted).
    pub examples: usize,
    /// Fields named per different object.
    pub fields: usize,
    /// Prints of one side waiting for the other side before only the other side is read.
    pub lag: usize,
    /// Compare these experiments (by name) and what is in them only; no registry.
    pub experiments: Option<Vec<String>>,
    /// Compare these registered models and prompts (by name) and their versions only, and,
    /// when `registry_only`, nothing else (a side that is an archive holds more).
    pub models: Option<Vec<String>>,
    /// With `models`: leave runs, experiments and the rest out.
    pub registry_only: bool,
    /// Compare traces.
    pub traces: bool,
    /// Compare evaluation datasets.
    pub datasets: bool,
    /// Compare deleted runs.
    pub deleted_runs: bool,
    /// The names the import gave at the destination.
    pub renames: Renames,
}

/// The names an import gave at the destination (its `--experiment-name-prefix` and
/// `--model-name-map`), so that destination experiments and registered models (and prompts) are
/// known by their source names. Identity by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    /// What the import put before every experiment's name.
    pub experiment_prefix: Option<String>,
    /// How the import named registered models.
    pub models: ModelNames,
    /// The destination's registry, whose rules the import's names followed (Unity Catalog keeps
    /// them in lower case).
    pub registry: RegistryKind,
}

impl Renames {
    /// The source name of destination experiment `dst`; `None` when an import under these
    /// names cannot have made it (it lacks the prefix).
    pub fn experiment(&self, dst: &str) -> Option<String> {
        match &self.experiment_prefix {
            None => Some(dst.to_string()),
            Some(p) => dst.strip_prefix(p.as_str()).map(str::to_string),
        }
    }

    /// The source name of destination model `dst`; `None` when an import under these names
    /// cannot have made it (it is a source name mapped to another).
    pub fn model(&self, dst: &str) -> Option<String> {
        if let Some(src) = self.models.map.keys().find(|s| self.dst_model(s) == dst) {
            return Some(src.clone());
        }
        (!self.models.map.contains_key(dst)).then(|| dst.to_string())
    }

    /// Whether experiments were imported under a (non-empty) prefix.
    pub fn prefixed(&self) -> bool {
        self.experiment_prefix
            .as_deref()
            .is_some_and(|p| !p.is_empty())
    }

    /// The destination name of source experiment `src`.
    pub fn dst_experiment(&self, src: &str) -> String {
        format!("{}{src}", self.experiment_prefix.as_deref().unwrap_or(""))
    }

    /// The destination name of source model `src`, as the import gave it
    /// ([`ModelNames::destination`]); a name the import would have refused stays as it is
    /// (and is missing at the destination).
    pub fn dst_model(&self, src: &str) -> String {
        self.models
            .destination(src, None, self.registry)
            .unwrap_or_else(|_| src.to_string())
    }
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            examples: 5,
            fields: 3,
            lag: 1000,
            experiments: None,
            models: None,
            registry_only: false,
            traces: true,
            datasets: true,
            deleted_runs: false,
            renames: Renames::default(),
        }
    }
}

/// How objects of one kind compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// On both sides, every compared field equal.
    pub equal: u64,
    /// At the source, not at the destination.
    pub missing: u64,
    /// At the destination, with no source object (in the compared scope).
    pub extra: u64,
    /// On both sides, some field not equal.
    pub different: u64,
}

/// One object that is missing, extra or different.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The kind (`runs`, `model versions`, ...).
    pub kind: &'static str,
    /// `missing`, `extra` or `different`.
    pub what: &'static str,
    /// The object: its source id or name (and its destination id).
    pub object: String,
    /// The first fields that differ: name, the source's value, the destination's.
    pub fields: Vec<FieldDifference>,
}

/// A field that differs; an absent value is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDifference {
    /// The field (`metric loss`, `file data/x.csv`, `tag build`, ...).
    pub field: String,
    /// Its value at the source.
    pub source: Option<String>,
    /// Its value at the destination.
    pub destination: Option<String>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompareReport {
    /// Per kind (only kinds seen on either side).
    pub kinds: BTreeMap<&'static str, Counts>,
    /// The first differences of each kind.
    pub differences: Vec<Difference>,
    /// Destination objects in experiments or models the source does not hold, when the source
    /// is not a whole server: outside what was compared, counted only.
    pub outside_scope: u64,
    /// What is never compared (it cannot be carried).
    pub not_compared: Vec<&'static str>,
}

impl CompareReport {
    /// Nothing missing, extra or different.
    pub fn is_equal(&self) -> bool {
        self.kinds
            .values()
            .all(|c| c.missing == 0 && c.extra == 0 && c.different == 0)
    }
}

/// What a server side exports.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every active experiment, registered model and prompt (as `export-all`).
    All,
    /// These experiments (already resolved on that server).
    Experiments(Vec<Experiment>),
    /// These registered models (and prompts), with what their versions come from.
    Models(Vec<String>),
}

/// One end of a comparison.
pub enum Side {
    /// An archive (or a tree of the Python tool read as one) being read.
    Archive(ArchiveSource),
    /// A server, exported on the fly.
    Server(Client, Scope),
}

/// Compares `src` (the migration's source) with `dst` (its destination).
///
/// # Errors
///
/// A failure to read either side (a server's error, an archive that is not sound), the first
/// one that happened; differences are not errors.
pub async fn compare(
    src: Side,
    dst: Side,
    export: &ExportOptions,
    opts: &CompareOptions,
) -> Result<CompareReport> {
    let whole = matches!(src, Side::Server(_, Scope::All));
    let (a, fill_a) = open(src, export);
    let (b, fill_b) = open(dst, export);
    let comparing = async {
        let r = Matcher::new(opts.clone(), whole).run(a, b).await;
        (r, Instant::now())
    };
    let ((ra, ta), (rb, tb), (rc, tc)) = tokio::join!(fill_a, fill_b, comparing);
    // The side that failed first is the cause: the others then saw their side end early.
    let mut failures: Vec<(Instant, Error)> = Vec::new();
    for (r, t, end) in [(ra, ta, End::Src), (rb, tb, End::Dst)] {
        if let Err(e) = r {
            failures.push((t, side_error(end, e)));
        }
    }
    let report = match rc {
        Ok(report) => Some(report),
        Err(e) => {
            failures.push((tc, e));
            None
        }
    };
    failures.sort_by_key(|(t, _)| *t);
    match (report, failures.into_iter().next()) {
        (Some(report), None) => Ok(report),
        (_, Some((_, e))) => Err(e),
        (None, None) => Err(Error::Internal(
            "the comparison ended with no report".into(),
        )),
    }
}

type Fill = std::pin::Pin<Box<dyn Future<Output = (Result<()>, Instant)> + Send>>;

/// A side's events, and what produces them (an export for a server; nothing for an archive).
fn open(side: Side, export: &ExportOptions) -> (ArchiveSource, Fill) {
    let (client, scope) = match side {
        Side::Archive(a) => return (a, Box::pin(async { (Ok(()), Instant::now()) })),
        Side::Server(c, s) => (c, s),
    };
    // The export's records go straight to the comparison: no archive is written.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut sink = ArchiveSink::events(tx);
    let export = export.clone();
    let fill = async move {
        let r = match &scope {
            Scope::All => export_all(&client, &mut sink, &export).await.map(drop),
            Scope::Experiments(e) => export_experiments(&client, e, &mut sink, &export)
                .await
                .map(drop),
            Scope::Models(m) => export_models(&client, m, &mut sink, &export)
                .await
                .map(drop),
        };
        let r = match r {
            Ok(()) => sink.finish().await.map(drop),
            Err(e) => {
                drop(sink); // the comparison sees the side end in an error
                Err(e)
            }
        };
        (r, Instant::now())
    };
    (ArchiveSource::from_receiver(rx), Box::pin(fill))
}

/// Which side a print came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Src,
    Dst,
}

/// A matched pair, compared: what differs, and the id fields that could not be mapped yet (a
/// destination object not read so far), compared at the end. Only those fields wait.
struct Verdict {
    kind: Kind,
    object: String,
    diffs: Vec<FieldDifference>,
    pending: Vec<(String, Ref, Vec<String>, Vec<String>)>,
}

/// Matches the two sides' prints and keeps the counts.
struct Matcher {
    opts: CompareOptions,
    /// The source is a whole server: a destination object with no twin is extra wherever it is.
    whole: bool,
    printers: [Printer; 2],
    waiting: HashMap<(Kind, String), (End, Print)>,
    /// Prints waiting, per side.
    held: [usize; 2],
    later: Vec<Verdict>,
    report: CompareReport,
    /// Destination objects no import made, kept (without their fields) for the scope check at
    /// the end.
    unkeyed: Vec<Print>,
    /// The experiments, registered models and prompts the source holds (by name).
    seen_src: HashSet<(Kind, String)>,
}

impl Matcher {
    fn new(opts: CompareOptions, whole: bool) -> Matcher {
        let renames = opts.renames.clone();
        Matcher {
            opts,
            whole,
            printers: [
                Printer::new(Role::Source, Renames::default()),
                Printer::new(Role::Destination, renames),
            ],
            waiting: HashMap::new(),
            held: [0, 0],
            later: Vec::new(),
            report: CompareReport::default(),
            unkeyed: Vec::new(),
            seen_src: HashSet::new(),
        }
    }

    async fn run(mut self, mut a: ArchiveSource, mut b: ArchiveSource) -> Result<CompareReport> {
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            // Read the side that is behind; both while neither is far ahead.
            let mut read_a = a_open && !(b_open && self.held[0] > self.opts.lag);
            let mut read_b = b_open && !(a_open && self.held[1] > self.opts.lag);
            if !read_a && !read_b {
                // Both far ahead: the two sides are in different orders; read on regardless.
                (read_a, read_b) = (a_open, b_open);
            }
            let (end, ev) = tokio::select! {
                ev = a.next(), if read_a => (End::Src, ev),
                ev = b.next(), if read_b => (End::Dst, ev),
            };
            match ev {
                None => match end {
                    End::Src => a_open = false,
                    End::Dst => b_open = false,
                },
                Some(ev) => {
                    let ev = ev.map_err(|e| side_error(end, e))?;
                    self.event(end, ev);
                }
            }
        }
        Ok(self.finish())
    }

    fn event(&mut self, end: End, ev: Event) {
        let i = end as usize;
        for p in self.printers[i].feed(ev) {
            self.arrived(end, p);
        }
    }

    /// Whether `p` is in what is compared (the options' kinds and scope).
    fn wanted(&self, p: &Print) -> bool {
        let o = &self.opts;
        let within = |list: &Option<Vec<String>>, name: Option<&String>| {
            list.as_ref()
                .is_none_or(|l| name.is_some_and(|n| l.contains(n)))
        };
        let registry = matches!(
            p.kind,
            Kind::RegisteredModel | Kind::Prompt | Kind::ModelVersion | Kind::PromptVersion
        );
        let deleted =
            matches!(p.fields.get("lifecycle stage"), Some(Val::Text(s)) if s == "deleted");
        match p.kind {
            Kind::Trace if !o.traces => return false,
            Kind::Dataset if !o.datasets => return false,
            Kind::Run if deleted && !o.deleted_runs => return false,
            _ => {}
        }
        if o.experiments.is_some() {
            return match p.kind {
                Kind::Experiment => within(&o.experiments, Some(&p.name)),
                Kind::Run | Kind::LoggedModel | Kind::Trace => {
                    within(&o.experiments, p.container.as_ref())
                }
                Kind::Dataset => true,
                _ => false,
            };
        }
        if o.models.is_some() {
            return match p.kind {
                Kind::RegisteredModel | Kind::Prompt => within(&o.models, Some(&p.name)),
                Kind::ModelVersion | Kind::PromptVersion => within(&o.models, p.container.as_ref()),
                _ => !o.registry_only && !registry,
            };
        }
        true
    }

    fn arrived(&mut self, end: End, p: Print) {
        if !self.wanted(&p) {
            return;
        }
        let Some(key) = p.key.clone() else {
            self.unkeyed.push(slim(p));
            return;
        };
        if end == End::Src
            && matches!(
                p.kind,
                Kind::Experiment | Kind::RegisteredModel | Kind::Prompt
            )
        {
            self.seen_src.insert((p.kind, key.clone()));
        }
        let id = (p.kind, key);
        match self.waiting.remove(&id) {
            Some((other, twin)) if other != end => {
                self.held[other as usize] -= 1;
                let (a, b) = match end {
                    End::Src => (p, twin),
                    End::Dst => (twin, p),
                };
                self.pair(a, b);
            }
            Some(same) => {
                // The same object twice on one side: at the destination, a second import of one
                // source object (extra); at the source, two workspaces' objects of one name,
                // which cannot both have a twin (missing).
                self.waiting.insert(id, same);
                match end {
                    End::Dst => self.extra(p),
                    End::Src => self.missing(p),
                }
            }
            None => {
                self.held[end as usize] += 1;
                self.waiting.insert(id, (end, p));
            }
        }
    }

    /// Compares a matched pair: every field now but the ids not known yet, which wait (with
    /// what differs so far) for the end.
    fn pair(&mut self, a: Print, b: Print) {
        let mut diffs = Vec::new();
        let mut pending = Vec::new();
        let names: BTreeSet<&String> = a.fields.keys().chain(b.fields.keys()).collect();
        for f in names {
            let (va, vb) = (a.fields.get(f), b.fields.get(f));
            let (sa, sb) = match (va, vb) {
                (Some(Val::Ref(r, x)), Some(Val::Ref(_, y))) => match self.refs(*r, x, y, false) {
                    None => {
                        pending.push((f.clone(), *r, x.clone(), y.clone()));
                        continue;
                    }
                    Some(None) => continue,
                    Some(Some(d)) => d,
                },
                (Some(x), Some(y)) if x == y => continue,
                (x, y) => (x.map(|v| self.show(0, v)), y.map(|v| self.show(1, v))),
            };
            diffs.push(FieldDifference {
                field: f.clone(),
                source: sa,
                destination: sb,
            });
        }
        let object = label(&a, Some(&b));
        let verdict = Verdict {
            kind: a.kind,
            object,
            diffs,
            pending,
        };
        if verdict.pending.is_empty() {
            self.settle(verdict);
        } else {
            self.later.push(verdict);
        }
    }

    /// Two sides' ids of one field: `None` while one is not known yet (unless `last`); else
    /// `Some(None)` when equal, or both as shown.
    fn refs(
        &self,
        r: Ref,
        x: &[String],
        y: &[String],
        last: bool,
    ) -> Option<Option<(Option<String>, Option<String>)>> {
        let rx = self.printers[0].resolve(r, x, last)?;
        let ry = self.printers[1].resolve(r, y, last)?;
        Some((rx != ry).then(|| (Some(rx.join(", ")), Some(ry.join(", ")))))
    }

    /// Counts a compared pair, naming it when it differs.
    fn settle(&mut self, v: Verdict) {
        let c = self.report.kinds.entry(v.kind.name()).or_default();
        if v.diffs.is_empty() {
            c.equal += 1;
            return;
        }
        c.different += 1;
        let mut diffs = v.diffs;
        diffs.sort_by(|x, y| x.field.cmp(&y.field));
        self.name(v.kind, "different", v.object, diffs);
    }

    fn show(&self, side: usize, v: &Val) -> String {
        match v {
            Val::Text(t) => cut(t, 200),
            Val::Hash(_, shown) => shown.clone(),
            Val::Ref(r, ids) => self.printers[side]
                .resolve(*r, ids, true)
                .unwrap_or_else(|| ids.clone())
                .join(", "),
        }
    }

    fn name(
        &mut self,
        kind: Kind,
        what: &'static str,
        object: String,
        mut fields: Vec<FieldDifference>,
    ) {
        let named = self
            .report
            .differences
            .iter()
            .filter(|d| d.kind == kind.name())
            .count();
        if named < self.opts.examples {
            fields.truncate(self.opts.fields);
            self.report.differences.push(Difference {
                kind: kind.name(),
                what,
                object,
                fields,
            });
        }
    }

    fn extra(&mut self, p: Print) {
        self.report.kinds.entry(p.kind.name()).or_default().extra += 1;
        let object = label(&p, None);
        self.name(p.kind, "extra", object, Vec::new());
    }

    fn missing(&mut self, p: Print) {
        self.report.kinds.entry(p.kind.name()).or_default().missing += 1;
        let object = label(&p, None);
        self.name(p.kind, "missing", object, Vec::new());
    }

    fn finish(mut self) -> CompareReport {
        // An archive of a whole server holds every experiment and model it had.
        self.whole |= self.printers[0].scope.as_deref() == Some("all");
        for mut v in std::mem::take(&mut self.later) {
            for (field, r, x, y) in std::mem::take(&mut v.pending) {
                if let Some(Some((source, destination))) = self.refs(r, &x, &y, true) {
                    v.diffs.push(FieldDifference {
                        field,
                        source,
                        destination,
                    });
                }
            }
            self.settle(v);
        }
        let mut left: Vec<(End, Print)> = self.waiting.drain().map(|(_, v)| v).collect();
        left.sort_by(|x, y| (x.1.kind, &x.1.key).cmp(&(y.1.kind, &y.1.key)));
        for (end, p) in left {
            match end {
                End::Src => self.missing(p),
                End::Dst => self.unkeyed.push(slim(p)),
            }
        }
        for p in std::mem::take(&mut self.unkeyed) {
            if self.whole || self.in_scope(&p) {
                self.extra(p);
            } else {
                self.report.outside_scope += 1;
            }
        }
        self.report.not_compared = NOT_COMPARED.to_vec();
        self.report
    }

    /// A destination object with no twin is extra when the source holds its experiment or
    /// model (it was compared), else outside what the source holds.
    fn in_scope(&self, p: &Print) -> bool {
        let container = match p.kind {
            Kind::Experiment | Kind::RegisteredModel | Kind::Prompt | Kind::Dataset => {
                return false;
            }
            _ => p.container.as_deref(),
        };
        let Some(c) = container else { return false };
        let kinds: &[Kind] = match p.kind {
            Kind::ModelVersion => &[Kind::RegisteredModel],
            Kind::PromptVersion => &[Kind::Prompt],
            _ => &[Kind::Experiment],
        };
        kinds.iter().any(|k| self.seen(*k, c))
    }

    /// The source holds the experiment or model named `name`.
    fn seen(&self, kind: Kind, name: &str) -> bool {
        self.seen_src.contains(&(kind, name.to_string()))
    }
}

/// A print without its fields (all a destination object with no twin needs to be named).
fn slim(mut p: Print) -> Print {
    p.fields.clear();
    p
}

/// An error of one side's reading, saying which.
fn side_error(end: End, e: Error) -> Error {
    let side = match end {
        End::Src => "the source",
        End::Dst => "the destination",
    };
    e.within(format!("reading {side}"))
}

/// How a report names an object: its kind, its id in the source's terms (or its own, for a
/// destination object no import made) and its name; with its twin's id when that differs.
fn label(p: &Print, twin: Option<&Print>) -> String {
    let id = p.key.as_deref().unwrap_or(&p.own);
    let number = id.rsplit('\u{0}').next().unwrap_or(id);
    let mut s = match p.kind {
        Kind::Experiment => format!("experiment {:?}", p.name),
        Kind::Run => format!("run {id} ({:?})", p.name),
        Kind::LoggedModel => format!("logged model {id} ({:?})", p.name),
        Kind::Trace => format!("trace {id}"),
        Kind::Dataset => format!("dataset {id} ({:?})", p.name),
        Kind::RegisteredModel => format!("registered model {:?}", p.name),
        Kind::Prompt => format!("prompt {:?}", p.name),
        Kind::ModelVersion => format!("version {number} of registered model {:?}", p.name),
        Kind::PromptVersion => format!("version {number} of prompt {:?}", p.name),
    };
    if let Some(t) = twin
        && t.own != p.own
        && matches!(
            p.kind,
            Kind::Run
                | Kind::LoggedModel
                | Kind::Dataset
                | Kind::ModelVersion
                | Kind::PromptVersion
        )
    {
        s.push_str(&format!(" (at the destination: {})", t.own));
    }
    s
}

#[cfg(test)]
mod tests;
