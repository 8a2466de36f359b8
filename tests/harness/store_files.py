"""Lists every file under an artifact-store location with its size and SHA-256, for the store tests.

Usage: python store_files.py URI

URI is s3://BUCKET/PREFIX, wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PREFIX,
gs://BUCKET/PREFIX, file:///PATH or a plain absolute path. The store is read with its own SDK
(boto3, azure-storage-blob, google-cloud-storage), not through MLflow, reaching it through the
variables MLflow uses: MLFLOW_S3_ENDPOINT_URL and AWS_*, AZURE_STORAGE_CONNECTION_STRING,
STORAGE_EMULATOR_HOST. Prints a JSON object {relative path: {"size": N, "sha256": HEX}}.
"""

import hashlib
import json
import os
import sys
import urllib.parse


def entry(body: bytes) -> dict:
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def s3(bucket: str, prefix: str) -> dict:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"][len(prefix) :]] = entry(body)
    return out


def azure(container: str, prefix: str) -> dict:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    client = service.get_container_client(container)
    out = {}
    for b in client.list_blobs(name_starts_with=prefix):
        body = client.download_blob(b.name).readall()
        out[b.name[len(prefix) :]] = entry(body)
    return out


def gcs(bucket: str, prefix: str) -> dict:
    from google.cloud import storage

    client = storage.Client()
    out = {}
    for b in client.list_blobs(bucket, prefix=prefix):
        out[b.name[len(prefix) :]] = entry(b.download_as_bytes())
    return out


def local(root: str) -> dict:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = entry(fh.read())
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    uri = sys.argv[1]
    parsed = urllib.parse.urlparse(uri)
    # A trailing slash, so that run "ab" does not pick up the files of run "abc".
    prefix = parsed.path.lstrip("/").rstrip("/") + "/"
    if parsed.scheme in ("s3", "s3a"):
        files = s3(parsed.netloc, prefix)
    elif parsed.scheme == "wasbs":
        files = azure(parsed.netloc.split("@", 1)[0], prefix)
    elif parsed.scheme == "gs":
        files = gcs(parsed.netloc, prefix)
    elif parsed.scheme in ("", "file"):
        files = local(urllib.parse.unquote(parsed.path))
    else:
        print(f"store_files.py: unknown scheme in {uri}", file=sys.stderr)
        return 2
    print(json.dumps(files, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
