//! The floor: a raw MLflow REST client that does the benchmark's jobs with only the requests each
//! job needs, at a given concurrency, and nothing else (no archive, no checksums, no lineage tags,
//! no resume, no fidelity beyond what the bench data sets hold; no retries but of a server's
//! "QueuePool limit" answer, out of database connections at 16 and more in flight, which
//! mlflow-archive retries too). `benches/transfer.sh`
//! runs it beside mlflow-archive on the same servers: its time is what the server allows, the
//! yardstick for "within 1.25x of the floor".
//!
//!     floor export --src URI --out DIR [--jobs N]
//!     floor import --dst URI --in DIR [--jobs N]
//!     floor copy   --src URI --dst URI [--jobs N]
//!
//! Scope: every active experiment with runs (except the empty Default), and every registered
//! model with its versions (stages, aliases, tags). What it does per object:
//! - read: one `runs/search` page per 1000 runs (the page carries params, tags, latest metrics and
//!   inputs); one `get-history` per metric key, unpaged (the whole history in one response);
//!   `artifacts/list` per directory; one GET per file, streamed to disk (export) or straight into
//!   the destination's PUT (copy); `registered-models/search`, one `model-versions/search` per
//!   model;
//! - write: `experiments/create`; per run `runs/create`, `log-batch` with up to 1000 entities
//!   each (params and tags ride in the first batch), one PUT per file, one `runs/update`; per model
//!   `registered-models/create`, `model-versions/create` per version, `transition-stage` and
//!   `alias` where set.
//!
//! Runs go `--jobs` at a time (parents before children, whose tags carry the parent's new id).
//! Within a run, requests are sequential. It counts its requests and prints them on stderr.
//! Anything unexpected is a panic with the server's answer: this is a bench tool, not the product.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

const API: &str = "api/2.0/mlflow";

#[derive(Clone)]
struct Server {
    http: reqwest::Client,
    base: String,
    requests: Arc<AtomicU64>,
}

impl Server {
    fn new(base: &str, requests: Arc<AtomicU64>) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            requests,
        }
    }

    async fn send(&self, mut req: reqwest::RequestBuilder, what: &str) -> reqwest::Response {
        for attempt in 1.. {
            // (A streamed body cannot be sent twice: such a request is never retried.)
            let again = req.try_clone();
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
            if resp.status().is_success() {
                return resp;
            }
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            // A server out of database connections is overloaded, not refusing (mlflow-archive
            // sends such a request again too): wait and send it again, up to 5 times.
            match again {
                Some(r) if attempt <= 5 && body.contains("QueuePool limit") => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                    req = r;
                }
                _ => panic!("{what}: {status} {body}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let req = self
            .http
            .get(format!("{}/{API}/{path}", self.base))
            .query(query);
        self.send(req, path).await.json().await.expect(path)
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let req = self
            .http
            .post(format!("{}/{API}/{path}", self.base))
            .json(body);
        self.send(req, path).await.json().await.expect(path)
    }

    /// The proxied artifact URL of `path` under a run's `mlflow-artifacts:/…` root.
    fn artifact_url(&self, root: &str, path: &str) -> String {
        let rest = root
            .strip_prefix("mlflow-artifacts:")
            .expect("served artifacts");
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts{rest}/{path}",
            self.base
        )
    }
}

/// Every page of a search, concatenated (`key` is the list's field).
async fn search_all(s: &Server, path: &str, get: bool, body: Value, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut b = body.clone();
        if let Some(t) = &token {
            b["page_token"] = json!(t);
        }
        let page = if get {
            let q: Vec<(String, String)> = b
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
                .collect();
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            s.get(path, &q).await
        } else {
            s.post(path, &b).await
        };
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return out,
        }
    }
}

/// What the floor moves: experiments with their runs, and registered models with versions.
struct Catalog {
    experiments: Vec<(Value, Vec<Value>)>,
    models: Vec<(Value, Vec<Value>)>,
}

