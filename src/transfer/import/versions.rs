//! A registered model's versions after their create: each is settled by a task of its own
//! ([`VersionTail`]) while the next versions are made, since only the creates must come in
//! order (the registry numbers versions in the order it makes them).

use super::registry::{StageTo, real_stage};
use super::*;

/// Deletes placeholders of model `name` numbered under `below`.
pub(super) async fn delete_placeholders(
    client: &impl Destination,
    name: &str,
    placeholders: &[u64],
    below: u64,
) -> Result<()> {
    for p in placeholders.iter().filter(|p| **p < below) {
        match client.delete_model_version(name, &p.to_string()).await {
            // (A concurrent import deleted it first.)
            Err(e) if e.is_not_found() => {}
            other => other?,
        }
    }
    Ok(())
}

/// Moves version `dst` of model `name` to stage `want` (the archived version's), if it is not
/// there (when stages are carried as stages; `update`: a sync, which also moves a version the
/// source took out of its stage back to `None`); whether it moved it.
pub(super) async fn set_stage(
    client: &impl Destination,
    plan: StageTo,
    update: bool,
    name: &str,
    want: &str,
    dst: &crate::mlflow::types::ModelVersion,
) -> Result<bool> {
    if plan != StageTo::Stage || dst.current_stage == want {
        return Ok(false);
    }
    let target = if real_stage(want) {
        want
    } else if update && real_stage(&dst.current_stage) {
        // A sync: the source moved the version out of its stage.
        "None"
    } else {
        return Ok(false);
    };
    client
        .transition_stage(name, &dst.version, target)
        .await
        .map(|()| true)
}

/// Whether version `x` is one an import made from source version `number` of the source model
/// keyed `key` (one made before the model tag existed is taken for it too).
pub(super) fn ours(x: &crate::mlflow::types::ModelVersion, number: &str, key: &str) -> bool {
    x.tags
        .iter()
        .any(|t| t.key == LINEAGE_VERSION && t.value == number)
        && x.tags
            .iter()
            .find(|t| t.key == LINEAGE_SOURCE_MODEL)
            .is_none_or(|t| t.value == key)
}

/// What a model's versions say about one source version.
pub(super) struct Known {
    /// The version an earlier import made from it.
    pub(super) done: Option<crate::mlflow::types::ModelVersion>,
    /// Placeholders left by an interrupted import.
    pub(super) placeholders: Vec<u64>,
    /// The highest version number.
    pub(super) top: u64,
}

impl Known {
    pub(super) fn of(
        versions: &[crate::mlflow::types::ModelVersion],
        number: &str,
        key: &str,
    ) -> Self {
        Known {
            done: versions.iter().find(|x| ours(x, number, key)).cloned(),
            placeholders: versions
                .iter()
                .filter(|x| x.tags.iter().any(|t| t.key == PLACEHOLDER))
                .map(crate::mlflow::types::ModelVersion::number)
                .collect(),
            top: versions
                .iter()
                .map(crate::mlflow::types::ModelVersion::number)
                .filter(|n| *n != u64::MAX)
                .max()
                .unwrap_or(0),
        }
    }
}

/// What follows a new version's create, done by a task of its own while the reader makes the
/// next versions (versions of one model are made in order; what follows each is not): its wait
/// until the registry has it ready (when the create did not say so), the check that no
/// concurrent import made the same version first (the lower number wins, the other is given
/// up), its stage, and the deletion of the placeholders under it.
pub(super) struct VersionTail<D> {
    pub(super) client: D,
    pub(super) plan: StageTo,
    pub(super) update: bool,
    pub(super) name: String,
    pub(super) src_number: u64,
    /// The archived version's stage.
    pub(super) stage: String,
    /// The source model's key (for [`ours`]).
    pub(super) key: String,
    pub(super) wait_ready: bool,
    pub(super) created: crate::mlflow::types::ModelVersion,
    pub(super) placeholders: Vec<u64>,
}

/// A version settled by its [`VersionTail`].
pub(super) struct Settled {
    pub(super) src_number: u64,
    /// The destination's version that stands for it.
    pub(super) version: String,
    /// Made by this import (not found made first by another).
    pub(super) made: bool,
}

impl<D: Destination> VersionTail<D> {
    pub(super) async fn run(self) -> Result<Settled> {
        let what = format!("version {}", self.src_number);
        self.settle().await.map_err(|e| e.within(what))
    }

    async fn settle(self) -> Result<Settled> {
        let VersionTail {
            client,
            plan,
            update,
            name,
            src_number,
            stage,
            key,
            wait_ready,
            created,
            placeholders,
        } = self;
        if wait_ready {
            client
                .wait_model_version_ready(&name, &created.version)
                .await?;
        }
        let number = src_number.to_string();
        let first = client
            .model_versions(&name)
            .await?
            .into_iter()
            .filter(|x| ours(x, &number, &key))
            .min_by_key(crate::mlflow::types::ModelVersion::number);
        if let Some(first) = first
            && first.number() < created.number()
        {
            client.delete_model_version(&name, &created.version).await?;
            set_stage(&client, plan, update, &name, &stage, &first).await?;
            delete_placeholders(&client, &name, &placeholders, first.number()).await?;
            return Ok(Settled {
                src_number,
                version: first.version,
                made: false,
            });
        }
        set_stage(&client, plan, update, &name, &stage, &created).await?;
        delete_placeholders(&client, &name, &placeholders, created.number()).await?;
        Ok(Settled {
            src_number,
            version: created.version,
            made: true,
        })
    }
}
