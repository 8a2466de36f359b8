//! The archive's structural rules (spec/format.md §8 and §9) as a pure state machine, shared by the
//! writer (so it cannot emit an invalid archive) and the reader (so it accepts only valid ones).
//! No I/O: the fuzzers and property tests drive it directly.

use std::collections::HashSet;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};

use super::checksum::Crc32;
use super::limits::Limits;
use super::model::{
    Counts, Experiment, FORMAT_NAME, Header, LoggedModel, MetricChunk, ModelVersion,
    RegisteredModel, Run, Seal, Trailer,
};
use super::path::{Member, Part, UnitId};
use super::{FORMAT_MAJOR, FORMAT_MINOR};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Units,
    Done,
}

/// What the validator keeps of a member of the open unit until its seal: not its name (names are
/// up to 4096 bytes, and a unit may hold a million members) but a hash of it, so the memory a unit
/// costs does not grow with the length of its names (§11).
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: u128,
    size: u64,
    crc32: Crc32,
}

#[derive(Debug)]
struct OpenUnit {
    id: UnitId,
    /// `<prefix>/artifacts/`: where the unit's artifact members' names start.
    artifacts: String,
    /// Every member read so far but the seal, in order, as its seal must list it.
    entries: Vec<Entry>,
    /// The hashes of those members' names: duplicates (§6.3), files above an artifact (§6.3).
    names: HashSet<u128>,
    /// The bytes of those names: the seal lists them all, so they fit in a record (§11).
    name_bytes: u64,
    next_chunk: u64,
    last_version: Option<u64>,
}

/// 128-bit hashes of member names: two SipHash-1-3 with keys chosen at random for each validator,
/// so that no archive can be made to collide. A collision could only make the validator refuse a
/// valid archive (as a duplicate, or a file above an artifact) or take a seal's listing of one
/// name for another name with the same size and CRC; at 128 bits neither happens by chance.
#[derive(Debug, Clone, Default)]
struct NameKeys(RandomState, RandomState);

#[derive(Clone)]
struct NameHasher(DefaultHasher, DefaultHasher);

impl NameKeys {
    fn hasher(&self) -> NameHasher {
        NameHasher(self.0.build_hasher(), self.1.build_hasher())
    }

    fn hash(&self, name: &str) -> u128 {
        let mut h = self.hasher();
        h.write(name);
        h.finish()
    }

    /// The first directory of the artifact member `name` (a name below `root`, its unit's
    /// `<prefix>/artifacts/`) that is also the name of a member in `names`, if any. One pass over
    /// the name: the hash of each directory is the hash of the name so far.
    fn file_above<'a>(&self, name: &'a str, root: &str, names: &HashSet<u128>) -> Option<&'a str> {
        let rel = name.strip_prefix(root)?;
        let mut h = self.hasher();
        let mut done = 0;
        for (i, _) in rel.match_indices('/') {
            let dir = &name[..root.len() + i];
            h.write(&dir[done..]);
            done = dir.len();
            if names.contains(&h.clone().finish()) {
                return Some(dir);
            }
        }
        None
    }
}

impl NameHasher {
    /// Feeds bytes: feeding a name in pieces gives the hash of the whole name.
    fn write(&mut self, piece: &str) {
        self.0.write(piece.as_bytes());
        self.1.write(piece.as_bytes());
    }

    fn finish(&self) -> u128 {
        (u128::from(self.0.finish()) << 64) | u128::from(self.1.finish())
    }
}

/// The rules' state: what has been seen so far.
#[derive(Debug)]
pub struct Validator {
    limits: Limits,
    phase: Phase,
    keys: NameKeys,
    open: Option<OpenUnit>,
    units_seen: HashSet<UnitId>,
    next_model: u64,
    experiments_referenced: HashSet<String>,
    runs_referenced: HashSet<String>,
    logged_models_referenced: HashSet<String>,
    runs_seen: HashSet<String>,
    logged_models_seen: HashSet<String>,
    experiments_seen: HashSet<String>,
    counts: Counts,
    units: u64,
    members: u64,
    header_crc: Option<Crc32>,
    seals: crc32fast::Hasher,
    minor: u32,
}

/// How a finished member counts (see [`Validator::end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listed {
    /// The header or a seal: counted, not listed in a seal.
    Unlisted,
    /// The trailer: neither counted nor listed.
    Trailer,
    /// A record or an unknown member of a unit: listed in its seal.
    Member,
    /// An artifact: listed in its seal and counted as an artifact.
    Artifact,
}

