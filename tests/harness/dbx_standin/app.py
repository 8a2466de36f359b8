"""The application: state, backends, routes per area, authentication, the request log."""

import json
import time

from . import artifacts, auth, control, permissions, registry, s3front, tracking, uc, workspace_api
from .backend import Mlflow, Store
from .state import State
from .web import ApiError, Context, Router, S3Error, serve


class App:
    def __init__(self, mlflow_uri, s3_endpoint, bucket, workspace_count, state_dir=None):
        self.state = State(workspace_count)
        self.mlflow = Mlflow(mlflow_uri)
        self.store = Store(s3_endpoint, bucket)
        self.state_dir = state_dir
        self.router = Router()
        # Order matters: specific routes before the tracking relay's catch-all.
        for area in (control, auth, artifacts, workspace_api, permissions, uc, registry, tracking):
            area.register(self)
        self.s3_front_url = None

    def route(self, methods, pattern, auth_required=True):
        def deco(func):
            self.router.add(methods, pattern, func, auth_required)
            return func

        return deco

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, req):
        found = self.router.find(req.method, req.path)
        if found is None or found == "method":
            # Another method on a known path is an unknown endpoint too (inferred).
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")
        func, auth_required, match = found
        req.match = match
        if auth_required:
            auth.authenticate(self, req)
        return func(self, req)

    def dispatch_s3(self, req):
        try:
            return s3front.handle(self, req)
        except ApiError as e:  # never JSON on the S3 front
            raise S3Error(e.status, "InternalError", e.message)

    # -- the request log --------------------------------------------------------------------

    def log_request(self, req, resp, started):
        entry = {
            "method": req.method,
            "path": req.path,
            "status": resp.status,
            "principal": req.principal,
            "auth": req.auth_kind,
            "host": req.host,
            "workspace": req.ws.index if req.ws is not None else None,
            "signed_header": req.header("x-amz-server-side-encryption") is not None,
            "time": started,
            "ms": int((time.time() - started) * 1000),
        }
        if req.path.startswith("/_standin/"):
            return
        with self.state.lock:
            self.state.log.append(entry)
            if self.state_dir:
                with open(f"{self.state_dir}/requests.jsonl", "a") as f:
                    f.write(json.dumps(entry) + "\n")

    # -- startup ----------------------------------------------------------------------------

    def start(self, ports):
        """Listens on one port per workspace and one for the S3 front (0 = any free port)."""
        self.store.ensure_bucket()
        for ws in self.state.workspaces:
            r = self.mlflow.raw(
                "default",
                "POST",
                "/api/3.0/mlflow/workspaces",
                body=json.dumps(
                    {
                        "name": ws.mlflow_workspace,
                        "default_artifact_root": "dbfs:/databricks/mlflow-tracking",
                    }
                ),
                content_type="application/json",
            )
            if r.status_code not in (200, 201) and "ALREADY_EXISTS" not in r.text:
                raise RuntimeError(f"creating MLflow workspace {ws.mlflow_workspace}: {r.text}")
        r = self.mlflow.raw(
            "default",
            "POST",
            "/api/3.0/mlflow/workspaces",
            body=json.dumps(
                {"name": "uc", "default_artifact_root": f"s3://{self.store.bucket}/uc"}
            ),
            content_type="application/json",
        )
        if r.status_code not in (200, 201) and "ALREADY_EXISTS" not in r.text:
            raise RuntimeError(f"creating MLflow workspace uc: {r.text}")
        servers = []
        for ws, port in zip(self.state.workspaces, ports):

            def factory(base, ws=ws):
                ws.host = base
                return Context(self, ws, base, self.dispatch)

            servers.append(serve(factory, port))

        def front(base):
            self.s3_front_url = base
            return Context(self, None, base, self.dispatch_s3)

        servers.append(serve(front, ports[len(self.state.workspaces)]))
        return servers

    def workspace(self, index):
        try:
            return self.state.workspaces[int(index)]
        except (IndexError, ValueError, TypeError):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"no workspace {index!r}")
