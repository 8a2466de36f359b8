"""The Workspace API (`/api/2.0/workspace/*`): a tree of directories, notebooks and experiment
nodes per workspace, kept by the stand-in.

A notebook is stored as its commands' source text and language; the export formats are made
from it:
- SOURCE: `<comment>Databricks notebook source` then the commands joined by
  `<comment>COMMAND ----------` lines (the documented source-file layout). An imported SOURCE file
  loses a leading header line, so importing an export gives back the same bytes; a file without
  the header gains one on export (inferred from how exported source files look).
- JUPYTER: a small nbformat 4 notebook, one code cell per command.
- HTML: a page carrying the notebook model as base64 JSON in `__DATABRICKS_NOTEBOOK_MODEL`
  (the name real exports use; the encoding here is the stand-in's own).
- DBC: a zip (fixed timestamps, so deterministic) with one JSON notebook model.
Each can be imported back. Revisions do not exist: `revision.revision_timestamp` is accepted
and ignored (a real workspace may ignore it too). Folder exports (zip/DBC of a directory),
R_MARKDOWN, RAW and files (object type FILE) are not implemented by the stand-in.
Paths: a leading `/Workspace` is dropped (inferred from databricks/cli#4279).
"""

import base64
import io
import json
import posixpath
import zipfile

from .web import ApiError, Response

MAX_SIZE = 10 * 1024 * 1024
LANGUAGES = {
    "PYTHON": ("# ", "py"),
    "SCALA": ("// ", "scala"),
    "SQL": ("-- ", "sql"),
    "R": ("# ", "r"),
}
DBC_EXT = {"PYTHON": "python", "SCALA": "scala", "SQL": "sql", "R": "r"}


def normalize(path):
    if not isinstance(path, str) or not path.startswith("/"):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Path ({path}) doesn't start with '/'")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Path ({path}) is not a valid path")
    return "/" + "/".join(parts)


def parent(path):
    return posixpath.dirname(path) or "/"


def header(language):
    return f"{LANGUAGES[language][0]}Databricks notebook source"


def separator(language):
    return f"\n\n{LANGUAGES[language][0]}COMMAND ----------\n\n"


def strip_header(source, language):
    h = header(language)
    if source.startswith(h + "\n"):
        return source[len(h) + 1 :]
    if source == h:
        return ""
    return source


def ensure_home(ws, name):
    mkdirs(ws, f"/Users/{name}", owner=name)


def mkdirs(ws, path, owner=None):
    current = ""
    for part in [p for p in path.split("/") if p]:
        current += "/" + part
        node = ws.tree.get(current)
        if node is None:
            ws.add_node(current, "DIRECTORY", owner=owner)
        elif node.object_type != "DIRECTORY":
            raise ApiError(
                400,
                "RESOURCE_ALREADY_EXISTS",
                f"Node named '{posixpath.basename(current)}' already exists",
            )


def put_notebook(ws, path, language, source, overwrite):
    existing = ws.tree.get(path)
    if existing is not None:
        if existing.object_type != "NOTEBOOK" or not overwrite:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
        existing.language = language
        existing.source = source
        existing.modified_at += 1
        return existing
    return ws.add_node(path, "NOTEBOOK", language=language, source=source)


def commands(node):
    return node.source.split(separator(node.language)) if node.source else [""]


def model(node):
    return {
        "version": "NotebookV1",
        "name": posixpath.basename(node.path),
        "language": node.language.lower(),
        "commands": [{"command": c, "position": i} for i, c in enumerate(commands(node))],
    }


def export_bytes(node, fmt):
    if fmt == "SOURCE":
        body = header(node.language) + "\n" + node.source
        return body.encode(), LANGUAGES[node.language][1]
    if fmt == "JUPYTER":
        lang = node.language.lower()
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": c.splitlines(keepends=True),
                }
                for c in commands(node)
            ],
            "metadata": {
                "application/vnd.databricks.v1+notebook": {
                    "language": lang,
                    "notebookName": posixpath.basename(node.path),
                },
                "language_info": {"name": lang},
            },
            "nbformat": 4,
            "nbformat_minor": 0,
        }
        return json.dumps(nb, indent=1, sort_keys=True).encode(), "ipynb"
    if fmt == "HTML":
        encoded = base64.b64encode(json.dumps(model(node), sort_keys=True).encode()).decode()
        page = (
            '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            f"<title>{posixpath.basename(node.path)} - Databricks</title>\n"
            f"<script>var __DATABRICKS_NOTEBOOK_MODEL = '{encoded}';</script>\n"
            "</head>\n<body></body>\n</html>\n"
        )
        return page.encode(), "html"
    if fmt == "DBC":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo(
                f"{posixpath.basename(node.path)}.{DBC_EXT[node.language]}", (1980, 1, 1, 0, 0, 0)
            )
            z.writestr(info, json.dumps(model(node), sort_keys=True))
        return buf.getvalue(), "dbc"
    raise ApiError(
        400, "INVALID_PARAMETER_VALUE", f"Export format {fmt} is not supported by the stand-in"
    )


def from_model(m, language):
    lang = (m.get("language") or language or "python").upper()
    cmds = [
        c.get("command", "")
        for c in sorted(m.get("commands", []), key=lambda c: c.get("position", 0))
    ]
    if lang not in LANGUAGES:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unknown language {lang}")
    return lang, separator(lang).join(cmds)


