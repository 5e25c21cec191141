//! Checkpoints of a training run: `model.safetensors` (weights, running statistics, config,
//! step) and, separately, `state.safetensors` (optimizer moments, RNG and data positions, fixed
//! noise, historical averages), so a resumed run continues bit for bit.

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::noise::Noise;
use super::{build_networks, GanTrainer};
use crate::checkpoint::{self, CheckpointError, HostTensor};
use crate::config::Config;
use crate::data::BatchSampler;
use crate::gpu::Gpu;
use crate::nn::Sequential;
use crate::optim::{Optimizer, OptimizerState};

/// The `format` metadata of model checkpoints.
pub const MODEL_FORMAT: &str = "shadergan-model-v1";
/// The `format` metadata of training-state checkpoints.
pub const STATE_FORMAT: &str = "shadergan-state-v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn invalid(path: &Path, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid { path: path.to_path_buf(), problem: problem.into() }
}

fn check_format(meta: &HashMap<String, String>, want: &str, path: &Path) -> Result<(), CheckpointError> {
    match meta.get("format") {
        Some(f) if f == want => Ok(()),
        Some(f) => Err(invalid(path, format!("format '{f}', expected '{want}'"))),
        None => Err(invalid(path, format!("not a shadergan file (no format in metadata; expected '{want}')"))),
    }
}

fn flat(name: String, data: Vec<f32>) -> (String, HostTensor) {
    (name, HostTensor { shape: vec![data.len()], data })
}

impl GanTrainer {
    /// G's and D's tensors with their checkpoint names.
    pub fn model_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut t = checkpoint::export(&self.g, "generator");
        t.extend(checkpoint::export(&self.d, "discriminator"));
        t
    }

    /// Writes `model.safetensors` and `state.safetensors` into `dir`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), MODEL_FORMAT.into());
        meta.insert("model".into(), "dcgan".into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("config".into(), self.config.to_toml());
        checkpoint::save(&dir.join("model.safetensors"), &self.model_tensors(), meta)?;

        let mut tensors = Vec::new();
        for (prefix, state) in [("opt_g", self.opt_g.state()), ("opt_d", self.opt_d.state())] {
            for (name, data) in state.tensors {
                tensors.push(flat(format!("{prefix}.{name}"), data));
            }
        }
        tensors.push(flat("fixed_noise".into(), self.fixed_noise.clone()));
        for (i, h) in self.history.iter().enumerate() {
            tensors.push(flat(format!("history.{i}"), h.to_vec()));
        }
        let (seed, pos) = self.noise.state();
        let mut meta = HashMap::new();
        meta.insert("format".into(), STATE_FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("opt_g_step".into(), self.opt_g.state().step.to_string());
        meta.insert("opt_d_step".into(), self.opt_d.state().step.to_string());
        meta.insert("noise_seed".into(), hex(&seed));
        meta.insert("noise_word_pos".into(), pos.to_string());
        meta.insert("sampler_seed".into(), self.sampler.seed.to_string());
        meta.insert("sampler_epoch".into(), self.sampler.epoch.to_string());
        meta.insert("sampler_cursor".into(), self.sampler.cursor.to_string());
        if let Some((epoch, cursor)) = self.labelled_position() {
            meta.insert("labelled_epoch".into(), epoch.to_string());
            meta.insert("labelled_cursor".into(), cursor.to_string());
        }
        checkpoint::save(&dir.join("state.safetensors"), &tensors, meta)
    }

    /// Continues the run saved in `dir` exactly where it stopped.
    pub fn resume(gpu: &Gpu, config: &Config, dir: &Path, dataset_len: usize) -> Result<GanTrainer, CheckpointError> {
        let mut t = GanTrainer::new(gpu, config, dataset_len);
        let model_path = dir.join("model.safetensors");
        let (tensors, meta) = checkpoint::load(&model_path)?;
        check_format(&meta, MODEL_FORMAT, &model_path)?;
        checkpoint::import(&t.g, "generator", &tensors, &model_path)?;
        checkpoint::import(&t.d, "discriminator", &tensors, &model_path)?;

        let path = dir.join("state.safetensors");
        let (state, meta) = checkpoint::load(&path)?;
        check_format(&meta, STATE_FORMAT, &path)?;
        t.step = checkpoint::meta(&meta, "step", &path)?;
        let (g_params, d_params) = (t.g.parameters(), t.d.parameters());
        for (prefix, opt, params, step_key) in
            [("opt_g", &mut t.opt_g, &g_params, "opt_g_step"), ("opt_d", &mut t.opt_d, &d_params, "opt_d_step")]
        {
            let opt: &mut Box<dyn Optimizer> = opt;
            let tensors = state
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&format!("{prefix}.")).map(|n| (n.to_string(), v.data.clone())))
                .collect();
            let os = OptimizerState { step: checkpoint::meta(&meta, step_key, &path)?, tensors };
            opt.load_state(params, &os).map_err(|e| invalid(&path, e))?;
        }
        t.fixed_noise = state.get("fixed_noise").ok_or_else(|| invalid(&path, "no fixed_noise"))?.data.clone();
        for (i, h) in t.history.iter().enumerate() {
            let saved = state.get(&format!("history.{i}")).ok_or_else(|| invalid(&path, format!("no history.{i}")))?;
            if saved.data.len() != h.numel() {
                return Err(invalid(
                    &path,
                    format!("history.{i} has {} values, expected {}", saved.data.len(), h.numel()),
                ));
            }
            h.assign(&saved.data);
        }
        let seed_hex: String = checkpoint::meta(&meta, "noise_seed", &path)?;
        let seed = unhex(&seed_hex).ok_or_else(|| invalid(&path, "noise_seed is not 32 hex bytes"))?;
        t.noise = Noise::restore(config.train.noise, seed, checkpoint::meta(&meta, "noise_word_pos", &path)?);
        t.sampler = BatchSampler::at(
            dataset_len,
            checkpoint::meta(&meta, "sampler_seed", &path)?,
            checkpoint::meta(&meta, "sampler_epoch", &path)?,
            checkpoint::meta(&meta, "sampler_cursor", &path)?,
        );
        if meta.contains_key("labelled_epoch") {
            t.pending_labelled_position = Some((
                checkpoint::meta(&meta, "labelled_epoch", &path)?,
                checkpoint::meta(&meta, "labelled_cursor", &path)?,
            ));
        }
        Ok(t)
    }
}

/// A generator rebuilt from a model checkpoint (its config is in the metadata).
pub fn load_generator(gpu: &Gpu, path: &Path) -> Result<(Config, Sequential), CheckpointError> {
    let (tensors, meta) = checkpoint::load(path)?;
    check_format(&meta, MODEL_FORMAT, path)?;
    let text: String = checkpoint::meta(&meta, "config", path)?;
    let config = Config::parse(&text, path).map_err(|e| invalid(path, format!("embedded config: {e}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (g, _) = build_networks(gpu, &config, &mut rng);
    checkpoint::import(&g, "generator", &tensors, path)?;
    Ok((config, g))
}
