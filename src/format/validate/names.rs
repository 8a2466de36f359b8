//! Member names: their 128-bit keyed hashes (what the validator keeps of a name, so a unit's
//! memory does not grow with its names' length), and the rule that a path is not both a file and
//! a directory (§6.3).

use std::collections::HashSet;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};

/// 128-bit hashes of member names: two SipHash-1-3 with keys chosen at random for each validator,
/// so that no archive can be made to collide. A collision could only make the validator refuse a
/// valid archive (as a duplicate, or a file above an artifact) or take a seal's listing of one
/// name for another name with the same size and CRC; at 128 bits neither happens by chance.
#[derive(Debug, Clone, Default)]
pub(super) struct NameKeys(RandomState, RandomState);

#[derive(Clone)]
struct NameHasher(DefaultHasher, DefaultHasher);

impl NameKeys {
    fn hasher(&self) -> NameHasher {
        NameHasher(self.0.build_hasher(), self.1.build_hasher())
    }

    pub(super) fn hash(&self, name: &str) -> u128 {
        let mut h = self.hasher();
        h.write(name);
        h.finish()
    }

    /// The first directory of the artifact member `name` (a name below `root`, its unit's
    /// `<prefix>/artifacts/`) that is also the name of a member in `names`, if any. One pass over
    /// the name: the hash of each directory is the hash of the name so far.
    pub(super) fn file_above<'a>(
        &self,
        name: &'a str,
        root: &str,
        names: &HashSet<u128>,
    ) -> Option<&'a str> {
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

pub(super) fn both_file_and_dir(rel: &str, file: &str) -> String {
    format!(
        "artifact {rel:?} is inside {file:?}, which is a file: a path must not be both a file and a directory (§6.3)"
    )
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
