//! Every input saved under tests/data/fuzz-regressions/<target>/ is replayed through the same
//! function its fuzz target calls; none may panic. The spec vectors are replayed too, as seeds.

use std::path::PathBuf;

fn files(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fuzz_regressions_and_vectors_replay_without_panics() {
    let mut n = 0;
    for target in [
        "read_archive",
        "read_tar",
        "parse_records",
        "read_legacy_json",
        "read_legacy_zip",
    ] {
        for f in files(&format!("tests/data/fuzz-regressions/{target}")) {
            let data = std::fs::read(&f).unwrap();
            match target {
                "read_archive" => mlflow_archive::fuzzing::read_archive(&data),
                "read_tar" => mlflow_archive::fuzzing::read_tar(&data),
                "read_legacy_json" => mlflow_archive::fuzzing::read_legacy_json(&data),
                "read_legacy_zip" => mlflow_archive::fuzzing::read_legacy_zip(&data),
                _ => mlflow_archive::fuzzing::parse_records(&data),
            }
            n += 1;
        }
    }
    for f in files("spec/vectors") {
        let data = std::fs::read(&f).unwrap();
        if f.extension().is_some_and(|e| e == "mlar") {
            mlflow_archive::fuzzing::read_archive(&data);
            if let Ok(tar) = zstd::decode_all(&data[..]) {
                mlflow_archive::fuzzing::read_tar(&tar);
            }
        } else {
            mlflow_archive::fuzzing::parse_records(&data);
        }
        n += 1;
    }
    // The Python tool's own files, as seeds of the legacy reader.
    for f in files("tests/data/legacy") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let pick = match name.as_str() {
            "run.json" => 0u8,
            "experiment.json" => 1,
            "model.json" => 2,
            "manifest.json" => 3,
            _ => continue,
        };
        let mut data = vec![pick];
        data.extend(std::fs::read(&f).unwrap());
        mlflow_archive::fuzzing::read_legacy_json(&data);
        n += 1;
    }
    assert!(n > 60, "replayed {n} inputs");
}
