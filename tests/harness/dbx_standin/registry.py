"""The workspace model registry: `registered-models/*` and `model-versions/*` relayed to the
workspace's MLflow workspace, plus what only Databricks has:

- `registered-models/alias` (any verb) → 400 "Model aliases are not supported for models in the
  Workspace Model Registry" (inferred wording; MLflow's client refuses aliases there itself).
- `GET databricks/registered-models/get?name=` → `{"registered_model_databricks": {"id": <32 hex,
  stable per workspace and name>, ...the OSS fields, "permission_level"}}` (the id the
  permissions API takes).
- A version's files are copied, when it is created, from its `source` (`dbfs:/databricks/...`,
  `runs:/<run>/<path>`, `models:/<logged model id>`) into the registry's own storage
  (key `mlflow-registry/<hash>/models`, as Databricks keeps version files apart from the run;
  the exact layout is inferred). They are read with `GET model-versions/list-artifacts`
  (`{"files": [...], "next_page_token"}`, paged like `artifacts/list`) and
  `GET model-versions/get-signed-download-uri` (`{"signed_uri", "headers"}`), as MLflow's
  `DatabricksModelsArtifactRepository` does. Another kind of source has no files here.
- The creator of a registered model gets a direct `CAN_MANAGE`. Versions are `READY` at once
  (real ones may pass through `PENDING_REGISTRATION`; MLflow's client polls either way).
"""

import hashlib
import json

from . import artifacts
from .tracking import principal_kind, relay
from .web import ApiError, Response

BASE = r"/api/2\.0/mlflow"


def resolve_source(app, ws, source):
    """The S3 key a version's source names, or None."""
    if not isinstance(source, str):
        return None
    if source.startswith("dbfs:/databricks/"):
        return artifacts.root_key(source)
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        run = app.mlflow.call(
            ws.mlflow_workspace, "GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id}
        )
        root = artifacts.root_key(run["run"]["info"]["artifact_uri"])
        return artifacts.join_key(root, artifacts.clean_path(path))
    if source.startswith("models:/m-"):
        model_id = source[len("models:/") :].strip("/")
        model = app.mlflow.call(
            ws.mlflow_workspace, "GET", f"/api/2.0/mlflow/logged-models/{model_id}"
        )
        return artifacts.root_key(model["model"]["info"]["artifact_uri"])
    return None


def version_root(app, ws, name, version):
    """The S3 prefix holding a version's files (copied on first use if the stand-in has not
    seen the version being created)."""
    key = (ws.index, name, str(version))
    with app.state.lock:
        root = app.state.registry_files.get(key)
    if root is not None:
        return root
    mv = app.mlflow.call(
        ws.mlflow_workspace,
        "GET",
        "/api/2.0/mlflow/model-versions/get",
        {"name": name, "version": str(version)},
    )["model_version"]
    return copy_version(app, ws, mv)


def copy_version(app, ws, mv):
    digest = hashlib.md5(f"{ws.workspace_id}/{mv['name']}/{mv['version']}".encode()).hexdigest()
    root = f"mlflow-registry/{digest}/models"
    src = resolve_source(app, ws, mv.get("source"))
    if src is not None:
        size = app.store.head(src)
        if size is not None:
            name = src.rsplit("/", 1)[-1]
            app.store.client.copy_object(
                Bucket=app.store.bucket,
                Key=f"{root}/{name}",
                CopySource={"Bucket": app.store.bucket, "Key": src},
            )
        else:
            app.store.copy_prefix(src + "/", root + "/")
    with app.state.lock:
        app.state.registry_files[(ws.index, mv["name"], str(mv["version"]))] = root
    return root


def register(app):
    @app.route(["GET", "POST", "DELETE"], BASE + r"/registered-models/alias")
    def alias(app, req):
        raise ApiError(
            400,
            "INVALID_PARAMETER_VALUE",
            "Model aliases are not supported for models in the Workspace Model Registry",
        )

    @app.route("GET", BASE + r"/databricks/registered-models/get")
    def databricks_get(app, req):
        name = req.param("name", "")
        out = app.mlflow.call(
            req.ws.mlflow_workspace, "GET", "/api/2.0/mlflow/registered-models/get", {"name": name}
        )
        rm = out["registered_model"]
        with app.state.lock:
            mid = req.ws.model_id(rm["name"])
            level = req.ws.acls.get(("registered-models", mid), {}).get(
                (principal_kind(req.ws, req.principal), req.principal)
            )
        body = {"id": mid, **rm, "permission_level": level or "CAN_MANAGE"}
        return Response.json({"registered_model_databricks": body})

    @app.route("POST", BASE + r"/registered-models/create")
    def create_model(app, req):
        resp = relay(app, req)
        if resp.status == 200:
            name = req.json().get("name", "")
            with app.state.lock:
                mid = req.ws.model_id(name)
                req.ws.acls[("registered-models", mid)] = {
                    (principal_kind(req.ws, req.principal), req.principal): "CAN_MANAGE"
                }
        return resp

    @app.route("POST", BASE + r"/registered-models/rename")
    def rename_model(app, req):
        resp = relay(app, req)
        if resp.status == 200:
            b = req.json()
            with app.state.lock:
                req.ws.rename_model(b.get("name", ""), b.get("new_name", ""))
        return resp

    @app.route("POST", BASE + r"/model-versions/create")
    def create_version(app, req):
        resp = relay(app, req)
        if resp.status == 200:
            mv = json.loads(resp.body)["model_version"]
            copy_version(app, req.ws, mv)
        return resp

    @app.route("GET", BASE + r"/model-versions/list-artifacts")
    def list_version_artifacts(app, req):
        root = version_root(app, req.ws, req.param("name", ""), req.param("version", ""))
        return Response.json(
            artifacts.listing(app, root, req.param("path", ""), req.param("page_token"))
        )

    @app.route("GET", BASE + r"/model-versions/get-signed-download-uri")
    def signed_download(app, req):
        root = version_root(app, req.ws, req.param("name", ""), req.param("version", ""))
        key = artifacts.join_key(root, artifacts.clean_path(req.param("path", "")))
        return Response.json(
            {
                "signed_uri": artifacts.signed_uri(app, req.host, "get", key),
                "headers": list(artifacts.REQUIRED_HEADERS),
            }
        )
