"""The real services behind the stand-in: the MLflow server (with workspaces) and moto (S3).

- `Mlflow.call` sends one request into an MLflow workspace (header `X-MLFLOW-WORKSPACE`) and
  returns its JSON, or raises the MLflow error as an `ApiError` (same shape as Databricks').
- The URI rewrites between MLflow's and Databricks' logged-model layout live here: MLflow puts a
  logged model's files at `<root>/<exp>/models/<m-id>/artifacts`, Databricks at
  `<root>/<exp>/logged_models/<m-id>/artifacts` (MLflow's client keys on `logged_models`).
  Answers are rewritten to Databricks' layout, requests back to MLflow's.
- `Store` wraps boto3 on moto, bucket `dbx`; `dbfs:/databricks/<rest>` ↔ key `<rest>`.
"""

import json
import re
import threading

import boto3
import requests
from botocore.config import Config

from .web import ApiError

_TO_DATABRICKS = re.compile(r"(dbfs:/databricks/mlflow-tracking/[^/\"\s]+)/models/(m-[0-9a-f]+)")
_TO_MLFLOW = re.compile(r"(dbfs:/databricks/mlflow-tracking/[^/\"\s]+)/logged_models/(m-[0-9a-f]+)")
_TO_MLFLOW_QUOTED = re.compile(
    r"(dbfs%3A%2Fdatabricks%2Fmlflow-tracking%2F[^%&]+)%2Flogged_models%2F(m-[0-9a-f]+)"
)


def to_databricks(text):
    return _TO_DATABRICKS.sub(r"\1/logged_models/\2", text)


def to_mlflow(text):
    return _TO_MLFLOW.sub(r"\1/models/\2", text)


def query_to_mlflow(raw_query):
    return _TO_MLFLOW_QUOTED.sub(r"\1%2Fmodels%2F\2", to_mlflow(raw_query))


def strip_workspace_fields(value):
    """Drops MLflow's `workspace` fields (Databricks answers have none)."""
    if isinstance(value, dict):
        return {k: strip_workspace_fields(v) for k, v in value.items() if k != "workspace"}
    if isinstance(value, list):
        return [strip_workspace_fields(v) for v in value]
    return value


class Mlflow:
    def __init__(self, uri):
        self.uri = uri.rstrip("/")
        self._local = threading.local()

    def session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def raw(self, workspace, method, path, raw_query="", body=None, content_type=None):
        """One request as given (path and query already in MLflow's layout)."""
        headers = {"X-MLFLOW-WORKSPACE": workspace}
        if content_type:
            headers["Content-Type"] = content_type
        url = f"{self.uri}{path}" + (f"?{raw_query}" if raw_query else "")
        return self.session().request(method, url, data=body, headers=headers, timeout=120)

    def call(self, workspace, method, path, params=None, body=None):
        """A JSON call; returns the answer (Databricks layout) or raises its error."""
        headers = {"X-MLFLOW-WORKSPACE": workspace}
        data = None
        if body is not None:
            data = to_mlflow(json.dumps(body))
            headers["Content-Type"] = "application/json"
        url = f"{self.uri}{path}"
        if params:
            params = {k: to_mlflow(v) if isinstance(v, str) else v for k, v in params.items()}
        r = self.session().request(
            method, url, params=params, data=data, headers=headers, timeout=120
        )
        return parse_answer(r)


def parse_answer(r):
    """MLflow's JSON answer in Databricks' layout, or its error as an ApiError."""
    try:
        value = json.loads(to_databricks(r.text)) if r.text.strip() else {}
    except ValueError:
        raise ApiError(
            r.status_code if r.status_code >= 400 else 500,
            "INTERNAL_ERROR",
            f"the MLflow server behind the stand-in answered {r.status_code} without JSON",
        )
    if r.status_code >= 400:
        if isinstance(value, dict) and "error_code" in value:
            raise ApiError(r.status_code, value["error_code"], value.get("message", ""), body=value)
        raise ApiError(r.status_code, "INTERNAL_ERROR", r.text[:500])
    return strip_workspace_fields(value)


class Store:
    """moto, bucket `dbx`."""

    def __init__(self, endpoint, bucket):
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )
        self._local = threading.local()

    # moto refuses anonymous reads of a private bucket but checks no signature: the stand-in's own
    # requests carry this (never verified) SigV4-looking header.
    AUTH = (
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )

    def session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.headers["Authorization"] = self.AUTH
        return s

    def ensure_bucket(self):
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except self.client.exceptions.BucketAlreadyOwnedByYou:
            pass

    @staticmethod
    def key_of_dbfs(uri):
        """`dbfs:/databricks/<rest>` → `<rest>` (None for anything else)."""
        prefix = "dbfs:/databricks/"
        if not uri.startswith(prefix):
            return None
        return uri[len(prefix) :].strip("/")

    def list_dir(self, prefix):
        """Direct children of `prefix` (a key ending in `/`): (dirs, files) where files are
        (key, size)."""
        dirs, files = [], []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            dirs += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            files += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
        return dirs, files

    def list_all(self, prefix):
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            out += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
        return out

    def head(self, key):
        """The object's size, or None."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except self.client.exceptions.ClientError:
            return None

    def copy_prefix(self, src, dst):
        for key, _ in self.list_all(src):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=dst + key[len(src) :],
                CopySource={"Bucket": self.bucket, "Key": key},
            )

    def url(self, key_or_path):
        return f"{self.endpoint}/{self.bucket}/{key_or_path}"
