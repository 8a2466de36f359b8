//! Member names (spec/format.md §6): their grammar, parsed into what a member is and which unit it
//! belongs to. Pure: no I/O; the fuzzers and property tests call it directly.

use std::fmt;

/// The header's name.
pub const HEADER: &str = "mlflow-archive.json";
/// The trailer's name.
pub const TRAILER: &str = "trailer.json";
/// Longest id (experiment, run, logged model), in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Longest path segment, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// A unit: an object whose members end with a seal (§8.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum UnitId {
    /// `experiments/<id>`.
    Experiment(String),
    /// `runs/<id>`.
    Run(String),
    /// `logged-models/<id>`.
    LoggedModel(String),
    /// `models/<seq>`: registered models are numbered (their names may hold any character).
    Model(u64),
    /// `traces/<id>` (format 1.1).
    Trace(String),
    /// `datasets/<id>` (format 1.1).
    Dataset(String),
    /// `<kind>/<key>`: a unit of a kind a later minor version defines (§10), which this library
    /// checks but does not understand.
    Other {
        /// The kind (the top-level folder).
        kind: String,
        /// The unit's key (the second segment).
        key: String,
    },
}

/// The unit kinds of format 1.0.
pub const KINDS_1_0: &[&str] = &["experiments", "runs", "logged-models", "models"];
/// The unit kinds format 1.1 added.
pub const KINDS_1_1: &[&str] = &["traces", "datasets"];

impl UnitId {
    /// The unit's name prefix, e.g. `runs/0a1b…`.
    pub fn prefix(&self) -> String {
        match self {
            UnitId::Experiment(id) => format!("experiments/{id}"),
            UnitId::Run(id) => format!("runs/{id}"),
            UnitId::LoggedModel(id) => format!("logged-models/{id}"),
            UnitId::Model(seq) => format!("models/{seq:06}"),
            UnitId::Trace(id) => format!("traces/{id}"),
            UnitId::Dataset(id) => format!("datasets/{id}"),
            UnitId::Other { kind, key } => format!("{kind}/{key}"),
        }
    }

    /// The kind: its top-level folder (`runs`, `traces`, ...).
    pub fn kind(&self) -> &str {
        match self {
            UnitId::Experiment(_) => "experiments",
            UnitId::Run(_) => "runs",
            UnitId::LoggedModel(_) => "logged-models",
            UnitId::Model(_) => "models",
            UnitId::Trace(_) => "traces",
            UnitId::Dataset(_) => "datasets",
            UnitId::Other { kind, .. } => kind,
        }
    }

    /// The minor version of format 1 that defined its kind (`None`: a kind this library does not
    /// know).
    pub fn since_minor(&self) -> Option<u32> {
        match self {
            UnitId::Trace(_) | UnitId::Dataset(_) => Some(1),
            UnitId::Other { .. } => None,
            _ => Some(0),
        }
    }

    /// The name of the unit's record member.
    pub fn record_path(&self) -> String {
        let file = match self {
            UnitId::Experiment(_) => "experiment.json",
            UnitId::Run(_) => "run.json",
            UnitId::LoggedModel(_) | UnitId::Model(_) => "model.json",
            UnitId::Trace(_) => "trace.json",
            UnitId::Dataset(_) => "dataset.json",
            UnitId::Other { .. } => "record.json",
        };
        format!("{}/{file}", self.prefix())
    }

    /// The name of the unit's seal.
    pub fn seal_path(&self) -> String {
        format!("{}/seal.json", self.prefix())
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Experiment(id) => write!(f, "experiment {id}"),
            UnitId::Run(id) => write!(f, "run {id}"),
            UnitId::LoggedModel(id) => write!(f, "logged model {id}"),
            UnitId::Model(seq) => write!(f, "registered model #{seq}"),
            UnitId::Trace(id) => write!(f, "trace {id}"),
            UnitId::Dataset(id) => write!(f, "dataset {id}"),
            UnitId::Other { kind, key } => write!(f, "unit {kind}/{key} (of an unknown kind)"),
        }
    }
}

/// What a member of a unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The unit's record (`experiment.json`, `run.json`, `model.json`).
    Record,
    /// The unit's seal (`seal.json`).
    Seal,
    /// `metrics/<seq>.json` of a run.
    MetricChunk(u64),
    /// `artifacts/<path>` of a run or logged model; the path relative to the artifact root.
    Artifact(String),
    /// `versions/<n>.json` of a registered model.
    ModelVersion(u64),
    /// `records/<seq>.json` of a dataset (format 1.1).
    DatasetRecords(u64),
    /// `permissions.json` of an experiment or a registered model (format 1.2).
    Permissions,
    /// A member a later minor version defines; the rest of its name.
    Unknown(String),
}

/// A parsed member name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Member {
    /// `mlflow-archive.json`.
    Header,
    /// `trailer.json`.
    Trailer,
    /// A member of a unit.
    Unit(UnitId, Part),
}

