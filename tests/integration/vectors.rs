//! The test vectors of spec/vectors: every file in `valid/` must verify (with the counts its
//! expectation names), every file in `invalid/` must be refused with the error its expectation
//! names, through the library and through `mlflow-archive verify`. A new vector needs no new code.
//!
//! `MLFLOW_ARCHIVE_WRITE_VECTORS=1 cargo test --test integration vectors::write_vectors -- --ignored`
//! regenerates them (deterministically) from the recipes below.

use std::path::{Path, PathBuf};

use mlflow_archive::format::checksum::Crc32;
use mlflow_archive::format::model::{Experiment, Seal, SealEntry, Trailer};
use mlflow_archive::format::{ArchiveReader, WriterBuilder};
use serde_json::json;

use crate::format_util::{
    Item, dataset, prompt, prompt_version, records, run, sample_items, trace, untar, write_items,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/vectors")
}

/// One tar member, as the test manipulates them.
#[derive(Clone, Debug)]
struct M {
    name: String,
    kind: u8,
    body: Vec<u8>,
    /// A size to declare instead of the body's.
    declared: Option<u64>,
    link: Option<String>,
}

impl M {
    fn file(name: &str, body: &[u8]) -> M {
        M {
            name: name.into(),
            kind: b'0',
            body: body.to_vec(),
            declared: None,
            link: None,
        }
    }
}

fn parse_members(tar: &[u8]) -> Vec<M> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            M::file(&name, &body)
        })
        .collect()
}

fn raw_header(name: &[u8], size: u64, kind: u8, link: Option<&str>) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    *h.as_bytes()
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

fn build_tar(members: &[M]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let name = m.name.as_bytes();
        if name.len() > 100 {
            out.extend_from_slice(&raw_header(
                b"././@LongLink",
                name.len() as u64 + 1,
                b'L',
                None,
            ));
            out.extend_from_slice(name);
            out.push(0);
            pad(&mut out);
        }
        let size = m.declared.unwrap_or(m.body.len() as u64);
        out.extend_from_slice(&raw_header(name, size, m.kind, m.link.as_deref()));
        out.extend_from_slice(&m.body);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Recomputes every seal and the trailer's structural fields from the members, so that a vector
/// breaks only the rule it is about.
fn reseal(members: &mut [M]) {
    let mut seals = crc32fast::Hasher::new();
    let mut units = 0u64;
    let mut count = 0u64;
    let mut header_crc = Crc32::default();
    let mut unit_members: Vec<SealEntry> = Vec::new();
    for m in members.iter_mut() {
        if m.name == "mlflow-archive.json" {
            header_crc = Crc32::of(&m.body);
            count += 1;
        } else if m.name.ends_with("/seal.json") {
            let mut s: Seal = serde_json::from_slice(&m.body).unwrap();
            s.members = std::mem::take(&mut unit_members);
            m.body = serde_json::to_vec_pretty(&s).unwrap();
            seals.update(&m.body);
            units += 1;
            count += 1;
        } else if m.name == "trailer.json" {
            let mut t: Trailer = serde_json::from_slice(&m.body).unwrap();
            t.units = units;
            t.members = count;
            t.header_crc32 = header_crc;
            t.seals_crc32 = Crc32(seals.clone().finalize());
            m.body = serde_json::to_vec_pretty(&t).unwrap();
        } else {
            unit_members.push(SealEntry {
                path: m.name.clone(),
                size: m.body.len() as u64,
                crc32: Crc32::of(&m.body),
            });
            count += 1;
        }
    }
}

fn zst(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).unwrap()
}

fn small_items() -> Vec<Item> {
    small(sample_items())
}

/// `items` with artifacts and metric chunks cut short (small vectors).
fn small(items: Vec<Item>) -> Vec<Item> {
    items
        .into_iter()
        .map(|i| match i {
            Item::Artifact(p, d) if d.len() > 4096 => Item::Artifact(p, d[..4096].to_vec()),
            Item::Chunk(mut c) => {
                c.points.truncate(20);
                Item::Chunk(c)
            }
            other => other,
        })
        .collect()
}

fn one_experiment() -> Vec<M> {
    let items = vec![
        Item::Experiment(Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            ..Experiment::default()
        }),
        Item::Run(run("r1", "1", None)),
        Item::Artifact("a.txt".into(), b"hello".to_vec()),
        Item::EndUnit,
    ];
    parse_members(&untar(&write_items(&items, WriterBuilder::new())))
}

