//! runs against the Databricks stand-in, not a real workspace.
//!
//! Permissions (issue 16): `--export-permissions` records what was granted on an experiment or a
//! workspace-registry model itself (the stand-in also answers inherited entries, which stay
//! behind), `--import-permissions` applies them in another workspace one principal at a time,
//! and a user that workspace does not know is reported, not fatal. The same code paths a real
//! workspace would take: the CLI with `databricks://PROFILE` URIs from a configuration file.
//! Unity Catalog grants are read and written through the client (the registry's Unity Catalog
//! models are another change's); their mapping to and from levels is tested in memory
//! (`transfer::import::permissions`).

use std::path::Path;

use mlflow_archive::format::{ArchiveReader, Record};
use mlflow_archive::mlflow::databricks::permissions::{PrivilegeAssignment, is_unknown_principal};
use mlflow_archive::mlflow::{Client, ClientBuilder, Env, TrackingConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::databricks_standin;
use crate::util::databricks::{DatabricksStandin, http};
use crate::util::{cli, output, unique};

/// A workspace host with a token, for setting things up as a user would.
struct Ws {
    host: String,
    token: String,
}

impl Ws {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = http()
            .request(method, format!("{}{path}", self.host))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    async fn experiment_id(&self, name: &str) -> String {
        let q = format!(
            "/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
            urlencode(name)
        );
        let v = self.ok(Method::GET, &q, None).await;
        v["experiment"]["experiment_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn model_id(&self, name: &str) -> String {
        let q = format!(
            "/api/2.0/mlflow/databricks/registered-models/get?name={}",
            urlencode(name)
        );
        let v = self.ok(Method::GET, &q, None).await;
        v["registered_model_databricks"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Adds one entry to an object's access control list.
    async fn grant(&self, object: &str, field: &str, principal: &str, level: &str) {
        let body = json!({"access_control_list": [{field: principal, "permission_level": level}]});
        self.ok(
            Method::PATCH,
            &format!("/api/2.0/permissions/{object}"),
            Some(body),
        )
        .await;
    }

    /// An object's access control list as `(principal, level, inherited)`, sorted.
    async fn acl(&self, object: &str) -> Vec<(String, String, bool)> {
        let v = self
            .ok(Method::GET, &format!("/api/2.0/permissions/{object}"), None)
            .await;
        let mut out = Vec::new();
        for e in v["access_control_list"].as_array().unwrap() {
            let who = ["user_name", "group_name", "service_principal_name"]
                .iter()
                .find_map(|k| e[*k].as_str())
                .unwrap()
                .to_string();
            for p in e["all_permissions"].as_array().unwrap() {
                out.push((
                    who.clone(),
                    p["permission_level"].as_str().unwrap().to_string(),
                    p["inherited"].as_bool().unwrap_or(false),
                ));
            }
        }
        out.sort();
        out
    }

    /// The direct entries only, as `(principal, level)`.
    async fn direct(&self, object: &str) -> Vec<(String, String)> {
        self.acl(object)
            .await
            .into_iter()
            .filter(|(_, _, inherited)| !inherited)
            .map(|(p, l, _)| (p, l))
            .collect()
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A configuration file with profile `A` for workspace 0 and `B` for workspace 1.
fn profiles(dir: &Path, dbx: &DatabricksStandin, a: &str, b: &str) -> std::path::PathBuf {
    let path = dir.join("databrickscfg");
    std::fs::write(
        &path,
        format!(
            "[A]\nhost = {}\ntoken = {a}\n\n[B]\nhost = {}\ntoken = {b}\n",
            dbx.hosts[0], dbx.hosts[1]
        ),
    )
    .unwrap();
    path
}

/// The CLI with the profiles file and no other Databricks settings.
fn dbx_cli(config: &Path) -> assert_cmd::Command {
    let mut c = cli();
    for v in [
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "DATABRICKS_CONFIG_PROFILE",
        "MLFLOW_REGISTRY_URI",
    ] {
        c.env_remove(v);
    }
    c.env("DATABRICKS_CONFIG_FILE", config);
    c
}

async fn run(cmd: assert_cmd::Command) -> (bool, String, String) {
    let out = output(cmd).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The people of one test: in workspace A the exporter, two users, a group and a service
/// principal; in B the importer and the same principals but one user (`carol`).
struct People {
    ann: String,
    bob: String,
    carol: String,
    group: String,
    sp: String,
    imp: String,
    a: Ws,
    b: Ws,
}

async fn people(dbx: &DatabricksStandin) -> People {
    let u = unique("p").replace('-', "");
    let (ann, bob, carol, imp) = (
        format!("ann.{u}@example.com"),
        format!("bob.{u}@example.com"),
        format!("carol.{u}@example.com"),
        format!("imp.{u}@example.com"),
    );
    let group = format!("ds-{u}");
    let n = u.len();
    let sp = format!("6f4e2a1b-0c3d-4e5f-8a9b-{}", &u[n.saturating_sub(12)..]);
    let ta = dbx.user_with_token(0, &ann).await;
    let tb = dbx.user_with_token(1, &imp).await;
    for ws in [0, 1] {
        dbx.add_user(ws, &ann).await;
        dbx.add_user(ws, &bob).await;
        dbx.add_group(ws, &group, &[]).await;
        dbx.add_service_principal(ws, &sp, "secret", 3600.0).await;
    }
    dbx.add_user(0, &carol).await;
    People {
        a: Ws {
            host: dbx.hosts[0].clone(),
            token: ta,
        },
        b: Ws {
            host: dbx.hosts[1].clone(),
            token: tb,
        },
        ann,
        bob,
        carol,
        group,
        sp,
        imp,
    }
}

/// The permissions members of an archive: (unit kind, entries as `type principal level` or
/// `principal privileges`), in order.
fn archived_permissions(path: &Path) -> Vec<(String, Vec<String>)> {
    let mut r = ArchiveReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut last = String::new();
    while let Some(rec) = r.next_record().unwrap() {
        match rec {
            Record::Experiment(e) => last = format!("experiment {}", e.name),
            Record::RegisteredModel(m) => last = format!("model {}", m.name),
            Record::Permissions(p) => {
                let mut entries: Vec<String> = p
                    .acl
                    .iter()
                    .map(|e| format!("{} {} {}", e.principal_type, e.principal, e.level))
                    .chain(
                        p.grants
                            .iter()
                            .map(|g| format!("{} {}", g.principal, g.privileges.join("+"))),
                    )
                    .collect();
                entries.sort();
                out.push((last.clone(), entries));
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn direct_permissions_travel_to_another_workspace_and_a_missing_user_is_reported() {
    let dbx = databricks_standin!(shared);
    let p = people(dbx).await;
    let dir = tempfile::tempdir().unwrap();
    let config = profiles(dir.path(), dbx, &p.a.token, &p.b.token);

    // In A: an experiment (created by ann, who manages it directly and through her home
    // folder) with a run, and a registered model; direct entries for the others.
    let name = format!("/Users/{}/perm-exp", p.ann);
    let created =
        p.a.ok(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            Some(json!({"name": name})),
        )
        .await;
    let exp = created["experiment_id"].as_str().unwrap().to_string();
    let made =
        p.a.ok(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": exp, "run_name": "r"})),
        )
        .await;
    let run_id = made["run"]["info"]["run_id"].as_str().unwrap().to_string();
    p.a.ok(
        Method::POST,
        "/api/2.0/mlflow/runs/update",
        Some(json!({"run_id": run_id, "status": "FINISHED", "end_time": 1})),
    )
    .await;
    let on_exp = format!("experiments/{exp}");
    p.a.grant(&on_exp, "user_name", &p.bob, "CAN_EDIT").await;
    p.a.grant(&on_exp, "user_name", &p.carol, "CAN_READ").await;
    p.a.grant(&on_exp, "group_name", &p.group, "CAN_READ").await;
    p.a.grant(&on_exp, "service_principal_name", &p.sp, "CAN_MANAGE")
        .await;
    let model = format!("perm-model-{}", p.group);
    p.a.ok(
        Method::POST,
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({"name": model})),
    )
    .await;
    let on_model = format!("registered-models/{}", p.a.model_id(&model).await);
    p.a.grant(
        &on_model,
        "user_name",
        &p.bob,
        "CAN_MANAGE_PRODUCTION_VERSIONS",
    )
    .await;
    p.a.grant(&on_model, "user_name", &p.carol, "CAN_EDIT")
        .await;
    p.a.grant(&on_model, "group_name", &p.group, "CAN_READ")
        .await;
    // A answers inherited entries too: the admins group's, and ann's through her home folder.
    let acl = p.a.acl(&on_exp).await;
    assert!(
        acl.contains(&("admins".into(), "CAN_MANAGE".into(), true))
            && acl.contains(&(p.ann.clone(), "CAN_MANAGE".into(), true))
            && acl.contains(&(p.ann.clone(), "CAN_MANAGE".into(), false)),
        "{acl:?}"
    );

    // Export: the direct entries only, all three kinds of principal.
    let exp_archive = dir.path().join("exp.mlar");
    let mut c = dbx_cli(&config);
    c.args([
        "export-experiment",
        "--src-uri",
        "databricks://A",
        "--experiment",
    ])
    .arg(&name)
    .arg("--export-permissions")
    .arg("-o")
    .arg(&exp_archive);
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(err.contains("5 permission entries"), "{err}");
    let model_archive = dir.path().join("model.mlar");
    let mut c = dbx_cli(&config);
    c.args(["export-model", "--src-uri", "databricks://A", "--model"])
        .arg(&model)
        .args(["--export-permissions", "-o"])
        .arg(&model_archive);
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    let mut want = vec![
        format!("group {} CAN_READ", p.group),
        format!("service_principal {} CAN_MANAGE", p.sp),
        format!("user {} CAN_MANAGE", p.ann),
        format!("user {} CAN_EDIT", p.bob),
        format!("user {} CAN_READ", p.carol),
    ];
    want.sort();
    assert_eq!(
        archived_permissions(&exp_archive),
        [(format!("experiment {name}"), want)]
    );
    let mut want = vec![
        format!("group {} CAN_READ", p.group),
        format!("user {} CAN_MANAGE", p.ann),
        format!("user {} CAN_MANAGE_PRODUCTION_VERSIONS", p.bob),
        format!("user {} CAN_EDIT", p.carol),
    ];
    want.sort();
    assert_eq!(
        archived_permissions(&model_archive),
        [(format!("model {model}"), want)]
    );
    // inspect and verify show them.
    let mut c = cli();
    c.arg("inspect").arg(&exp_archive);
    let (ok, out, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("experiment {exp} {name:?}, 5 permission entries")),
        "{out}"
    );
    let mut c = cli();
    c.arg("verify").arg(&model_archive);
    let (ok, out, err) = run(c).await;
    assert!(ok && out.contains("4 permission entries"), "{out}{err}");

    // Import into B, where carol does not exist: the others applied, carol reported, exit 0.
    let dst_name = format!("/Users/{}/perm-exp", p.imp);
    let mut c = dbx_cli(&config);
    c.args(["import-experiment", "--dst-uri", "databricks://B", "-i"])
        .arg(&exp_archive)
        .arg("--experiment-name")
        .arg(&dst_name)
        .arg("--import-permissions");
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    let dst_exp = p.b.experiment_id(&dst_name).await;
    assert!(
        err.contains(&format!(
            "warning: experiment {exp} {name:?} (destination {dst_exp}): principals not found at the destination, their permissions not imported: user {}",
            p.carol
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "permissions: 4 applied, 1 principal not found at the destination: user {}",
            p.carol
        )),
        "{err}"
    );
    let mut want = vec![
        (p.group.clone(), "CAN_READ".to_string()),
        (p.sp.clone(), "CAN_MANAGE".into()),
        (p.ann.clone(), "CAN_MANAGE".into()),
        (p.bob.clone(), "CAN_EDIT".into()),
        // The importer made it and keeps managing it: nothing was replaced.
        (p.imp.clone(), "CAN_MANAGE".into()),
    ];
    want.sort();
    assert_eq!(p.b.direct(&format!("experiments/{dst_exp}")).await, want);
    // One principal per request, PATCH only (carol's was refused alone).
    let sent: Vec<(String, u16)> = dbx
        .log()
        .await
        .into_iter()
        .filter(|e| e.path == format!("/api/2.0/permissions/experiments/{dst_exp}"))
        .map(|e| (e.method, e.status))
        .collect();
    let patches: Vec<u16> = sent
        .iter()
        .filter(|(m, _)| m == "PATCH")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(patches.iter().filter(|s| **s == 200).count(), 4, "{sent:?}");
    assert_eq!(patches.iter().filter(|s| **s == 400).count(), 1, "{sent:?}");
    // (The GET is this test's own look above.)
    assert!(!sent.iter().any(|(m, _)| m == "PUT"), "{sent:?}");

    // The model likewise.
    let mut c = dbx_cli(&config);
    c.args(["import-model", "--dst-uri", "databricks://B", "-i"])
        .arg(&model_archive)
        .arg("--model")
        .arg(&model)
        .arg("--experiment-name")
        .arg(format!("/Users/{}/perm-model-runs", p.imp))
        .arg("--import-permissions");
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "warning: registered model {model:?} (destination {model:?}): principals not found at the destination, their permissions not imported: user {}",
            p.carol
        )),
        "{err}"
    );
    let on_dst_model = format!("registered-models/{}", p.b.model_id(&model).await);
    let direct = p.b.direct(&on_dst_model).await;
    for e in [
        (p.group.clone(), "CAN_READ".to_string()),
        (p.ann.clone(), "CAN_MANAGE".into()),
        (p.bob.clone(), "CAN_MANAGE_PRODUCTION_VERSIONS".into()),
        (p.imp.clone(), "CAN_MANAGE".into()),
    ] {
        assert!(direct.contains(&e), "{e:?} not in {direct:?}");
    }
    assert!(!direct.iter().any(|(who, _)| *who == p.carol), "{direct:?}");

    // Without --export-permissions from a workspace: said.
    let mut c = dbx_cli(&config);
    c.args(["export-model", "--src-uri", "databricks://A", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(dir.path().join("bare.mlar"));
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("is a Databricks workspace: the permissions of its experiments and registered models were not carried (--export-permissions carries them on an export, --import-permissions on a copy)"),
        "{err}"
    );
    assert!(archived_permissions(&dir.path().join("bare.mlar")).is_empty());

    // Without --import-permissions: said, not applied.
    let other = format!("/Users/{}/perm-exp-2", p.imp);
    let mut c = dbx_cli(&config);
    c.args(["import-experiment", "--dst-uri", "databricks://B", "-i"])
        .arg(&exp_archive)
        .arg("--experiment-name")
        .arg(&other);
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "note: the archive holds 5 permission entries, not applied: give --import-permissions to apply them"
        ),
        "{err}"
    );
    let other = p.b.experiment_id(&other).await;
    assert_eq!(
        p.b.direct(&format!("experiments/{other}")).await,
        [(p.imp.clone(), "CAN_MANAGE".to_string())]
    );
}

#[tokio::test]
async fn copy_experiment_carries_permissions() {
    let dbx = databricks_standin!(shared);
    let p = people(dbx).await;
    let dir = tempfile::tempdir().unwrap();
    let config = profiles(dir.path(), dbx, &p.a.token, &p.b.token);
    let name = format!("/Users/{}/copied", p.ann);
    let created =
        p.a.ok(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            Some(json!({"name": name})),
        )
        .await;
    let exp = created["experiment_id"].as_str().unwrap().to_string();
    let on_exp = format!("experiments/{exp}");
    p.a.grant(&on_exp, "group_name", &p.group, "CAN_EDIT").await;
    p.a.grant(&on_exp, "user_name", &p.carol, "CAN_READ").await;
    let dst_name = format!("/Users/{}/copied", p.imp);
    let mut c = dbx_cli(&config);
    c.args([
        "copy-experiment",
        "--src-uri",
        "databricks://A",
        "--dst-uri",
        "databricks://B",
        "--src-experiment",
    ])
    .arg(&name)
    .arg("--dst-experiment-name")
    .arg(&dst_name)
    .arg("--import-permissions");
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "permissions: 2 applied, 1 principal not found at the destination: user {}",
            p.carol
        )),
        "{err}"
    );
    let dst = p.b.experiment_id(&dst_name).await;
    let mut want = vec![
        (p.group.clone(), "CAN_EDIT".to_string()),
        (p.ann.clone(), "CAN_MANAGE".into()),
        (p.imp.clone(), "CAN_MANAGE".into()),
    ];
    want.sort();
    assert_eq!(p.b.direct(&format!("experiments/{dst}")).await, want);
}

/// A client of workspace `ws` with Unity Catalog as its registry.
fn uc_client(config: &Path, profile: &str) -> Client {
    let mut env = Env::default();
    env.databricks.config_file = Some(config.display().to_string());
    let uri = format!("databricks-uc://{profile}");
    ClientBuilder::new(TrackingConfig::resolve(Some(&uri), &env).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn unity_catalog_grants_are_read_direct_and_added_one_principal_at_a_time() {
    let dbx = databricks_standin!(shared);
    let p = people(dbx).await;
    let dir = tempfile::tempdir().unwrap();
    let config = profiles(dir.path(), dbx, &p.a.token, &p.b.token);
    let suffix = p.group.to_lowercase().replace('-', "_");
    let (m1, m2) = (
        format!("main.default.perm_{suffix}"),
        format!("main.default.perm2_{suffix}"),
    );
    for m in [&m1, &m2] {
        p.a.ok(
            Method::POST,
            "/api/2.0/mlflow/unity-catalog/registered-models/create",
            Some(json!({"name": m})),
        )
        .await;
    }
    let on = |m: &str| format!("/api/2.1/unity-catalog/permissions/function/{m}");
    p.a.ok(
        Method::PATCH,
        &on(&m1),
        Some(json!({"changes": [
            {"principal": p.group, "add": ["EXECUTE"]},
            {"principal": p.bob, "add": ["EXECUTE", "APPLY_TAG"]},
        ]})),
    )
    .await;

    let a = uc_client(&config, "A");
    let got = a.model_permissions(&m1).await.unwrap().unwrap();
    let mut grants: Vec<(String, Vec<String>)> = got
        .grants
        .into_iter()
        .map(|g| {
            let mut v = g.privileges;
            v.sort();
            (g.principal, v)
        })
        .collect();
    grants.sort();
    assert_eq!(
        grants,
        [
            (p.bob.clone(), vec!["APPLY_TAG".into(), "EXECUTE".into()]),
            (p.group.clone(), vec!["EXECUTE".to_string()]),
        ]
    );
    assert!(got.acl.is_empty());

    // From workspace B (the metastore is shared): one principal per request.
    let b = uc_client(&config, "B");
    let g = PrivilegeAssignment {
        principal: p.group.clone(),
        privileges: vec!["EXECUTE".into(), "APPLY_TAG".into()],
    };
    b.add_uc_grant(&m2, &g).await.unwrap();
    let nobody = PrivilegeAssignment {
        principal: format!("nobody.{suffix}@example.com"),
        privileges: vec!["EXECUTE".into()],
    };
    let err = b.add_uc_grant(&m2, &nobody).await.unwrap_err();
    assert!(is_unknown_principal(&err), "{err}");
    let got = b.model_permissions(&m2).await.unwrap().unwrap();
    assert_eq!(got.grants.len(), 1, "{got:?}");
    assert_eq!(got.grants[0].principal, p.group);
}

#[tokio::test]
async fn servers_without_permissions_say_so() {
    let pair = crate::live_pair!();
    let (src, dst) = (&pair.src, &pair.dst);
    let dir = tempfile::tempdir().unwrap();
    let client = crate::util::client(&src.uri);
    let name = unique("no-perms");
    let _ = client.create_experiment(&name, None, &[]).await.unwrap();
    let out = dir.path().join("a.mlar");
    let mut c = cli();
    c.args([
        "export-experiment",
        "--src-uri",
        &src.uri,
        "--experiment",
        &name,
    ])
    .arg("--export-permissions")
    .arg("-o")
    .arg(&out);
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "is not a Databricks workspace and keeps no permissions; there were none to export"
        ),
        "{err}"
    );
    // An archive with permissions into a server that keeps none: said, not applied.
    let with = dir.path().join("with.mlar");
    let mut w =
        mlflow_archive::format::ArchiveWriter::new(std::fs::File::create(&with).unwrap()).unwrap();
    w.begin_experiment(&mlflow_archive::format::model::Experiment {
        experiment_id: "1".into(),
        name: unique("with-perms"),
        lifecycle_stage: "active".into(),
        ..Default::default()
    })
    .unwrap();
    w.permissions(&mlflow_archive::format::model::Permissions {
        acl: vec![mlflow_archive::format::model::AclEntry {
            principal_type: "user".into(),
            principal: "ann@example.com".into(),
            level: "CAN_EDIT".into(),
        }],
        grants: Vec::new(),
    })
    .unwrap();
    w.end_unit().unwrap();
    w.finish().unwrap();
    let mut c = cli();
    c.args(["import-experiment", "--dst-uri", &dst.uri, "-i"])
        .arg(&with)
        .arg("--import-permissions");
    let (ok, _, err) = run(c).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("note: --import-permissions: the destination is not a Databricks workspace and keeps no permissions; the archive's 1 permission entries were not applied"),
        "{err}"
    );
}
