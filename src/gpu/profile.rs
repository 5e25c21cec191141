//! Per-kernel timing for `shadergan bench`. With timestamp queries (lavapipe has them) every
//! dispatch gets its own compute pass whose start and end the device stamps, so kernels are
//! timed where they run, in one command stream; without them each dispatch is submitted and
//! waited for alone (which adds the submit overhead to every kernel).

use std::collections::HashMap;

/// Query pairs per query set (wgpu allows 4096 queries in one set); a full set is read back.
pub(crate) const TIMESTAMP_PAIRS: u32 = 1024;

pub(crate) struct Profiler {
    /// "file::entry [workgroups] note" -> (dispatches, seconds)
    pub(crate) table: HashMap<String, (u64, f64)>,
    pub(crate) timestamps: Option<Timestamps>,
}

pub(crate) struct Timestamps {
    pub(crate) set: wgpu::QuerySet,
    pub(crate) resolve: wgpu::Buffer,
    /// The kernel of each query pair written since the last read-back.
    pub(crate) keys: Vec<String>,
}

impl Timestamps {
    /// Claims the next (start, end) query pair for `key`; returns its index.
    pub(crate) fn claim_pair(&mut self, key: String) -> u32 {
        self.keys.push(key);
        self.keys.len() as u32 - 1
    }

    /// Every pair of the query set is written: read them back before claiming another.
    pub(crate) fn is_full(&self) -> bool {
        self.keys.len() as u32 == TIMESTAMP_PAIRS
    }
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let timestamps = device.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| Timestamps {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * TIMESTAMP_PAIRS,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel timestamps resolved"),
                size: 16 * TIMESTAMP_PAIRS as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            keys: Vec::new(),
        });
        Profiler { table: HashMap::new(), timestamps }
    }

    pub(crate) fn add(&mut self, key: String, seconds: f64) {
        let e = self.table.entry(key).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += seconds;
    }

    /// Adds the durations of resolved (start, end) tick pairs to the table.
    pub(crate) fn add_ticks(&mut self, keys: Vec<String>, ticks: &[u64], nanoseconds_per_tick: f64) {
        for (key, pair) in keys.into_iter().zip(ticks.chunks_exact(2)) {
            let seconds = pair[1].saturating_sub(pair[0]) as f64 * nanoseconds_per_tick * 1e-9;
            self.add(key, seconds);
        }
    }
}