/// A 1.1 archive: an experiment, a dataset with two record chunks, a run that used it, a prompt,
/// and a trace made in the run with its span data and an attachment.
fn genai() -> Vec<M> {
    let mut r1 = run("r1", "1", None);
    r1.dataset_inputs = vec![mlflow_archive::format::model::DatasetInput {
        name: "qa-set".into(),
        digest: "d341e6f6".into(),
        source_type: "mlflow_evaluation_dataset".into(),
        source: r#"{"dataset_id": "d-1"}"#.into(),
        ..Default::default()
    }];
    let items = vec![
        Item::Experiment(Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            ..Experiment::default()
        }),
        Item::Dataset(dataset("d-1", &["1"])),
        Item::Records(records(0..2)),
        Item::Records(records(2..3)),
        Item::EndUnit,
        Item::Run(r1),
        Item::Artifact("a.txt".into(), b"hello".to_vec()),
        Item::EndUnit,
        Item::Model(prompt("qa")),
        Item::Version(prompt_version(1, "Answer {{question}}.")),
        Item::EndUnit,
        Item::Trace(trace("tr-1", "1", Some("r1"))),
        Item::Artifact("traces.json".into(), br#"{"spans": []}"#.to_vec()),
        Item::Artifact("attachments/c50f".into(), b"png".to_vec()),
        Item::EndUnit,
    ];
    parse_members(&untar(&write_items(&items, WriterBuilder::new())))
}

/// A 1.2 archive: an experiment with its access control list and a run, a workspace-registry
/// model with its access control list, and a Unity Catalog model with its grants and a version.
fn permissions() -> Vec<M> {
    use mlflow_archive::format::model::{
        AclEntry, Grant, ModelVersion, Permissions, RegisteredModel,
    };
    let acl = |t: &str, p: &str, l: &str| AclEntry {
        principal_type: t.into(),
        principal: p.into(),
        level: l.into(),
    };
    let items = vec![
        Item::OpenExperiment(Experiment {
            experiment_id: "1".into(),
            name: "/Users/ann@example.com/wine".into(),
            ..Experiment::default()
        }),
        Item::Permissions(Permissions {
            acl: vec![
                acl("user", "ann@example.com", "CAN_MANAGE"),
                acl("group", "data-scientists", "CAN_EDIT"),
                acl(
                    "service_principal",
                    "6f4e2a1b-0c3d-4e5f-8a9b-0c1d2e3f4a5b",
                    "CAN_READ",
                ),
            ],
            grants: Vec::new(),
        }),
        Item::EndUnit,
        Item::Run(run("r1", "1", None)),
        Item::EndUnit,
        Item::Model(RegisteredModel {
            name: "wine".into(),
            ..RegisteredModel::default()
        }),
        Item::Permissions(Permissions {
            acl: vec![acl(
                "user",
                "bob@example.com",
                "CAN_MANAGE_PRODUCTION_VERSIONS",
            )],
            grants: Vec::new(),
        }),
        Item::EndUnit,
        Item::Model(RegisteredModel {
            name: "main.default.wine".into(),
            ..RegisteredModel::default()
        }),
        Item::Permissions(Permissions {
            acl: Vec::new(),
            grants: vec![Grant {
                principal: "data-scientists".into(),
                privileges: vec!["EXECUTE".into(), "APPLY_TAG".into()],
            }],
        }),
        Item::Version(ModelVersion {
            version: 1,
            source: "runs:/r1/model".into(),
            run_id: "r1".into(),
            ..ModelVersion::default()
        }),
        Item::EndUnit,
    ];
    parse_members(&untar(&write_items(&items, WriterBuilder::new())))
}

/// Moves the members of unit `prefix` (its record to its seal) to just before member `before`.
fn move_unit(mut ms: Vec<M>, prefix: &str, before: &str) -> Vec<M> {
    let unit: Vec<M> = ms
        .iter()
        .filter(|m| m.name.starts_with(&format!("{prefix}/")))
        .cloned()
        .collect();
    ms.retain(|m| !m.name.starts_with(&format!("{prefix}/")));
    let at = ms.iter().position(|m| m.name == before).unwrap();
    ms.splice(at..at, unit);
    ms
}

fn edit(mut ms: Vec<M>, name: &str, f: impl FnOnce(&mut M)) -> Vec<M> {
    let m = ms
        .iter_mut()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no member {name}"));
    f(m);
    ms
}

fn json_edit(m: &mut M, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    f(&mut v);
    m.body = serde_json::to_vec_pretty(&v).unwrap();
}

fn insert_before(mut ms: Vec<M>, before: &str, new: M) -> Vec<M> {
    let i = ms.iter().position(|m| m.name == before).unwrap();
    ms.insert(i, new);
    ms
}

