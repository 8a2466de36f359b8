"""S3 chores for benches/transfer.sh --store s3|both, against moto_server (or any S3 endpoint).

The endpoint and credentials come from the environment, as for MLflow's client:
MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION. Needs boto3, except
for `rewrite` (the standard library only).

    python s3.py buckets NAME...            create these buckets
    python s3.py upload DIR BUCKET          every file under DIR to s3://BUCKET/<its path under DIR>
    python s3.py rewrite DB ROOT            mlflow-artifacts:/ -> ROOT/ in an MLflow sqlite db
    python s3.py clear BUCKET               delete every object in BUCKET
    python s3.py digest DIR|s3://BUCKET/PREFIX
                                            one line: files, bytes, and a sha256 over the sorted
                                            (path under the run's artifacts/, sha256) pairs, which
                                            is the same for a source and any faithful copy of it
    python s3.py floor DIR BUCKET JOBS      the store's own pace: put every file under DIR, then
                                            get every one back, JOBS at once (boto3's defaults,
                                            multipart above 8 MiB); prints both wall times

Artifact locations rewritten by `rewrite` (MLflow 3.17.2's schema): experiments.artifact_location,
runs.artifact_uri, logged_models.artifact_location, model_versions.source and
model_versions.storage_location. It fails if any other text in the db still says mlflow-artifacts:.
"""

import concurrent.futures
import hashlib
import os
import sqlite3
import sys
import time

JOBS = 8
LOCATIONS = [
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
]


def client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"],
        config=Config(max_pool_connections=2 * JOBS),
    )


def files_under(d):
    for base, _, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            yield p, os.path.relpath(p, d).replace(os.sep, "/")


def keys_under(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o["Key"]


def parallel(fn, items, jobs=JOBS):
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(fn, items))


def buckets(names):
    s3 = client()
    for n in names:
        s3.create_bucket(Bucket=n)


def upload(d, bucket, jobs=JOBS):
    s3 = client()
    files = list(files_under(d))
    t0 = time.monotonic()
    parallel(lambda f: s3.upload_file(f[0], bucket, f[1]), files, jobs)
    size = sum(os.path.getsize(p) for p, _ in files)
    return len(files), size, time.monotonic() - t0


def rewrite(db, root):
    old, new = "mlflow-artifacts:/", root.rstrip("/") + "/"
    c = sqlite3.connect(db)
    done = 0
    for table, col in LOCATIONS:
        cur = c.execute(
            f"UPDATE {table} SET {col} = ? || substr({col}, ?) WHERE {col} LIKE ?",
            (new, len(old) + 1, old + "%"),
        )
        done += cur.rowcount
    c.commit()
    left = []
    for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for col in [r[1] for r in c.execute(f"PRAGMA table_info({table})")]:
            n = c.execute(
                f"SELECT count(*) FROM {table} WHERE CAST({col} AS TEXT) LIKE '%mlflow-artifacts:%'"
            ).fetchone()[0]
            if n:
                left.append(f"{table}.{col} ({n})")
    if left:
        sys.exit(f"rewrite: mlflow-artifacts: locations left in {', '.join(left)}; add them to LOCATIONS")
    print(f"   {done} artifact locations now under {new}")


def clear(bucket):
    s3 = client()
    keys = list(keys_under(s3, bucket, ""))
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]})


def relative(key):
    """The path under the run's (or logged model's) artifacts/ directory."""
    _, sep, rest = key.partition("/artifacts/")
    if not sep:
        sys.exit(f"digest: {key} is not under an artifacts/ directory")
    return rest


def digest(where):
    if where.startswith("s3://"):
        bucket, _, prefix = where[len("s3://") :].partition("/")
        s3 = client()

        def one(key):
            h, n = hashlib.sha256(), 0
            for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
                h.update(chunk)
                n += len(chunk)
            return relative(key), h.hexdigest(), n

        pairs = parallel(one, list(keys_under(s3, bucket, prefix)))
    else:

        def one(f):
            h, n = hashlib.sha256(), 0
            with open(f[0], "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
            return relative(f[1]), h.hexdigest(), n

        pairs = parallel(one, list(files_under(where)))
    total = hashlib.sha256()
    for rel, h, _ in sorted(pairs):
        total.update(f"{rel}\0{h}\n".encode())
    print(f"{len(pairs)} files, {sum(n for _, _, n in pairs)} bytes, sha256 {total.hexdigest()}")


def floor(d, bucket, jobs):
    s3 = client()
    n, size, up = upload(d, bucket, jobs)
    keys = list(keys_under(s3, bucket, ""))
    t0 = time.monotonic()

    def get(key):
        for _ in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
            pass

    parallel(get, keys, jobs)
    down = time.monotonic() - t0
    print(f"{n} files, {size} bytes: put {up:.1f} s, get {down:.1f} s")


def main(args):
    match args:
        case ["buckets", *names]:
            buckets(names)
        case ["upload", d, bucket]:
            n, size, secs = upload(d, bucket)
            print(f"   {n} files, {size} bytes uploaded to s3://{bucket} in {secs:.1f} s")
        case ["rewrite", db, root]:
            rewrite(db, root)
        case ["clear", bucket]:
            clear(bucket)
        case ["digest", where]:
            digest(where)
        case ["floor", d, bucket, jobs]:
            floor(d, bucket, int(jobs))
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
