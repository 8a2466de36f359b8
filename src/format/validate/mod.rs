//! The archive's structural rules (spec/format.md §8 and §9) as a pure state machine, shared by the
//! writer (so it cannot emit an invalid archive) and the reader (so it accepts only valid ones).
//! No I/O: the fuzzers and property tests drive it directly.

/// A [`Violation`] made from a `format!` message.
macro_rules! violation {
    ($($arg:tt)*) => {
        $crate::format::validate::Violation::from(format!($($arg)*))
    };
}

mod enums;
mod members;
mod names;
mod records;
mod seals;
mod version;

use std::collections::HashSet;

/// A rule of the specification that a member, record, seal or the trailer breaks: what is wrong,
/// citing the section (`§6.3`, ...) it breaks. The reader and the writer turn it into
/// [`Error::Format`](crate::Error::Format) with the offset, member and object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    detail: String,
}

impl Violation {
    /// What is wrong, with the section.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The last section of the specification the message cites (`§8.2`), if any.
    pub fn section(&self) -> Option<&str> {
        let at = self.detail.rfind('§')?;
        let rest = &self.detail[at..];
        let end = rest
            .char_indices()
            .skip(1)
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        Some(rest[..end].trim_end_matches('.')).filter(|s| s.len() > '§'.len_utf8())
    }
}

impl From<String> for Violation {
    fn from(detail: String) -> Self {
        Violation { detail }
    }
}

impl From<&str> for Violation {
    fn from(detail: &str) -> Self {
        Violation {
            detail: detail.to_string(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Violation {}

impl From<Violation> for String {
    fn from(v: Violation) -> Self {
        v.detail
    }
}

use super::checksum::Crc32;
use super::limits::Limits;
use super::model::Counts;
use super::path::{Member, Part, UnitId};
pub use enums::{LIFECYCLE_STAGES, PRINCIPAL_TYPES, RUN_STATUSES, STAGES, TRACE_STATES};
use names::NameKeys;
pub use records::{json_counts, json_values};
pub use version::{current_version, parse_version};

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
    /// A registered model unit whose record tags it as a prompt.
    prompt: bool,
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
    datasets_referenced: HashSet<String>,
    datasets_seen: HashSet<String>,
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
            datasets_referenced: HashSet::new(),
            datasets_seen: HashSet::new(),
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
}

#[cfg(test)]
mod tests {
    use super::Violation;

    #[test]
    fn violations_name_their_section() {
        let v = Violation::from("a name twice (§6.3, see also §8.2).");
        assert_eq!(v.section(), Some("§8.2"));
        assert_eq!(Violation::from("no section").section(), None);
        assert_eq!(Violation::from("bad (§7.3)").section(), Some("§7.3"));
        assert_eq!(v.detail(), "a name twice (§6.3, see also §8.2).");
    }
}
