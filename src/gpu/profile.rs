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

impl super::Gpu {
    /// Resolves the timestamps written so far and adds their durations to the table.
    pub(super) fn read_timestamps(&self, profiler: &mut Profiler) {
        let Some(ts) = profiler.timestamps.as_mut() else { return };
        if ts.keys.is_empty() {
            return;
        }
        let pairs = ts.keys.len() as u32;
        {
            let mut rec = self.0.recorder.lock().unwrap();
            rec.pass = None;
            rec.encoder_mut(&self.0.device).resolve_query_set(&ts.set, 0..2 * pairs, &ts.resolve, 0);
        }
        let bytes = self.read_raw(&ts.resolve, 16 * pairs as u64);
        let ticks: Vec<u64> = bytemuck::cast_slice::<u8, u64>(&bytes).to_vec();
        let keys = std::mem::take(&mut ts.keys);
        profiler.add_ticks(keys, &ticks, self.0.queue.get_timestamp_period() as f64);
    }

    /// Starts timing every dispatch (see `profile_report`).
    pub fn profile_start(&self) {
        self.synchronize();
        *self.0.profile.lock().unwrap() = Some(Profiler::new(&self.0.device));
    }

    /// Whether profiles come from device timestamps (else from waiting for each dispatch).
    pub fn profile_uses_timestamps(&self) -> bool {
        self.0.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Stops profiling; returns (kernel, dispatch count, seconds), slowest first.
    pub fn profile_report(&self) -> Vec<(String, u64, f64)> {
        let mut profile = self.0.profile.lock().unwrap();
        if let Some(p) = profile.as_mut() {
            self.read_timestamps(p);
        }
        let table = profile.take().map(|p| p.table).unwrap_or_default();
        let mut rows: Vec<(String, u64, f64)> = table.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        rows
    }
}