/// Parses a member name; the error says which rule it breaks.
///
/// # Errors
///
/// The rule of §6 the name breaks, as text.
pub fn parse(name: &str) -> Result<Member, String> {
    match name {
        HEADER => return Ok(Member::Header),
        TRAILER => return Ok(Member::Trailer),
        _ => {}
    }
    let mut it = name.splitn(3, '/');
    let (kind, id, rest) = match (it.next(), it.next(), it.next()) {
        (Some(k), Some(i), Some(r)) => (k, i, r),
        _ => return Err("not a member name of this format (§6)".into()),
    };
    let unit = match kind {
        "experiments" => UnitId::Experiment(check_id(id)?.to_string()),
        "runs" => UnitId::Run(check_id(id)?.to_string()),
        "logged-models" => UnitId::LoggedModel(check_id(id)?.to_string()),
        "models" => UnitId::Model(
            parse_seq(id).ok_or("a registered model's number must be 6 or more digits")?,
        ),
        "traces" => UnitId::Trace(check_id(id)?.to_string()),
        "datasets" => UnitId::Dataset(check_id(id)?.to_string()),
        _ if is_kind(kind) => UnitId::Other {
            kind: kind.to_string(),
            key: check_relpath(id)?.to_string(),
        },
        _ => return Err(format!("unknown top-level folder {kind:?} (§6)")),
    };
    check_relpath(rest)?;
    let part = match (&unit, rest) {
        (_, "seal.json") => Part::Seal,
        (UnitId::Experiment(_), "experiment.json") => Part::Record,
        (UnitId::Run(_), "run.json") => Part::Record,
        (UnitId::LoggedModel(_) | UnitId::Model(_), "model.json") => Part::Record,
        (UnitId::Trace(_), "trace.json") => Part::Record,
        (UnitId::Dataset(_), "dataset.json") => Part::Record,
        (UnitId::Experiment(_) | UnitId::Model(_), PERMISSIONS) => Part::Permissions,
        (UnitId::Dataset(_), r) if r.starts_with("records/") => {
            let seq = r["records/".len()..]
                .strip_suffix(".json")
                .and_then(parse_seq)
                .ok_or("a dataset's records are records/<6 or more digits>.json")?;
            Part::DatasetRecords(seq)
        }
        (UnitId::Run(_), r) if r.starts_with("metrics/") => {
            let file = &r["metrics/".len()..];
            let seq = file
                .strip_suffix(".json")
                .and_then(parse_seq)
                .ok_or("a metric chunk is metrics/<6 or more digits>.json")?;
            Part::MetricChunk(seq)
        }
        (UnitId::Run(_) | UnitId::LoggedModel(_) | UnitId::Trace(_), r)
            if r.starts_with("artifacts/") =>
        {
            Part::Artifact(r["artifacts/".len()..].to_string())
        }
        (UnitId::Model(_), r) if r.starts_with("versions/") => {
            let file = &r["versions/".len()..];
            let v = file
                .strip_suffix(".json")
                .and_then(parse_version)
                .ok_or("a model version is versions/<number without leading zeros>.json")?;
            Part::ModelVersion(v)
        }
        (_, r) => Part::Unknown(r.to_string()),
    };
    Ok(Member::Unit(unit, part))
}

impl Member {
    /// The member as an archive of minor version `minor` defines it: a member a later minor
    /// version added is, in an earlier archive, a member that version does not know (`other`,
    /// §6.1), checked and otherwise ignored (§10).
    pub fn as_of_minor(self, minor: u32) -> Member {
        match self {
            Member::Unit(u, Part::Permissions) if minor < 2 => {
                Member::Unit(u, Part::Unknown(PERMISSIONS.into()))
            }
            other => other,
        }
    }
}

/// Whether `s` may name a unit kind a later minor version defines: 1 to 32 of `a-z` and `-`
/// (§6.1).
fn is_kind(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Checks an id: 1 to 64 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
///
/// # Errors
///
/// The id, quoted, when it breaks the rule (§6.2).
pub fn check_id(id: &str) -> Result<&str, String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(format!(
            "id {id:?} is not 1 to {MAX_ID_BYTES} of A-Z a-z 0-9 . _ - (§6.2)"
        ))
    }
}

/// Checks a relative path: `/`-separated segments of 1 to 255 bytes, none `.` or `..`, with no
/// `\`, NUL or other control character.
///
/// # Errors
///
/// What is wrong with the path (§6.3): empty, a segment too long, `.` or `..`, a control character.
pub fn check_relpath(p: &str) -> Result<&str, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    for seg in p.split('/') {
        if seg.is_empty() {
            return Err(format!(
                "path {p:?} has an empty segment (leading, trailing or double /)"
            ));
        }
        if seg == "." || seg == ".." {
            return Err(format!("path {p:?} has a {seg:?} segment"));
        }
        if seg.len() > MAX_SEGMENT_BYTES {
            return Err(format!(
                "path {p:?} has a segment longer than {MAX_SEGMENT_BYTES} bytes"
            ));
        }
        if seg.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(format!("path {p:?} has a backslash or a control character"));
        }
    }
    Ok(p)
}

