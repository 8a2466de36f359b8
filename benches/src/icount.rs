//! Instruction counts of one codec operation, for comparisons that a noisy machine cannot
//! disturb. Run under callgrind, counting only `measured`:
//!
//! ```sh
//! cargo build --release --bin icount
//! valgrind --tool=callgrind --toggle-collect='*measured*' ../target/release/icount write-ours small
//! ```
//! or `bash icount.sh` for the whole table.

use std::hint::black_box;

mod common;
use common::{read_baseline, read_ours, sets, write_baseline, write_ours};

#[inline(never)]
fn measured(op: &str, set: &common::Set, input: &[u8]) -> u64 {
    match op {
        "write-ours" => write_ours(set).len() as u64,
        "write-base" => write_baseline(set).len() as u64,
        "read-ours" => read_ours(input),
        "read-base" => read_baseline(input),
        other => panic!("unknown operation {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, which) = (args[1].as_str(), args[2].as_str());
    let set = sets()
        .into_iter()
        .find(|s| {
            s.name
                .starts_with(if which == "small" { "10000" } else { "4 x" })
        })
        .unwrap();
    let input = match op {
        "read-ours" => write_ours(&set),
        "read-base" => write_baseline(&set),
        _ => Vec::new(),
    };
    println!("{}", black_box(measured(op, &set, &input)));
}
