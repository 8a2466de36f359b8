//! One side of a comparison: its archive events turned into prints, one per object, in the
//! source's terms. A print keeps what a faithful copy preserves of the object, field by field:
//! short values whole, long ones (and files and metric histories) as digests, and the ids of other
//! objects as they are, to be mapped to the source's ids when the two prints are compared (a
//! destination's run id becomes the source run id its lineage tag names). Files are hashed as
//! their bytes go by and histories page by page; nothing is held but the digests.

use std::collections::{BTreeMap, HashMap};

use ring::digest::{Context, SHA256};

use super::Renames;
use crate::format::model::{self as rec, Tag};
use crate::format::{ArtifactEntry, Record};
use crate::transfer::archive_source::Event;
use crate::transfer::import::{
    ABANDONED, LINEAGE_DATASET, LINEAGE_MODEL, LINEAGE_RUN, LINEAGE_VERSION, MISSING_PARENT,
    PARENT_RUN, STATE,
};

/// A digest: the first 128 bits of a SHA-256.
pub(super) type Digest = u128;

/// The kinds of objects compared, in the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Experiments, by name.
    Experiment,
    /// Runs, by source run id.
    Run,
    /// Logged models (MLflow 3), by source model id.
    LoggedModel,
    /// Traces, by id (kept by the import).
    Trace,
    /// Evaluation datasets, by source dataset id.
    Dataset,
    /// Registered models, by name.
    RegisteredModel,
    /// Model versions, by model name and source version number.
    ModelVersion,
    /// Prompts, by name.
    Prompt,
    /// Prompt versions, by prompt name and source version number.
    PromptVersion,
}

impl Kind {
    /// The kind's name in reports (plural, as in `runs: 20 equal`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Experiment => "experiments",
            Kind::Run => "runs",
            Kind::LoggedModel => "logged models",
            Kind::Trace => "traces",
            Kind::Dataset => "datasets",
            Kind::RegisteredModel => "registered models",
            Kind::ModelVersion => "model versions",
            Kind::Prompt => "prompts",
            Kind::PromptVersion => "prompt versions",
        }
    }
}

/// What a print's ids point at, to map a destination's ids to the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ref {
    /// Run ids.
    Run,
    /// Logged model ids; an entry may go on after a space (`m-1 step 3`).
    Model,
    /// Experiment ids (compared by the experiment's name).
    Experiment,
    /// Evaluation dataset ids.
    Dataset,
    /// A version's `source`, with its run id and model id after it: `[source, run_id, model_id]`.
    Source,
}

/// One field's value.
#[derive(Debug, Clone)]
pub(super) enum Val {
    /// A short value, compared and shown whole.
    Text(String),
    /// A long value, a file or a history: compared by digest, shown by its summary.
    Hash(Digest, String),
    /// Ids of other objects (sorted after mapping), compared in the source's terms.
    Ref(Ref, Vec<String>),
}

/// Values are equal by what they compare: a digest's summary is for people only (a normalized
/// `MLmodel` file's raw size may differ while its digest does not).
impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Text(a), Val::Text(b)) => a == b,
            (Val::Hash(a, _), Val::Hash(b, _)) => a == b,
            (Val::Ref(r, a), Val::Ref(q, b)) => r == q && a == b,
            _ => false,
        }
    }
}

/// One object of one side.
#[derive(Debug, Clone)]
pub(super) struct Print {
    pub kind: Kind,
    /// Its identity in the source's terms; `None` for a destination object no import made.
    pub key: Option<String>,
    /// Its own id (or name) on its side, for messages.
    pub own: String,
    /// Its display name (a run's name, a version's model), for messages.
    pub name: String,
    /// Where it belongs: its experiment's or model's name (for the report's scope).
    pub container: Option<String>,
    pub fields: BTreeMap<String, Val>,
}

impl Print {
    fn new(kind: Kind, key: Option<String>, own: &str, name: &str) -> Print {
        Print {
            kind,
            key,
            own: own.to_string(),
            name: name.to_string(),
            container: None,
            fields: BTreeMap::new(),
        }
    }

