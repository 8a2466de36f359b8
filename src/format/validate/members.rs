//! Members in order (§8): where each may come, duplicates, metric chunk and model version
//! sequences, and the limits that bound the memory a member and a unit cost (§11).

use super::Violation;
use std::collections::HashSet;

use super::names::both_file_and_dir;
use super::{Entry, Listed, OpenUnit, Phase, Validator};
use crate::format::checksum::Crc32;
use crate::format::path::{Member, Part, UnitId};
use crate::format::{FORMAT_MAJOR, FORMAT_MINOR};

impl Validator {
    /// Checks that a member may start here.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn begin(&mut self, name: &str, member: &Member, size: u64) -> Result<(), Violation> {
        if self.phase == Phase::Done {
            return Err("a member after the trailer (§8.3)".into());
        }
        if self.members >= self.limits.max_members {
            return Err(violation!(
                "more than {} members (limit)",
                self.limits.max_members
            ));
        }
        let is_json = !matches!(
            member,
            Member::Unit(_, Part::Artifact(_) | Part::Unknown(_))
        );
        if is_json && size > self.limits.max_json_bytes {
            return Err(violation!(
                "a JSON member of {size} bytes exceeds the limit of {} (§11)",
                self.limits.max_json_bytes
            ));
        }
        if !is_json && size > self.limits.max_artifact_bytes {
            return Err(violation!(
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
                Some(u) => Err(violation!(
                    "the trailer comes before {} was sealed (§8.2)",
                    u.id
                )),
                None => Ok(()),
            },
            Member::Unit(id, part) => {
                match &mut self.open {
                    Some(u) if &u.id != id => {
                        return Err(violation!(
                            "a member of {id} before {} was sealed (§8.2)",
                            u.id
                        ));
                    }
                    Some(u) => {
                        if matches!(part, Part::Record) {
                            return Err(violation!("a second record for {id} (§8.2)"));
                        }
                        if matches!(part, Part::Seal) {
                            return Ok(());
                        }
                        if !u.names.insert(self.keys.hash(name)) {
                            return Err(violation!("duplicate member {name:?} (§6)"));
                        }
                        if let Part::Artifact(rel) = part
                            && let Some(file) = self.keys.file_above(name, &u.artifacts, &u.names)
                        {
                            return Err(both_file_and_dir(rel, &file[u.artifacts.len()..]).into());
                        }
                        u.name_bytes += name.len() as u64;
                        if u.name_bytes > self.limits.max_json_bytes {
                            return Err(violation!(
                                "the names of {id}'s members exceed {} bytes, more than its seal may list (§11)",
                                self.limits.max_json_bytes
                            ));
                        }
                        if u.entries.len() >= self.limits.max_unit_members {
                            return Err(violation!(
                                "{id} has more than {} members (limit)",
                                self.limits.max_unit_members
                            ));
                        }
                        match part {
                            Part::MetricChunk(seq) if *seq != u.next_chunk => {
                                return Err(violation!(
                                    "metric chunk {seq} out of sequence (expected {}) (§8.4)",
                                    u.next_chunk
                                ));
                            }
                            Part::DatasetRecords(seq) if *seq != u.next_chunk => {
                                return Err(violation!(
                                    "dataset records chunk {seq} out of sequence (expected {}) (§8.4)",
                                    u.next_chunk
                                ));
                            }
                            Part::MetricChunk(_) | Part::DatasetRecords(_) => u.next_chunk += 1,
                            Part::Permissions if u.entries.len() != 1 => {
                                return Err(violation!(
                                    "{name} does not directly follow its unit's record (§8.4)"
                                ));
                            }
                            Part::ModelVersion(v) => {
                                if u.last_version.is_some_and(|l| *v <= l) {
                                    return Err(violation!(
                                        "model version {v} out of order (§8.4)"
                                    ));
                                }
                                u.last_version = Some(*v);
                            }
                            _ => {}
                        }
                    }
                    None => {
                        self.kind_defined(id)?;
                        if !matches!(part, Part::Record) && id.since_minor().is_some() {
                            return Err(violation!(
                                "{name} does not follow its unit's record (§8.2)"
                            ));
                        }
                        if self.units_seen.contains(id) {
                            return Err(violation!("{id} appears twice (§8.2)"));
                        }
                        if let UnitId::Model(seq) = id
                            && *seq != self.next_model
                        {
                            return Err(violation!(
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
                            prompt: false,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Checks that the archive's version defines `id`'s kind: a kind of 1.1 in a 1.0 archive, or
    /// a kind this library does not know in an archive of a version it knows, is not in the
    /// grammar; a kind this library does not know in an archive of a later minor version is one
    /// that version defines (§10).
    fn kind_defined(&self, id: &UnitId) -> Result<(), Violation> {
        match id.since_minor() {
            Some(since) if since > self.minor => Err(violation!(
                "{} units are defined by format {FORMAT_MAJOR}.{since}, but the archive says {FORMAT_MAJOR}.{} (§10)",
                id.kind(),
                self.minor
            )),
            None if self.minor <= FORMAT_MINOR => Err(violation!(
                "unknown top-level folder {:?}: format {FORMAT_MAJOR}.{} defines no such unit (§6.1)",
                id.kind(),
                self.minor
            )),
            _ => Ok(()),
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
}