impl Listed {
    /// How `member` counts.
    pub fn of(member: &Member) -> Listed {
        match member {
            Member::Header | Member::Unit(_, Part::Seal) => Listed::Unlisted,
            Member::Trailer => Listed::Trailer,
            Member::Unit(_, Part::Artifact(_)) => Listed::Artifact,
            Member::Unit(..) => Listed::Member,
        }
    }
}

/// What a sealed unit held, as the reader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sealed {
    /// The unit.
    pub unit: UnitId,
    /// Its members (without the seal).
    pub members: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl Validator {
    /// A fresh state.
    pub fn new(limits: Limits) -> Self {
        Validator {
            limits,
            phase: Phase::Start,
            keys: NameKeys::default(),
            open: None,
            units_seen: HashSet::new(),
            next_model: 0,
            experiments_referenced: HashSet::new(),
            runs_referenced: HashSet::new(),
            logged_models_referenced: HashSet::new(),
            runs_seen: HashSet::new(),
            logged_models_seen: HashSet::new(),
            experiments_seen: HashSet::new(),
            counts: Counts::default(),
            units: 0,
            members: 0,
            header_crc: None,
            seals: crc32fast::Hasher::new(),
            minor: 0,
        }
    }

    /// The unit being read, if any (for error messages).
    pub fn open_unit(&self) -> Option<&UnitId> {
        self.open.as_ref().map(|u| &u.id)
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The minor version the header declared.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// True once the trailer was accepted.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Checks that a member may start here.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn begin(&mut self, name: &str, member: &Member, size: u64) -> Result<(), String> {
        if self.phase == Phase::Done {
            return Err("a member after the trailer (§8.3)".into());
        }
        if self.members >= self.limits.max_members {
            return Err(format!(
                "more than {} members (limit)",
                self.limits.max_members
            ));
        }
        let is_json = !matches!(
            member,
            Member::Unit(_, Part::Artifact(_) | Part::Unknown(_))
        );
        if is_json && size > self.limits.max_json_bytes {
            return Err(format!(
                "a JSON member of {size} bytes exceeds the limit of {} (§11)",
                self.limits.max_json_bytes
            ));
        }
        if !is_json && size > self.limits.max_artifact_bytes {
            return Err(format!(
                "a member of {size} bytes exceeds the limit of {} (§11)",
                self.limits.max_artifact_bytes
            ));
        }
        match member {
            Member::Header => {
                if self.phase != Phase::Start {
                    return Err("a second header (§8.1)".into());
                }
                Ok(())
            }
            _ if self.phase == Phase::Start => {
                Err("the first member must be mlflow-archive.json (§8.1)".into())
            }
            Member::Trailer => match &self.open {
                Some(u) => Err(format!(
                    "the trailer comes before {} was sealed (§8.2)",
                    u.id
                )),
                None => Ok(()),
            },
            Member::Unit(id, part) => {
                match &mut self.open {
                    Some(u) if &u.id != id => {
                        return Err(format!(
                            "a member of {id} before {} was sealed (§8.2)",
                            u.id
                        ));
                    }
                    Some(u) => {
                        if matches!(part, Part::Record) {
                            return Err(format!("a second record for {id} (§8.2)"));
                        }
                        if matches!(part, Part::Seal) {
                            return Ok(());
                        }
                        if !u.names.insert(self.keys.hash(name)) {
                            return Err(format!("duplicate member {name:?} (§6)"));
                        }
                        if let Part::Artifact(rel) = part
                            && let Some(file) = self.keys.file_above(name, &u.artifacts, &u.names)
                        {
                            return Err(both_file_and_dir(rel, &file[u.artifacts.len()..]));
                        }
                        u.name_bytes += name.len() as u64;
                        if u.name_bytes > self.limits.max_json_bytes {
                            return Err(format!(
                                "the names of {id}'s members exceed {} bytes, more than its seal may list (§11)",
                                self.limits.max_json_bytes
                            ));
                        }
                        if u.entries.len() >= self.limits.max_unit_members {
                            return Err(format!(
                                "{id} has more than {} members (limit)",
                                self.limits.max_unit_members
                            ));
                        }
                        match part {
                            Part::MetricChunk(seq) if *seq != u.next_chunk => {
                                return Err(format!(
                                    "metric chunk {seq} out of sequence (expected {}) (§8.4)",
                                    u.next_chunk
                                ));
                            }
                            Part::MetricChunk(_) => u.next_chunk += 1,
                            Part::ModelVersion(v) => {
                                if u.last_version.is_some_and(|l| *v <= l) {
                                    return Err(format!("model version {v} out of order (§8.4)"));
                                }
                                u.last_version = Some(*v);
                            }
                            _ => {}
                        }
                    }
                    None => {
                        if !matches!(part, Part::Record) {
                            return Err(format!("{name} does not follow its unit's record (§8.2)"));
                        }
                        if self.units_seen.contains(id) {
                            return Err(format!("{id} appears twice (§8.2)"));
                        }
                        if let UnitId::Model(seq) = id
                            && *seq != self.next_model
                        {
                            return Err(format!(
                                "registered model number {seq} out of sequence (expected {}) (§6.2)",
                                self.next_model
                            ));
                        }
                        let mut names = HashSet::new();
                        names.insert(self.keys.hash(name));
                        self.open = Some(OpenUnit {
                            id: id.clone(),
                            artifacts: format!("{}/artifacts/", id.prefix()),
                            entries: Vec::new(),
                            names,
                            name_bytes: name.len() as u64,
                            next_chunk: 0,
                            last_version: None,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Records a member whose bytes were all read (or written): its CRC joins the open unit's list.
    /// The header, seals and the trailer are not listed in a seal.
    pub fn end(&mut self, name: &str, kind: Listed, size: u64, crc: Crc32) {
        if kind != Listed::Trailer {
            self.members += 1;
        }
        if kind == Listed::Artifact {
            self.counts.artifacts += 1;
            self.counts.artifact_bytes += size;
        }
        if matches!(kind, Listed::Member | Listed::Artifact)
            && let Some(u) = &mut self.open
        {
            u.entries.push(Entry {
                name: self.keys.hash(name),
                size,
                crc32: crc,
            });
        }
    }

    /// Checks the header.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn header(&mut self, h: &Header, crc: Crc32) -> Result<(), String> {
        if h.format != FORMAT_NAME {
            return Err(format!(
                "format {:?} is not {FORMAT_NAME:?} (§7.1)",
                h.format
            ));
        }
        let (major, minor) = parse_version(&h.version)?;
        if major != FORMAT_MAJOR {
            return Err(format!(
                "archive format version {} is not supported: this reader reads {FORMAT_MAJOR}.x (§10)",
                h.version
            ));
        }
        self.minor = minor;
        self.header_crc = Some(crc);
        self.phase = Phase::Units;
        Ok(())
    }

    fn record_id(&self, id: &str, what: &str) -> Result<(), String> {
        match self.open.as_ref().map(|u| &u.id) {
            Some(UnitId::Experiment(u) | UnitId::Run(u) | UnitId::LoggedModel(u)) if u == id => {
                Ok(())
            }
            Some(u) => Err(format!(
                "the {what} record's id {id:?} does not match its unit {u} (§7)"
            )),
            None => Err(format!("a {what} record outside a unit")),
        }
    }

    /// Checks an experiment record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn experiment(&mut self, e: &Experiment) -> Result<(), String> {
        self.record_id(&e.experiment_id, "experiment")?;
        if self.experiments_referenced.contains(&e.experiment_id) {
            return Err(format!(
                "experiment {} comes after a run or logged model of it (§9)",
                e.experiment_id
            ));
        }
        one_of(
            "experiment",
            "lifecycle_stage",
            &e.lifecycle_stage,
            LIFECYCLE_STAGES,
            "7.2",
        )?;
        self.experiments_seen.insert(e.experiment_id.clone());
        self.counts.experiments += 1;
        Ok(())
    }

    /// Checks a run record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn run(&mut self, r: &Run) -> Result<(), String> {
        self.record_id(&r.run_id, "run")?;
        if self.runs_referenced.contains(&r.run_id) {
            return Err(format!(
                "run {} comes after a run, logged model or model version that refers to it (§9)",
                r.run_id
            ));
        }
        one_of("run", "status", &r.status, RUN_STATUSES, "7.3")?;
        one_of(
            "run",
            "lifecycle_stage",
            &r.lifecycle_stage,
            LIFECYCLE_STAGES,
            "7.3",
        )?;
        if !self.experiments_seen.contains(&r.experiment_id) {
            self.experiments_referenced.insert(r.experiment_id.clone());
        }
        if let Some(p) = r.parent_run_id()
            && !self.runs_seen.contains(p)
        {
            self.runs_referenced.insert(p.to_string());
        }
        for m in r.model_inputs.iter() {
            if !self.logged_models_seen.contains(m) {
                self.logged_models_referenced.insert(m.clone());
            }
        }
        self.runs_seen.insert(r.run_id.clone());
        self.counts.runs += 1;
        Ok(())
    }

    /// Checks a metric chunk.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn metric_chunk(&mut self, c: &MetricChunk) -> Result<(), String> {
        if !matches!(self.open.as_ref().map(|u| &u.id), Some(UnitId::Run(_))) {
            return Err("a metric chunk outside a run".into());
        }
        if c.points.len() > self.limits.max_chunk_points {
            return Err(format!(
                "a metric chunk of {} points exceeds the limit of {} (§11)",
                c.points.len(),
                self.limits.max_chunk_points
            ));
        }
        self.counts.metric_chunks += 1;
        self.counts.metric_points += c.points.len() as u64;
        Ok(())
    }

    /// Checks a logged model record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn logged_model(&mut self, m: &LoggedModel) -> Result<(), String> {
        self.record_id(&m.model_id, "logged model")?;
        if self.logged_models_referenced.contains(&m.model_id) {
            return Err(format!(
                "logged model {} comes after a run or model version that refers to it (§9)",
                m.model_id
            ));
        }
        if !self.experiments_seen.contains(&m.experiment_id) {
            self.experiments_referenced.insert(m.experiment_id.clone());
        }
        if !m.source_run_id.is_empty() && !self.runs_seen.contains(&m.source_run_id) {
            self.runs_referenced.insert(m.source_run_id.clone());
        }
        self.logged_models_seen.insert(m.model_id.clone());
        self.counts.logged_models += 1;
        Ok(())
    }

    /// Checks a registered model record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn registered_model(&mut self, _m: &RegisteredModel) -> Result<(), String> {
        if !matches!(self.open.as_ref().map(|u| &u.id), Some(UnitId::Model(_))) {
            return Err("a registered model record outside its unit".into());
        }
        self.counts.registered_models += 1;
        Ok(())
    }

    /// Checks a model version record against its member name's number.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn model_version(&mut self, v: &ModelVersion, number_in_name: u64) -> Result<(), String> {
        if v.version != number_in_name {
            return Err(format!(
                "the record says version {} but its member is version {number_in_name} (§7.7)",
                v.version
            ));
        }
        one_of(
            "model version",
            "current_stage",
            &v.current_stage,
            STAGES,
            "7.7",
        )?;
        if !v.run_id.is_empty() && !self.runs_seen.contains(&v.run_id) {
            self.runs_referenced.insert(v.run_id.clone());
        }
        if !v.model_id.is_empty() && !self.logged_models_seen.contains(&v.model_id) {
            self.logged_models_referenced.insert(v.model_id.clone());
        }
        self.counts.model_versions += 1;
        Ok(())
    }

    /// Checks a seal against what was read and closes the unit. `raw` is the seal member's bytes'
    /// CRC (folded into the trailer's `seals_crc32`), `bytes` the seal member itself.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn seal(&mut self, s: &Seal, bytes: &[u8]) -> Result<Sealed, String> {
        let Some(u) = self.open.take() else {
            return Err("a seal outside a unit".into());
        };
        let prefix = u.id.prefix();
        if s.unit != prefix {
            return Err(format!(
                "the seal names unit {:?}, expected {prefix:?} (§8.2)",
                s.unit
            ));
        }
        if s.members.len() != u.entries.len() {
            return Err(format!(
                "the seal of {} lists {} members, {} were read (§8.2)",
                u.id,
                s.members.len(),
                u.entries.len()
            ));
        }
        for (i, (want, got)) in s.members.iter().zip(&u.entries).enumerate() {
            if self.keys.hash(&want.path) != got.name {
                return Err(format!(
                    "the seal of {} lists {:?} as member {}, which is not the member read there (§8.2)",
                    u.id,
                    want.path,
                    i + 1
                ));
            }
            if want.size != got.size {
                return Err(format!(
                    "{}: the seal says {} bytes, {} were read (§8.2)",
                    want.path, want.size, got.size
                ));
            }
            if want.crc32 != got.crc32 {
                return Err(format!(
                    "{}: CRC-32 mismatch: the seal says {}, the bytes give {} (§8.2)",
                    want.path, want.crc32, got.crc32
                ));
            }
        }
        // An artifact that comes before a file named like one of its directories was let through
        // by `begin` (it checks the directories of each artifact against the members before it);
        // with every member known, the same check on each finds them all.
        for e in &s.members {
            if let Some(file) = self.keys.file_above(&e.path, &u.artifacts, &u.names) {
                let rel = &e.path[u.artifacts.len()..];
                return Err(both_file_and_dir(rel, &file[u.artifacts.len()..]));
            }
        }
        self.seals.update(bytes);
        self.units += 1;
        if let UnitId::Model(_) = u.id {
            self.next_model += 1;
        }
        let sealed = Sealed {
            unit: u.id.clone(),
            members: u.entries.len(),
            bytes: u.entries.iter().map(|e| e.size).sum(),
        };
        self.units_seen.insert(u.id);
        Ok(sealed)
    }

    /// The trailer a writer must emit now.
    pub fn expected_trailer(&self) -> Trailer {
        Trailer {
            units: self.units,
            members: self.members,
            header_crc32: self.header_crc.unwrap_or_default(),
            seals_crc32: Crc32(self.seals.clone().finalize()),
            counts: self.counts,
        }
    }

    /// Checks the trailer against what was read.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn trailer(&mut self, t: &Trailer) -> Result<(), String> {
        let want = self.expected_trailer();
        if t.units != want.units || t.members != want.members {
            return Err(format!(
                "the trailer counts {} units and {} members, the archive holds {} and {} (§8.3)",
                t.units, t.members, want.units, want.members
            ));
        }
        if t.header_crc32 != want.header_crc32 {
            return Err(format!(
                "the trailer's header CRC {} does not match the header ({}) (§8.3)",
                t.header_crc32, want.header_crc32
            ));
        }
        if t.seals_crc32 != want.seals_crc32 {
            return Err(format!(
                "the trailer's seals CRC {} does not match the seals ({}) (§8.3)",
                t.seals_crc32, want.seals_crc32
            ));
        }
        if t.counts != want.counts {
            return Err(format!(
                "the trailer's counts {:?} do not match the archive's {:?} (§8.3)",
                t.counts, want.counts
            ));
        }
        self.phase = Phase::Done;
        Ok(())
    }
}

