//! What a checkpoint keeps besides the networks' weights: optimizer moments, random generators,
//! data positions and any other tensors a model needs to continue bit for bit. A model fills a
//! [`TrainState`] in [`Trainable::save_state`](super::Trainable::save_state) and reads it back
//! in `load_state`; the helpers here give every model the same names and the same errors.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{CheckpointError, HostTensor};
use crate::data::BatchSampler;
use crate::optim::{Optimizer, OptimizerState};
use crate::tensor::Tensor;

/// Named tensors and metadata of a run's training state, with the step they belong to.
pub struct TrainState {
    /// Iterations taken when the state was saved.
    pub step: u64,
    tensors: BTreeMap<String, Vec<f32>>,
    meta: BTreeMap<String, String>,
    /// The file the state was read from (named in errors).
    path: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl TrainState {
    /// An empty state for `step`.
    pub fn new(step: u64) -> Self {
        TrainState { step, tensors: BTreeMap::new(), meta: BTreeMap::new(), path: PathBuf::from("training state") }
    }

    /// A state read from a file's tensors and metadata (the reserved keys already removed).
    pub(crate) fn from_parts(
        step: u64,
        tensors: HashMap<String, HostTensor>,
        meta: HashMap<String, String>,
        path: &Path,
    ) -> Self {
        TrainState {
            step,
            tensors: tensors.into_iter().map(|(k, v)| (k, v.data)).collect(),
            meta: meta.into_iter().collect(),
            path: path.to_path_buf(),
        }
    }

    /// Tensors and metadata to write.
    pub(crate) fn parts(&self) -> (Vec<(String, HostTensor)>, HashMap<String, String>) {
        let tensors = self
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), HostTensor { shape: vec![v.len()], data: v.clone() }))
            .collect();
        (tensors, self.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// An error that names the state's file and the problem.
    pub fn error(&self, problem: impl Into<String>) -> CheckpointError {
        CheckpointError::Invalid { path: self.path.clone(), problem: problem.into() }
    }

    /// Stores a value (a number, a word) under `key`.
    pub fn put(&mut self, key: &str, value: impl ToString) {
        self.meta.insert(key.to_string(), value.to_string());
    }

    /// Whether a value was stored under `key`.
    pub fn has(&self, key: &str) -> bool {
        self.meta.contains_key(key)
    }

    /// The value stored under `key`, parsed.
    pub fn get<T: std::str::FromStr>(&self, key: &str) -> Result<T, CheckpointError> {
        let raw = self.meta.get(key).ok_or_else(|| self.error(format!("no '{key}' in the training state")))?;
        raw.parse().map_err(|_| self.error(format!("'{key}' = '{raw}' is not a valid value")))
    }

    /// Stores host values under `name`.
    pub fn put_values(&mut self, name: &str, values: Vec<f32>) {
        self.tensors.insert(name.to_string(), values);
    }

    /// The values stored under `name`; `len` checks their count.
    pub fn values(&self, name: &str, len: Option<usize>) -> Result<&[f32], CheckpointError> {
        let v =
            self.tensors.get(name).ok_or_else(|| self.error(format!("no tensor '{name}' in the training state")))?;
        match len {
            Some(n) if n != v.len() => Err(self.error(format!("'{name}' holds {} values, expected {n}", v.len()))),
            _ => Ok(v),
        }
    }

    /// Stores device tensors as `name.0`, `name.1`, ... with their count.
    pub fn put_tensors(&mut self, name: &str, tensors: &[Tensor]) {
        self.put(&format!("{name}.count"), tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            self.put_values(&format!("{name}.{i}"), t.to_vec());
        }
    }

    /// Overwrites `tensors` with the values stored by [`put_tensors`](Self::put_tensors).
    pub fn load_tensors(&self, name: &str, tensors: &[Tensor]) -> Result<(), CheckpointError> {
        let count: usize = self.get(&format!("{name}.count"))?;
        if count != tensors.len() {
            return Err(self.error(format!("'{name}' holds {count} tensors, the model has {}", tensors.len())));
        }
        for (i, t) in tensors.iter().enumerate() {
            t.assign(self.values(&format!("{name}.{i}"), Some(t.numel()))?);
        }
        Ok(())
    }

    /// Stores an optimizer's moments and step count under `name`.
    pub fn put_optimizer(&mut self, name: &str, opt: &dyn Optimizer) {
        let s = opt.state();
        self.put(&format!("{name}.step"), s.step);
        for (k, data) in s.tensors {
            self.put_values(&format!("{name}.{k}"), data);
        }
    }

    /// Restores an optimizer saved by [`put_optimizer`](Self::put_optimizer) for `params`.
    pub fn load_optimizer(
        &self,
        name: &str,
        opt: &mut dyn Optimizer,
        params: &[Tensor],
    ) -> Result<(), CheckpointError> {
        let prefix = format!("{name}.");
        let tensors = self
            .tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|n| (n.to_string(), v.clone())))
            .collect();
        let state = OptimizerState { step: self.get(&format!("{name}.step"))?, tensors };
        opt.load_state(params, &state).map_err(|e| self.error(format!("optimizer '{name}': {e}")))
    }

    /// Stores a random generator's seed and position under `name`.
    pub fn put_rng(&mut self, name: &str, rng: &ChaCha8Rng) {
        self.put(&format!("{name}.seed"), hex(&rng.get_seed()));
        self.put(&format!("{name}.word_pos"), rng.get_word_pos());
    }

    /// The random generator stored under `name`, at its saved position.
    pub fn rng(&self, name: &str) -> Result<ChaCha8Rng, CheckpointError> {
        let key = format!("{name}.seed");
        let seed =
            unhex(&self.get::<String>(&key)?).ok_or_else(|| self.error(format!("'{key}' is not 32 hex bytes")))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_word_pos(self.get(&format!("{name}.word_pos"))?);
        Ok(rng)
    }

    /// Stores a batch sampler's position under `name`.
    pub fn put_sampler(&mut self, name: &str, s: &BatchSampler) {
        self.put(&format!("{name}.seed"), s.seed);
        self.put(&format!("{name}.epoch"), s.epoch);
        self.put(&format!("{name}.cursor"), s.cursor);
    }

    /// The sampler stored under `name`, over a dataset of `len` items.
    pub fn sampler(&self, name: &str, len: usize) -> Result<BatchSampler, CheckpointError> {
        let cursor: usize = self.get(&format!("{name}.cursor"))?;
        if cursor > len {
            return Err(self.error(format!("'{name}' stopped at item {cursor} of a dataset that now has {len}")));
        }
        Ok(BatchSampler::at(len, self.get(&format!("{name}.seed"))?, self.get(&format!("{name}.epoch"))?, cursor))
    }
}
