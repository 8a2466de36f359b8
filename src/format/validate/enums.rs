//! The values of the fields the spec enumerates (§7), and the check that a field holds one.

use super::Violation;

/// A run's `status` (§7.3).
pub const RUN_STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
/// An experiment's or a run's `lifecycle_stage` (§7.2, §7.3).
pub const LIFECYCLE_STAGES: &[&str] = &["active", "deleted"];
/// A model version's `current_stage` (§7.7).
pub const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];

/// A trace's `state` (§7.8).
pub const TRACE_STATES: &[&str] = &["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"];

/// The kinds of principal of an access control entry (§7.11).
pub use crate::format::model::PRINCIPAL_TYPES;

/// Checks that a field the spec enumerates holds one of its values: a consumer must not guess
/// what another value means (a run `"PWNED"` is not RUNNING).
pub(super) fn one_of(
    record: &str,
    field: &str,
    value: &str,
    allowed: &[&str],
    section: &str,
) -> Result<(), Violation> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(violation!(
        "the {record} record's {field} {value:?} is not one of {} (§{section})",
        allowed.join(", ")
    ))
}
