//! The archive codec: round trips, determinism, pipes and odd chunkings, truncation and bit flips,
//! unsafe members, exact sizes.

use std::io::{Read, Write};

use mlflow_archive::Error;
use mlflow_archive::format::model::{DatasetRecords, Experiment, MetricChunk, Point, Tag};
use mlflow_archive::format::{ArchiveReader, ArchiveWriter, WriterBuilder};
use proptest::prelude::*;

use crate::format_util::{
    Item, member_offsets, read_items, retar, run, sample_items, untar, write_items,
};

/// A reader that hands out at most `chunks[i % len]` bytes per call.
struct Chunky<R> {
    inner: R,
    sizes: Vec<usize>,
    i: usize,
}

impl<R: Read> Read for Chunky<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.sizes[self.i % self.sizes.len()].max(1).min(buf.len());
        self.i += 1;
        self.inner.read(&mut buf[..n])
    }
}

/// A writer that accepts at most 1 byte per call.
struct OneByte(Vec<u8>);

impl Write for OneByte {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.0.push(buf[0]);
        Ok(1)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn everything_round_trips() {
    let items = sample_items();
    let bytes = write_items(&items, WriterBuilder::new());
    assert_eq!(read_items(&bytes[..]).unwrap(), items);
    let report = ArchiveReader::new(&bytes[..]).unwrap().verify().unwrap();
    let c = report.trailer.counts;
    assert_eq!(
        (
            c.experiments,
            c.runs,
            c.logged_models,
            c.registered_models,
            c.model_versions
        ),
        (2, 3, 1, 3, 6)
    );
    assert_eq!(
        (c.metric_chunks, c.metric_points, c.artifacts),
        (3, 5006, 7)
    );
    // What 1.1 added: a prompt (also a registered model) with two versions, two traces with
    // their assessments, a dataset with its records.
    assert_eq!(
        (
            c.prompts,
            c.prompt_versions,
            c.traces,
            c.assessments,
            c.datasets,
            c.dataset_records
        ),
        (1, 2, 2, 4, 1, 5)
    );
    assert_eq!(
        report.header.source.unwrap().tracking_uri.unwrap(),
        "http://127.0.0.1:5000"
    );
    assert_eq!(report.archive_bytes, bytes.len() as u64);
}

#[test]
fn writing_is_deterministic_and_levels_and_threads_only_change_compression() {
    let items = sample_items();
    let a = write_items(&items, WriterBuilder::new());
    let b = write_items(&items, WriterBuilder::new());
    assert_eq!(a, b, "same input, same bytes");
    let c = write_items(&items, WriterBuilder::new().level(9).threads(2));
    assert_eq!(
        untar(&a),
        untar(&c),
        "the tar layer does not depend on compression settings"
    );
    assert_eq!(read_items(&c[..]).unwrap(), items);
}

#[test]
fn tar_tools_can_list_it() {
    let bytes = write_items(&sample_items(), WriterBuilder::new());
    let tar = untar(&bytes);
    let names: Vec<String> = member_offsets(&tar).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names[0], "mlflow-archive.json");
    assert_eq!(names[1], "experiments/1/experiment.json");
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("file with spaces é.txt") && n.len() > 100)
    );
    assert_eq!(names[names.len() - 2], "trailer.json");
}

#[test]
fn reads_through_a_pipe_and_writes_one_byte_at_a_time() {
    let items = sample_items();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let expected = items.clone();
    let producer = std::thread::spawn(move || {
        let bytes = write_items(&expected, WriterBuilder::new());
        writer.write_all(&bytes).unwrap();
    });
    assert_eq!(read_items(reader).unwrap(), items);
    producer.join().unwrap();

    let mut w = ArchiveWriter::new(OneByte(Vec::new())).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "x".into(),
        ..Experiment::default()
    })
    .unwrap();
    let (out, _) = w.finish().unwrap();
    assert_eq!(read_items(&out.0[..]).unwrap().len(), 1);
}