    fn text(&mut self, field: impl Into<String>, v: impl Into<String>) {
        let v: String = v.into();
        let val = if v.len() <= 120 {
            Val::Text(v)
        } else {
            let shown = format!("{}… ({} bytes)", cut(&v, 40), v.len());
            Val::Hash(digest(v.as_bytes()), shown)
        };
        self.fields.insert(field.into(), val);
    }

    fn opt(&mut self, field: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.text(field, v.to_string());
        }
    }

    fn refs(&mut self, field: &str, r: Ref, ids: Vec<String>) {
        if !ids.is_empty() {
            self.fields.insert(field.to_string(), Val::Ref(r, ids));
        }
    }

    /// Tags (or params) under `prefix`, without this tool's own (`mlflow_archive.*`: they say
    /// what an import did) and the keys `skip` names.
    fn tags(&mut self, prefix: &str, tags: &[Tag], skip: &[&str]) {
        for t in tags {
            let metadata = t.key.starts_with("mlflow_tools.metadata.")
                || t.key.starts_with("mlflow_export_import.metadata.");
            if t.key.starts_with("mlflow_archive.") || metadata || skip.contains(&t.key.as_str()) {
                continue;
            }
            self.text(format!("{prefix} {}", t.key), t.value.clone());
        }
    }
}

/// The first `n` characters of `s`.
pub(super) fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub(super) fn digest(bytes: &[u8]) -> Digest {
    to_digest(ring::digest::digest(&SHA256, bytes).as_ref())
}

fn to_digest(d: &[u8]) -> Digest {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
        .filter(|v| !v.is_empty())
}

/// Which end of the migration a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Objects are themselves (their ids are the keys).
    Source,
    /// Objects are known by the lineage tags the import set.
    Destination,
}

/// What a side has seen of its runs, logged models, experiments and datasets: their keys and
/// roots, to map ids in the side's other objects. One entry per object, ids only.
#[derive(Debug, Default)]
pub(super) struct Ids {
    experiments: HashMap<String, String>,
    runs: HashMap<String, (String, String)>,
    models: HashMap<String, (String, String)>,
    datasets: HashMap<String, String>,
}

/// An assessment's metadata naming the run it was made in (mapped by the import).
const ASSESSMENT_RUN: &str = "mlflow.assessment.sourceRunId";

/// A prompt's tag listing the ids of the experiments it was used in (`,3,0,`).
const PROMPT_EXPERIMENTS: &str = "_mlflow_experiment_ids";

/// The tags a trace's server sets for itself (where it keeps spans, its archival).
const TRACE_SERVER_TAGS: &[&str] = &[
    "mlflow.artifactLocation",
    "mlflow.trace.spansLocation",
    "mlflow.trace.archiveLocation",
    "mlflow.trace.archivalFailure",
];

/// The largest `MLmodel` file normalized before hashing (the import rewrites up to this size).
const MLMODEL_MAX: u64 = 1 << 20;

/// The id of the experiment every MLflow server makes for itself.
const DEFAULT_EXPERIMENT: &str = "0";

/// The lines of an `MLmodel` file the import rewrites (the ids and location of the copy).
const MLMODEL_KEYS: [&str; 4] = ["run_id", "model_id", "model_uuid", "artifact_path"];

/// Turns one side's events into prints.
pub(super) struct Printer {
    role: Role,
    /// The names the import gave (a destination's; identity at a source).
    names: Renames,
    pub ids: Ids,
    /// The archive header's scope (`all`, `experiments`, ...), once read.
    pub scope: Option<String>,
    open: Open,
    file: Option<File>,
}

enum Open {
    None,
    /// A unit left out of the comparison (an abandoned run).
    Skip,
    Print(Box<Print>, Histories),
    Model(rec::RegisteredModel, Vec<rec::ModelVersion>),
}

/// The metric histories (and dataset records) of the open object: a digest of each point set
/// (the sum of the points' digests: the server's order of equal points does not matter) and its
/// size.
type Histories = BTreeMap<String, (Digest, u64)>;

/// The file being hashed.
struct File {
    path: String,
    size: u64,
    hash: Context,
    /// An `MLmodel` file's bytes, normalized when complete.
    whole: Option<Vec<u8>>,
}

