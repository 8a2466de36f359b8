"""Tracking: `/api/2.0/mlflow/**` and `/api/3.0/mlflow/**` relayed to the workspace's MLflow
workspace, with what Databricks does differently:

- `experiments/create` (and a rename through `experiments/update`): the name must be an
  absolute workspace path whose parent directory exists (texts from mlflow/mlflow#8269 and the
  research notes); a notebook or folder at that path → `RESOURCE_ALREADY_EXISTS`; the server sets
  `mlflow.ownerEmail`, `mlflow.ownerId`, `mlflow.experimentType=MLFLOW_EXPERIMENT`; the
  experiment becomes a node of the workspace tree (object id = experiment id) and its creator
  gets a direct `CAN_MANAGE`. A custom `artifact_location` is refused (a stand-in limit: it only
  serves `dbfs:/databricks/mlflow-tracking`).
- `experiments/delete` / `restore` take the node out of / back into the tree.
- `runs/create`: `user_id` and tag `mlflow.user` become the token's principal.
- `runs/set-tag`, `runs/log-batch` with `mlflow.user`, `mlflow.rootRunId` or
  `mlflow.log-model.history` → 400 `INVALID_PARAMETER_VALUE` "Tag key ... is reserved and cannot
  be set" (inferred: Databricks refuses these, the exact answer is not documented).
- answers: logged-model URIs in Databricks' layout (`logged_models/`), no `workspace` fields.
- not Databricks endpoints here: MLflow's `workspaces` and `server-info`, the artifact proxy
  (`/api/2.0/mlflow-artifacts/**`) → 404 `ENDPOINT_NOT_FOUND`.
- the Files API (`/api/2.0/fs/**`), which MLflow's client tries first for logged-model (and,
  unless disabled, run) artifacts → 501 `NOT_IMPLEMENTED` (a stand-in limit). A 404 would make
  the SDK repository report an empty directory instead of failing, so MLflow would not fall back
  to the signed-URL credentials this stand-in implements.
"""

import json
import posixpath

from . import workspace_api
from .backend import query_to_mlflow, strip_workspace_fields, to_databricks, to_mlflow
from .web import ApiError, Response

RESERVED_TAGS = ("mlflow.user", "mlflow.rootRunId", "mlflow.log-model.history")
SERVER_TAGS = ("mlflow.ownerEmail", "mlflow.ownerId", "mlflow.experimentType")


def invalid_name(name):
    return ApiError(
        400,
        "INVALID_PARAMETER_VALUE",
        f"Got an invalid experiment name '{name}'. An experiment name must be an absolute path "
        "within the Databricks workspace, e.g. '/Users/<some-username>/my-experiment'.",
    )


def check_experiment_path(ws, name):
    """The normalised path for an experiment name; raises Databricks' errors."""
    if not isinstance(name, str) or not name.startswith("/"):
        raise invalid_name(name)
    try:
        path = workspace_api.normalize(name)
    except ApiError:
        raise invalid_name(name)
    if path == "/":
        raise invalid_name(name)
    par = ws.tree.get(workspace_api.parent(path))
    if par is None or par.object_type != "DIRECTORY":
        raise ApiError(
            400,
            "RESOURCE_DOES_NOT_EXIST",
            f"Parent directory {workspace_api.parent(path)} does not exist.",
        )
    node = ws.tree.get(path)
    if node is not None and node.object_type != "MLFLOW_EXPERIMENT":
        raise ApiError(
            400,
            "RESOURCE_ALREADY_EXISTS",
            f"Node named '{posixpath.basename(path)}' already exists",
        )
    return path


def owner_id(ws, principal):
    if principal in ws.users:
        return ws.users[principal]
    sp = ws.service_principals.get(principal)
    return sp["id"] if sp else 0


def principal_kind(ws, principal):
    return "service_principal_name" if principal in ws.service_principals else "user_name"


def relay(app, req):
    """The request as is into the workspace's MLflow workspace; the answer in Databricks' layout."""
    body = req.body()
    if body:
        body = to_mlflow(body.decode("utf-8")).encode()
    r = app.mlflow.raw(
        req.ws.mlflow_workspace,
        req.method,
        to_mlflow(req.raw_path),
        query_to_mlflow(req.raw_query),
        body or None,
        req.header("Content-Type") if body else None,
    )
    return answer(r)


def answer(r):
    ctype = r.headers.get("Content-Type", "")
    if "json" in ctype:
        try:
            value = strip_workspace_fields(json.loads(to_databricks(r.text)))
            return Response.json(value, r.status_code)
        except ValueError:
            pass
    return Response(r.status_code, r.content, {"Content-Type": ctype or "text/plain"})


def call(app, req, method, path, params=None, body=None):
    return app.mlflow.call(req.ws.mlflow_workspace, method, path, params, body)


