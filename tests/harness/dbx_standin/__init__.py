"""A stand-in for Databricks workspaces, built from Databricks' published REST API documentation
and MLflow's own Databricks client code (MLflow 3.17.2, databricks-sdk 0.162.0): it is NOT
Databricks, and nothing here was checked against a real workspace.

Its contract with mlflow-archive's tests is the session notes' standin-contract.md; background
facts and their sources: the notes' research-databricks.md. Entry point:
`tests/harness/databricks_standin.py`; the Rust harness: `tests/integration/util/databricks.rs`;
its conformance test drives it with MLflow's own client (`tests/harness/dbx_client.py`).

Layout, one module per area:
- `web`: HTTP/1.1 server (one port per workspace, one for the S3 front), routing, errors.
- `state`: identities, tokens, workspace trees, ACLs, UC bookkeeping, settings, request log.
- `backend`: the MLflow server behind it (with workspaces: `ws-<i>` per Databricks workspace,
  `uc` for the shared Unity Catalog metastore) and moto (bucket `dbx`).
- `auth`: PATs, OAuth M2M (discovery, token endpoint, TTL).
- `tracking`: the `/api/2.0|3.0/mlflow` relay and Databricks' differences.
- `artifacts`: credentials for read/write (runs, logged models), multipart, listings, and the
  signed-URL object endpoint.
- `workspace_api`: notebooks and folders.
- `registry`: the workspace model registry's Databricks-only parts.
- `uc`: Unity Catalog's model registry (2.0 surface) and its temporary credentials.
- `s3front`: S3 for UC temporary credentials.
- `permissions`: workspace ACLs and UC grants.
- `control`: `/_standin/*`, the test-only control endpoints.

Workspaces are numbered from 0 (`"workspace": 0` in control bodies is the first host).

What the stand-in deliberately does not do (each is also said where it matters):
- Databricks' Files API (`/api/2.0/fs/**`) answers 501: MLflow's client falls back from it to
  the signed-URL credentials, which is what this stand-in implements (and what mlflow-archive
  uses). With a 404 the SDK path would report an empty directory and not fall back.
- Traces' data credentials, the UC native surface (`/api/2.1/unity-catalog/models`), prompts in
  UC, folder exports, R_MARKDOWN/RAW notebook formats, FILE objects, notebook revisions, SCIM,
  clusters, jobs: not implemented (404 `ENDPOINT_NOT_FOUND` or 400 saying so).
- No authorisation: every live token of a workspace may do everything there (ACLs and grants are
  recorded and answered, not enforced). UC principals are those of any workspace.
- Only the default artifact location: `experiments/create` with an `artifact_location` → 400.
Inferred behaviour (no source states it) is marked "inferred" in the module that has it.
"""