/// A run's `status` (§7.3).
pub const RUN_STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
/// An experiment's or a run's `lifecycle_stage` (§7.2, §7.3).
pub const LIFECYCLE_STAGES: &[&str] = &["active", "deleted"];
/// A model version's `current_stage` (§7.7).
pub const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];

/// Checks that a field the spec enumerates holds one of its values: a consumer must not guess
/// what another value means (a run `"PWNED"` is not RUNNING).
fn one_of(
    record: &str,
    field: &str,
    value: &str,
    allowed: &[&str],
    section: &str,
) -> Result<(), String> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "the {record} record's {field} {value:?} is not one of {} (§{section})",
        allowed.join(", ")
    ))
}

fn both_file_and_dir(rel: &str, file: &str) -> String {
    format!(
        "artifact {rel:?} is inside {file:?}, which is a file: a path must not be both a file and a directory (§6.3)"
    )
}

/// Parses `MAJOR.MINOR`.
///
/// # Errors
///
/// The text, quoted, when it is not `MAJOR.MINOR` (§10).
pub fn parse_version(v: &str) -> Result<(u32, u32), String> {
    let bad = || format!("version {v:?} is not MAJOR.MINOR (§10)");
    let (a, b) = v.split_once('.').ok_or_else(bad)?;
    let num = |s: &str| {
        if s.is_empty()
            || (s.len() > 1 && s.starts_with('0'))
            || !s.bytes().all(|c| c.is_ascii_digit())
        {
            None
        } else {
            s.parse::<u32>().ok()
        }
    };
    Ok((num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?))
}