#[test]
fn bodies_of_the_wrong_size_never_make_an_archive() {
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "x".into(),
        ..Experiment::default()
    })
    .unwrap();
    w.begin_run(&run("r1", "1", None)).unwrap();
    let e = w.artifact("short.bin", 10, &b"abc"[..]).unwrap_err();
    assert!(e.to_string().contains("shorter"), "{e}");
    assert!(w.end_unit().is_err(), "a failed writer stays failed");
    assert!(w.finish().is_err());

    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "x".into(),
        ..Experiment::default()
    })
    .unwrap();
    w.begin_run(&run("r1", "1", None)).unwrap();
    let e = w.artifact("long.bin", 2, &b"abc"[..]).unwrap_err();
    assert!(e.to_string().contains("longer"), "{e}");
    assert!(w.finish().is_err());
}

#[test]
fn the_writer_refuses_to_break_the_rules() {
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    let e = w
        .begin_run(&run("r1", "1", None))
        .and_then(|_| w.end_unit())
        .and_then(|_| {
            w.experiment(&Experiment {
                experiment_id: "1".into(),
                name: "late".into(),
                ..Experiment::default()
            })
        });
    let e = e.unwrap_err();
    assert!(e.to_string().contains("comes after"), "{e}");

    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    assert!(w.begin_run(&run("../x", "1", None)).is_err());
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.begin_run(&run("r1", "1", None)).unwrap();
    for bad in ["../up", "/abs", "a//b", "a\\b", ""] {
        let mut w2 = ArchiveWriter::new(Vec::new()).unwrap();
        w2.begin_run(&run("r1", "1", None)).unwrap();
        assert!(w2.artifact(bad, 0, &b""[..]).is_err(), "{bad:?}");
    }
    let mut w3 = ArchiveWriter::new(Vec::new()).unwrap();
    w3.begin_run(&run("r1", "1", None)).unwrap();
    let e = w3.finish().unwrap_err();
    assert!(e.to_string().contains("not sealed"), "{e}");
    drop(w);
}

fn assert_refused(bytes: &[u8], what: &str) -> Error {
    match read_items(bytes) {
        Ok(items) => panic!("{what}: accepted ({} items)", items.len()),
        Err(e) => {
            let s = e.to_string();
            assert!(!s.is_empty());
            e
        }
    }
}

#[test]
fn truncation_at_every_member_boundary_is_detected() {
    let bytes = write_items(&sample_items(), WriterBuilder::new());
    let tar = untar(&bytes);
    for (offset, name) in member_offsets(&tar) {
        let cut = retar(&tar[..offset as usize]);
        let e = assert_refused(&cut, &format!("cut before {name}"));
        let s = e.to_string();
        assert!(
            s.contains("trailer") || s.contains("truncated") || s.contains("empty archive"),
            "cut before {name}: {s}"
        );
    }
}

#[test]
fn truncation_at_random_offsets_is_detected() {
    let bytes = write_items(&sample_items(), WriterBuilder::new());
    let tar = untar(&bytes);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..40 {
        let at = (next() % bytes.len() as u64) as usize;
        assert_refused(&bytes[..at], &format!("compressed stream cut at {at}"));
        let at = (next() % tar.len() as u64) as usize;
        if tar[at..].iter().all(|b| *b == 0) {
            continue; // cutting inside the final zero blocks leaves a complete archive
        }
        assert_refused(&retar(&tar[..at]), &format!("tar stream cut at {at}"));
    }
}

#[test]
fn every_flipped_bit_in_a_member_is_detected_and_named() {
    let items = sample_items();
    let bytes = write_items(&items, WriterBuilder::new());
    let tar = untar(&bytes);
    let offsets = member_offsets(&tar);
    // One flip in the header block and one in the body of every member.
    for w in offsets.windows(2) {
        let ((start, name), (end, _)) = (&w[0], &w[1]);
        for at in [
            *start + 100,
            (*start + 512 + (*end - *start - 512) / 2).min(*end - 1),
        ] {
            let mut t = tar.clone();
            t[at as usize] ^= 0x10;
            let e = assert_refused(&retar(&t), &format!("bit flip at {at} in {name}"));
            let s = e.to_string();
            assert!(s.contains("byte "), "the offset is named: {s}");
        }
    }
    // Flips in the compressed stream are caught too (zstd's checksum, or ours).
    for at in [20usize, bytes.len() / 3, bytes.len() / 2, bytes.len() - 10] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        assert_refused(&b, &format!("compressed flip at {at}"));
    }
}