impl Printer {
    pub fn new(role: Role, names: Renames) -> Printer {
        Printer {
            role,
            names,
            ids: Ids::default(),
            scope: None,
            open: Open::None,
            file: None,
        }
    }

    /// Takes one event; returns the prints of a unit at its seal.
    pub fn feed(&mut self, ev: Event) -> Vec<Print> {
        match ev {
            Event::Header(h) => {
                self.scope = h.source.and_then(|s| s.scope);
                Vec::new()
            }
            Event::Artifact(a) => {
                self.start_file(a);
                Vec::new()
            }
            Event::Body(b) => {
                if let Some(f) = &mut self.file {
                    f.hash.update(&b);
                    if let Some(w) = &mut f.whole {
                        w.extend_from_slice(&b);
                    }
                }
                Vec::new()
            }
            Event::ArtifactEnd => {
                self.end_file();
                Vec::new()
            }
            Event::Record(r) => self.record(r),
        }
    }

    fn start_file(&mut self, a: ArtifactEntry) {
        let mlmodel = a.path.rsplit('/').next() == Some("MLmodel") && a.size <= MLMODEL_MAX;
        self.file = Some(File {
            path: a.path,
            size: a.size,
            hash: Context::new(&SHA256),
            whole: mlmodel.then(Vec::new),
        });
    }

    fn end_file(&mut self) {
        let Some(f) = self.file.take() else { return };
        let Open::Print(p, _) = &mut self.open else {
            return;
        };
        let (d, note) = match f.whole {
            Some(w) => {
                let root = match p.kind {
                    Kind::Run => self.ids.runs.get(&p.own),
                    Kind::LoggedModel => self.ids.models.get(&p.own),
                    _ => None,
                }
                .map(|(_, root)| root.as_str())
                .unwrap_or("");
                let n = normalize_mlmodel(&w, self.role, &self.ids, &p.own, root);
                (
                    digest(&n),
                    ", MLmodel with its ids and location in the source's terms",
                )
            }
            None => (to_digest(f.hash.finish().as_ref()), ""),
        };
        let shown = format!("{} bytes, sha256 {:016x}…{note}", f.size, (d >> 64) as u64);
        p.fields
            .insert(format!("file {}", f.path), Val::Hash(d, shown));
    }

    fn key(&self, own: &str, lineage: Option<&str>) -> Option<String> {
        match self.role {
            Role::Source => Some(own.to_string()),
            Role::Destination => lineage.map(str::to_string),
        }
    }

    fn record(&mut self, r: Record) -> Vec<Print> {
        match r {
            Record::Experiment(e) => {
                // In the source's terms; one no import under these names made keeps its own
                // name, said to be so (its objects cannot be taken for the source's).
                let key = self.names.experiment(&e.name);
                let name = key
                    .clone()
                    .unwrap_or_else(|| format!("{} (not under the import's prefix)", e.name));
                self.ids
                    .experiments
                    .insert(e.experiment_id.clone(), name.clone());
                if self.names.prefixed() && e.experiment_id == DEFAULT_EXPERIMENT {
                    // Every server has its own Default experiment, and under a prefix the
                    // import makes another: the server's is not extra for being there (runs in
                    // it no import made still are).
                    self.open = Open::Skip;
                    return Vec::new();
                }
                let mut p = Print::new(Kind::Experiment, key, &e.experiment_id, &name);
                p.text("lifecycle stage", e.lifecycle_stage);
                p.tags("tag", &e.tags, &[]);
                self.open = Open::Print(Box::new(p), Histories::new());
            }
            Record::Run(r) => self.run(r),
            Record::MetricChunk(c) => {
                if let Open::Print(_, h) = &mut self.open {
                    let e = h.entry(format!("metric {}", c.key)).or_default();
                    for pt in &c.points {
                        let value = if pt.value.is_nan() {
                            f64::NAN.to_bits()
                        } else {
                            pt.value.to_bits()
                        };
                        let mut b = [0u8; 24];
                        b[..8].copy_from_slice(&pt.step.to_be_bytes());
                        b[8..16].copy_from_slice(&pt.timestamp.to_be_bytes());
                        b[16..].copy_from_slice(&value.to_be_bytes());
                        e.0 = e.0.wrapping_add(digest(&b));
                        e.1 += 1;
                    }
                }
            }
            Record::LoggedModel(m) => self.logged_model(m),
            Record::RegisteredModel(m) => self.open = Open::Model(m, Vec::new()),
            Record::ModelVersion(v) => {
                if let Open::Model(_, vs) = &mut self.open {
                    vs.push(v);
                }
            }
            Record::Trace(t) => self.trace(t),
            Record::Dataset(d) => self.dataset(d),
            Record::DatasetRecords(rs) => {
                if let Open::Print(_, h) = &mut self.open {
                    let e = h.entry("records".into()).or_default();
                    for r in &rs.records {
                        e.0 = e.0.wrapping_add(digest(&dataset_record(r)));
                        e.1 += 1;
                    }
                }
            }
            Record::Sealed(_) => return self.seal(),
            _ => {}
        }
        Vec::new()
    }

