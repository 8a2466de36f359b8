//! Diagnostics on standard error. The library reports what it does as `tracing` events (each
//! request at `DEBUG`, each retry at `INFO`); they are shown when `RUST_LOG` asks for them
//! (targets and levels, e.g. `mlflow_archive=debug` or `info`) or when `MLFLOW_ARCHIVE_DEBUG` is
//! set (to anything: the same as adding `mlflow_archive=debug`). Otherwise nothing is installed.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber the environment asks for, if any.
pub fn install() {
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => match s.parse::<Targets>() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!(
                    "mlflow-archive: warning: RUST_LOG ignored ({e}); give targets and levels, e.g. mlflow_archive=debug"
                );
                None
            }
        },
        _ => None,
    };
    if std::env::var_os("MLFLOW_ARCHIVE_DEBUG").is_some() {
        let t = filter.take().unwrap_or_default();
        filter = Some(t.with_target("mlflow_archive", Level::DEBUG));
    }
    let Some(filter) = filter else {
        return;
    };
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}
