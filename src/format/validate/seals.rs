//! Units and seals (§8.2, §8.3): a seal against the members read, and the trailer against the
//! whole archive.

use super::Violation;
use super::names::both_file_and_dir;
use super::{Phase, Sealed, Validator};
use crate::format::checksum::Crc32;
use crate::format::model::{Seal, Trailer};
use crate::format::path::UnitId;

impl Validator {
    /// Checks a seal against what was read and closes the unit. `raw` is the seal member's bytes'
    /// CRC (folded into the trailer's `seals_crc32`), `bytes` the seal member itself.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn seal(&mut self, s: &Seal, bytes: &[u8]) -> Result<Sealed, Violation> {
        let Some(u) = self.open.take() else {
            return Err("a seal outside a unit".into());
        };
        let prefix = u.id.prefix();
        if s.unit != prefix {
            return Err(violation!(
                "the seal names unit {:?}, expected {prefix:?} (§8.2)",
                s.unit
            ));
        }
        if s.members.len() != u.entries.len() {
            return Err(violation!(
                "the seal of {} lists {} members, {} were read (§8.2)",
                u.id,
                s.members.len(),
                u.entries.len()
            ));
        }
        for (i, (want, got)) in s.members.iter().zip(&u.entries).enumerate() {
            if self.keys.hash(&want.path) != got.name {
                return Err(violation!(
                    "the seal of {} lists {:?} as member {}, which is not the member read there (§8.2)",
                    u.id,
                    want.path,
                    i + 1
                ));
            }
            if want.size != got.size {
                return Err(violation!(
                    "{}: the seal says {} bytes, {} were read (§8.2)",
                    want.path,
                    want.size,
                    got.size
                ));
            }
            if want.crc32 != got.crc32 {
                return Err(violation!(
                    "{}: CRC-32 mismatch: the seal says {}, the bytes give {} (§8.2)",
                    want.path,
                    want.crc32,
                    got.crc32
                ));
            }
        }
        // An artifact that comes before a file named like one of its directories was let through
        // by `begin` (it checks the directories of each artifact against the members before it);
        // with every member known, the same check on each finds them all.
        for e in &s.members {
            if let Some(file) = self.keys.file_above(&e.path, &u.artifacts, &u.names) {
                let rel = &e.path[u.artifacts.len()..];
                return Err(both_file_and_dir(rel, &file[u.artifacts.len()..]).into());
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
    pub fn trailer(&mut self, t: &Trailer) -> Result<(), Violation> {
        let want = self.expected_trailer();
        if t.units != want.units || t.members != want.members {
            return Err(violation!(
                "the trailer counts {} units and {} members, the archive holds {} and {} (§8.3)",
                t.units,
                t.members,
                want.units,
                want.members
            ));
        }
        if t.header_crc32 != want.header_crc32 {
            return Err(violation!(
                "the trailer's header CRC {} does not match the header ({}) (§8.3)",
                t.header_crc32,
                want.header_crc32
            ));
        }
        if t.seals_crc32 != want.seals_crc32 {
            return Err(violation!(
                "the trailer's seals CRC {} does not match the seals ({}) (§8.3)",
                t.seals_crc32,
                want.seals_crc32
            ));
        }
        // An earlier version's trailer has no counts of what later versions added (a 1.0
        // archive's prompts were counted only as models); a count its version does not define is
        // a field it does not know, and ignored (§7, §8.3).
        let got_counts = t.counts.as_of_minor(self.minor);
        let want_counts = want.counts.as_of_minor(self.minor);
        if got_counts != want_counts {
            return Err(violation!(
                "the trailer's counts {:?} do not match the archive's {:?} (§8.3)",
                got_counts,
                want_counts
            ));
        }
        self.phase = Phase::Done;
        Ok(())
    }
}
