"""Permissions: workspace ACLs of experiments and workspace-registry models
(`/api/2.0/permissions/{experiments|registered-models}/{id}`), and Unity Catalog grants on
models (securable type `function`, `/api/2.1/unity-catalog/{permissions|effective-permissions}`).

Workspace ACLs (shapes from a real sample in mlflow-export-import's repository):
- GET: the `admins` group's `CAN_MANAGE` inherited from the parent directory
  (`/directories/<id>`) or from `/registered-models/` (root); the home folder's owner's
  `CAN_MANAGE` inherited from `/directories/<home id>` for an experiment under `/Users/<name>`
  (inferred: users manage their home folder); and the direct entries (the creator's
  `CAN_MANAGE`, then whatever PATCH/PUT set).
- PATCH adds or updates direct entries; PUT replaces all direct entries. The whole request is
  refused, nothing applied, when one principal is unknown: 400 `INVALID_PARAMETER_VALUE`
  "Principal: UserName(x) does not exist" (GroupName/ServicePrincipalName likewise: inferred) or
  a level does not apply to the object type (inferred wording).
UC grants: direct grants per model; `effective-permissions` adds grants made on the schema
through control, as inherited. An unknown principal → 400 `PRINCIPAL_DOES_NOT_EXIST` "Could not
find principal with name x" (error code inferred); adding and removing one privilege for one
principal in the same request → 400 (terraform-provider-databricks#5824).
"""

from . import uc, workspace_api
from .web import ApiError, Response

LEVELS = {
    "experiments": [
        ("CAN_READ", "Can view the experiment"),
        ("CAN_EDIT", "Can view, log runs, and edit the experiment"),
        (
            "CAN_MANAGE",
            "Can view, log runs, edit, delete, and change permissions of the experiment",
        ),
    ],
    "registered-models": [
        ("CAN_READ", "Can view the details of the registered model and its model versions"),
        ("CAN_EDIT", "Can view and edit the details of a registered model and its model versions"),
        ("CAN_MANAGE_STAGING_VERSIONS", "Can view, edit, and manage staging model versions"),
        ("CAN_MANAGE_PRODUCTION_VERSIONS", "Can view, edit, and manage production model versions"),
        ("CAN_MANAGE", "Can manage permissions on, view, edit, and manage all model versions"),
    ],
}
OBJECT_TYPES = {"experiments": "mlflowExperiment", "registered-models": "registered-model"}
PRINCIPAL_KINDS = {
    "user_name": "UserName",
    "group_name": "GroupName",
    "service_principal_name": "ServicePrincipalName",
}
UC_PRIVILEGES = {"EXECUTE", "APPLY_TAG", "MANAGE", "ALL_PRIVILEGES", "BROWSE"}


def experiment_node(ws, exp_id):
    for node in ws.tree.values():
        if node.object_type == "MLFLOW_EXPERIMENT" and str(node.object_id) == str(exp_id):
            return node
    return None


def resolve_object(app, req, kind, oid):
    """Checks the object exists in this workspace; returns the inherited entries."""
    ws = req.ws
    if kind == "experiments":
        app.mlflow.call(
            ws.mlflow_workspace, "GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": oid}
        )
        inherited = []
        with app.state.lock:
            node = experiment_node(ws, oid)
            if node is not None:
                parent = ws.tree.get(workspace_api.parent(node.path))
                if parent is not None:
                    inherited.append(
                        (("group_name", "admins"), "CAN_MANAGE", f"/directories/{parent.object_id}")
                    )
                parts = node.path.split("/")
                if len(parts) > 3 and parts[1] == "Users":
                    home = ws.tree.get(f"/Users/{parts[2]}")
                    who = parts[2]
                    if home is not None and (who in ws.users or who in ws.service_principals):
                        pk = (
                            "service_principal_name"
                            if who in ws.service_principals
                            else "user_name"
                        )
                        inherited.append(
                            ((pk, who), "CAN_MANAGE", f"/directories/{home.object_id}")
                        )
        return inherited
    with app.state.lock:
        name = ws.model_ids.get(oid)
    if name is None:
        out = app.mlflow.call(
            ws.mlflow_workspace,
            "GET",
            "/api/2.0/mlflow/registered-models/search",
            {"max_results": 1000},
        )
        with app.state.lock:
            for m in out.get("registered_models", []):
                ws.model_id(m["name"])
            name = ws.model_ids.get(oid)
    if name is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model {oid} does not exist.")
    app.mlflow.call(
        ws.mlflow_workspace, "GET", "/api/2.0/mlflow/registered-models/get", {"name": name}
    )
    return [(("group_name", "admins"), "CAN_MANAGE", "/registered-models/")]


def object_permissions(app, req, kind, oid, inherited):
    ws = req.ws
    with app.state.lock:
        direct = dict(ws.acls.get((kind, oid), {}))
    entries = {}
    for principal, level, source in inherited:
        entries.setdefault(principal, []).append(
            {"permission_level": level, "inherited": True, "inherited_from_object": [source]}
        )
    for principal, level in sorted(direct.items()):
        entries.setdefault(principal, []).append({"permission_level": level, "inherited": False})
    acl = []
    for (pk, name), perms in entries.items():
        acl.append({pk: name, "display_name": name, "all_permissions": perms})
    return {
        "object_id": f"/{'experiments' if kind == 'experiments' else 'registered-models'}/{oid}",
        "object_type": OBJECT_TYPES[kind],
        "access_control_list": acl,
    }


