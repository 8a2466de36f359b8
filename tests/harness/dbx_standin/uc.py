"""Unity Catalog's model registry, the 2.0 surface MLflow's `UcModelRegistryStore` speaks
(`/api/2.0/mlflow/unity-catalog/...`, `databricks_uc_registry_service.proto`).

The metastore is shared by every workspace of the stand-in: models are OSS registered models in
MLflow workspace `uc`, named `catalog.schema.model`. What OSS MLflow does not hold is kept by the
stand-in: a version's `source`, `run_id`, `run_tracking_server_id`, `model_id`, `user_id`,
`status` and `storage_location` (the OSS version's own `source` is the storage location, so
MLflow never looks for a run or logged model of another workspace).

- Names need three levels (else 400 "Model name must specify all three levels: ..."; MLflow adds
  its own hint after a message containing `specify all three levels`), parts without `.`, space,
  `/` or control characters, and are stored lowercase (UC docs "Names"); catalogs and schemas
  exist when made through control (`main.default` always): else 404 `NOT_FOUND`.
- `model-versions/create` → `PENDING_REGISTRATION`, `storage_location =
  s3://<bucket>/uc/models/<model uuid>/versions/<version uuid>`; `finalize` → `READY`.
- `generate-temporary-credentials`: `aws_temp_credentials` valid for the control-set
  `temp_credentials_ttl`, opening only the version's prefix on the S3 front, read-only for
  `MODEL_VERSION_OPERATION_READ`; `READ_WRITE` only while the version is
  `PENDING_REGISTRATION` (inferred: finalized versions are immutable).
- No stages: `transition-stage` and `get-latest-versions` → 400 (the wording of MLflow's own
  client-side error; the server's is not documented). Aliases work.
- `is-databricks-sdk-models-artifact-repository-enabled` → false (so MLflow uses the temporary
  credentials, not the SDK Files API).
- No privilege is enforced: every principal of any workspace may do everything (a stand-in
  limit); grants are recorded and answered by the permissions API.
"""

import re
import uuid

from .state import TempCredential, UcVersion
from .web import ApiError, Response

UC = r"/api/2\.0/mlflow/unity-catalog"
THREE_LEVELS = "Model name must specify all three levels: <catalog>.<schema>.<model>"
_BAD_CHARS = re.compile(r"[.\s/\x00-\x1f\x7f]")


def full_name(name):
    if not isinstance(name, str) or name.count(".") != 2:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{THREE_LEVELS}. Got '{name}'")
    parts = name.split(".")
    for p in parts:
        if not p or _BAD_CHARS.search(p) or len(p) > 255:
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Invalid name '{name}': each part must be non-empty, at most 255 characters, "
                "without '.', spaces, '/' or control characters",
            )
    return name.lower()


def check_schema(app, name):
    catalog, schema, _ = name.split(".")
    with app.state.lock:
        if catalog not in app.state.catalogs:
            raise ApiError(404, "NOT_FOUND", f"Catalog '{catalog}' does not exist.")
        if schema not in app.state.catalogs[catalog]:
            raise ApiError(404, "NOT_FOUND", f"Schema '{catalog}.{schema}' does not exist.")


def unsupported(method):
    return ApiError(
        400,
        "INVALID_PARAMETER_VALUE",
        f"Method '{method}' is unsupported for models in the Unity Catalog. We recommend using "
        "aliases instead of stages for more flexible model deployment management.",
    )


def mlflow(app, method, path, params=None, body=None):
    return app.mlflow.call("uc", method, f"/api/2.0/mlflow/{path}", params, body)


MODEL_FIELDS = (
    "name",
    "creation_timestamp",
    "last_updated_timestamp",
    "description",
    "aliases",
    "tags",
)
VERSION_FIELDS = (
    "name",
    "version",
    "creation_timestamp",
    "last_updated_timestamp",
    "description",
    "tags",
)


def model_out(app, rm):
    """An OSS registered model as UC's `RegisteredModel` (no `latest_versions`)."""
    out = {k: rm[k] for k in MODEL_FIELDS if k in rm}
    with app.state.lock:
        meta = app.state.uc_models.get(rm["name"])
    if meta:
        out["user_id"] = meta["owner"]
    return out


