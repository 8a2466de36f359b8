//! Limits on untrusted archives. Every default is documented in spec/format.md §11.

/// What a reader accepts. Exceeding any limit is an error that names the member and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest JSON member (records, seals, the trailer), in bytes. Default 64 MiB.
    pub max_json_bytes: u64,
    /// Largest artifact member, in bytes. Default 1 TiB.
    pub max_artifact_bytes: u64,
    /// Most members in one unit. Default 1 000 000. (The names of a unit's members total at most
    /// `max_json_bytes`: its seal lists them all.)
    pub max_unit_members: usize,
    /// Most members in the archive. Default 100 000 000.
    pub max_members: u64,
    /// Most points in one metric chunk. Default 1 000 000.
    pub max_chunk_points: usize,
    /// Longest member name, in bytes. Default 4096.
    pub max_name_bytes: usize,
    /// Most JSON values in a member of free-form objects (a trace record, a chunk of dataset
    /// records), counted before it is parsed. Default 4 000 000.
    pub max_json_values: u64,
    /// Most JSON objects in such a member (an object costs a parser hundreds of bytes). Default
    /// 200 000.
    pub max_json_objects: u64,
    /// Largest zstd window, as a power of two (bounds the decoder's memory). Default 25 (32 MiB).
    pub zstd_window_log_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 64 << 20,
            max_artifact_bytes: 1 << 40,
            max_unit_members: 1_000_000,
            max_members: 100_000_000,
            max_chunk_points: 1_000_000,
            max_name_bytes: 4096,
            max_json_values: 4_000_000,
            max_json_objects: 200_000,
            zstd_window_log_max: 25,
        }
    }
}