def parse_acl(app, req, kind):
    acl = req.json().get("access_control_list")
    if not isinstance(acl, list):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "access_control_list must be a list")
    valid = {lvl for lvl, _ in LEVELS[kind]}
    out = {}
    with app.state.lock:
        for entry in acl:
            keys = [k for k in PRINCIPAL_KINDS if entry.get(k)]
            if len(keys) != 1:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Each access control entry needs exactly one of user_name, group_name, "
                    "service_principal_name",
                )
            pk, name = keys[0], entry[keys[0]]
            if not req.ws.principal_exists(pk, name):
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Principal: {PRINCIPAL_KINDS[pk]}({name}) does not exist",
                )
            level = entry.get("permission_level")
            if level not in valid:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Permission level {level} is not supported for {OBJECT_TYPES[kind]}",
                )
            out[(pk, name)] = level
    return out


def register(app):
    kinds = r"(?P<kind>experiments|registered-models)"

    @app.route(["GET", "PATCH", "PUT"], r"/api/2\.0/permissions/" + kinds + r"/(?P<oid>[^/]+)")
    def permissions(app, req):
        kind, oid = req.match["kind"], req.match["oid"]
        inherited = resolve_object(app, req, kind, oid)
        if req.method in ("PATCH", "PUT"):
            changes = parse_acl(app, req, kind)
            with app.state.lock:
                current = req.ws.acls.setdefault((kind, oid), {})
                if req.method == "PUT":
                    current.clear()
                current.update(changes)
        return Response.json(object_permissions(app, req, kind, oid, inherited))

    @app.route("GET", r"/api/2\.0/permissions/" + kinds + r"/(?P<oid>[^/]+)/permissionLevels")
    def levels(app, req):
        kind, oid = req.match["kind"], req.match["oid"]
        resolve_object(app, req, kind, oid)
        return Response.json(
            {
                "permission_levels": [
                    {"permission_level": lvl, "description": d} for lvl, d in LEVELS[kind]
                ]
            }
        )

    def securable(req):
        if req.match["type"].lower() != "function":
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "the stand-in supports securable type function (models) only, "
                f"not {req.match['type']}",
            )
        name = uc.full_name(req.match["name"])
        try:
            app.mlflow.call("uc", "GET", "/api/2.0/mlflow/registered-models/get", {"name": name})
        except ApiError as e:
            if e.status == 404:
                raise ApiError(404, "NOT_FOUND", f"Routine or Model '{name}' does not exist.")
            raise
        return name

    def assignments(grants, principal=None):
        return [
            {"principal": p, "privileges": sorted(privs)}
            for p, privs in sorted(grants.items())
            if privs and (principal is None or p == principal)
        ]

    @app.route(
        ["GET", "PATCH"], r"/api/2\.1/unity-catalog/permissions/(?P<type>[^/]+)/(?P<name>[^/]+)"
    )
    def uc_permissions(app, req):
        name = securable(req)
        if req.method == "PATCH":
            changes = req.json().get("changes") or []
            with app.state.lock:
                for c in changes:
                    p = c.get("principal")
                    if not p or not app.state.account_principal_exists(p):
                        raise ApiError(
                            400,
                            "PRINCIPAL_DOES_NOT_EXIST",
                            f"Could not find principal with name {p}",
                        )
                    add, remove = set(c.get("add") or []), set(c.get("remove") or [])
                    if add & remove:
                        raise ApiError(
                            400,
                            "INVALID_PARAMETER_VALUE",
                            f"Cannot add and remove the same privilege for principal {p}",
                        )
                    for priv in add | remove:
                        if priv not in UC_PRIVILEGES:
                            raise ApiError(
                                400,
                                "INVALID_PARAMETER_VALUE",
                                f"Privilege {priv} is not applicable to this entity",
                            )
                grants = app.state.uc_grants.setdefault(name, {})
                for c in changes:
                    privs = grants.setdefault(c["principal"], set())
                    privs |= set(c.get("add") or [])
                    privs -= set(c.get("remove") or [])
        with app.state.lock:
            grants = {p: set(v) for p, v in app.state.uc_grants.get(name, {}).items()}
        out = assignments(grants, req.param("principal"))
        return Response.json({"privilege_assignments": out} if out else {})

    @app.route(
        "GET", r"/api/2\.1/unity-catalog/effective-permissions/(?P<type>[^/]+)/(?P<name>[^/]+)"
    )
    def uc_effective(app, req):
        name = securable(req)
        schema = name.rsplit(".", 1)[0]
        with app.state.lock:
            direct = {p: set(v) for p, v in app.state.uc_grants.get(name, {}).items()}
            inherited = {p: set(v) for p, v in app.state.schema_grants.get(schema, {}).items()}
        entries = {}
        for p, privs in direct.items():
            for priv in sorted(privs):
                entries.setdefault(p, []).append({"privilege": priv})
        for p, privs in inherited.items():
            for priv in sorted(privs):
                entries.setdefault(p, []).append(
                    {
                        "privilege": priv,
                        "inherited_from_type": "SCHEMA",
                        "inherited_from_name": schema,
                    }
                )
        only = req.param("principal")
        out = [
            {"principal": p, "privileges": v}
            for p, v in sorted(entries.items())
            if only is None or p == only
        ]
        return Response.json({"privilege_assignments": out} if out else {})