    /// The print of a run or logged model begun: its key (its own id, or at a destination its
    /// lineage tag), noted with its root for other objects' ids, its name and experiment.
    fn owned(
        &mut self,
        kind: Kind,
        id: &str,
        tags: &[Tag],
        root: &str,
        name: &str,
        experiment: &str,
    ) -> Print {
        let lineage = if kind == Kind::Run {
            LINEAGE_RUN
        } else {
            LINEAGE_MODEL
        };
        let key = self.key(id, tag(tags, lineage));
        let ids = match kind {
            Kind::Run => &mut self.ids.runs,
            _ => &mut self.ids.models,
        };
        let known = key.clone().unwrap_or_else(|| id.to_string());
        ids.insert(id.to_string(), (known, root.to_string()));
        let mut p = Print::new(kind, key, id, name);
        p.container = self.ids.experiments.get(experiment).cloned();
        p.text("name", name);
        p.refs("experiment", Ref::Experiment, vec![experiment.to_string()]);
        p
    }

    fn run(&mut self, r: rec::Run) {
        if tag(&r.tags, ABANDONED).is_some() {
            self.open = Open::Skip;
            return;
        }
        let mut p = self.owned(
            Kind::Run,
            &r.run_id,
            &r.tags,
            &r.artifact_uri,
            &r.run_name,
            &r.experiment_id,
        );
        p.text("status", r.status.clone());
        p.opt("start time", r.start_time);
        p.opt("end time", r.end_time);
        p.text("lifecycle stage", r.lifecycle_stage.clone());
        p.text("import", self.state(&r.tags));
        for t in &r.params {
            p.text(format!("param {}", t.key), t.value.clone());
        }
        p.tags("tag", &r.tags, &["mlflow.user", PARENT_RUN]);
        // A parent the import did not have is kept as its source id in a tag of its own.
        let parent = match self.role {
            Role::Destination => r.parent_run_id().or(tag(&r.tags, MISSING_PARENT)),
            Role::Source => r.parent_run_id(),
        };
        if let Some(parent) = parent {
            p.refs(
                &format!("tag {PARENT_RUN}"),
                Ref::Run,
                vec![parent.to_string()],
            );
        }
        for d in &r.dataset_inputs {
            let input = format!("input {} ({})", d.name, d.digest);
            let mut tags: Vec<String> = d
                .tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect();
            tags.sort();
            p.text(format!("{input} tags"), tags.join(", "));
            p.text(format!("{input} source type"), d.source_type.clone());
            p.text(format!("{input} schema"), canonical_json(&d.schema));
            p.text(format!("{input} profile"), canonical_json(&d.profile));
            match d.evaluation_dataset_id() {
                // An evaluation dataset's source names its id: compared through its key.
                Some(id) => p.refs(&format!("{input} dataset"), Ref::Dataset, vec![id]),
                None => p.text(format!("{input} source"), canonical_json(&d.source)),
            }
        }
        p.refs("model inputs", Ref::Model, r.model_inputs.clone());
        p.refs(
            "model outputs",
            Ref::Model,
            r.model_outputs
                .iter()
                .map(|o| format!("{} step {}", o.model_id, o.step))
                .collect(),
        );
        self.open = Open::Print(Box::new(p), Histories::new());
    }

