"""Fills a tracking server with MLflow 3's GenAI objects through MLflow's own Python client, and
reads them back in a form two servers can be compared by.

Usage:
  python genai.py populate TAG      # MLFLOW_TRACKING_URI names the server
  python genai.py dump TAG

`populate` makes, with names ending in TAG:
- prompts: "qa-TAG" (a text template, then a chat template with a response format and a model
  config, alias "production" on version 2) and "greet-TAG" (one version, tags);
- an experiment "genai-TAG" with an evaluation dataset "ds-TAG" (tags, 12 records: with
  expectations, with outputs, without expectations, an explicit DOCUMENT source), linked to the
  experiment, and a run "eval" that logged the dataset as an input;
- traces in that experiment: "answer" (nested spans, attributes of every JSON type, a span event,
  a span that raised an exception, the prompt greet-TAG loaded inside it, tags, a client request
  id), made inside the run "eval"; "fails" (its root raised an exception); and assessments:
  feedback with a rationale, metadata and a human source, then an override of it (the first one
  becomes invalid), an expectation, and feedback on a span;
- a trace "huge-int" whose span attribute 2**70 OTLP cannot carry, so MLflow's client itself
  stores its spans as the artifact traces.json.
It prints a JSON summary.

`dump` prints, as canonical JSON, everything a faithful copy keeps: every prompt version
(template, type, response format, model config, commit message, tags) and alias; the dataset's
tags, experiments (by name) and records (by inputs); the run's dataset input (whether it points at
this server's dataset); every trace of the experiment (info without the server-owned artifact
location, the run it was made in by name, every span as MLflow's Span.to_dict, every assessment),
and which traces the prompt-link search finds.
"""

import contextlib
import json
import re
import sys

import mlflow
import requests
from mlflow.entities import AssessmentSource, SpanEvent
from mlflow.tracing.attachments import Attachment

ARCHIVE_PREFIX = "mlflow_archive."


def populate(tag):
    client = mlflow.MlflowClient()
    qa, greet = f"qa-{tag}", f"greet-{tag}"
    mlflow.genai.register_prompt(
        name=qa,
        template="Answer {{question}} briefly.",
        commit_message="first",
        tags={"team": "qa"},
    )
    mlflow.genai.register_prompt(
        name=qa,
        template=[
            {"role": "system", "content": "You answer questions about {{topic}}."},
            {"role": "user", "content": "{{question}}"},
        ],
        commit_message="as a chat",
        response_format={
            "type": "object",
            "properties": {"answer": {"type": "string"}},
        },
        model_config={"model_name": "gpt-4o", "temperature": 0.2, "max_tokens": 100},
    )
    mlflow.genai.set_prompt_alias(qa, alias="production", version=2)
    mlflow.genai.register_prompt(
        name=greet, template="Hello {{name}}!", tags={"lang": "en"}
    )

    exp_id = mlflow.set_experiment(f"genai-{tag}").experiment_id
    ds = mlflow.genai.datasets.create_dataset(
        name=f"ds-{tag}", experiment_id=[exp_id], tags={"stage": "prod", "owner": "qa"}
    )
    records = []
    for i in range(12):
        r = {"inputs": {"question": f"What is {i}?", "n": i}}
        if i % 3 == 0:
            r["expectations"] = {"answer": f"{i}", "score": i}
        if i % 4 == 1:
            r["outputs"] = {"answer": f"it is {i}"}
        if i == 5:
            r["source"] = {"source_type": "DOCUMENT", "source_data": {"doc_uri": "s3://docs/5"}}
        records.append(r)
    ds.merge_records(records)

    with mlflow.start_run(run_name="eval") as run:
        mlflow.log_input(ds, context="evaluation")

        @mlflow.trace(name="answer", span_type="CHAIN")
        def answer(question):
            mlflow.update_current_trace(
                tags={"team": "qa", "ünïcode": "✓"}, client_request_id=f"req-{tag}"
            )
            mlflow.genai.load_prompt(f"prompts:/{greet}/1")
            with mlflow.start_span(name="retrieve", span_type="RETRIEVER") as s:
                s.set_inputs({"query": question})
                s.set_attributes(
                    {"k": 3, "float.attr": 1.0, "flag": True, "names": ["a", "b"], "none": None}
                )
                s.set_attribute("nested", {"a": {"b": [1, None, True]}})
                s.add_event(SpanEvent(name="cache-miss", attributes={"key": "q", "n": 2}))
                s.set_outputs(["doc-1", "doc-2"])
            try:
                with mlflow.start_span(name="boom", span_type="TOOL"):
                    raise ValueError(f"bad input {question}")
            except ValueError:
                pass
            return question.upper()

        answer("hello world")
        t1 = mlflow.get_last_active_trace_id()

    @mlflow.trace(name="fails")
    def fails():
        raise RuntimeError("the root failed")

    with contextlib.suppress(RuntimeError):
        fails()
    t2 = mlflow.get_last_active_trace_id()

    @mlflow.trace(name="huge-int")
    def huge():
        with mlflow.start_span(name="child") as s:
            s.set_attribute("big", 2**70)
        return 1

    huge()
    t3 = mlflow.get_last_active_trace_id()

    @mlflow.trace(name="with-attachment")
    def with_attachment():
        return {"img": Attachment(content_type="image/png", content_bytes=b"\x89PNG not really")}

    with_attachment()
    # Traces are sent in the background: assessments need them on the server.
    mlflow.flush_trace_async_logging()

    human = AssessmentSource(source_type="HUMAN", source_id="alice@example.com")
    fb = mlflow.log_feedback(
        trace_id=t1,
        name="quality",
        value=0.8,
        rationale="good enough",
        source=human,
        metadata={"round": "1"},
    )
    mlflow.override_feedback(
        trace_id=t1, assessment_id=fb.assessment_id, value=0.9, rationale="revised"
    )
    mlflow.log_expectation(
        trace_id=t1, name="expected", value={"answer": "HELLO WORLD"}, source=human
    )
    span_id = mlflow.get_trace(t1).data.spans[1].span_id
    mlflow.log_feedback(
        trace_id=t1,
        name="span_quality",
        value=True,
        span_id=span_id,
        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge"),
    )
    mlflow.log_feedback(trace_id=t2, name="quality", value=0.0, source=human)
    client.set_trace_tag(t2, "reviewed", "yes")
    return {
        "experiment_id": exp_id,
        "run_id": run.info.run_id,
        "traces": [t1, t2, t3],
        "prompts": [qa, greet],
        "dataset": ds.dataset_id,
    }