fn parse_seq(s: &str) -> Option<u64> {
    if s.len() < 6 || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_version(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > 20
        || (s.len() > 1 && s.starts_with('0'))
        || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// The name of a run's metric chunk.
pub fn metric_chunk_path(run_id: &str, seq: u64) -> String {
    format!("runs/{run_id}/metrics/{seq:06}.json")
}

/// The name of an artifact member of a run or logged model unit.
pub fn artifact_path(unit: &UnitId, rel: &str) -> String {
    format!("{}/artifacts/{rel}", unit.prefix())
}

/// The name of a dataset's records chunk.
pub fn dataset_records_path(dataset_id: &str, seq: u64) -> String {
    format!("datasets/{dataset_id}/records/{seq:06}.json")
}

/// The file name of an experiment's or registered model's permissions (format 1.2).
pub const PERMISSIONS: &str = "permissions.json";

/// The name of a unit's permissions member (an experiment or a registered model).
pub fn permissions_path(unit: &UnitId) -> String {
    format!("{}/{PERMISSIONS}", unit.prefix())
}

/// The name of a model version member.
pub fn version_path(unit: &UnitId, version: u64) -> String {
    format!("{}/versions/{version}.json", unit.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_members() {
        assert_eq!(parse("mlflow-archive.json"), Ok(Member::Header));
        assert_eq!(parse("trailer.json"), Ok(Member::Trailer));
        let run = UnitId::Run("abc".into());
        assert_eq!(
            parse("runs/abc/run.json"),
            Ok(Member::Unit(run.clone(), Part::Record))
        );
        assert_eq!(
            parse("runs/abc/metrics/000012.json"),
            Ok(Member::Unit(run.clone(), Part::MetricChunk(12)))
        );
        assert_eq!(
            parse("runs/abc/artifacts/dir/a b é.txt"),
            Ok(Member::Unit(
                run.clone(),
                Part::Artifact("dir/a b é.txt".into())
            ))
        );
        assert_eq!(
            parse("models/000003/versions/10.json"),
            Ok(Member::Unit(UnitId::Model(3), Part::ModelVersion(10)))
        );
        assert_eq!(
            parse("runs/abc/traces/t1.json"),
            Ok(Member::Unit(run, Part::Unknown("traces/t1.json".into())))
        );
        assert_eq!(
            parse("traces/tr-1/artifacts/traces.json"),
            Ok(Member::Unit(
                UnitId::Trace("tr-1".into()),
                Part::Artifact("traces.json".into())
            ))
        );
        assert_eq!(
            parse("datasets/d-1/records/000002.json"),
            Ok(Member::Unit(
                UnitId::Dataset("d-1".into()),
                Part::DatasetRecords(2)
            ))
        );
        let other = UnitId::Other {
            kind: "scorers".into(),
            key: "s 1".into(),
        };
        assert_eq!(
            parse("scorers/s 1/scorer.json"),
            Ok(Member::Unit(
                other.clone(),
                Part::Unknown("scorer.json".into())
            ))
        );
        let perms = Member::Unit(UnitId::Experiment("7".into()), Part::Permissions);
        assert_eq!(parse("experiments/7/permissions.json"), Ok(perms.clone()));
        assert_eq!(
            parse("models/000001/permissions.json"),
            Ok(Member::Unit(UnitId::Model(1), Part::Permissions))
        );
        // Only experiments and registered models have permissions; elsewhere it is a member of
        // a later version.
        assert_eq!(
            parse("runs/abc/permissions.json"),
            Ok(Member::Unit(
                UnitId::Run("abc".into()),
                Part::Unknown("permissions.json".into())
            ))
        );
        // In a 1.1 archive, a member 1.1 does not define.
        assert_eq!(
            perms.clone().as_of_minor(1),
            Member::Unit(
                UnitId::Experiment("7".into()),
                Part::Unknown("permissions.json".into())
            )
        );
        assert_eq!(perms.clone().as_of_minor(2), perms);
        assert_eq!(other.prefix(), "scorers/s 1");
        assert_eq!(other.since_minor(), None);
        assert_eq!(UnitId::Model(3).prefix(), "models/000003");
        assert_eq!(metric_chunk_path("abc", 7), "runs/abc/metrics/000007.json");
    }

    #[test]
    fn unsafe_or_malformed_names_are_refused() {
        for bad in [
            "/etc/passwd",
            "runs/../x/run.json",
            "runs/abc/artifacts/../../x",
            "runs/abc/artifacts/a//b",
            "runs/abc/artifacts/",
            "runs/abc/artifacts/a\\b",
            "runs/abc/artifacts/a\nb",
            "runs/a b/run.json",
            "runs/abc",
            "Other/abc/x.json",
            "other.x/abc/x.json",
            "datasets/d1/records/1.json",
            "traces/a b/trace.json",
            "models/12/model.json",
            "models/000001/versions/07.json",
            "runs/abc/metrics/12.json",
            "experiments/./experiment.json",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
