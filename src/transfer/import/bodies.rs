//! Artifact bodies, from the archive to uploads.

use super::*;

/// Passes an artifact's body from the archive to an upload; false if the upload stopped taking
/// it (the rest of the body is still read, so the archive stays in step).
pub(super) async fn pump_body(
    source: &mut ArchiveSource,
    tx: &mpsc::Sender<Result<Bytes>>,
    progress: &Option<Arc<Progress>>,
) -> Result<bool> {
    let mut taken = true;
    loop {
        match source.next().await {
            Some(Ok(Event::Body(b))) => {
                if taken {
                    tick(progress, Counter::Bytes, b.len() as u64);
                }
                if taken && tx.send(Ok(b)).await.is_err() {
                    taken = false;
                }
            }
            Some(Ok(Event::ArtifactEnd)) => return Ok(taken),
            Some(Ok(_)) => return Err(Error::Internal("archive events out of order".into())),
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(Error::Input(
                        "the archive failed while reading this artifact".into(),
                    )))
                    .await;
                return Err(e);
            }
            None => return Err(ended_inside_an_artifact()),
        }
    }
}

/// Reads a whole (small) artifact body from the archive.
pub(super) async fn read_body(source: &mut ArchiveSource, size: u64) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    loop {
        match source.next().await {
            Some(Ok(Event::Body(b))) => body.extend_from_slice(&b),
            Some(Ok(Event::ArtifactEnd)) => return Ok(body),
            Some(Ok(_)) => return Err(Error::Internal("archive events out of order".into())),
            Some(Err(e)) => return Err(e),
            None => return Err(ended_inside_an_artifact()),
        }
    }
}

/// The largest `MLmodel` file whose `run_id` is rewritten (larger ones are copied as they are).
pub(super) const MAX_PATCHED: u64 = 1 << 20;

/// An `MLmodel` file with its top-level `run_id: <source>` line pointing at the new run (what MLflow
/// itself reads to find a model's run); everything else is left byte for byte.
pub fn patch_mlmodel(body: &[u8], src_run: &str, dst_run: &str) -> Vec<u8> {
    let runs = HashMap::from([(src_run.to_string(), dst_run.to_string())]);
    patch_mlmodel_with(
        body,
        &Rewrites {
            runs: Some(&runs),
            ..Rewrites::default()
        },
    )
}

/// What the top-level lines of an `MLmodel` file are pointed at on the destination.
#[derive(Default)]
pub(super) struct Rewrites<'a> {
    /// Source run id → destination run id (`run_id:`).
    pub runs: Option<&'a HashMap<String, String>>,
    /// Source logged model id → destination logged model id (`model_id:`, `model_uuid:`).
    pub models: Option<&'a HashMap<String, String>>,
    /// Source run or logged model id → the destination's artifact root of the same object: an
    /// `artifact_path:` holding a location inside the source's root (MLflow 3 writes the logged
    /// model's full location there) moves with it, whatever the two schemes.
    pub roots: Vec<(&'a str, &'a str)>,
    /// A source object whose `artifact_path:` lines are left as they are, for a later pass that
    /// knows its destination (a run's, rewritten by its task once the run is made).
    pub keep: Option<&'a str>,
}