def without_archive_tags(tags):
    return {k: v for k, v in (tags or {}).items() if not k.startswith(ARCHIVE_PREFIX)}


def stored_spans(trace_id):
    """The trace's span document as the server keeps it, parsed."""
    uri = mlflow.get_tracking_uri().rstrip("/")
    r = requests.get(
        f"{uri}/ajax-api/3.0/mlflow/get-trace-artifact", params={"request_id": trace_id}, timeout=60
    )
    return r.json() if r.status_code == 200 else r.status_code


def attachments(doc, trace_id):
    """The bytes of every attachment the span document refers to, by id (hex)."""
    if not isinstance(doc, dict):
        return None
    ids = sorted(set(re.findall(r"mlflow-attachment://([0-9a-f-]+)", json.dumps(doc))))
    uri = mlflow.get_tracking_uri().rstrip("/")
    out = {}
    for a in ids:
        r = requests.get(
            f"{uri}/ajax-api/3.0/mlflow/get-trace-artifact",
            params={"request_id": trace_id, "path": a},
            timeout=60,
        )
        out[a] = r.content.hex() if r.status_code == 200 else r.status_code
    return out


def dump(tag):
    client = mlflow.MlflowClient()
    out = {"prompts": {}, "traces": [], "dataset": None}
    for name, versions, aliases in [(f"qa-{tag}", 2, ["production"]), (f"greet-{tag}", 1, [])]:
        seen = {}
        for v in range(1, versions + 1):
            p = client.get_prompt_version(name, v)
            seen[str(v)] = {
                "template": p.template,
                "chat": not p.is_text_prompt,
                "response_format": p.response_format,
                "model_config": p.model_config,
                "commit_message": p.commit_message,
                "tags": without_archive_tags(p.tags),
            }
        for a in aliases:
            seen["@" + a] = client.get_prompt_version_by_alias(name, a).version
        out["prompts"][name] = seen

    exp = client.get_experiment_by_name(f"genai-{tag}")
    names = {}
    for ds in mlflow.genai.datasets.search_datasets(
        experiment_ids=[exp.experiment_id], filter_string=f"name = 'ds-{tag}'"
    ):
        full = mlflow.genai.datasets.get_dataset(dataset_id=ds.dataset_id)
        df = full.to_df()
        rows = []
        for _, r in df.iterrows():
            rows.append(
                {
                    "inputs": r["inputs"],
                    "outputs": r.get("outputs"),
                    "expectations": r.get("expectations"),
                    "tags": r.get("tags"),
                    "source_type": r.get("source_type"),
                    "source": r.get("source"),
                }
            )
        rows.sort(key=lambda r: json.dumps(r["inputs"], sort_keys=True))
        linked = [client.get_experiment(e).name for e in full.experiment_ids]
        out["dataset"] = {
            "name": full.name,
            "tags": without_archive_tags(full.tags),
            "experiments": sorted(linked),
            "records": rows,
            "id": ds.dataset_id,
        }
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.run_name = 'eval'")
    run_names = {r.info.run_id: r.info.run_name for r in runs}
    inputs = runs[0].inputs.dataset_inputs if runs else []
    out["run_input_points_at_dataset"] = [
        json.loads(d.dataset.source).get("dataset_id") == (out["dataset"] or {}).get("id")
        for d in inputs
        if d.dataset.source_type == "mlflow_evaluation_dataset"
    ]
    if out["dataset"]:
        del out["dataset"]["id"]

    # The store's own search: MLflow's search_traces leaves out traces whose spans are kept as
    # the artifact traces.json (it reads spans in bulk, which the server refuses for those).
    from mlflow.tracking._tracking_service.utils import _get_store

    infos, token = [], None
    while True:
        page, token = _get_store().search_traces(
            locations=[exp.experiment_id], order_by=["timestamp_ms ASC"], page_token=token
        )
        infos.extend(page)
        if not token:
            break
    for info in infos:
        t = mlflow.get_trace(info.trace_id)
        # None when the source itself holds only part of the spans (MLflow's client failed to
        # send one): the info and the stored span document are compared then.
        i = t.info if t else _get_store().get_trace_info(info.trace_id)
        meta = dict(i.trace_metadata)
        if "mlflow.sourceRun" in meta:
            meta["mlflow.sourceRun"] = run_names.get(meta["mlflow.sourceRun"], "?unknown run")
        tags = without_archive_tags(i.tags)
        # Where the server keeps the trace's files and spans: its own business (a copy keeps
        # spans in the database even when the source kept them as the file traces.json).
        tags.pop("mlflow.artifactLocation", None)
        tags.pop("mlflow.trace.spansLocation", None)
        out["traces"].append(
            {
                "trace_id": i.trace_id,
                "request_time": i.request_time,
                "execution_duration": i.execution_duration,
                "state": str(i.state),
                "client_request_id": i.client_request_id,
                "request_preview": i.request_preview,
                "response_preview": i.response_preview,
                "metadata": meta,
                "tags": tags,
                "spans": [s.to_dict() for s in t.data.spans] if t else None,
                "stored_spans": stored_spans(i.trace_id),
                "attachments": attachments(stored_spans(i.trace_id), i.trace_id),
                "assessments": sorted(
                    (
                        {
                            "id": a.assessment_id,
                            "name": a.name,
                            "value": a.value,
                            "rationale": a.rationale,
                            "valid": a.valid,
                            "overrides": a.overrides,
                            "span_id": a.span_id,
                            "source": [a.source.source_type, a.source.source_id],
                            "metadata": a.metadata,
                            "create_time_ms": a.create_time_ms,
                        }
                        for a in i.assessments
                    ),
                    key=lambda a: a["id"],
                ),
            }
        )
    linked, _ = _get_store().search_traces(
        locations=[exp.experiment_id], filter_string=f'prompt = "greet-{tag}/1"'
    )
    out["traces_linked_to_greet"] = sorted(t.trace_id for t in linked)
    return out


def main():
    what, tag = sys.argv[1], sys.argv[2]
    # MLflow prints "View run … at …" on stdout: only the result goes there.
    with contextlib.redirect_stdout(sys.stderr):
        result = populate(tag) if what == "populate" else dump(tag)
    print(json.dumps(result, indent=1, sort_keys=True, default=str))


if __name__ == "__main__":
    sys.exit(main())
