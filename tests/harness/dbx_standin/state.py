"""What the stand-in itself remembers (in memory, for one test process): identities, tokens,
the workspace tree, ACLs, Unity Catalog bookkeeping, settings and the request log.

Tracking and registry objects are not here: they live in the MLflow server behind the stand-in
(one MLflow workspace per Databricks workspace, `uc` for the metastore); files live in moto.
"""

import hashlib
import secrets
import threading
import time


class Settings:
    """Knobs a test sets through `POST /_standin/settings`."""

    def __init__(self):
        self.signed_url_ttl = 900.0
        self.object_delay_ms = 0
        self.list_page_size = 1000
        self.credentials_page_size = 1000
        self.temp_credentials_ttl = 3600.0
        # Every Nth request to a signed URL is answered as expired (0: none), so tests can make
        # URLs expire mid-transfer deterministically whatever the machine's speed.
        self.expire_every = 0
        # Every Nth object upload through the S3 front ends its session token first (0: none).
        self.expire_token_every = 0
        # Every Nth download through a signed URL is cut halfway (0: none).
        self.cut_every_get = 0

    def update(self, values):
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            setattr(self, key, type(getattr(self, key))(value))

    def as_dict(self):
        return dict(vars(self))


class Node:
    """One object of the workspace tree (`/api/2.0/workspace`)."""

    def __init__(self, path, object_type, object_id, language=None, source=None, owner=None):
        self.path = path
        self.object_type = object_type
        self.object_id = object_id
        self.language = language
        self.source = source
        self.owner = owner
        now = int(time.time() * 1000)
        self.created_at = now
        self.modified_at = now

    def info(self):
        out = {"object_type": self.object_type, "object_id": self.object_id, "path": self.path}
        if self.language:
            out["language"] = self.language
        if self.object_type == "NOTEBOOK":
            out["created_at"] = self.created_at
            out["modified_at"] = self.modified_at
        return out


class Workspace:
    """One Databricks workspace: a host, an id, its identities and its workspace tree."""

    def __init__(self, index, workspace_id):
        self.index = index
        self.workspace_id = workspace_id
        self.mlflow_workspace = f"ws-{index}"
        self.host = None
        # email → numeric user id
        self.users = {}
        # group name → set of members; `admins` and `users` exist in every workspace.
        self.groups = {"admins": set(), "users": set()}
        # application id (the OAuth client id) → {"secret", "ttl", "id"}
        self.service_principals = {}
        self.tree = {}
        self._next_object_id = 1_000_000_000_000 + index * 100_000_000_000
        self.add_node("/", "DIRECTORY")
        self.add_node("/Users", "DIRECTORY")
        self.add_node("/Shared", "DIRECTORY")
        # ACLs: (kind, object id) → {(principal kind, name): level}; kind is "experiments" or
        # "registered-models".
        self.acls = {}
        # registered model databricks id (32 hex) ↔ name, filled as ids are handed out (an id
        # stays with its model through a rename).
        self.model_ids = {}
        self.model_by_name = {}

    def next_object_id(self):
        self._next_object_id += 1
        return self._next_object_id

    def add_node(self, path, object_type, object_id=None, **kw):
        node = Node(path, object_type, object_id or self.next_object_id(), **kw)
        self.tree[path] = node
        return node

    def model_id(self, name):
        """The registered model's Databricks id: 32 hex digits, stable per workspace and name
        (inferred shape: real ids look like this; how they are made is not documented)."""
        mid = self.model_by_name.get(name)
        if mid is None:
            mid = hashlib.md5(f"{self.workspace_id}/{name}".encode()).hexdigest()
            self.model_ids[mid] = name
            self.model_by_name[name] = mid
        return mid

    def rename_model(self, old, new):
        mid = self.model_id(old)
        del self.model_by_name[old]
        self.model_by_name[new] = mid
        self.model_ids[mid] = new

    def principal_exists(self, kind, name):
        if kind == "user_name":
            return name in self.users
        if kind == "group_name":
            return name in self.groups
        if kind == "service_principal_name":
            return name in self.service_principals
        return False


class Token:
    def __init__(self, value, workspace, principal, kind, expires_at=None):
        self.value = value
        self.workspace = workspace
        self.principal = principal
        self.kind = kind
        self.expires_at = expires_at
        self.revoked = False

    def live(self):
        return not self.revoked and (self.expires_at is None or time.time() < self.expires_at)


class TempCredential:
    """An STS-like session for one UC model version's storage prefix."""

    def __init__(self, prefix, write, ttl, principal):
        self.principal = principal
        self.access_key_id = "ASIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.session_token = "standin-session-" + secrets.token_urlsafe(24)
        self.prefix = prefix
        self.write = write
        self.expires_at = time.time() + ttl

    def live(self):
        return time.time() < self.expires_at


class UcVersion:
    """What UC keeps about a model version beyond the OSS fields MLflow holds."""

    def __init__(self, source, run_id, run_tracking_server_id, model_id, storage_location, user_id):
        self.source = source
        self.run_id = run_id
        self.run_tracking_server_id = run_tracking_server_id
        self.model_id = model_id
        self.storage_location = storage_location
        self.user_id = user_id
        self.status = "PENDING_REGISTRATION"


class State:
    def __init__(self, workspace_count):
        self.lock = threading.RLock()
        self.settings = Settings()
        self.signing_key = secrets.token_bytes(32)
        self.workspaces = [
            Workspace(i, str(i + 1) * 16 if i < 9 else f"{i + 1:016d}")
            for i in range(workspace_count)
        ]
        self.tokens = {}
        self.temp_credentials = {}
        # Unity Catalog: catalog → set of schemas; schema grants (for effective permissions).
        self.catalogs = {"main": {"default"}}
        self.schema_grants = {}
        # full model name → {"uuid", "owner"}; (name, version) → UcVersion; name → grants.
        self.uc_models = {}
        self.uc_versions = {}
        self.uc_grants = {}
        # (workspace index, name, version) → S3 prefix of the workspace registry's copy.
        self.registry_files = {}
        self.log = []

    def account_principal_exists(self, name):
        """UC principals are account-level: a user, group or service principal of any
        workspace (inferred: the stand-in has no separate account)."""
        for ws in self.workspaces:
            if name in ws.users or name in ws.groups or name in ws.service_principals:
                return True
        return False