struct Vector {
    name: &'static str,
    bytes: Vec<u8>,
    expect: serde_json::Value,
}

fn valid(name: &'static str, section: &str, description: &str, bytes: Vec<u8>) -> Vector {
    let counts = ArchiveReader::new(&bytes[..])
        .unwrap()
        .verify()
        .unwrap()
        .trailer
        .counts;
    Vector {
        name,
        bytes,
        expect: json!({"outcome": "valid", "section": section, "description": description, "counts": counts}),
    }
}

fn invalid(
    name: &'static str,
    section: &str,
    error: &str,
    description: &str,
    bytes: Vec<u8>,
) -> Vector {
    Vector {
        name,
        bytes,
        expect: json!({"outcome": "invalid", "section": section, "error": error, "description": description}),
    }
}

const R1: &str = "runs/r1";

fn recipes() -> Vec<Vector> {
    let mut v = Vec::new();
    let empty_items: Vec<Item> = Vec::new();
    v.push(valid(
        "empty",
        "8",
        "a header and a trailer, nothing else",
        write_items(&empty_items, WriterBuilder::new()),
    ));
    v.push(valid(
        "one-run",
        "8.2",
        "an experiment and a run with one artifact",
        zst(&build_tar(&one_experiment())),
    ));
    v.push(valid(
        "full",
        "7",
        "every record kind: experiments, nested and deleted runs, metric chunks with NaN and infinities, empty/unicode/long-named artifacts, a logged model, registered models with a gap in versions, a prompt, an evaluation dataset with records, traces with span data and an attachment",
        write_items(&small_items(), WriterBuilder::new()),
    ));
    let mut fwd = edit(one_experiment(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("1.7"))
    });
    fwd = edit(fwd, &format!("{R1}/run.json"), |m| {
        json_edit(m, |j| j["field_from_the_future"] = json!({"x": 1}))
    });
    fwd = insert_before(
        fwd,
        &format!("{R1}/seal.json"),
        M::file(&format!("{R1}/traces/t-1.json"), b"{}"),
    );
    reseal(&mut fwd);
    v.push(valid(
        "future-minor",
        "10",
        "minor version 1.7 with an unknown member inside a unit and an unknown field: both ignored",
        zst(&build_tar(&fwd)),
    ));
    let tar = build_tar(&one_experiment());
    let split = 2048;
    let mut two = zst(&tar[..split]);
    two.extend(zst(&tar[split..]));
    v.push(valid(
        "two-frames",
        "4",
        "the tar stream compressed as two concatenated zstd frames",
        two,
    ));

    // Container and tar profile.
    v.push(invalid("zero-bytes", "4", "", "an empty file", Vec::new()));
    v.push(invalid(
        "plain-tar",
        "4",
        "compressed stream",
        "an uncompressed tar",
        build_tar(&one_experiment()),
    ));
    let full_tar = build_tar(&one_experiment());
    let no_end = &full_tar[..full_tar.len() - 1024];
    v.push(invalid(
        "no-end-marker",
        "5",
        "end-of-archive",
        "the trailer is there but the two zero blocks are not",
        zst(no_end),
    ));
    let mut trailing = full_tar.clone();
    trailing.extend_from_slice(b"garbage");
    v.push(invalid(
        "data-after-end",
        "5",
        "after the end",
        "bytes after the end-of-archive marker",
        zst(&trailing),
    ));
    let mut badsum = full_tar.clone();
    badsum[148] ^= 1;
    v.push(invalid(
        "header-checksum",
        "5",
        "checksum",
        "a tar header checksum that does not match",
        zst(&badsum),
    ));
    let ms = one_experiment();
    let mut badpad = build_tar(&ms);
    let first_body_end = 512 + ms[0].body.len();
    badpad[first_body_end] = 1;
    v.push(invalid(
        "nonzero-padding",
        "5",
        "padding",
        "non-zero padding after a member",
        zst(&badpad),
    ));
    for (name, kind, link, what) in [
        ("symlink", b'2', Some("/etc/passwd"), "a symbolic link"),
        ("hardlink", b'1', Some("mlflow-archive.json"), "a hard link"),
        ("char-device", b'3', None, "a character device"),
        ("directory", b'5', None, "a directory"),
        ("pax-header", b'x', None, "a PAX extended header"),
    ] {
        let mut m = M::file(
            &format!("{R1}/artifacts/x"),
            if kind == b'x' {
                b"30 path=runs/r1/artifacts/y\n"
            } else {
                b""
            },
        );
        m.kind = kind;
        m.link = link.map(String::from);
        v.push(invalid(
            name,
            "5",
            "not allowed",
            what,
            zst(&build_tar(&insert_before(
                one_experiment(),
                &format!("{R1}/seal.json"),
                m,
            ))),
        ));
    }
    // Names.
    for (name, member, what) in [
        ("absolute-path", "/etc/passwd", "an absolute member name"),
        (
            "dotdot-path",
            "runs/r1/artifacts/../../../etc/passwd",
            "a name with .. segments",
        ),
        (
            "backslash-path",
            "runs/r1/artifacts/a\\b",
            "a name with a backslash",
        ),
        (
            "unknown-top-level",
            "elsewhere/x.json",
            "a member outside every unit",
        ),
    ] {
        let mut ms = insert_before(
            one_experiment(),
            &format!("{R1}/seal.json"),
            M::file(member, b"x"),
        );
        reseal(&mut ms);
        v.push(invalid(
            name,
            "6",
            "member name",
            what,
            zst(&build_tar(&ms)),
        ));
    }
    let mut dup = insert_before(
        one_experiment(),
        &format!("{R1}/seal.json"),
        M::file(&format!("{R1}/artifacts/a.txt"), b"again"),
    );
    reseal(&mut dup);
    v.push(invalid(
        "duplicate-member",
        "6",
        "duplicate member",
        "the same member name twice",
        zst(&build_tar(&dup)),
    ));
    for (name, first, second, what) in [
        (
            "file-and-directory",
            "sub",
            "sub/notes.txt",
            "an artifact sub, then an artifact sub/notes.txt in the same run",
        ),
        (
            "directory-and-file",
            "sub/notes.txt",
            "sub",
            "an artifact sub/notes.txt, then an artifact sub in the same run",
        ),
    ] {
        let mut ms = one_experiment();
        for rel in [first, second] {
            ms = insert_before(
                ms,
                &format!("{R1}/seal.json"),
                M::file(&format!("{R1}/artifacts/{rel}"), b"x"),
            );
        }
        ms = edit(ms, "trailer.json", |m| {
            json_edit(m, |j| {
                j["counts"]["artifacts"] = json!(3);
                j["counts"]["artifact_bytes"] = json!(7);
            })
        });
        reseal(&mut ms);
        v.push(invalid(
            name,
            "6.3",
            "both a file and a directory",
            what,
            zst(&build_tar(&ms)),
        ));
    }
    // Units and seals.
    let ms = edit(one_experiment(), &format!("{R1}/artifacts/a.txt"), |m| {
        m.body[0] ^= 0x20
    });
    v.push(invalid(
        "crc-mismatch",
        "8.2",
        "CRC-32 mismatch",
        "an artifact byte changed after sealing",
        zst(&build_tar(&ms)),
    ));
    let ms = edit(one_experiment(), &format!("{R1}/seal.json"), |m| {
        json_edit(m, |j| j["members"][1]["size"] = json!(3))
    });
    v.push(invalid(
        "member-larger-than-sealed",
        "8.2",
        "the seal says 3 bytes",
        "a member larger than its seal declares",
        zst(&build_tar(&ms)),
    ));
    let ms: Vec<M> = one_experiment()
        .into_iter()
        .filter(|m| m.name != format!("{R1}/seal.json"))
        .collect();
    v.push(invalid(
        "missing-seal",
        "8.2",
        "before run r1 was sealed",
        "the trailer follows an unsealed run",
        zst(&build_tar(&ms)),
    ));
    let mut ms = one_experiment();
    let run_members: Vec<M> = ms
        .iter()
        .filter(|m| m.name.starts_with("runs/r1/"))
        .cloned()
        .collect();
    let at = ms.iter().position(|m| m.name == "trailer.json").unwrap();
    for (i, m) in run_members.into_iter().enumerate() {
        ms.insert(at + i, m);
    }
    reseal(&mut ms);
    v.push(invalid(
        "duplicate-unit",
        "8.2",
        "appears twice",
        "the same run twice",
        zst(&build_tar(&ms)),
    ));
    let mut ms = one_experiment();
    let exp: Vec<M> = ms.drain(1..3).collect();
    let t = ms.len() - 1;
    for (i, m) in exp.into_iter().enumerate() {
        ms.insert(t + i, m);
    }
    reseal(&mut ms);
    v.push(invalid(
        "run-before-experiment",
        "9",
        "comes after",
        "a run before its experiment",
        zst(&build_tar(&ms)),
    ));
    let child_first = {
        let items = vec![
            Item::Experiment(Experiment {
                experiment_id: "1".into(),
                name: "e".into(),
                ..Experiment::default()
            }),
            Item::Run(run("parent", "1", None)),
            Item::EndUnit,
            Item::Run(run("child", "1", Some("parent"))),
            Item::EndUnit,
        ];
        let mut ms = parse_members(&untar(&write_items(&items, WriterBuilder::new())));
        let parent: Vec<M> = ms.drain(3..5).collect();
        let t = ms.len() - 1;
        for (i, m) in parent.into_iter().enumerate() {
            ms.insert(t + i, m);
        }
        reseal(&mut ms);
        zst(&build_tar(&ms))
    };
    v.push(invalid(
        "child-before-parent",
        "9",
        "comes after",
        "a nested run before its parent",
        child_first,
    ));
    let items = vec![
        Item::Experiment(Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            ..Experiment::default()
        }),
        Item::Run(run("r1", "1", None)),
        Item::Chunk(Default::default()),
        Item::Chunk(Default::default()),
        Item::EndUnit,
    ];
    let mut ms = parse_members(&untar(&write_items(&items, WriterBuilder::new())));
    ms.iter_mut()
        .find(|m| m.name.ends_with("000001.json"))
        .unwrap()
        .name = "runs/r1/metrics/000002.json".into();
    reseal(&mut ms);
    v.push(invalid(
        "chunk-out-of-sequence",
        "8.4",
        "out of sequence",
        "metric chunks 0 then 2",
        zst(&build_tar(&ms)),
    ));
    // Header, trailer, records.
    let ms = edit(one_experiment(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("2.0"))
    });
    let mut ms = ms;
    reseal(&mut ms);
    v.push(invalid(
        "unknown-major",
        "10",
        "version 2.0 is not supported",
        "a header with major version 2",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(one_experiment(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["format"] = json!("something-else"))
    });
    reseal(&mut ms);
    v.push(invalid(
        "wrong-format",
        "7.1",
        "format \"something-else\"",
        "a header naming another format",
        zst(&build_tar(&ms)),
    ));
    let mut ms = one_experiment();
    ms.swap(0, 1);
    v.push(invalid(
        "header-not-first",
        "8.1",
        "first member",
        "an experiment before the header",
        zst(&build_tar(&ms)),
    ));
    let ms: Vec<M> = one_experiment()
        .into_iter()
        .filter(|m| m.name != "trailer.json")
        .collect();
    v.push(invalid(
        "no-trailer",
        "8.3",
        "before the trailer",
        "the archive ends after the last unit",
        zst(&build_tar(&ms)),
    ));
    let ms = edit(one_experiment(), "trailer.json", |m| {
        json_edit(m, |j| j["counts"]["runs"] = json!(2))
    });
    v.push(invalid(
        "trailer-counts",
        "8.3",
        "counts",
        "a trailer counting two runs where there is one",
        zst(&build_tar(&ms)),
    ));
    let mut ms = one_experiment();
    ms.push(M::file("experiments/9/experiment.json", b"{}"));
    v.push(invalid(
        "member-after-trailer",
        "8.3",
        "after the trailer",
        "a member after the trailer",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(one_experiment(), &format!("{R1}/run.json"), |m| {
        m.body = b"{\"run_id\": \"r1\", ".to_vec()
    });
    reseal(&mut ms);
    v.push(invalid(
        "malformed-json",
        "7",
        "malformed JSON",
        "a run record cut in the middle",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(one_experiment(), &format!("{R1}/run.json"), |m| {
        json_edit(m, |j| j["run_id"] = json!("r2"))
    });
    reseal(&mut ms);
    v.push(invalid(
        "record-id-mismatch",
        "7",
        "does not match its unit",
        "run.json of run r2 under runs/r1",
        zst(&build_tar(&ms)),
    ));
    // Format 1.1: traces, datasets, prompts, and units of later kinds.
    v.push(valid(
        "traces-and-datasets",
        "7.8",
        "format 1.1: a dataset with two record chunks, a run that used it, a prompt, a trace made in the run with its span data and an attachment",
        zst(&build_tar(&genai())),
    ));
    let mut later = edit(genai(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("1.3"))
    });
    later = insert_before(
        later,
        "trailer.json",
        M::file("scorers/s-1/scorer.json", br#"{"name": "polite"}"#),
    );
    later = insert_before(
        later,
        "trailer.json",
        M::file(
            "scorers/s-1/seal.json",
            br#"{"unit": "scorers/s-1", "members": []}"#,
        ),
    );
    reseal(&mut later);
    v.push(valid(
        "future-kind",
        "10",
        "minor version 1.3 with a unit of a kind 1.2 does not define: checked (seal, CRCs), reported, not read",
        zst(&build_tar(&later)),
    ));
    let mut same = insert_before(
        genai(),
        "trailer.json",
        M::file("scorers/s-1/scorer.json", b"{}"),
    );
    same = insert_before(
        same,
        "trailer.json",
        M::file(
            "scorers/s-1/seal.json",
            br#"{"unit": "scorers/s-1", "members": []}"#,
        ),
    );
    reseal(&mut same);
    v.push(invalid(
        "unknown-kind",
        "10",
        "unknown top-level folder \"scorers\"",
        "a unit of a kind its own version (1.1) does not define",
        zst(&build_tar(&same)),
    ));
    let mut old = edit(genai(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("1.0"))
    });
    reseal(&mut old);
    v.push(invalid(
        "dataset-in-1.0",
        "10",
        "datasets units are defined by format 1.1, but the archive says 1.0",
        "a 1.0 archive with a dataset unit, which 1.1 defines",
        zst(&build_tar(&old)),
    ));
    let mut ms = move_unit(genai(), "traces/tr-1", "runs/r1/run.json");
    reseal(&mut ms);
    v.push(invalid(
        "trace-before-its-run",
        "9",
        "run r1 comes after a run, logged model, model version or trace that refers to it",
        "a trace before the run its metadata mlflow.sourceRun names",
        zst(&build_tar(&ms)),
    ));
    let mut ms = move_unit(genai(), "datasets/d-1", "models/000000/model.json");
    reseal(&mut ms);
    v.push(invalid(
        "dataset-after-its-run",
        "9",
        "dataset d-1 comes after a run that used it",
        "a dataset after a run whose dataset input names it",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "datasets/d-1/records/000001.json", |m| {
        json_edit(m, |j| j["records"] = json!(["a text, not a record"]))
    });
    reseal(&mut ms);
    v.push(invalid(
        "dataset-record-not-object",
        "7.10",
        "is not a JSON object",
        "a dataset record that is a JSON text, not an object",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "datasets/d-1/records/000001.json", |m| {
        m.name = "datasets/d-1/records/000002.json".into()
    });
    reseal(&mut ms);
    v.push(invalid(
        "dataset-records-out-of-sequence",
        "8.4",
        "dataset records chunk 2 out of sequence",
        "record chunks 000000 then 000002",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "traces/tr-1/trace.json", |m| {
        json_edit(m, |j| j["state"] = json!("DONE"))
    });
    reseal(&mut ms);
    v.push(invalid(
        "unknown-trace-state",
        "7.8",
        "state \"DONE\" is not one of",
        "a trace whose state is not an MLflow trace state",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "datasets/d-1/records/000001.json", |m| {
        let mut body = b"{\"records\": [{\"inputs\": [".to_vec();
        body.extend(b"[],".repeat(4_000_001));
        body.extend(b"[]]}]}");
        m.body = body;
    });
    reseal(&mut ms);
    v.push(invalid(
        "records-too-many-values",
        "11",
        "JSON values, more than the limit of 4000000",
        "a 12 MB chunk of dataset records made of 4 million empty lists (gigabytes once parsed)",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "traces/tr-1/trace.json", |m| {
        json_edit(m, |j| {
            j["assessments"] = serde_json::Value::Array(vec![json!({"a": 0}); 200_001])
        })
    });
    reseal(&mut ms);
    v.push(invalid(
        "trace-too-many-objects",
        "11",
        "JSON objects, more than the limit of 200000",
        "a trace record of 200 001 small assessments (a parser would need about 140 MB for them)",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "traces/tr-1/trace.json", |m| {
        json_edit(m, |j| {
            j["trace_metadata"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "mlflow.sourceRun", "value": "elsewhere"}))
        })
    });
    reseal(&mut ms);
    v.push(invalid(
        "trace-key-twice",
        "7.8",
        "has the key \"mlflow.sourceRun\" twice",
        "a trace whose metadata names its run twice, differently",
        zst(&build_tar(&ms)),
    ));
    // Format 1.2: permissions.
    v.push(valid(
        "permissions",
        "7.11",
        "format 1.2: an experiment's access control list (a user, a group, a service principal), a workspace-registry model's, and a Unity Catalog model's grants",
        zst(&build_tar(&permissions())),
    ));
    let mut old_perms = edit(permissions(), "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("1.1"))
    });
    for unit in ["experiments/1", "models/000000"] {
        old_perms = edit(old_perms, &format!("{unit}/permissions.json"), |m| {
            m.body = br#"{"acl": "not what 1.2 means"}"#.to_vec()
        });
    }
    reseal(&mut old_perms);
    v.push(valid(
        "permissions-in-1.1",
        "10",
        "a 1.1 archive with members named permissions.json and a trailer count of permissions, which 1.1 does not define: the members checked (seal, CRCs) and ignored whatever they hold, the count ignored",
        zst(&build_tar(&old_perms)),
    ));
    let mut ms = edit(permissions(), "experiments/1/permissions.json", |m| {
        json_edit(m, |j| j["acl"][1]["principal_type"] = json!("robot"))
    });
    reseal(&mut ms);
    v.push(invalid(
        "permissions-principal-type",
        "7.11",
        "principal_type \"robot\" is not one of",
        "an access control entry whose principal is of a kind the format does not know",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(permissions(), "experiments/1/permissions.json", |m| {
        json_edit(m, |j| j["acl"][0]["principal"] = json!(""))
    });
    reseal(&mut ms);
    v.push(invalid(
        "permissions-empty-principal",
        "7.11",
        "has an empty principal or level",
        "an access control entry that names no principal",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(permissions(), "models/000001/permissions.json", |m| {
        json_edit(m, |j| j["grants"][0]["privileges"] = json!(["EXECUTE", ""]))
    });
    reseal(&mut ms);
    v.push(invalid(
        "grant-empty-privilege",
        "7.11",
        "has an empty principal or privilege",
        "a Unity Catalog grant with an empty privilege",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(permissions(), "experiments/1/permissions.json", |m| {
        json_edit(
            m,
            |j| j["grants"] = json!([{"principal": "ann@example.com", "privileges": ["EXECUTE"]}]),
        )
    });
    reseal(&mut ms);
    v.push(invalid(
        "experiment-grants",
        "7.11",
        "hold grants, which only registered models have",
        "an experiment's permissions with Unity Catalog grants",
        zst(&build_tar(&ms)),
    ));
    let mut ms = permissions();
    let at = ms
        .iter()
        .position(|m| m.name == "models/000001/permissions.json")
        .unwrap();
    let perms = ms.remove(at);
    ms = insert_before(ms, "models/000001/seal.json", perms);
    reseal(&mut ms);
    v.push(invalid(
        "permissions-after-version",
        "8.4",
        "does not directly follow its unit's record",
        "a registered model's permissions after its version",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(permissions(), "experiments/1/permissions.json", |m| {
        json_edit(m, |j| {
            j["acl"] = serde_json::Value::Array(vec![
                json!({"principal_type": "user", "principal": "a", "level": "CAN_READ"});
                200_001
            ])
        })
    });
    reseal(&mut ms);
    v.push(invalid(
        "permissions-too-many-objects",
        "11",
        "JSON objects, more than the limit of 200000",
        "an experiment's permissions with 200 001 entries",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(genai(), "trailer.json", |m| {
        json_edit(m, |j| {
            j["counts"].as_object_mut().unwrap().remove("traces");
        })
    });
    reseal(&mut ms);
    let items_1_0 = crate::format_util::sample_items_1_0();
    let mut prompts_1_0 = parse_members(&untar(&write_items(
        &small(items_1_0),
        WriterBuilder::new(),
    )));
    prompts_1_0 = edit(prompts_1_0, "mlflow-archive.json", |m| {
        json_edit(m, |j| j["version"] = json!("1.0"))
    });
    prompts_1_0 = edit(prompts_1_0, "trailer.json", |m| {
        json_edit(m, |j| {
            let c = j["counts"].as_object_mut().unwrap();
            for k in ["prompts", "prompt_versions"] {
                c.remove(k);
            }
        })
    });
    reseal(&mut prompts_1_0);
    v.push(valid(
        "prompts-in-1.0",
        "8.3",
        "a 1.0 archive with a prompt, which its trailer counts only as a registered model",
        zst(&build_tar(&prompts_1_0)),
    ));
    v.push(invalid(
        "trailer-without-traces",
        "8.3",
        "do not match the archive",
        "a 1.1 trailer that leaves out the count of its traces",
        zst(&build_tar(&ms)),
    ));
    let mut ms = edit(one_experiment(), &format!("{R1}/run.json"), |m| {
        json_edit(m, |j| j["status"] = json!("PWNED"))
    });
    reseal(&mut ms);
    v.push(invalid(
        "unknown-run-status",
        "7.3",
        "status \"PWNED\" is not one of",
        "a run whose status is not an MLflow run status",
        zst(&build_tar(&ms)),
    ));
    // Limits.
    let mut ms = one_experiment();
    let at = ms
        .iter()
        .position(|m| m.name == "runs/r1/run.json")
        .unwrap();
    ms[at].declared = Some(100 << 20);
    ms.truncate(at + 1);
    v.push(invalid(
        "oversize-json",
        "11",
        "exceeds the limit",
        "a record declaring 100 MiB",
        zst(&build_tar(&ms)[..]),
    ));
    let mut ms = one_experiment();
    let at = ms
        .iter()
        .position(|m| m.name == "runs/r1/artifacts/a.txt")
        .unwrap();
    ms[at].declared = Some(2 << 40);
    ms.truncate(at + 1);
    v.push(invalid(
        "oversize-artifact",
        "11",
        "exceeds the limit",
        "an artifact declaring 2 TiB (a decompression bomb)",
        zst(&build_tar(&ms)[..]),
    ));
    let mut big_window = Vec::new();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut big_window, 3).unwrap();
        enc.set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
            .unwrap();
        std::io::Write::write_all(&mut enc, &build_tar(&one_experiment())).unwrap();
        enc.finish().unwrap();
    }
    v.push(invalid(
        "zstd-window-too-large",
        "11",
        "compressed stream",
        "a zstd frame declaring a 128 MiB window",
        big_window,
    ));
    v
}

#[test]
#[ignore = "writes spec/vectors; run with MLFLOW_ARCHIVE_WRITE_VECTORS=1"]
fn write_vectors() {
    if std::env::var_os("MLFLOW_ARCHIVE_WRITE_VECTORS").is_none() {
        return;
    }
    for sub in ["valid", "invalid"] {
        let d = dir().join(sub);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
    }
    for vec in recipes() {
        let sub = vec.expect["outcome"].as_str().unwrap();
        let d = dir().join(sub);
        std::fs::write(d.join(format!("{}.mlar", vec.name)), &vec.bytes).unwrap();
        let mut text = serde_json::to_string_pretty(&vec.expect).unwrap();
        text.push('\n');
        std::fs::write(d.join(format!("{}.expect.json", vec.name)), text).unwrap();
    }
}

fn vectors_in(sub: &str) -> Vec<(PathBuf, serde_json::Value)> {
    let mut out: Vec<(PathBuf, serde_json::Value)> = std::fs::read_dir(dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mlar"))
        .map(|p| {
            let expect = p.with_extension("expect.json");
            let text = std::fs::read_to_string(&expect)
                .unwrap_or_else(|_| panic!("{} has no expectation file", p.display()));
            (p, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn spec_has_section(section: &str) -> bool {
    let spec =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/format.md"))
            .unwrap();
    spec.lines()
        .any(|l| l.starts_with('#') && l.contains(&format!(" {section}. ")))
}

#[test]
fn every_vector_behaves_as_its_expectation_says() {
    let valid = vectors_in("valid");
    let invalid = vectors_in("invalid");
    assert!(
        valid.len() >= 5 && invalid.len() >= 30,
        "{} valid, {} invalid",
        valid.len(),
        invalid.len()
    );
    for (path, expect) in &valid {
        assert_eq!(expect["outcome"], "valid");
        assert!(
            spec_has_section(expect["section"].as_str().unwrap()),
            "{}: no such section",
            path.display()
        );
        let bytes = std::fs::read(path).unwrap();
        let report = ArchiveReader::new(&bytes[..])
            .and_then(|r| r.verify())
            .unwrap_or_else(|e| panic!("{} was refused: {e}", path.display()));
        assert_eq!(
            serde_json::to_value(report.trailer.counts).unwrap(),
            expect["counts"],
            "{}",
            path.display()
        );
    }
    for (path, expect) in &invalid {
        assert_eq!(expect["outcome"], "invalid");
        assert!(
            spec_has_section(expect["section"].as_str().unwrap()),
            "{}: no such section",
            path.display()
        );
        let bytes = std::fs::read(path).unwrap();
        match ArchiveReader::new(&bytes[..]).and_then(|r| r.verify()) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => {
                let want = expect["error"].as_str().unwrap().replace("\\\"", "\"");
                assert!(
                    e.to_string().contains(&want),
                    "{}: want {want:?} in {e}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_cli_verify_accepts_valid_and_rejects_invalid_vectors() {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    for (path, _) in vectors_in("valid") {
        let out = std::process::Command::new(&bin)
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("sound"));
    }
    for (path, _) in vectors_in("invalid") {
        let out = std::process::Command::new(&bin)
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(stderr.contains("is not sound"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // Standard input works too.
    let valid = vectors_in("valid");
    let out = std::process::Command::new(&bin)
        .args(["verify", "-"])
        .stdin(std::fs::File::open(&valid[0].0).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let _: &Path = valid[0].0.as_path();
}
