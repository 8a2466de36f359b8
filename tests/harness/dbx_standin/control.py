"""`/_standin/*`: how tests set the stand-in up and look into it. Not part of any Databricks
API (so no client code path can reach it by accident), served on every workspace host, no auth.
"""

import time

from . import workspace_api
from .state import Token
from .web import ApiError, Response


def register(app):
    def body(req):
        return req.json()

    @app.route("POST", r"/_standin/users", auth_required=False)
    def users(app, req):
        b = body(req)
        ws = app.workspace(b.get("workspace", req.ws.index))
        with app.state.lock:
            if "group" in b:
                members = set(b.get("members", []))
                ws.groups.setdefault(b["group"], set()).update(members)
                return Response.json({"group": b["group"]})
            name = b.get("name")
            if not name:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", "name or group is required")
            user_id = ws.users.get(name) or ws.next_object_id()
            ws.users[name] = user_id
            ws.groups["users"].add(name)
            if b.get("admin"):
                ws.groups["admins"].add(name)
            workspace_api.ensure_home(ws, name)
        return Response.json({"name": name, "id": user_id})

    @app.route("POST", r"/_standin/tokens", auth_required=False)
    def tokens(app, req):
        b = body(req)
        ws = app.workspace(b.get("workspace", req.ws.index))
        value, user = b.get("token"), b.get("user")
        if not value or not user:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "token and user are required")
        expires = b.get("expires_in")
        with app.state.lock:
            if user not in ws.users and user not in ws.service_principals:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"no user {user} in workspace")
            app.state.tokens[value] = Token(
                value,
                ws,
                user,
                "pat",
                expires_at=None if expires is None else time.time() + float(expires),
            )
        return Response.json({"token": value})

    @app.route("POST", r"/_standin/tokens/revoke", auth_required=False)
    def revoke(app, req):
        b = body(req)
        with app.state.lock:
            t = app.state.tokens.get(b.get("token", ""))
            if t is None:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "no such token")
            t.revoked = True
        return Response.json({})

    @app.route("POST", r"/_standin/service-principals", auth_required=False)
    def service_principals(app, req):
        b = body(req)
        ws = app.workspace(b.get("workspace", req.ws.index))
        cid, secret = b.get("client_id"), b.get("client_secret")
        if not cid or not secret:
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "client_id and client_secret are required"
            )
        with app.state.lock:
            ws.service_principals[cid] = {
                "secret": secret,
                "ttl": float(b.get("ttl", 3600)),
                "id": ws.next_object_id(),
            }
            ws.groups["users"].add(cid)
            workspace_api.ensure_home(ws, cid)
        return Response.json({"client_id": cid})

    @app.route("POST", r"/_standin/settings", auth_required=False)
    def settings(app, req):
        b = body(req)
        with app.state.lock:
            try:
                app.state.settings.update(b)
            except KeyError as e:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"unknown setting {e.args[0]}")
            return Response.json(app.state.settings.as_dict())

    @app.route("POST", r"/_standin/notebooks", auth_required=False)
    def notebooks(app, req):
        b = body(req)
        ws = app.workspace(b.get("workspace", req.ws.index))
        path = workspace_api.normalize(b.get("path", ""))
        language = (b.get("language") or "PYTHON").upper()
        with app.state.lock:
            workspace_api.mkdirs(ws, path.rsplit("/", 1)[0] or "/")
            node = workspace_api.put_notebook(
                ws, path, language, workspace_api.strip_header(b.get("source", ""), language), True
            )
            return Response.json(node.info())

    @app.route("POST", r"/_standin/catalogs", auth_required=False)
    def catalogs(app, req):
        b = body(req)
        catalog, schema = b.get("catalog"), b.get("schema")
        if not catalog or not schema:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "catalog and schema are required")
        with app.state.lock:
            app.state.catalogs.setdefault(catalog.lower(), set()).add(schema.lower())
            for principal, privileges in (b.get("grants") or {}).items():
                key = f"{catalog.lower()}.{schema.lower()}"
                app.state.schema_grants.setdefault(key, {}).setdefault(principal, set()).update(
                    privileges
                )
        return Response.json({})

    @app.route("GET", r"/_standin/log", auth_required=False)
    def log(app, req):
        with app.state.lock:
            return Response.json(list(app.state.log))

    @app.route("POST", r"/_standin/log/clear", auth_required=False)
    def log_clear(app, req):
        with app.state.lock:
            app.state.log.clear()
        return Response.json({})

    @app.route("GET", r"/_standin/info", auth_required=False)
    def info(app, req):
        return Response.json(
            {
                "workspaces": [
                    {"host": w.host, "workspace_id": w.workspace_id} for w in app.state.workspaces
                ],
                "s3_front": app.s3_front_url,
                "settings": app.state.settings.as_dict(),
            }
        )