def version_out(app, mv):
    """An OSS model version as UC's `ModelVersion`: no stage, no run link; aliases as
    `{alias, version}`; source, run, status and storage from the stand-in's own records."""
    out = {k: mv[k] for k in VERSION_FIELDS if k in mv}
    if mv.get("aliases"):
        out["aliases"] = [{"alias": a, "version": str(mv["version"])} for a in mv["aliases"]]
    with app.state.lock:
        meta = app.state.uc_versions.get((mv["name"], str(mv["version"])))
    if meta is not None:
        out["source"] = meta.source
        if meta.run_id:
            out["run_id"] = meta.run_id
        if meta.run_tracking_server_id:
            out["run_tracking_server_id"] = meta.run_tracking_server_id
        if meta.model_id:
            out["model_id"] = meta.model_id
        out["user_id"] = meta.user_id
        out["status"] = meta.status
        out["storage_location"] = meta.storage_location
    else:
        out["source"] = mv.get("source")
        out["status"] = mv.get("status", "READY")
    return out


def get_version(app, name, version):
    mv = mlflow(app, "GET", "model-versions/get", {"name": name, "version": str(version)})
    return mv["model_version"]


def version_meta(app, name, version):
    get_version(app, name, version)
    with app.state.lock:
        meta = app.state.uc_versions.get((name, str(version)))
    if meta is None:
        raise ApiError(
            404, "RESOURCE_DOES_NOT_EXIST", f"Model version {name}/{version} has no storage"
        )
    return meta


