"""Artifacts in `dbfs:/databricks/mlflow-tracking` (`databricks_artifacts.proto`): signed-URL
credentials, multipart uploads, listings answered from S3, and the signed-URL object endpoint.

Files live in moto, bucket `dbx`, key = the dbfs path after `dbfs:/databricks/`.

`signed_uri`s point at this stand-in's own `/_signed/<op>/<key>` (op: get, put, part, abort),
carry `X-Amz-Date`/`X-Amz-Expires` like an AWS presigned URL plus `expires` (epoch seconds) and
`sig` (HMAC over op, key, expiry, upload id, part number). The object endpoint, like S3 on a
presigned URL:
- a bad signature, another HTTP method, or the required header
  `x-amz-server-side-encryption: AES256` missing → 403 XML `SignatureDoesNotMatch` (S3 answers
  this when a signed header is missing);
- past its expiry → 403 XML `AccessDenied` "Request has expired" (AWS's answer; moto itself does
  not enforce expiry);
- an upload with `Transfer-Encoding: chunked` and no length → 501 `NotImplemented` (S3 refuses
  chunked presigned PUTs; MLflow sends an empty file with `data=""` for that reason); one with
  neither a length nor chunking → 411 `MissingContentLength` (S3; reqwest sends an empty body
  without Content-Length, so a client must set `Content-Length: 0` itself);
- otherwise the request is relayed to moto (GET with `Range`, PUT, part PUT answering moto's
  `ETag`, DELETE to abort), after the control-set `object_delay_ms` (the delay comes first, so a
  URL can expire while its request waits).
The same header is required on reads and writes (inferred: real credentials may list other
headers, or none, for reads; the stand-in uses one header to check that clients send them).
Listings (`artifacts/list`, `logged-models/{id}/artifacts/directories`) are paged with the
control-set `list_page_size`; credentials with `credentials_page_size`. Page tokens are opaque.
Moto enforces S3's 5 MiB minimum for every multipart part but the last.
"""

import base64
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from datetime import datetime, timezone

from .web import ApiError, Response, S3Error

SSE_HEADER = "x-amz-server-side-encryption"
SSE_VALUE = "AES256"
REQUIRED_HEADERS = [{"name": SSE_HEADER, "value": SSE_VALUE}]


# -- signing ---------------------------------------------------------------------------------


def _mac(app, op, key, expires, upload_id, part):
    msg = f"{op}\n{key}\n{expires}\n{upload_id}\n{part}".encode()
    return hmac.new(app.state.signing_key, msg, hashlib.sha256).hexdigest()


def signed_uri(app, host, op, key, upload_id="", part=""):
    ttl = app.state.settings.signed_url_ttl
    now = time.time()
    expires = f"{now + ttl:.3f}"
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Date", datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")),
        ("X-Amz-Expires", str(max(1, int(round(ttl))))),
        ("X-Amz-SignedHeaders", f"host;{SSE_HEADER}"),
        ("expires", expires),
    ]
    if upload_id:
        query.append(("uploadId", upload_id))
    if part:
        query.append(("partNumber", str(part)))
    query.append(("sig", _mac(app, op, key, expires, upload_id, str(part) if part else "")))
    return (
        f"{host}/_signed/{op}/{urllib.parse.quote(key, safe='/')}?{urllib.parse.urlencode(query)}"
    )


def credential_info(app, host, op, key, path, run_id=None, upload_id="", part=""):
    info = {
        "path": path,
        "signed_uri": signed_uri(app, host, op, key, upload_id, part),
        "type": "AWS_PRESIGNED_URL",
        "headers": list(REQUIRED_HEADERS),
    }
    if run_id is not None:
        info = {"run_id": run_id, **info}
    return info


# -- helpers ---------------------------------------------------------------------------------


