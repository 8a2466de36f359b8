"""The S3 front: what clients reach with Unity Catalog's temporary credentials
(`MLFLOW_S3_ENDPOINT_URL` / `AWS_ENDPOINT_URL` point at it), path-style.

It reads the session token (`x-amz-security-token` header, or `X-Amz-Security-Token` in a
presigned URL's query):
- unknown or expired → 400 XML `ExpiredToken` "The provided token has expired." quoting the
  token in `<Token-0>` (AWS's answer);
- a key outside the token's model-version prefix, a listing of another prefix, or a write with a
  read token → 403 `AccessDenied`;
- everything else is relayed to moto (which checks no signatures, so the relay is transparent).
Bucket-level HEAD/GET location are allowed for any live token (MLflow's S3 repository asks the
bucket's region first).
"""

import itertools
import time
import urllib.parse

from .artifacts import BodyReader, relay_response
from .web import S3Error

_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "expect"}


_PUTS = itertools.count()


def handle(app, req):
    token = req.header("x-amz-security-token") or req.param("X-Amz-Security-Token")
    with app.state.lock:
        cred = app.state.temp_credentials.get(token or "")
        # AWS quotes the token it refuses.
        quoted = {"Token-0": token} if token else None
        if cred is None or not cred.live():
            raise S3Error(400, "ExpiredToken", "The provided token has expired.", quoted)
        every = app.state.settings.expire_token_every
        if every and req.method == "PUT" and next(_PUTS) % every == every - 1:
            # A token that ends between two uploads, whatever the machine's speed.
            cred.expires_at = time.time()
            raise S3Error(400, "ExpiredToken", "The provided token has expired.", quoted)
        req.principal, req.auth_kind = cred.principal, "sts"
    bucket, _, raw_key = req.raw_path.lstrip("/").partition("/")
    key = urllib.parse.unquote(raw_key)
    if bucket != app.store.bucket:
        raise S3Error(403, "AccessDenied", "Access Denied")
    write = req.method in ("PUT", "POST", "DELETE")
    if not key:
        if req.method == "HEAD" or "location" in req.query:
            pass
        elif req.method == "GET":
            prefix = req.param("prefix", "")
            if not (prefix if prefix.endswith("/") else prefix + "/").startswith(cred.prefix):
                raise S3Error(403, "AccessDenied", "Access Denied")
        else:
            raise S3Error(403, "AccessDenied", "Access Denied")
    else:
        if not key.startswith(cred.prefix):
            raise S3Error(403, "AccessDenied", "Access Denied")
        if write and not cred.write:
            raise S3Error(403, "AccessDenied", "Access Denied")
    headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
    if "X-Amz-Signature" in req.query:
        # A presigned URL: its signature is in the query; moto checks none, but the session's
        # default Authorization header must not be added to it.
        headers["Authorization"] = None
    url = f"{app.store.endpoint}{req.raw_path}" + (f"?{req.raw_query}" if req.raw_query else "")
    data = None
    if req.is_chunked():
        data = req.body()
    elif req.content_length():
        data = BodyReader(req, req.content_length())
    elif req.method in ("PUT", "POST"):
        data = b""
    r = app.store.session().request(
        req.method, url, headers=headers, data=data, stream=True, timeout=600
    )
    return relay_response(r)