/// [`patch_mlmodel`] with every rewrite MLflow 3's `MLmodel` files need: `run_id`, `model_id`
/// and `model_uuid` of known objects, and an `artifact_path` inside a known root. Lines that
/// name nothing known (and every nested line) are left byte for byte.
pub(super) fn patch_mlmodel_with(body: &[u8], r: &Rewrites<'_>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        };
        let new = content.split_once(':').and_then(|(key, value)| {
            let v = value.trim().trim_matches(|c| c == '\'' || c == '"');
            let found = match key {
                "run_id" => r.runs.and_then(|m| m.get(v)).cloned(),
                "model_id" | "model_uuid" => r.models.and_then(|m| m.get(v)).cloned(),
                "artifact_path"
                    if r.keep
                        .is_some_and(|k| super::registry::inside(v, k).is_some()) =>
                {
                    None
                }
                "artifact_path" => r.roots.iter().find_map(|(id, root)| {
                    super::registry::inside(v, id)
                        .map(|tail| format!("{}{tail}", root.trim_end_matches('/')))
                }),
                _ => None,
            };
            found.map(|f| format!("{key}: {f}"))
        });
        match new {
            Some(n) => {
                out.push_str(&n);
                out.push_str(end);
            }
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn artifact(
        &mut self,
        a: ArtifactEntry,
        source: &mut ArchiveSource,
    ) -> Result<()> {
        let path = a.path.clone();
        let about = |e: Error| e.about(format!("artifact {path:?}"));
        if let Open::Trace(_) = &self.open {
            return self.trace_artifact(a, source).await.map_err(about);
        }
        if let Open::Run { src, .. } = &self.open {
            let is_mlmodel = a.path.rsplit('/').next() == Some("MLmodel");
            if a.size <= BUFFERED_FILE_MAX || (is_mlmodel && a.size <= MAX_PATCHED) {
                let src_id = src.run_id.clone();
                let body = read_body(source, a.size).await.map_err(about)?;
                if is_mlmodel {
                    // What names other objects is pointed at their destinations here; its own
                    // run's id and root, by the run's task once it has made the run (the reader
                    // does not wait for that: at 100 ms each way a round trip per run).
                    let roots: Vec<(&str, &str)> = self
                        .model_roots
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let data = patch_mlmodel_with(
                        &body,
                        &Rewrites {
                            runs: None,
                            models: Some(&self.report.logged_models),
                            roots,
                            keep: Some(&src_id),
                        },
                    );
                    return self.run_op(Op::UploadMlmodel { path: a.path, data }).await;
                }
                return self
                    .run_op(Op::UploadBytes {
                        path: a.path,
                        data: Bytes::from(body),
                    })
                    .await;
            }
            let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
            let owner = Owner::Run(src.run_id.clone());
            self.run_op(Op::Upload {
                path: a.path.clone(),
                size: a.size,
                body: rx,
                owner,
            })
            .await?;
            if !pump_body(source, &tx, &self.opts.progress)
                .await
                .map_err(about)?
                && self.opts.replay.is_none()
            {
                // The upload stopped early and cannot be sent again: the worker has the error.
                // (With a replay, the worker sends the body again from there.)
                drop(tx);
                return self.run_op_error().await;
            }
            return Ok(());
        }
        let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
        let Open::LoggedModel { root, src, .. } = &self.open else {
            // A unit imported earlier: the body is read (and checked), not written.
            drop(rx);
            pump_body(source, &tx, &None).await.map_err(about)?;
            return Ok(());
        };
        if a.path.rsplit('/').next() == Some("MLmodel") && a.size <= MAX_PATCHED {
            // The model's own `MLmodel`: its id, location and run are the destination's.
            let (src_model, dst_model) = match &self.open {
                Open::LoggedModel { src, dst, .. } => (src.model_id.clone(), dst.clone()),
                _ => unreachable!("matched above"),
            };
            let (root, size) = (root.clone(), a.size);
            drop(rx);
            let body = read_body(source, size).await.map_err(about)?;
            let models = HashMap::from([(src_model.clone(), dst_model)]);
            let body = patch_mlmodel_with(
                &body,
                &Rewrites {
                    runs: Some(&self.run_ids),
                    models: Some(&models),
                    roots: vec![(src_model.as_str(), root.uri())],
                    keep: None,
                },
            );
            tick(&self.opts.progress, Counter::Files, 1);
            self.client
                .upload_bytes(&root, &a.path, Bytes::from(body))
                .await
                .map_err(about)?;
            self.report.artifacts += 1;
            self.report.artifact_bytes += size;
            return Ok(());
        }
        let client = self.client.clone();
        let (root, size) = (root.clone(), a.size);
        let owner = Owner::LoggedModel(src.model_id.clone());
        let replay = self.opts.replay.clone();
        let upload = AbortOnDrop(Some(tokio::spawn(async move {
            let replay = replay.as_ref().map(|r| (r, &owner));
            crate::transfer::replay::upload(&client, &root, &a.path, size, tokio_stream(rx), replay)
                .await
        })));
        tick(&self.opts.progress, Counter::Files, 1);
        let pumped = pump_body(source, &tx, &self.opts.progress)
            .await
            .map_err(about);
        drop(tx);
        let mut upload = upload;
        let uploaded = upload
            .join("uploading")
            .await
            .and_then(|r| r)
            .map_err(about);
        pumped?;
        uploaded?;
        self.report.artifacts += 1;
        self.report.artifact_bytes += size;
        Ok(())
    }
}

/// The archive's end inside an artifact's body (a truncated archive).
pub(crate) fn ended_inside_an_artifact() -> Error {
    Error::Format {
        offset: None,
        member: None,
        object: None,
        detail: "the archive ended inside an artifact (§8.2, §8.3)".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Rewrites, patch_mlmodel, patch_mlmodel_with};

    #[test]
    fn an_mlflow_3_mlmodel_names_the_new_model_its_location_and_run() {
        let src = "artifact_path: s3://old/mlruns/1/models/m-src/artifacts\nflavors:\n  python_function:\n    model_id: m-src\nmodel_id: m-src\nmodel_uuid: m-src\nrun_id: r-src\nutc_time_created: x\n";
        let runs = HashMap::from([("r-src".to_string(), "r-dst".to_string())]);
        let models = HashMap::from([("m-src".to_string(), "m-dst".to_string())]);
        let out = patch_mlmodel_with(
            src.as_bytes(),
            &Rewrites {
                runs: Some(&runs),
                models: Some(&models),
                roots: vec![(
                    "m-src",
                    "wasbs://c@a.blob.core.windows.net/mlruns/4/models/m-dst/artifacts/",
                )],
                keep: None,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "artifact_path: wasbs://c@a.blob.core.windows.net/mlruns/4/models/m-dst/artifacts\nflavors:\n  python_function:\n    model_id: m-src\nmodel_id: m-dst\nmodel_uuid: m-dst\nrun_id: r-dst\nutc_time_created: x\n"
        );
        // A relative artifact_path (MLflow 2) and unknown ids stay as they are.
        let old = "artifact_path: model\nmodel_id: m-other\nrun_id: r-other\n";
        let same = patch_mlmodel_with(
            old.as_bytes(),
            &Rewrites {
                runs: Some(&runs),
                models: Some(&models),
                roots: vec![("r-src", "s3://b/x")],
                keep: None,
            },
        );
        assert_eq!(same, old.as_bytes());
    }

    #[test]
    fn mlmodel_run_id_is_rewritten_and_nothing_else() {
        let src = "artifact_path: model\nflavors:\n  python_function: {}\nrun_id: abc\nutc_time_created: x\n";
        let out = String::from_utf8(patch_mlmodel(src.as_bytes(), "abc", "def")).unwrap();
        assert_eq!(out, src.replace("run_id: abc", "run_id: def"));
        let quoted = "run_id: 'abc'";
        assert_eq!(
            patch_mlmodel(quoted.as_bytes(), "abc", "def"),
            b"run_id: def"
        );
        let other = "run_id: zzz\n  run_id: abc\n";
        assert_eq!(
            patch_mlmodel(other.as_bytes(), "abc", "def"),
            other.as_bytes()
        );
        assert_eq!(patch_mlmodel(&[0xff, 0xfe], "a", "b"), vec![0xff, 0xfe]);
    }
}
