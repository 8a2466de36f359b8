//! Every JSON example of spec/format.md tagged ```json record=<Type>``` parses into the library's
//! type and serialises back to the same JSON: no unknown field, no wrong encoding, no drift.

use mlflow_archive::format::model::{
    Dataset, DatasetRecords, Experiment, Header, LoggedModel, MetricChunk, ModelVersion,
    Permissions, RegisteredModel, Run, Seal, Trace, Trailer,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> Result<(), String> {
    let parsed: T = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let want: serde_json::Value = serde_json::from_str(text).unwrap();
    let got = serde_json::to_value(&parsed).unwrap();
    if got != want {
        return Err(format!("serialises back as\n{got:#}\nnot\n{want:#}"));
    }
    Ok(())
}

#[test]
fn the_spec_examples_are_records_of_the_library() {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/format.md")).unwrap();
    let mut seen = Vec::new();
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let Some(kind) = line.strip_prefix("```json record=") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let text = body.join("\n");
        let r = match kind {
            "Header" => round_trip::<Header>(&text),
            "Experiment" => round_trip::<Experiment>(&text),
            "Run" => round_trip::<Run>(&text),
            "MetricChunk" => round_trip::<MetricChunk>(&text),
            "LoggedModel" => round_trip::<LoggedModel>(&text),
            "RegisteredModel" => round_trip::<RegisteredModel>(&text),
            "ModelVersion" => round_trip::<ModelVersion>(&text),
            "Seal" => round_trip::<Seal>(&text),
            "Trailer" => round_trip::<Trailer>(&text),
            "Trace" => round_trip::<Trace>(&text),
            "Dataset" => round_trip::<Dataset>(&text),
            "DatasetRecords" => round_trip::<DatasetRecords>(&text),
            "Permissions" => round_trip::<Permissions>(&text),
            other => Err(format!("unknown record type {other}")),
        };
        if let Err(e) = r {
            panic!("spec example {kind}: {e}");
        }
        seen.push(kind.to_string());
    }
    for kind in [
        "Header",
        "Experiment",
        "Run",
        "MetricChunk",
        "LoggedModel",
        "RegisteredModel",
        "ModelVersion",
        "Seal",
        "Trailer",
        "Trace",
        "Dataset",
        "DatasetRecords",
        "Permissions",
    ] {
        assert!(
            seen.iter().any(|s| s == kind),
            "the spec has no {kind} example"
        );
    }
}