    /// The import state of a run or logged model: `complete` on a source (it is itself).
    fn state(&self, tags: &[Tag]) -> String {
        match self.role {
            Role::Source => "complete".into(),
            Role::Destination => tag(tags, STATE).unwrap_or("complete").to_string(),
        }
    }

    fn logged_model(&mut self, m: rec::LoggedModel) {
        let mut p = self.owned(
            Kind::LoggedModel,
            &m.model_id,
            &m.tags,
            &m.artifact_uri,
            &m.name,
            &m.experiment_id,
        );
        p.text("model type", m.model_type.clone());
        if !m.source_run_id.is_empty() {
            p.refs("source run", Ref::Run, vec![m.source_run_id.clone()]);
        }
        p.text("status", m.status.clone());
        p.text("import", self.state(&m.tags));
        for t in &m.params {
            p.text(format!("param {}", t.key), t.value.clone());
        }
        p.tags("tag", &m.tags, &["mlflow.modelVersions", "mlflow.user"]);
        self.open = Open::Print(Box::new(p), Histories::new());
    }

    fn trace(&mut self, t: rec::Trace) {
        let mut p = Print::new(Kind::Trace, Some(t.trace_id.clone()), &t.trace_id, "");
        p.container = self.ids.experiments.get(&t.experiment_id).cloned();
        p.refs("experiment", Ref::Experiment, vec![t.experiment_id.clone()]);
        p.opt("request time", t.request_time);
        p.opt("execution duration", t.execution_duration);
        p.text("state", t.state.clone());
        p.text("client request id", t.client_request_id.clone());
        p.text("request preview", t.request_preview.clone());
        p.text("response preview", t.response_preview.clone());
        for m in &t.trace_metadata {
            let field = format!("metadata {}", m.key);
            match m.key.as_str() {
                rec::TRACE_SOURCE_RUN => p.refs(&field, Ref::Run, vec![m.value.clone()]),
                rec::TRACE_MODEL_ID => p.refs(&field, Ref::Model, vec![m.value.clone()]),
                _ => p.text(field, m.value.clone()),
            }
        }
        p.tags("tag", &t.tags, TRACE_SERVER_TAGS);
        p.text("import", self.state(&t.tags));
        for (i, a) in t.assessments.iter().enumerate() {
            let index = format!("#{i}");
            let id = a
                .get("assessment_id")
                .and_then(|v| v.as_str())
                .unwrap_or(&index);
            let mut kept = serde_json::Map::new();
            for k in [
                "assessment_name",
                "source",
                "feedback",
                "expectation",
                "rationale",
                "span_id",
                "overrides",
                "valid",
            ] {
                if let Some(v) = a.get(k) {
                    kept.insert(k.to_string(), v.clone());
                }
            }
            // Its metadata, the run it was made in compared as a run.
            if let Some(serde_json::Value::Object(m)) = a.get("metadata") {
                let mut m = m.clone();
                let run = m.remove(ASSESSMENT_RUN);
                if let Some(run) = run.as_ref().and_then(|v| v.as_str()) {
                    p.refs(
                        &format!("assessment {id} run"),
                        Ref::Run,
                        vec![run.to_string()],
                    );
                }
                kept.insert("metadata".into(), serde_json::Value::Object(m));
            }
            let json = sorted(&serde_json::Value::Object(kept));
            p.text(format!("assessment {id}"), json);
        }
        self.open = Open::Print(Box::new(p), Histories::new());
    }

    fn dataset(&mut self, d: rec::Dataset) {
        let key = self.key(&d.dataset_id, tag(&d.tags, LINEAGE_DATASET));
        self.ids.datasets.insert(
            d.dataset_id.clone(),
            key.clone().unwrap_or_else(|| d.dataset_id.clone()),
        );
        let mut p = Print::new(Kind::Dataset, key, &d.dataset_id, &d.name);
        p.text("name", d.name.clone());
        p.tags("tag", &d.tags, &[]);
        p.refs("experiments", Ref::Experiment, d.experiment_ids.clone());
        p.text("schema", canonical_json(&d.schema));
        p.text("profile", canonical_json(&d.profile));
        self.open = Open::Print(Box::new(p), Histories::new());
    }