def register(app):
    @app.route(
        ["GET", "POST", "PUT", "PATCH", "DELETE"],
        r"/api/[23]\.0/mlflow/(workspaces(/.*)?|server-info)",
    )
    def mlflow_only(app, req):
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")

    @app.route(["GET", "POST", "PUT", "PATCH", "DELETE"], r"/api/2\.0/mlflow-artifacts/.*")
    def artifact_proxy(app, req):
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")

    @app.route(["GET", "POST", "PUT", "PATCH", "DELETE"], r"/api/2\.0/fs/.*")
    def files_api(app, req):
        raise ApiError(
            501,
            "NOT_IMPLEMENTED",
            "the Databricks stand-in does not implement the Files API; use the artifact "
            "credentials endpoints",
        )

    @app.route("POST", r"/api/2\.0/mlflow/experiments/create")
    def create_experiment(app, req):
        b = req.json()
        if b.get("artifact_location"):
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "the Databricks stand-in only supports the default artifact location "
                "(dbfs:/databricks/mlflow-tracking); artifact_location must be empty",
            )
        with app.state.lock:
            path = check_experiment_path(req.ws, b.get("name"))
            oid = owner_id(req.ws, req.principal)
        tags = [t for t in b.get("tags", []) if t.get("key") not in SERVER_TAGS]
        tags += [
            {"key": "mlflow.ownerEmail", "value": req.principal},
            {"key": "mlflow.ownerId", "value": str(oid)},
            {"key": "mlflow.experimentType", "value": "MLFLOW_EXPERIMENT"},
        ]
        b["name"], b["tags"] = path, tags
        out = call(app, req, "POST", "/api/2.0/mlflow/experiments/create", body=b)
        exp_id = out["experiment_id"]
        with app.state.lock:
            req.ws.add_node(path, "MLFLOW_EXPERIMENT", object_id=int(exp_id), owner=req.principal)
            req.ws.acls[("experiments", exp_id)] = {
                (principal_kind(req.ws, req.principal), req.principal): "CAN_MANAGE"
            }
        return Response.json(out)

    @app.route("POST", r"/api/2\.0/mlflow/experiments/update")
    def update_experiment(app, req):
        b = req.json()
        new_name = b.get("new_name")
        if not new_name:
            return relay(app, req)
        exp = call(
            app,
            req,
            "GET",
            "/api/2.0/mlflow/experiments/get",
            {"experiment_id": b.get("experiment_id", "")},
        )
        old = exp["experiment"]["name"]
        with app.state.lock:
            path = check_experiment_path(req.ws, new_name)
            if path in req.ws.tree:
                raise ApiError(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    f"Node named '{posixpath.basename(path)}' already exists",
                )
        b["new_name"] = path
        out = call(app, req, "POST", "/api/2.0/mlflow/experiments/update", body=b)
        with app.state.lock:
            node = req.ws.tree.pop(old, None)
            if node is not None:
                node.path = path
                req.ws.tree[path] = node
            else:
                req.ws.add_node(path, "MLFLOW_EXPERIMENT", object_id=int(b["experiment_id"]))
        return Response.json(out)

    @app.route("POST", r"/api/2\.0/mlflow/experiments/delete")
    def delete_experiment(app, req):
        b = req.json()
        exp = call(
            app,
            req,
            "GET",
            "/api/2.0/mlflow/experiments/get",
            {"experiment_id": b.get("experiment_id", "")},
        )
        out = call(app, req, "POST", "/api/2.0/mlflow/experiments/delete", body=b)
        with app.state.lock:
            node = req.ws.tree.get(exp["experiment"]["name"])
            if node is not None and node.object_type == "MLFLOW_EXPERIMENT":
                del req.ws.tree[node.path]
        return Response.json(out)

    @app.route("POST", r"/api/2\.0/mlflow/experiments/restore")
    def restore_experiment(app, req):
        b = req.json()
        out = call(app, req, "POST", "/api/2.0/mlflow/experiments/restore", body=b)
        exp = call(
            app,
            req,
            "GET",
            "/api/2.0/mlflow/experiments/get",
            {"experiment_id": b.get("experiment_id", "")},
        )
        name = exp["experiment"]["name"]
        with app.state.lock:
            if name not in req.ws.tree and workspace_api.parent(name) in req.ws.tree:
                req.ws.add_node(name, "MLFLOW_EXPERIMENT", object_id=int(b["experiment_id"]))
        return Response.json(out)

    @app.route("POST", r"/api/2\.0/mlflow/runs/create")
    def create_run(app, req):
        b = req.json()
        b["user_id"] = req.principal
        tags = [t for t in b.get("tags", []) if t.get("key") != "mlflow.user"]
        tags.append({"key": "mlflow.user", "value": req.principal})
        b["tags"] = tags
        return Response.json(call(app, req, "POST", "/api/2.0/mlflow/runs/create", body=b))

    def reserved(key):
        return ApiError(
            400, "INVALID_PARAMETER_VALUE", f"Tag key {key} is reserved and cannot be set"
        )

    @app.route("POST", r"/api/2\.0/mlflow/runs/set-tag")
    def set_tag(app, req):
        key = req.json().get("key")
        if key in RESERVED_TAGS:
            raise reserved(key)
        return relay(app, req)

    @app.route("POST", r"/api/2\.0/mlflow/runs/log-batch")
    def log_batch(app, req):
        for t in req.json().get("tags", []) or []:
            if t.get("key") in RESERVED_TAGS:
                raise reserved(t["key"])
        return relay(app, req)

    @app.route(["GET", "POST", "PUT", "PATCH", "DELETE"], r"/api/[23]\.0/mlflow/.*")
    def everything_else(app, req):
        return relay(app, req)