#[test]
fn a_crc_mismatch_names_the_member_and_its_run() {
    let bytes = write_items(&sample_items(), WriterBuilder::new());
    let mut tar = untar(&bytes);
    let offsets = member_offsets(&tar);
    let (at, _) = offsets
        .iter()
        .find(|(_, n)| n == "runs/aaaa0000000000000000000000000001/artifacts/model/MLmodel")
        .unwrap();
    tar[*at as usize + 512] ^= 0x20; // first body byte
    let e = assert_refused(&retar(&tar), "flipped body").to_string();
    assert!(e.contains("CRC-32 mismatch"), "{e}");
    assert!(e.contains("model/MLmodel"), "{e}");
    assert!(e.contains("run aaaa0000000000000000000000000001"), "{e}");
}

fn arb_name() -> impl Strategy<Value = String> {
    let seg = prop::string::string_regex("[a-zA-Z0-9 é_.-]{1,12}")
        .unwrap()
        .prop_filter("not . or ..", |s| s != "." && s != "..");
    prop::collection::vec(seg, 1..4).prop_map(|v| v.join("/"))
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_runs_round_trip_through_arbitrary_chunkings(
        keys in prop::collection::vec("[a-z/ _.-]{1,20}", 1..4),
        points in prop::collection::vec((any::<i64>(), any::<i64>(), arb_value()), 0..300),
        files in prop::collection::btree_map(arb_name(), prop::collection::vec(any::<u8>(), 0..3000), 0..6),
        params in prop::collection::vec(("[a-z]{1,8}", ".{0,30}"), 0..5),
        sizes in prop::collection::vec(1usize..700, 1..8),
        level in 1i32..6,
    ) {
        // A file and a directory of the same name cannot both exist; keep the first.
        let mut names: Vec<&String> = Vec::new();
        let files: Vec<(String, Vec<u8>)> = files.iter().filter(|(n, _)| {
            let clash = names.iter().any(|o| o.starts_with(&format!("{n}/")) || n.starts_with(&format!("{o}/")));
            if !clash { names.push(n); }
            !clash
        }).map(|(n, d)| (n.clone(), d.clone())).collect();
        let mut r = run("r1", "0", None);
        r.params = params.iter().map(|(k, v)| Tag::new(k.clone(), v.clone())).collect();
        let mut items = vec![
            Item::Experiment(Experiment { experiment_id: "0".into(), name: "e".into(), ..Experiment::default() }),
            Item::Run(r),
        ];
        for k in &keys {
            items.push(Item::Chunk(MetricChunk {
                key: k.clone(),
                points: points.iter().map(|(s, t, v)| Point { step: *s, timestamp: *t, value: *v }).collect(),
                ..MetricChunk::default()
            }));
        }
        for (n, d) in &files {
            items.push(Item::Artifact(n.clone(), d.clone()));
        }
        items.push(Item::EndUnit);
        let bytes = write_items(&items, WriterBuilder::new().level(level));
        let chunky = Chunky { inner: &bytes[..], sizes, i: 0 };
        prop_assert_eq!(read_items(chunky).unwrap(), items);
    }

    /// Format 1.1's units: datasets with arbitrary records in arbitrary chunkings, traces with
    /// arbitrary metadata, assessments and span bytes, round trip whatever the read sizes.
    #[test]
    fn arbitrary_datasets_and_traces_round_trip(
        records in prop::collection::vec(prop::collection::vec(("[a-z_]{1,8}", ".{0,20}", any::<i32>()), 0..6), 0..5),
        // A map, as on the server: the writer refuses a key twice (§7.8).
        metadata in prop::collection::btree_map("[a-zA-Z._]{1,20}", ".{0,40}", 0..6),
        assessments in prop::collection::vec((".{0,12}", any::<f64>().prop_filter("finite", |v| v.is_finite()), any::<bool>()), 0..4),
        spans in prop::collection::vec(any::<u8>(), 0..5000),
        state in prop::sample::select(vec!["OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"]),
        sizes in prop::collection::vec(1usize..700, 1..8),
    ) {
        let mut items = vec![
            Item::Experiment(Experiment { experiment_id: "0".into(), name: "e".into(), ..Experiment::default() }),
            Item::Dataset(crate::format_util::dataset("d-1", &["0"])),
        ];
        for chunk in &records {
            items.push(Item::Records(DatasetRecords {
                records: chunk.iter().map(|(k, v, n)| serde_json::json!({"inputs": {k.clone(): v}, "expectations": {"n": n}})).collect(),
            }));
        }
        items.push(Item::EndUnit);
        let mut t = crate::format_util::trace("tr-x", "0", None);
        t.state = state.to_string();
        t.trace_metadata = metadata.iter().map(|(k, v)| Tag::new(k.clone(), v.clone())).collect();
        t.assessments = assessments.iter().enumerate().map(|(i, (name, value, valid))| serde_json::json!({
            "assessment_id": format!("a-{i}"), "assessment_name": name, "feedback": {"value": value}, "valid": valid,
        })).collect();
        items.push(Item::Trace(t));
        items.push(Item::Artifact("traces.json".into(), spans.clone()));
        items.push(Item::EndUnit);
        let bytes = write_items(&items, WriterBuilder::new());
        let chunky = Chunky { inner: &bytes[..], sizes, i: 0 };
        prop_assert_eq!(read_items(chunky).unwrap(), items);
    }

    #[test]
    fn arbitrary_damage_is_refused_or_harmless_never_a_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let mut items = sample_items()[..3].to_vec();
        items.push(Item::EndUnit);
        let bytes = write_items(&items, WriterBuilder::new());
        let mut tar = untar(&bytes);
        let end = tar.len() - 1024;
        for (i, bit) in &flips {
            let at = i.index(end);
            tar[at] ^= 1 << bit;
        }
        // Refused, or (a flip in what tar lets vary, such as a checksum's padding:
        // a_checksum_fields_padding_is_read_as_tar_reads_it) read back exactly as written.
        if let Ok(got) = read_items(&retar(&tar)[..]) {
            prop_assert_eq!(got, items, "damage at {:?} was accepted and changed the content", flips);
        }
    }
}