    fn seal(&mut self) -> Vec<Print> {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None | Open::Skip => Vec::new(),
            Open::Print(mut p, histories) => {
                for (field, (d, n)) in histories {
                    let what = if field == "records" {
                        "records"
                    } else {
                        "points"
                    };
                    p.fields.insert(field, Val::Hash(d, format!("{n} {what}")));
                }
                vec![*p]
            }
            Open::Model(m, versions) => self.model(m, versions),
        }
    }

    /// A registered model (or prompt) and its versions.
    fn model(&self, m: rec::RegisteredModel, versions: Vec<rec::ModelVersion>) -> Vec<Print> {
        let prompt = m.is_prompt();
        let (kind, vkind) = if prompt {
            (Kind::Prompt, Kind::PromptVersion)
        } else {
            (Kind::RegisteredModel, Kind::ModelVersion)
        };
        // The source number of each of this side's versions (`None`: a destination version no
        // import made).
        let number = |v: &rec::ModelVersion| match self.role {
            Role::Source => Some(v.version.to_string()),
            Role::Destination => tag(&v.tags, LINEAGE_VERSION).map(str::to_string),
        };
        let numbers: HashMap<u64, String> = versions
            .iter()
            .map(|v| {
                let made = || format!("{} (made at the destination)", v.version);
                (v.version, number(v).unwrap_or_else(made))
            })
            .collect();
        // In the source's terms, like experiments.
        let key = self.names.model(&m.name);
        let name = key
            .clone()
            .unwrap_or_else(|| format!("{} (not a name the import gave)", m.name));
        let mut p = Print::new(kind, key.clone(), &m.name, &name);
        p.text("description", m.description.clone());
        p.tags("tag", &m.tags, &[PROMPT_EXPERIMENTS]);
        if let Some(ids) = tag(&m.tags, PROMPT_EXPERIMENTS) {
            // The experiments a prompt was used in, by name: those read (an import maps them
            // and leaves out the ones it did not bring).
            let mut names: Vec<&str> = ids
                .split(',')
                .filter_map(|id| self.ids.experiments.get(id).map(String::as_str))
                .collect();
            names.sort_unstable();
            if !names.is_empty() {
                p.text(format!("tag {PROMPT_EXPERIMENTS}"), names.join(", "));
            }
        }
        for a in &m.aliases {
            let n = numbers
                .get(&a.version)
                .cloned()
                .unwrap_or_else(|| a.version.to_string());
            p.text(format!("alias {}", a.alias), n);
        }
        let mut out = vec![p];
        for v in versions {
            let key = key
                .as_ref()
                .and_then(|k| number(&v).map(|n| format!("{k}\u{0}{n}")));
            let mut vp = Print::new(vkind, key, &v.version.to_string(), &name);
            vp.container = Some(name.clone());
            vp.text("description", v.description.clone());
            vp.text("stage", v.current_stage.clone());
            vp.refs(
                "source",
                Ref::Source,
                vec![v.source.clone(), v.run_id.clone(), v.model_id.clone()],
            );
            if !v.run_id.is_empty() {
                vp.refs("run", Ref::Run, vec![v.run_id.clone()]);
            }
            if !v.model_id.is_empty() {
                vp.refs("logged model", Ref::Model, vec![v.model_id.clone()]);
            }
            vp.text("run link", v.run_link.clone());
            vp.tags("tag", &v.tags, &[]);
            out.push(vp);
        }
        out
    }

    /// `ids` (of kind `r`) in the source's terms, sorted. A source's own ids are the source's
    /// terms already; a destination id is mapped through the object this side read with it.
    /// An id not read: `None` while more may come (`last` false); at the end kept as it is (the
    /// import leaves ids it cannot map as they are), or, an experiment's, left out (the import
    /// leaves those out of the lists that name experiments).
    pub fn resolve(&self, r: Ref, ids: &[String], last: bool) -> Option<Vec<String>> {
        if r == Ref::Source {
            return self.source(ids, last);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (head, tail) = match (r, id.split_once(' ')) {
                (Ref::Model, Some((h, t))) => (h, Some(t)),
                _ => (id.as_str(), None),
            };
            let known = match r {
                Ref::Experiment => self.ids.experiments.get(head).cloned(),
                _ if self.role == Role::Source => Some(head.to_string()),
                Ref::Run => self.ids.runs.get(head).map(|(k, _)| k.clone()),
                Ref::Model => self.ids.models.get(head).map(|(k, _)| k.clone()),
                Ref::Dataset => self.ids.datasets.get(head).cloned(),
                Ref::Source => None,
            };
            let mapped = match known {
                Some(k) => k,
                None if !last => return None,
                None if r == Ref::Experiment => continue,
                None => head.to_string(),
            };
            out.push(match tail {
                Some(t) => format!("{mapped} {t}"),
                None => mapped,
            });
        }
        out.sort();
        Some(out)
    }

    /// A version's source in the source's terms: `runs:/` and `models:/` ids mapped, a location
    /// inside its run's (or logged model's) root (`…/<id>/artifacts/…`, as the import finds it)
    /// written relative to it.
    fn source(&self, v: &[String], last: bool) -> Option<Vec<String>> {
        let [source, run, model] = v else {
            return Some(v.to_vec());
        };
        let map = |r: Ref, id: &str| {
            self.resolve(r, &[id.to_string()], last)
                .and_then(|v| v.into_iter().next())
        };
        for (scheme, r) in [("runs:/", Ref::Run), ("models:/", Ref::Model)] {
            if let Some(rest) = source.strip_prefix(scheme) {
                let (id, path) = rest.split_once('/').unwrap_or((rest, ""));
                // `models:/name/3` names a registered model, not a logged model.
                if r == Ref::Model && !id.starts_with("m-") {
                    return Some(vec![source.clone()]);
                }
                return Some(vec![format!("{scheme}{}/{path}", map(r, id)?)]);
            }
        }
        for (id, r) in [(run, Ref::Run), (model, Ref::Model)] {
            if let Some(rest) = crate::transfer::import::inside(source, id) {
                return Some(vec![format!("<root of {}>{rest}", map(r, id)?)]);
            }
        }
        Some(vec![source.clone()])
    }
}

