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
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        };
        let value = content.strip_prefix("run_id:").map(str::trim);
        if value.is_some_and(|v| v.trim_matches(|c| c == '\'' || c == '"') == src_run) {
            out.push_str("run_id: ");
            out.push_str(dst_run);
            out.push_str(end);
        } else {
            out.push_str(line);
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
        if let Open::Run { src, dst, .. } = &self.open {
            let is_mlmodel = a.path.rsplit('/').next() == Some("MLmodel");
            if a.size <= BUFFERED_FILE_MAX || (is_mlmodel && a.size <= MAX_PATCHED) {
                let (src_id, dst_id) = (src.run_id.clone(), dst.clone());
                let mut body = read_body(source, a.size).await.map_err(about)?;
                if is_mlmodel {
                    body = patch_mlmodel(&body, &src_id, &dst_id);
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
    use super::patch_mlmodel;

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