async fn read_catalog(s: &Server) -> Catalog {
    let mut experiments = Vec::new();
    let exps = search_all(
        s,
        "experiments/search",
        false,
        json!({"max_results": 1000, "view_type": "ACTIVE_ONLY"}),
        "experiments",
    )
    .await;
    for e in exps {
        let id = e["experiment_id"].as_str().unwrap().to_string();
        let runs = search_all(
            s,
            "runs/search",
            false,
            json!({"experiment_ids": [id], "max_results": 1000, "run_view_type": "ALL"}),
            "runs",
        )
        .await;
        if !runs.is_empty() {
            experiments.push((e, runs));
        }
    }
    let mut models = Vec::new();
    for m in search_all(
        s,
        "registered-models/search",
        true,
        json!({"max_results": 1000}),
        "registered_models",
    )
    .await
    {
        let filter = format!("name='{}'", m["name"].as_str().unwrap());
        let versions = search_all(
            s,
            "model-versions/search",
            true,
            json!({"filter": filter, "max_results": 10000}),
            "model_versions",
        )
        .await;
        models.push((m, versions));
    }
    Catalog {
        experiments,
        models,
    }
}

/// Every file under a run's artifact root, as paths relative to it.
async fn list_files(s: &Server, run_id: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let mut q = vec![("run_id", run_id)];
        if !dir.is_empty() {
            q.push(("path", dir.as_str()));
        }
        let listing = s.get("artifacts/list", &q).await;
        for f in listing["files"].as_array().cloned().unwrap_or_default() {
            let path = f["path"].as_str().unwrap().to_string();
            if f["is_dir"].as_bool() == Some(true) {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn metric_keys(run: &Value) -> Vec<String> {
    run["data"]["metrics"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["key"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn history(s: &Server, run_id: &str, key: &str) -> reqwest::Response {
    let req = s
        .http
        .get(format!("{}/{API}/metrics/get-history", s.base))
        .query(&[("run_id", run_id), ("metric_key", key)]);
    s.send(req, "metrics/get-history").await
}

// ---------------------------------------------------------------- export: server -> directory

async fn export(src: &Server, out: &Path, jobs: usize) {
    let catalog = read_catalog(src).await;
    std::fs::create_dir_all(out).unwrap();
    let exps: Vec<Value> = catalog
        .experiments
        .iter()
        .map(|(e, runs)| json!({"experiment": e, "runs": runs}))
        .collect();
    let models: Vec<Value> = catalog
        .models
        .iter()
        .map(|(m, v)| json!({"model": m, "versions": v}))
        .collect();
    std::fs::write(
        out.join("catalog.json"),
        serde_json::to_vec(&json!({"experiments": exps, "models": models})).unwrap(),
    )
    .unwrap();
    let runs = catalog.experiments.iter().flat_map(|(_, runs)| runs.iter());
    stream::iter(runs)
        .for_each_concurrent(jobs, |run| async move {
            let id = run["info"]["run_id"].as_str().unwrap();
            let dir = out.join(id);
            tokio::fs::create_dir_all(dir.join("metrics"))
                .await
                .unwrap();
            for key in metric_keys(run) {
                let resp = history(src, id, &key).await;
                write_stream(resp, &dir.join("metrics").join(&key)).await;
            }
            let root = run["info"]["artifact_uri"].as_str().unwrap();
            for path in list_files(src, id).await {
                let req = src.http.get(src.artifact_url(root, &path));
                let resp = src.send(req, "artifact GET").await;
                write_stream(resp, &dir.join("artifacts").join(&path)).await;
            }
        })
        .await;
}

async fn write_stream(resp: reqwest::Response, to: &Path) {
    use tokio::io::AsyncWriteExt;
    tokio::fs::create_dir_all(to.parent().unwrap())
        .await
        .unwrap();
    let mut f = tokio::fs::File::create(to).await.unwrap();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        f.write_all(&chunk.expect("body")).await.unwrap();
    }
    f.flush().await.unwrap();
}

// ---------------------------------------------------------------- import and copy: writing

/// Where a run's data comes from: a directory written by `export`, or the source server.
#[derive(Clone)]
enum Origin {
    Dir(PathBuf),
    Server(Server),
}

impl Origin {
    async fn points(&self, run: &Value, key: &str) -> Vec<Value> {
        let id = run["info"]["run_id"].as_str().unwrap();
        let doc: Value = match self {
            Origin::Dir(d) => serde_json::from_slice(
                &tokio::fs::read(d.join(id).join("metrics").join(key))
                    .await
                    .unwrap(),
            )
            .unwrap(),
            Origin::Server(s) => history(s, id, key).await.json().await.unwrap(),
        };
        doc["metrics"].as_array().cloned().unwrap_or_default()
    }

    async fn files(&self, run: &Value) -> Vec<String> {
        let id = run["info"]["run_id"].as_str().unwrap();
        match self {
            Origin::Dir(d) => {
                let root = d.join(id).join("artifacts");
                let mut files = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(dir) = dirs.pop() {
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    for e in entries {
                        let p = e.unwrap().path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            files.push(
                                p.strip_prefix(&root)
                                    .unwrap()
                                    .to_string_lossy()
                                    .into_owned(),
                            );
                        }
                    }
                }
                files
            }
            Origin::Server(s) => list_files(s, id).await,
        }
    }

    /// A body for the PUT of one file, streamed, and its length.
    async fn file(&self, run: &Value, path: &str) -> (reqwest::Body, u64) {
        let id = run["info"]["run_id"].as_str().unwrap();
        match self {
            Origin::Dir(d) => {
                let f = tokio::fs::File::open(d.join(id).join("artifacts").join(path))
                    .await
                    .unwrap();
                let len = f.metadata().await.unwrap().len();
                let s = tokio_util::io::ReaderStream::with_capacity(f, 256 << 10);
                (reqwest::Body::wrap_stream(s), len)
            }
            Origin::Server(s) => {
                let root = run["info"]["artifact_uri"].as_str().unwrap();
                let resp = s
                    .send(s.http.get(s.artifact_url(root, path)), "artifact GET")
                    .await;
                let len = resp.content_length().expect("content length");
                (
                    reqwest::Body::wrap_stream(resp.bytes_stream().map_err(std::io::Error::other)),
                    len,
                )
            }
        }
    }
}

/// Copies one run into `exp_id` on `dst`; returns its new id.
async fn write_run(
    dst: &Server,
    from: &Origin,
    exp_id: &str,
    run: &Value,
    parent: Option<&str>,
) -> String {
    let info = &run["info"];
    let mut tags: Vec<Value> = run["data"]["tags"].as_array().cloned().unwrap_or_default();
    if let Some(p) = parent {
        for t in &mut tags {
            if t["key"] == "mlflow.parentRunId" {
                t["value"] = json!(p);
            }
        }
    }
    let created = dst
        .post(
            "runs/create",
            &json!({"experiment_id": exp_id, "start_time": info["start_time"], "run_name": info["run_name"],
                    "user_id": info["user_id"], "tags": tags}),
        )
        .await;
    let id = created["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = created["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    // Params (and nothing else: tags went with the create) fill the first batch; metrics follow,
    // 1000 entities a request.
    let mut params: Vec<Value> = run["data"]["params"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut metrics: Vec<Value> = Vec::new();
    for key in metric_keys(run) {
        for mut p in from.points(run, &key).await {
            p["key"] = json!(key);
            metrics.push(p);
            if params.len() + metrics.len() == 1000 {
                log_batch(
                    dst,
                    &id,
                    std::mem::take(&mut params),
                    std::mem::take(&mut metrics),
                )
                .await;
            }
        }
    }
    if !params.is_empty() || !metrics.is_empty() {
        log_batch(dst, &id, params, metrics).await;
    }
    for path in from.files(run).await {
        let (body, len) = from.file(run, &path).await;
        let req = dst
            .http
            .put(dst.artifact_url(&root, &path))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        dst.send(req, "artifact PUT").await;
    }
    let mut update = json!({"run_id": id, "status": info["status"]});
    if !info["end_time"].is_null() {
        update["end_time"] = info["end_time"].clone();
    }
    dst.post("runs/update", &update).await;
    if info["lifecycle_stage"] == "deleted" {
        dst.post("runs/delete", &json!({"run_id": id})).await;
    }
    id
}

async fn log_batch(dst: &Server, id: &str, params: Vec<Value>, metrics: Vec<Value>) {
    dst.post(
        "runs/log-batch",
        &json!({"run_id": id, "params": params, "metrics": metrics}),
    )
    .await;
}

async fn write_all(dst: &Server, from: &Origin, catalog: &Catalog, jobs: usize) {
    let mut new_ids: HashMap<String, String> = HashMap::new();
    for (e, runs) in &catalog.experiments {
        let tags = e["tags"].clone();
        let created = dst
            .post(
                "experiments/create",
                &json!({"name": e["name"], "tags": if tags.is_null() { json!([]) } else { tags }}),
            )
            .await;
        let exp_id = created["experiment_id"].as_str().unwrap().to_string();
        // Parents first (their children's tags need their new ids), then everyone else.
        let parent_of = |r: &Value| {
            r["data"]["tags"].as_array().and_then(|t| {
                t.iter()
                    .find(|t| t["key"] == "mlflow.parentRunId")
                    .map(|t| t["value"].as_str().unwrap().to_string())
            })
        };
        let (children, roots): (Vec<&Value>, Vec<&Value>) =
            runs.iter().partition(|r| parent_of(r).is_some());
        for wave in [roots, children] {
            let done: Vec<(String, String)> = stream::iter(wave)
                .map(|run| {
                    let parent = parent_of(run).map(|p| new_ids.get(&p).cloned().unwrap_or(p));
                    let exp_id = exp_id.clone();
                    async move {
                        let new = write_run(dst, from, &exp_id, run, parent.as_deref()).await;
                        (run["info"]["run_id"].as_str().unwrap().to_string(), new)
                    }
                })
                .buffer_unordered(jobs)
                .collect()
                .await;
            new_ids.extend(done);
        }
    }
    for (m, versions) in &catalog.models {
        let name = m["name"].clone();
        dst.post(
            "registered-models/create",
            &json!({"name": name, "description": m["description"], "tags": m["tags"].as_array().cloned().unwrap_or_default()}),
        )
        .await;
        let mut versions = versions.clone();
        versions.sort_by_key(|v| v["version"].as_str().unwrap().parse::<u64>().unwrap());
        for v in &versions {
            let old = v["run_id"].as_str().unwrap();
            let new = &new_ids[old];
            let source = v["source"].as_str().unwrap().replace(old, new);
            let created = dst
                .post(
                    "model-versions/create",
                    &json!({"name": name, "source": source, "run_id": new, "description": v["description"],
                            "tags": v["tags"].as_array().cloned().unwrap_or_default()}),
                )
                .await;
            let number = created["model_version"]["version"].clone();
            if let Some(stage) = v["current_stage"].as_str().filter(|s| *s != "None") {
                dst.post(
                    "model-versions/transition-stage",
                    &json!({"name": name, "version": number, "stage": stage, "archive_existing_versions": false}),
                )
                .await;
            }
        }
        for a in m["aliases"].as_array().cloned().unwrap_or_default() {
            dst.post(
                "registered-models/alias",
                &json!({"name": name, "alias": a["alias"], "version": a["version"]}),
            )
            .await;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter().position(|a| a == name).map(|i| {
            args.get(i + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"))
                .clone()
        })
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let jobs: usize = opt("--jobs").map_or(8, |j| j.parse().expect("--jobs N"));
    let requests = Arc::new(AtomicU64::new(0));
    let server = |name: &str| {
        Server::new(
            &opt(name).unwrap_or_else(|| panic!("{name} URI is needed")),
            requests.clone(),
        )
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t = std::time::Instant::now();
    match args.first().map(String::as_str) {
        Some("export") => rt.block_on(export(
            &server("--src"),
            Path::new(&opt("--out").expect("--out DIR")),
            jobs,
        )),
        Some("import") => {
            let dir = PathBuf::from(opt("--in").expect("--in DIR"));
            let doc: Value =
                serde_json::from_slice(&std::fs::read(dir.join("catalog.json")).unwrap()).unwrap();
            let pairs = |k: &str, a: &str, b: &str| -> Vec<(Value, Vec<Value>)> {
                doc[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| (x[a].clone(), x[b].as_array().unwrap().clone()))
                    .collect()
            };
            let catalog = Catalog {
                experiments: pairs("experiments", "experiment", "runs"),
                models: pairs("models", "model", "versions"),
            };
            rt.block_on(write_all(
                &server("--dst"),
                &Origin::Dir(dir),
                &catalog,
                jobs,
            ));
        }
        Some("copy") => {
            let src = server("--src");
            rt.block_on(async {
                let catalog = read_catalog(&src).await;
                write_all(
                    &server("--dst"),
                    &Origin::Server(src.clone()),
                    &catalog,
                    jobs,
                )
                .await;
            });
        }
        _ => panic!("usage: floor export|import|copy (see the file's header)"),
    }
    eprintln!(
        "floor: {} requests in {:.1} s (jobs {jobs})",
        requests.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
}