def register(app):
    def name_of(req):
        return full_name(req.field("name"))

    @app.route("POST", UC + r"/registered-models/create")
    def create_model(app, req):
        b = req.json()
        name = full_name(b.get("name"))
        check_schema(app, name)
        body = {"name": name}
        for k in ("tags", "description"):
            if b.get(k):
                body[k] = b[k]
        out = mlflow(app, "POST", "registered-models/create", body=body)
        with app.state.lock:
            app.state.uc_models[name] = {"uuid": str(uuid.uuid4()), "owner": req.principal}
        return Response.json({"registered_model": model_out(app, out["registered_model"])})

    @app.route("GET", UC + r"/registered-models/get")
    def get_model(app, req):
        out = mlflow(app, "GET", "registered-models/get", {"name": name_of(req)})
        return Response.json({"registered_model": model_out(app, out["registered_model"])})

    @app.route("GET", UC + r"/registered-models/search")
    def search_models(app, req):
        params = {k: req.param(k) for k in ("max_results", "page_token") if req.param(k)}
        out = mlflow(app, "GET", "registered-models/search", params)
        res = {"registered_models": [model_out(app, m) for m in out.get("registered_models", [])]}
        if out.get("next_page_token"):
            res["next_page_token"] = out["next_page_token"]
        return Response.json(res)

    @app.route("PATCH", UC + r"/registered-models/update")
    def update_model(app, req):
        b = req.json()
        name = full_name(b.get("name"))
        if b.get("new_name"):
            new = full_name(b["new_name"])
            check_schema(app, new)
            mlflow(app, "POST", "registered-models/rename", body={"name": name, "new_name": new})
            with app.state.lock:
                st = app.state
                if name in st.uc_models:
                    st.uc_models[new] = st.uc_models.pop(name)
                if name in st.uc_grants:
                    st.uc_grants[new] = st.uc_grants.pop(name)
                for n, v in list(st.uc_versions):
                    if n == name:
                        st.uc_versions[(new, v)] = st.uc_versions.pop((n, v))
            name = new
        if "description" in b:
            mlflow(
                app,
                "PATCH",
                "registered-models/update",
                body={"name": name, "description": b["description"]},
            )
        out = mlflow(app, "GET", "registered-models/get", {"name": name})
        return Response.json({"registered_model": model_out(app, out["registered_model"])})

    @app.route("DELETE", UC + r"/registered-models/delete")
    def delete_model(app, req):
        name = name_of(req)
        mlflow(app, "DELETE", "registered-models/delete", body={"name": name})
        with app.state.lock:
            app.state.uc_models.pop(name, None)
            app.state.uc_grants.pop(name, None)
            for key in [k for k in app.state.uc_versions if k[0] == name]:
                del app.state.uc_versions[key]
        return Response.json({})

    @app.route("POST", UC + r"/model-versions/create")
    def create_version(app, req):
        b = req.json()
        name = full_name(b.get("name"))
        if not b.get("source"):
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'source'"
            )
        mlflow(app, "GET", "registered-models/get", {"name": name})
        with app.state.lock:
            meta = app.state.uc_models.setdefault(
                name, {"uuid": str(uuid.uuid4()), "owner": req.principal}
            )
        storage = f"s3://{app.store.bucket}/uc/models/{meta['uuid']}/versions/{uuid.uuid4()}"
        body = {"name": name, "source": storage}
        for k in ("tags", "description"):
            if b.get(k):
                body[k] = b[k]
        mv = mlflow(app, "POST", "model-versions/create", body=body)["model_version"]
        with app.state.lock:
            app.state.uc_versions[(name, str(mv["version"]))] = UcVersion(
                source=b["source"],
                run_id=b.get("run_id") or None,
                run_tracking_server_id=b.get("run_tracking_server_id") or None,
                model_id=b.get("model_id") or None,
                storage_location=storage,
                user_id=req.principal,
            )
        return Response.json({"model_version": version_out(app, mv)})

    @app.route("GET", UC + r"/model-versions/get")
    def get_version_route(app, req):
        mv = get_version(app, name_of(req), req.field("version"))
        return Response.json({"model_version": version_out(app, mv)})

    @app.route("PATCH", UC + r"/model-versions/update")
    def update_version(app, req):
        b = req.json()
        name = full_name(b.get("name"))
        body = {
            "name": name,
            "version": str(b.get("version")),
            "description": b.get("description", ""),
        }
        mv = mlflow(app, "PATCH", "model-versions/update", body=body)["model_version"]
        return Response.json({"model_version": version_out(app, mv)})

    @app.route("DELETE", UC + r"/model-versions/delete")
    def delete_version(app, req):
        name, version = name_of(req), str(req.field("version"))
        mlflow(app, "DELETE", "model-versions/delete", body={"name": name, "version": version})
        with app.state.lock:
            app.state.uc_versions.pop((name, version), None)
        return Response.json({})

    @app.route("GET", UC + r"/model-versions/search")
    def search_versions(app, req):
        flt = req.param("filter", "") or ""
        m = re.fullmatch(r"\s*(name|run_id)\s*=\s*'([^']*)'\s*", flt)
        if not m:
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "Unsupported filter: use name = '<catalog>.<schema>.<model>' or run_id = '<id>'",
            )
        if m[1] == "name":
            params = {"filter": f"name = '{full_name(m[2])}'"}
            for k in ("max_results", "page_token"):
                if req.param(k):
                    params[k] = req.param(k)
            out = mlflow(app, "GET", "model-versions/search", params)
            res = {"model_versions": [version_out(app, v) for v in out.get("model_versions", [])]}
            if out.get("next_page_token"):
                res["next_page_token"] = out["next_page_token"]
            return Response.json(res)
        with app.state.lock:
            keys = sorted(k for k, v in app.state.uc_versions.items() if v.run_id == m[2])
        found = [version_out(app, get_version(app, n, v)) for n, v in keys]
        return Response.json({"model_versions": found} if found else {})

    @app.route("POST", UC + r"/model-versions/generate-temporary-credentials")
    def temporary_credentials(app, req):
        b = req.json()
        name, version = full_name(b.get("name")), str(b.get("version"))
        op = b.get("operation")
        if op not in ("MODEL_VERSION_OPERATION_READ", "MODEL_VERSION_OPERATION_READ_WRITE"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid operation {op!r}")
        meta = version_meta(app, name, version)
        write = op == "MODEL_VERSION_OPERATION_READ_WRITE"
        if write and meta.status != "PENDING_REGISTRATION":
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Model version {name}/{version} is {meta.status}: write credentials are only "
                "issued while it is PENDING_REGISTRATION",
            )
        prefix = meta.storage_location.split(f"s3://{app.store.bucket}/", 1)[1].rstrip("/") + "/"
        with app.state.lock:
            cred = TempCredential(
                prefix, write, app.state.settings.temp_credentials_ttl, req.principal
            )
            app.state.temp_credentials[cred.session_token] = cred
        return Response.json(
            {
                "credentials": {
                    "aws_temp_credentials": {
                        "access_key_id": cred.access_key_id,
                        "secret_access_key": cred.secret_access_key,
                        "session_token": cred.session_token,
                    },
                    "expiration_time": int(cred.expires_at * 1000),
                    "storage_mode": "CUSTOMER_HOSTED",
                }
            }
        )

    @app.route("GET", UC + r"/model-versions/get-download-uri")
    def download_uri(app, req):
        meta = version_meta(app, name_of(req), req.field("version"))
        return Response.json({"artifact_uri": meta.storage_location})

    @app.route("POST", UC + r"/model-versions/finalize")
    def finalize(app, req):
        b = req.json()
        name, version = full_name(b.get("name")), str(b.get("version"))
        meta = version_meta(app, name, version)
        with app.state.lock:
            meta.status = "READY"
        return Response.json({"model_version": version_out(app, get_version(app, name, version))})

    @app.route("POST", UC + r"/registered-models/alias")
    def set_alias(app, req):
        b = req.json()
        body = {
            "name": full_name(b.get("name")),
            "alias": b.get("alias"),
            "version": str(b.get("version")),
        }
        mlflow(app, "POST", "registered-models/alias", body=body)
        return Response.json({})

    @app.route("DELETE", UC + r"/registered-models/alias")
    def delete_alias(app, req):
        body = {"name": name_of(req), "alias": req.field("alias")}
        mlflow(app, "DELETE", "registered-models/alias", body=body)
        return Response.json({})

    @app.route("GET", UC + r"/registered-models/alias")
    def get_alias(app, req):
        out = mlflow(
            app,
            "GET",
            "registered-models/alias",
            {"name": name_of(req), "alias": req.param("alias")},
        )
        return Response.json({"model_version": version_out(app, out["model_version"])})

    @app.route("POST", UC + r"/registered-models/set-tag")
    def set_model_tag(app, req):
        b = req.json()
        body = {"name": full_name(b.get("name")), "key": b.get("key"), "value": b.get("value", "")}
        mlflow(app, "POST", "registered-models/set-tag", body=body)
        return Response.json({})

    @app.route("DELETE", UC + r"/registered-models/delete-tag")
    def delete_model_tag(app, req):
        body = {"name": name_of(req), "key": req.field("key")}
        mlflow(app, "DELETE", "registered-models/delete-tag", body=body)
        return Response.json({})

    @app.route("POST", UC + r"/model-versions/set-tag")
    def set_version_tag(app, req):
        b = req.json()
        body = {
            "name": full_name(b.get("name")),
            "version": str(b.get("version")),
            "key": b.get("key"),
            "value": b.get("value", ""),
        }
        mlflow(app, "POST", "model-versions/set-tag", body=body)
        return Response.json({})

    @app.route("DELETE", UC + r"/model-versions/delete-tag")
    def delete_version_tag(app, req):
        body = {"name": name_of(req), "version": str(req.field("version")), "key": req.field("key")}
        mlflow(app, "DELETE", "model-versions/delete-tag", body=body)
        return Response.json({})

    @app.route("POST", UC + r"/model-versions/emit-lineage")
    def lineage(app, req):
        return Response.json({})

    @app.route(
        "GET", UC + r"/registered-models:is-databricks-sdk-models-artifact-repository-enabled"
    )
    def sdk_repo(app, req):
        return Response.json({"is_databricks_sdk_models_artifact_repository_enabled": False})

    @app.route(["GET", "POST"], UC + r"/model-versions/transition-stage")
    def transition(app, req):
        raise unsupported("transition_model_version_stage")

    @app.route(["GET", "POST"], UC + r"/registered-models/get-latest-versions")
    def latest(app, req):
        raise unsupported("get_latest_versions")

    @app.route(["GET", "POST", "PUT", "PATCH", "DELETE"], UC + r"/.*")
    def other(app, req):
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")
