"""The HTTP core of the stand-in: requests, responses, errors, routing, one server per port.

Plain `http.server.ThreadingHTTPServer` with HTTP/1.1 keep-alive: every answer carries a
Content-Length (or is closed after it), and a request body that a handler did not read is drained
(small) or the connection is closed (large), so a refused upload never desynchronises the stream.
"""

import json
import re
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ApiError(Exception):
    """A Databricks REST error: JSON `{"error_code", "message"}` with an HTTP status."""

    def __init__(self, status, error_code, message, headers=None, body=None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}
        self.body = body

    def response(self):
        body = (
            self.body
            if self.body is not None
            else {
                "error_code": self.error_code,
                "message": self.message,
            }
        )
        r = Response.json(body, self.status)
        r.headers.update(self.headers)
        return r


def bad_request(message, code="INVALID_PARAMETER_VALUE"):
    return ApiError(400, code, message)


def not_found(message, code="RESOURCE_DOES_NOT_EXIST"):
    return ApiError(404, code, message)


class S3Error(Exception):
    """An S3-style XML error (what a cloud object store answers on a signed URL)."""

    def __init__(self, status, code, message, extra=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # More elements, as S3 adds them (`Token-0`: the session token an ExpiredToken quotes).
        self.extra = extra or {}

    def response(self):
        more = "".join(f"<{k}>{v}</{k}>" for k, v in self.extra.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>{more}"
            f"<RequestId>standin</RequestId></Error>"
        ).encode()
        return Response(self.status, body, {"Content-Type": "application/xml"})


class Response:
    """Status, headers and a body: bytes, or an iterator of bytes with a known `length`."""

    def __init__(self, status=200, body=b"", headers=None, length=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.length = length

    @staticmethod
    def json(obj, status=200):
        return Response(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


class Request:
    """One request as the handlers see it."""

    def __init__(self, handler, ctx):
        self._h = handler
        self.ctx = ctx
        self.method = handler.command
        raw_path, _, raw_query = handler.path.partition("?")
        self.raw_path = raw_path
        self.path = urllib.parse.unquote(raw_path)
        self.raw_query = raw_query
        self.query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        self.headers = handler.headers
        self.ws = ctx.workspace
        self.host = ctx.base_url
        self.principal = None
        self.auth_kind = None
        self.match = None
        self._body = None
        self.body_consumed = False

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def content_length(self):
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    def is_chunked(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def body(self):
        """The whole body (for JSON and forms; uploads stream through `body_stream`)."""
        if self._body is None:
            if self.is_chunked():
                self._body = _read_chunked(self._h.rfile)
            else:
                n = self.content_length() or 0
                self._body = self._h.rfile.read(n) if n else b""
            self.body_consumed = True
        return self._body

    def body_stream(self, chunk=1 << 20):
        """The body as chunks, read as they are consumed (Content-Length bodies only)."""
        remaining = self.content_length() or 0
        self.body_consumed = True
        rfile = self._h.rfile
        while remaining > 0:
            data = rfile.read(min(chunk, remaining))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
            yield data

    def json(self):
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError(
                400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request"
            )
        if not isinstance(value, dict):
            raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object")
        return value

    def param(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def field(self, name, default=None):
        """A request field: from the query for GET, else from the JSON body (DELETE: either,
        since MLflow's client sends a DELETE's fields as a JSON body)."""
        if self.method in ("GET", "HEAD"):
            return self.param(name, default)
        body = self.json()
        if name in body:
            return body[name]
        return self.param(name, default)


def _read_chunked(rfile):
    out = bytearray()
    while True:
        line = rfile.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(size)
        rfile.readline()


class Router:
    """(methods, path regex) → handler; first full match wins."""

    def __init__(self):
        self.routes = []

    def add(self, methods, pattern, func, auth=True):
        if isinstance(methods, str):
            methods = [methods]
        self.routes.append((set(methods), re.compile(pattern), func, auth))

    def find(self, method, path):
        """The route for the request; `None` when no path matches; the string "method" when the
        path matches only for other methods."""
        path_matched = False
        for methods, pattern, func, auth in self.routes:
            m = pattern.fullmatch(path)
            if not m:
                continue
            path_matched = True
            if method in methods or (method == "HEAD" and "GET" in methods):
                return func, auth, m
        return "method" if path_matched else None


class Context:
    """What one listening port serves: the app, its workspace (None for the S3 front)."""

    def __init__(self, app, workspace, base_url, dispatch):
        self.app = app
        self.workspace = workspace
        self.base_url = base_url
        self.dispatch = dispatch


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "databricks-standin"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def _serve(self):
        ctx = self.server.ctx
        req = Request(self, ctx)
        started = time.time()
        try:
            resp = ctx.dispatch(req)
        except (ApiError, S3Error) as e:
            resp = e.response()
        except Exception as e:  # a stand-in bug: say so, as a 500
            traceback.print_exc()
            resp = Response.json(
                {"error_code": "INTERNAL_ERROR", "message": f"stand-in failure: {e!r}"}, 500
            )
        self._send(req, resp)
        ctx.app.log_request(req, resp, started)

    def _send(self, req, resp):
        if not req.body_consumed:
            n = req.content_length() or 0
            if req.is_chunked() or n > (1 << 20):
                self.close_connection = True
            elif n:
                self.rfile.read(n)
        self.send_response(resp.status)
        headers = dict(resp.headers)
        if req.ws is not None and not req.path.startswith("/_signed/"):
            headers["x-databricks-org-id"] = req.ws.workspace_id
        body = resp.body
        if isinstance(body, (bytes, bytearray)):
            length = len(body)
        else:
            length = resp.length
        if self.command == "HEAD" and "Content-Length" in headers:
            pass
        elif length is not None:
            headers["Content-Length"] = str(length)
        else:
            self.close_connection = True
        if self.close_connection:
            headers["Connection"] = "close"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD" or resp.status in (204, 304):
            if not isinstance(body, (bytes, bytearray)) and hasattr(body, "close"):
                body.close()
            return
        try:
            if isinstance(body, (bytes, bytearray)):
                self.wfile.write(body)
            else:
                for chunk in body:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if not isinstance(body, (bytes, bytearray)) and hasattr(body, "close"):
                body.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(ctx_factory, port):
    """Binds 127.0.0.1:`port` (0: any free port), serves in a thread; returns the server."""
    server = Server(("127.0.0.1", port), Handler)
    server.ctx = ctx_factory(f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
