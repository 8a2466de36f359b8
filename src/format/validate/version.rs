//! The format version (§10): parsing `MAJOR.MINOR`, and the version writers emit.

use crate::format::{FORMAT_MAJOR, FORMAT_MINOR};

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