def parse_import(fmt, content, language, path):
    """(language, source) from imported bytes."""
    if fmt == "AUTO":
        if content[:2] == b"PK":
            fmt = "DBC"
        elif content.lstrip()[:1] == b"{":
            fmt = "JUPYTER"
        elif content.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            fmt = "HTML"
        else:
            fmt = "SOURCE"
            if not language:
                ext = posixpath.splitext(path)[1].lstrip(".").lower()
                language = {"py": "PYTHON", "scala": "SCALA", "sql": "SQL", "r": "R"}.get(ext)
    try:
        if fmt == "SOURCE":
            if not language:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "The language field is required when importing a single SOURCE file",
                )
            language = language.upper()
            if language not in LANGUAGES:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unknown language {language}")
            return language, strip_header(content.decode("utf-8"), language)
        if fmt == "JUPYTER":
            nb = json.loads(content)
            meta = nb.get("metadata", {})
            lang = (
                meta.get("application/vnd.databricks.v1+notebook", {}).get("language")
                or meta.get("language_info", {}).get("name")
                or language
                or "python"
            ).upper()
            cells = [
                "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
                for c in nb.get("cells", [])
                if c.get("cell_type") == "code"
            ]
            if lang not in LANGUAGES:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unknown language {lang}")
            return lang, separator(lang).join(cells)
        if fmt == "HTML":
            text = content.decode("utf-8")
            marker = "__DATABRICKS_NOTEBOOK_MODEL = '"
            start = text.index(marker) + len(marker)
            m = json.loads(base64.b64decode(text[start : text.index("'", start)]))
            return from_model(m, language)
        if fmt == "DBC":
            with zipfile.ZipFile(io.BytesIO(content)) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise ApiError(
                        400,
                        "INVALID_PARAMETER_VALUE",
                        "the stand-in imports DBC archives of one notebook only",
                    )
                return from_model(json.loads(z.read(names[0])), language)
    except ApiError:
        raise
    except (ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Could not parse the {fmt} content: {e}")
    raise ApiError(
        400, "INVALID_PARAMETER_VALUE", f"Import format {fmt} is not supported by the stand-in"
    )


def get_node(ws, path):
    node = ws.tree.get(path)
    if node is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
    return node


def register(app):
    @app.route("GET", r"/api/2\.0/workspace/get-status")
    def get_status(app, req):
        path = normalize(req.param("path", ""))
        with app.state.lock:
            return Response.json(get_node(req.ws, path).info())

    @app.route("POST", r"/api/2\.0/workspace/mkdirs")
    def mkdirs_route(app, req):
        path = normalize(req.json().get("path", ""))
        with app.state.lock:
            mkdirs(req.ws, path)
        return Response.json({})

    @app.route("GET", r"/api/2\.0/workspace/list")
    def list_route(app, req):
        path = normalize(req.param("path", ""))
        with app.state.lock:
            node = get_node(req.ws, path)
            if node.object_type != "DIRECTORY":
                return Response.json({"objects": [node.info()]})
            prefix = path.rstrip("/") + "/"
            objects = [
                n.info()
                for p, n in sorted(req.ws.tree.items())
                if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]
            ]
        return Response.json({"objects": objects} if objects else {})

    @app.route("POST", r"/api/2\.0/workspace/import")
    def import_route(app, req):
        b = req.json()
        path = normalize(b.get("path", ""))
        fmt = (b.get("format") or "SOURCE").upper()
        overwrite = bool(b.get("overwrite", False))
        if fmt == "DBC" and overwrite:
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "overwrite is not supported with the DBC format"
            )
        try:
            content = base64.b64decode(b.get("content") or "", validate=True)
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "content is not valid base64")
        if len(content) > MAX_SIZE:
            raise ApiError(
                400,
                "MAX_NOTEBOOK_SIZE_EXCEEDED",
                f"File size imported is ({len(content)} bytes), "
                f"exceeded max size ({MAX_SIZE} bytes)",
            )
        language, source = parse_import(fmt, content, b.get("language"), path)
        with app.state.lock:
            par = req.ws.tree.get(parent(path))
            if par is None or par.object_type != "DIRECTORY":
                raise ApiError(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"The parent folder ({parent(path)}) does not exist.",
                )
            put_notebook(req.ws, path, language, source, overwrite)
        return Response.json({})

    @app.route("GET", r"/api/2\.0/workspace/export")
    def export_route(app, req):
        path = normalize(req.param("path", ""))
        fmt = (req.param("format") or "SOURCE").upper()
        with app.state.lock:
            node = get_node(req.ws, path)
            if node.object_type != "NOTEBOOK":
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Path ({path}) is a {node.object_type}; the stand-in exports notebooks only",
                )
            data, file_type = export_bytes(node, fmt)
        if len(data) > MAX_SIZE:
            raise ApiError(
                400,
                "MAX_NOTEBOOK_SIZE_EXCEEDED",
                f"File size exported is ({len(data)} bytes), exceeded max size ({MAX_SIZE} bytes)",
            )
        if req.param("direct_download") == "true":
            return Response(200, data, {"Content-Type": "application/octet-stream"})
        return Response.json({"content": base64.b64encode(data).decode(), "file_type": file_type})

    @app.route("POST", r"/api/2\.0/workspace/delete")
    def delete_route(app, req):
        b = req.json()
        path = normalize(b.get("path", ""))
        with app.state.lock:
            node = get_node(req.ws, path)
            prefix = path.rstrip("/") + "/"
            children = [p for p in req.ws.tree if p.startswith(prefix)]
            if children and not b.get("recursive"):
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
            doomed = [req.ws.tree[p] for p in children] + [node]
            for n in doomed:
                del req.ws.tree[n.path]
        for n in doomed:
            if n.object_type == "MLFLOW_EXPERIMENT":
                app.mlflow.call(
                    req.ws.mlflow_workspace,
                    "POST",
                    "/api/2.0/mlflow/experiments/delete",
                    body={"experiment_id": str(n.object_id)},
                )
        return Response.json({})
