"""Authentication: personal access tokens, OAuth M2M (client credentials) and its discovery.

- `Authorization: Bearer <token>`: missing → 401 `UNAUTHENTICATED`; unknown, revoked, expired,
  or another workspace's token → 403 `{"error_code": 403, "message": "Invalid access token."}`
  with `X-Databricks-Reason-Phrase` (the numeric `error_code` is what real workspaces answer:
  databricks/databricks-sdk-go#873, #917).
- `GET /.well-known/databricks-config` and `GET /oidc/.well-known/oauth-authorization-server`
  (SDK discovery, no auth), `POST /oidc/v1/token` (client credentials, HTTP Basic client auth as
  the SDK sends it; the client id/secret in the form body are accepted too, as OAuth allows:
  inferred). Access tokens live for the service principal's `ttl`.
"""

import base64
import secrets
import time
import urllib.parse

from .state import Token
from .web import ApiError, Response

INVALID = "Invalid access token."


def invalid_token():
    return ApiError(
        403,
        403,
        INVALID,
        headers={"X-Databricks-Reason-Phrase": INVALID},
        body={"error_code": 403, "message": INVALID},
    )


def authenticate(app, req):
    header = req.header("Authorization", "")
    scheme, _, value = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        )
    with app.state.lock:
        token = app.state.tokens.get(value.strip())
        if token is None or not token.live() or token.workspace is not req.ws:
            raise invalid_token()
        req.principal = token.principal
        req.auth_kind = token.kind


def register(app):
    @app.route("GET", r"/\.well-known/databricks-config", auth_required=False)
    def databricks_config(app, req):
        return Response.json(
            {"oidc_endpoint": f"{req.host}/oidc", "workspace_id": req.ws.workspace_id}
        )

    @app.route("GET", r"/oidc/\.well-known/oauth-authorization-server", auth_required=False)
    def oidc_discovery(app, req):
        return Response.json(
            {
                "issuer": f"{req.host}/oidc",
                "authorization_endpoint": f"{req.host}/oidc/v1/authorize",
                "token_endpoint": f"{req.host}/oidc/v1/token",
                "grant_types_supported": ["client_credentials", "authorization_code"],
            }
        )

    @app.route("POST", r"/oidc/v1/token", auth_required=False)
    def token(app, req):
        form = urllib.parse.parse_qs(req.body().decode("utf-8", "replace"))
        client_id = client_secret = None
        header = req.header("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id = urllib.parse.unquote(client_id)
                client_secret = urllib.parse.unquote(client_secret)
            except (ValueError, UnicodeDecodeError):
                client_id = None
        if client_id is None:
            client_id = (form.get("client_id") or [None])[0]
            client_secret = (form.get("client_secret") or [None])[0]
        grant = (form.get("grant_type") or [""])[0]
        if grant != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
        with app.state.lock:
            sp = req.ws.service_principals.get(client_id or "")
            if sp is None or not secrets.compare_digest(sp["secret"], client_secret or ""):
                return oauth_error(401, "invalid_client", "Client authentication failed")
            value = "standin-oauth-" + secrets.token_urlsafe(24)
            ttl = sp["ttl"]
            app.state.tokens[value] = Token(
                value, req.ws, client_id, "oauth", expires_at=time.time() + ttl
            )
        scope = (form.get("scope") or ["all-apis"])[0]
        return Response.json(
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "scope": scope,
            }
        )


def oauth_error(status, error, description):
    return Response.json({"error": error, "error_description": description}, status)