/// A header checksum's field is octal text that tar lets vary in its padding: a leading zero read
/// as a space, or the closing NUL as a space, still states the same (correct) sum, as §5.4 asks.
/// Readers accept it like tar does; the content is untouched (what the damage property allows).
#[test]
fn a_checksum_fields_padding_is_read_as_tar_reads_it() {
    let mut items = sample_items()[..3].to_vec();
    items.push(Item::EndUnit);
    let bytes = write_items(&items, WriterBuilder::new());
    let tar = untar(&bytes);
    let (start, name) = member_offsets(&tar)[0].clone();
    let s = start as usize;
    assert_eq!(&tar[s + 148..s + 150], b"00", "{name}: a zero-padded sum");
    assert_eq!(tar[s + 155], 0, "{name}: the field ends in NUL");
    for (at, bit) in [(148usize, 4u8), (155, 5)] {
        let mut t = tar.clone();
        t[s + at] ^= 1 << bit;
        assert_eq!(t[s + at], b' ');
        assert_eq!(
            read_items(&retar(&t)[..]).unwrap(),
            items,
            "byte {at} as a space"
        );
    }
    // A digit changed is a wrong sum.
    let mut t = tar.clone();
    t[s + 150] ^= 1;
    assert_refused(&retar(&t), "a digit of the checksum changed");
}