def clean_path(path):
    """A path relative to an artifact root: no leading `/`, no `.` or `..` parts."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid path {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ApiError(
            400, "INVALID_PARAMETER_VALUE", f"Invalid path {path!r}: '..' is not allowed"
        )
    return "/".join(parts)


def encode_token(offset):
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token):
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid page token {token!r}")


def run_root(app, req, run_id):
    """(artifact_uri, S3 key of the root) of a run of this workspace."""
    if not run_id:
        raise ApiError(
            400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"
        )
    run = app.mlflow.call(
        req.ws.mlflow_workspace, "GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id}
    )
    uri = run["run"]["info"]["artifact_uri"]
    return uri, root_key(uri)


def model_root(app, req, model_id):
    model = app.mlflow.call(
        req.ws.mlflow_workspace, "GET", f"/api/2.0/mlflow/logged-models/{model_id}"
    )
    uri = model["model"]["info"]["artifact_uri"]
    return uri, root_key(uri)


def root_key(uri):
    key = uri.split("dbfs:/databricks/", 1)[1] if uri.startswith("dbfs:/databricks/") else None
    if key is None:
        raise ApiError(
            400,
            "INVALID_PARAMETER_VALUE",
            f"Artifact root {uri} is not in dbfs:/databricks/mlflow-tracking",
        )
    return key.rstrip("/")


def join_key(root, path):
    return f"{root}/{path}" if path else root


def listing(app, root, path, page_token):
    """The entries directly under `path` (relative to `root`), one page."""
    path = clean_path(path)
    target = join_key(root, path)
    size = app.store.head(target) if path else None
    if size is not None:
        entries = [{"path": path, "is_dir": False, "file_size": size}]
    else:
        dirs, files = app.store.list_dir(target + "/")
        entries = [{"path": d[len(root) + 1 :].rstrip("/"), "is_dir": True} for d in dirs] + [
            {"path": k[len(root) + 1 :], "is_dir": False, "file_size": s} for k, s in files
        ]
        entries.sort(key=lambda e: e["path"])
    offset = decode_token(page_token)
    n = max(1, app.state.settings.list_page_size)
    page = entries[offset : offset + n]
    out = {}
    if page:
        out["files"] = page
    if offset + n < len(entries):
        out["next_page_token"] = encode_token(offset + n)
    return out


def paths_page(app, paths, page_token):
    offset = decode_token(page_token)
    n = max(1, app.state.settings.credentials_page_size)
    page = paths[offset : offset + n]
    nxt = encode_token(offset + n) if offset + n < len(paths) else None
    return page, nxt


# -- routes ----------------------------------------------------------------------------------


def register(app):
    @app.route("GET", r"/api/2\.0/mlflow/artifacts/list")
    def list_artifacts(app, req):
        run_id = req.param("run_id") or req.param("run_uuid")
        uri, root = run_root(app, req, run_id)
        out = {"root_uri": uri}
        out.update(listing(app, root, req.param("path", ""), req.param("page_token")))
        return Response.json(out)

    @app.route("GET", r"/api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/directories")
    def list_model_artifacts(app, req):
        _, root = model_root(app, req, req.match["model_id"])
        return Response.json(
            listing(app, root, req.param("artifact_directory_path", ""), req.param("page_token"))
        )

    def run_credentials(op):
        def handler(app, req):
            b = req.json()
            run_id = b.get("run_id")
            _, root = run_root(app, req, run_id)
            paths = b.get("path") or []
            if isinstance(paths, str):
                paths = [paths]
            page, nxt = paths_page(app, paths, b.get("page_token"))
            infos = [
                credential_info(app, req.host, op, join_key(root, clean_path(p)), p, run_id=run_id)
                for p in page
            ]
            out = {"credential_infos": infos} if infos else {}
            if nxt:
                out["next_page_token"] = nxt
            return Response.json(out)

        return handler

    app.route("POST", r"/api/2\.0/mlflow/artifacts/credentials-for-read")(run_credentials("get"))
    app.route("POST", r"/api/2\.0/mlflow/artifacts/credentials-for-write")(run_credentials("put"))

    def model_credentials(op):
        def handler(app, req):
            model_id = req.match["model_id"]
            _, root = model_root(app, req, model_id)
            b = req.json()
            paths = b.get("paths") or []
            if isinstance(paths, str):
                paths = [paths]
            page, nxt = paths_page(app, paths, b.get("page_token"))
            creds = [
                {
                    "model_id": model_id,
                    "credential_info": credential_info(
                        app, req.host, op, join_key(root, clean_path(p)), p
                    ),
                }
                for p in page
            ]
            out = {"credentials": creds} if creds else {}
            if nxt:
                out["next_page_token"] = nxt
            return Response.json(out)

        return handler

    app.route(
        "POST",
        r"/api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/credentials-for-download",
    )(model_credentials("get"))
    app.route(
        "POST",
        r"/api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/credentials-for-upload",
    )(model_credentials("put"))

    @app.route("POST", r"/api/2\.0/mlflow/artifacts/create-multipart-upload")
    def create_multipart(app, req):
        b = req.json()
        run_id, path = b.get("run_id"), clean_path(b.get("path"))
        _, root = run_root(app, req, run_id)
        if not path:
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'path'"
            )
        try:
            num_parts = int(b.get("num_parts", 0))
        except (TypeError, ValueError):
            num_parts = 0
        if not 1 <= num_parts <= 10000:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "num_parts must be between 1 and 10000")
        key = join_key(root, path)
        upload_id = app.store.client.create_multipart_upload(Bucket=app.store.bucket, Key=key)[
            "UploadId"
        ]
        return Response.json(
            {
                "upload_id": upload_id,
                "upload_credential_infos": [
                    credential_info(app, req.host, "part", key, b["path"], run_id, upload_id, n)
                    for n in range(1, num_parts + 1)
                ],
                "abort_credential_info": credential_info(
                    app, req.host, "abort", key, b["path"], run_id, upload_id
                ),
            }
        )

    @app.route("GET", r"/api/2\.0/mlflow/artifacts/get-presigned-upload-part-url")
    def part_url(app, req):
        run_id, path = req.param("run_id"), req.param("path")
        upload_id, part = req.param("upload_id"), req.param("part_number")
        _, root = run_root(app, req, run_id)
        if not upload_id or not part or not part.isdigit():
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "upload_id and part_number are required")
        key = join_key(root, clean_path(path))
        return Response.json(
            {
                "upload_credential_info": credential_info(
                    app, req.host, "part", key, path, run_id, upload_id, int(part)
                )
            }
        )

    @app.route("POST", r"/api/2\.0/mlflow/artifacts/complete-multipart-upload")
    def complete_multipart(app, req):
        b = req.json()
        run_id, path = b.get("run_id"), clean_path(b.get("path"))
        _, root = run_root(app, req, run_id)
        parts = sorted(
            (
                {"PartNumber": int(p["part_number"]), "ETag": p["etag"]}
                for p in b.get("part_etags", [])
            ),
            key=lambda p: p["PartNumber"],
        )
        try:
            app.store.client.complete_multipart_upload(
                Bucket=app.store.bucket,
                Key=join_key(root, path),
                UploadId=b.get("upload_id", ""),
                MultipartUpload={"Parts": parts},
            )
        except app.store.client.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Completing the multipart upload failed: {err.get('Code')}: {err.get('Message')}",
            )
        return Response.json({})

    @app.route(
        ["GET", "PUT", "DELETE"],
        r"/_signed/(?P<op>get|put|part|abort)/(?P<key>.+)",
        auth_required=False,
    )
    def signed(app, req):
        return signed_object(app, req)


_SIGNED_COUNT = itertools.count()
_GETS = itertools.count()


def _cut(chunks, n):
    """The first `n` bytes of a body, then the connection dropped (a cut answer)."""
    sent = 0
    try:
        for c in chunks:
            take = c[: n - sent]
            if take:
                yield take
                sent += len(take)
            if sent >= n:
                break
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    raise ConnectionResetError("the stand-in cut this answer (cut_every_get)")


def signed_object(app, req):
    delay = app.state.settings.object_delay_ms
    if delay:
        time.sleep(delay / 1000.0)
    op, key = req.match["op"], req.match["key"]
    expires = req.param("expires", "")
    upload_id = req.param("uploadId", "")
    part = req.param("partNumber", "")
    want = _mac(app, op, key, expires, upload_id, part)
    method_ok = {"get": ("GET", "HEAD"), "put": ("PUT",), "part": ("PUT",), "abort": ("DELETE",)}[
        op
    ]
    if not hmac.compare_digest(want, req.param("sig", "")) or req.method not in method_ok:
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    try:
        expired = time.time() > float(expires)
    except ValueError:
        expired = True
    every = app.state.settings.expire_every
    if every and next(_SIGNED_COUNT) % every == every - 1:
        expired = True
    if expired:
        raise S3Error(403, "AccessDenied", "Request has expired")
    if req.header(SSE_HEADER) != SSE_VALUE:
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            f"The request signature we calculated does not match the signature you provided: "
            f"signed header {SSE_HEADER} is missing",
        )
    url = app.store.url(urllib.parse.quote(key, safe="/"))
    s = app.store.session()
    if op == "get":
        headers = {}
        if req.header("Range"):
            headers["Range"] = req.header("Range")
        r = s.request(req.method, url, headers=headers, stream=True, timeout=300)
        resp = relay_response(r)
        every = app.state.settings.cut_every_get
        if (
            every
            and req.method == "GET"
            and (resp.length or 0) > 1
            and next(_GETS) % every == every - 1
        ):
            resp.body = _cut(resp.body, resp.length // 2)
        return resp
    if op == "abort":
        r = s.delete(url, params={"uploadId": upload_id}, timeout=60)
        return relay_response(r)
    if req.is_chunked():
        raise S3Error(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
        )
    params = {"partNumber": part, "uploadId": upload_id} if op == "part" else None
    n = req.content_length()
    if n is None:
        raise S3Error(
            411, "MissingContentLength", "You must provide the Content-Length HTTP header."
        )
    data = BodyReader(req, n) if n else b""
    r = s.put(url, params=params, data=data, timeout=600)
    return relay_response(r)


class BodyReader:
    """The request body as a file with a known length (requests then sends Content-Length)."""

    def __init__(self, req, length):
        self._chunks = req.body_stream()
        self._buf = b""
        self.len = length

    def __len__(self):
        return self.len

    def __iter__(self):
        yield from self._chunks

    def read(self, n=-1):
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


_PASS = {
    "etag",
    "content-type",
    "content-range",
    "accept-ranges",
    "last-modified",
    "content-length",
}


def relay_response(r):
    """moto's answer, streamed."""
    headers = {
        k: v for k, v in r.headers.items() if k.lower() in _PASS or k.lower().startswith("x-amz-")
    }
    headers.pop("Content-Length", None)
    headers.pop("content-length", None)
    length = r.headers.get("Content-Length")
    if r.request.method == "HEAD":
        r.close()
        resp = Response(r.status_code, b"", headers)
        if length is not None:
            resp.headers["Content-Length"] = length
        return resp
    if length is None:
        return Response(r.status_code, r.content, headers)
    return Response(r.status_code, _iter_and_close(r), headers, length=int(length))


def _iter_and_close(r):
    try:
        yield from r.raw.stream(1 << 20, decode_content=False)
    finally:
        r.close()
