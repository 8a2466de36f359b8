//! The Python tool's provenance tags (`--export-metadata-tags`).

use super::METADATA_PREFIX;
use crate::format::model as rec;
use crate::mlflow::types::Run;

/// The provenance tags of `run`, exported now from `server` (`experiment`: its experiment's
/// name, when known).
pub(super) fn metadata_tags(run: &Run, experiment: Option<&String>, server: &str) -> Vec<rec::Tag> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    [
        ("timestamp", now.to_string()),
        ("timestamp_nice", format_utc(now)),
        ("experiment_id", run.info.experiment_id.clone()),
        ("experiment-name", experiment.cloned().unwrap_or_default()),
        ("tracking_uri", server.to_string()),
        ("run-id", run.info.run_id.clone()),
    ]
    .into_iter()
    .map(|(k, v)| rec::Tag::new(format!("{METADATA_PREFIX}{k}"), v))
    .collect()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for seconds since the epoch.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formatting() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_utc(1_684_688_346), "2023-05-21 16:59:06");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00");
    }
}