/// An `MLmodel` file with the top-level lines an import rewrites in the source's terms: the
/// object's own id as `<self>`, its run's source id, a location inside its own `root` relative
/// to it.
pub(super) fn normalize_mlmodel(
    body: &[u8],
    role: Role,
    ids: &Ids,
    own: &str,
    root: &str,
) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let field = MLMODEL_KEYS
            .iter()
            .find(|k| line.strip_prefix(**k).is_some_and(|r| r.starts_with(':')));
        let Some(k) = field else {
            out.push_str(line);
            continue;
        };
        let value = line[k.len() + 1..].trim().trim_matches(['\'', '"']);
        let mapped = match *k {
            // A location inside the object's own root: relative to it (a location elsewhere is
            // kept, as the import keeps it).
            "artifact_path" => match value.strip_prefix(root) {
                Some(rest) if !root.is_empty() => format!("<root>{rest}"),
                _ => value.to_string(),
            },
            _ if value == own => "<self>".to_string(),
            "run_id" if role == Role::Destination => ids
                .runs
                .get(value)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| value.to_string()),
            _ => value.to_string(),
        };
        out.push_str(&format!("{k}: {mapped}\n"));
    }
    out.into_bytes()
}

/// A dataset record without what the server assigns (ids, times, who).
fn dataset_record(r: &serde_json::Value) -> Vec<u8> {
    const SERVER: [&str; 6] = [
        "dataset_record_id",
        "dataset_id",
        "created_time",
        "last_update_time",
        "created_by",
        "last_updated_by",
    ];
    match r {
        serde_json::Value::Object(m) => {
            let kept: serde_json::Map<_, _> = m
                .iter()
                .filter(|(k, _)| !SERVER.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            sorted(&serde_json::Value::Object(kept)).into_bytes()
        }
        other => sorted(other).into_bytes(),
    }
}

/// `text` as JSON with every object's keys sorted, when it is JSON (servers store schemas and
/// profiles in their own key order); else as it is.
fn canonical_json(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => sorted(&v),
        Err(_) => text.to_string(),
    }
}

/// Compact JSON with sorted keys, whatever order the parsed map keeps.
fn sorted(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::Value::from(k.as_str()), sorted(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(sorted).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}