/// The version string writers emit.
pub fn current_version() -> String {
    format!("{FORMAT_MAJOR}.{FORMAT_MINOR}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_hashed_in_pieces_hashes_as_the_whole_name() {
        let keys = NameKeys::default();
        let name = "runs/r1/artifacts/a/bb/ccc/d.txt";
        let mut h = keys.hasher();
        for piece in ["runs/r1/artifacts/a", "/bb", "/ccc/", "d.txt"] {
            h.write(piece);
        }
        assert_eq!(h.finish(), keys.hash(name));
        assert_ne!(
            keys.hash(name),
            keys.hash("runs/r1/artifacts/a/bb/ccc/d.tx")
        );
        assert_ne!(
            keys.hash(name),
            NameKeys::default().hash(name),
            "keys differ per validator"
        );
        let names: HashSet<u128> = [keys.hash("runs/r1/artifacts/a/bb")].into();
        let root = "runs/r1/artifacts/";
        assert_eq!(
            keys.file_above(name, root, &names),
            Some("runs/r1/artifacts/a/bb")
        );
        assert_eq!(
            keys.file_above("runs/r1/artifacts/a/bbb/x", root, &names),
            None
        );
        assert_eq!(
            keys.file_above("runs/r1/artifacts/a/bb", root, &names),
            None
        );
    }
}
