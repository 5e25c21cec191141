//! A run's checkpoint as one consistent unit: `model.safetensors` (every network's weights under
//! its name, PyTorch-loadable), `state.safetensors` (the [`TrainState`]) and `checkpoint.toml`,
//! the manifest naming the step and each file's size and CRC-32.
//!
//! A save writes both files completely under `.new` names, then the manifest (the commit
//! point), then renames the `.new` files into place. A kill or a full disk before the manifest
//! leaves the previous checkpoint, whose files still match their manifest (the `.new` files are
//! dropped); a kill after it leaves `.new` files that match the new manifest, and the next load
//! finishes the renames. Files that match neither are a torn or changed checkpoint: refused.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{TrainState, Trainable};
use crate::checkpoint::{self, CheckpointError};
use crate::nn::Module;

/// The `format` metadata of model checkpoints (weights of every network, config, step).
pub const MODEL_FORMAT: &str = "shadergan-model-v1";
/// The `format` metadata of training-state checkpoints.
pub const STATE_FORMAT: &str = "shadergan-state-v1";
/// The manifest's name in a run folder.
pub const MANIFEST: &str = "checkpoint.toml";
const MANIFEST_FORMAT: &str = "shadergan-checkpoint-v1";
const MODEL_FILE: &str = "model.safetensors";
const STATE_FILE: &str = "state.safetensors";

/// Config keys a resumed run may change: how long it runs, how often it writes and evaluates,
/// and how images are read (the batches are the same either way).
const RESUMABLE_KEYS: [&str; 6] = [
    "train.steps",
    "train.sample_every",
    "train.checkpoint_every",
    "data.streaming",
    "data.prefetch",
    "data.decode_threads",
];

#[derive(Serialize, Deserialize)]
struct FileEntry {
    bytes: u64,
    crc32: String,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    model: String,
    step: u64,
    files: BTreeMap<String, FileEntry>,
}

fn invalid(path: &Path, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid { path: path.to_path_buf(), problem: problem.into() }
}

/// The size and CRC-32 of `bytes`, as the manifest records them.
fn digest(bytes: &[u8]) -> FileEntry {
    FileEntry { bytes: bytes.len() as u64, crc32: format!("{:08x}", crc32fast::hash(bytes)) }
}

/// A file's size and CRC-32 as found on disk.
fn entry(path: &Path) -> Result<FileEntry, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    Ok(digest(&bytes))
}

/// Whether `dir` holds a checkpoint (its manifest).
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// Every network of `model` under `name.` as host tensors: what model.safetensors holds.
pub fn network_tensors<M: Trainable + ?Sized>(model: &M) -> Vec<(String, checkpoint::HostTensor)> {
    model.networks().into_iter().flat_map(|(name, net)| checkpoint::export(net, name)).collect()
}

/// Refuses to write tensors holding a NaN or an infinity (`path` names the file in the error).
fn check_finite<'a>(
    tensors: impl IntoIterator<Item = &'a (String, checkpoint::HostTensor)>,
    step: u64,
    path: &Path,
) -> Result<(), CheckpointError> {
    let all = tensors.into_iter().map(|(n, t)| (n.as_str(), t.data.as_slice()));
    match checkpoint::first_non_finite(all) {
        Some(name) => Err(invalid(
            path,
            format!(
                "refusing to write step {step}: '{name}' holds NaN or infinite values (the run diverged; \
                 the previous checkpoint is kept; try a lower learning rate or a smaller penalty weight)"
            ),
        )),
        None => Ok(()),
    }
}

/// model.safetensors' metadata: its format, the model's kind, the step and the config.
fn model_metadata<M: Trainable + ?Sized>(model: &M) -> HashMap<String, String> {
    HashMap::from([
        ("format".into(), MODEL_FORMAT.into()),
        ("model".into(), model.kind().to_string()),
        ("step".into(), model.steps_done().to_string()),
        ("config".into(), model.config_toml()),
    ])
}

/// The bytes of `model`'s model.safetensors, read without blocking (a browser's download):
/// the same file a run folder holds, which `shadergan sample` loads.
pub async fn model_file_async<M: Trainable + ?Sized>(model: &M) -> Result<Vec<u8>, CheckpointError> {
    let mut networks = Vec::new();
    for (name, net) in model.networks() {
        networks.extend(checkpoint::export_async(net, name).await);
    }
    let path = Path::new(MODEL_FILE);
    check_finite(&networks, model.steps_done(), path)?;
    checkpoint::serialize(path, &networks, model_metadata(model))
}

/// Writes `model`'s checkpoint into `dir`: weights, training state, then the manifest.
pub fn save_checkpoint<M: Trainable + ?Sized>(model: &M, dir: &Path) -> Result<(), CheckpointError> {
    let step = model.steps_done();
    let networks = network_tensors(model);
    let mut state = TrainState::new(step);
    model.save_state(&mut state);
    let (state_tensors, mut state_meta) = state.parts();
    check_finite(networks.iter().chain(&state_tensors), step, &dir.join(MANIFEST))?;
    let model_bytes = checkpoint::serialize(&dir.join(MODEL_FILE), &networks, model_metadata(model))?;
    state_meta.insert("format".into(), STATE_FORMAT.into());
    state_meta.insert("step".into(), step.to_string());
    let state_bytes = checkpoint::serialize(&dir.join(STATE_FILE), &state_tensors, state_meta)?;

    let mut files = BTreeMap::new();
    for (name, bytes) in [(MODEL_FILE, &model_bytes), (STATE_FILE, &state_bytes)] {
        files.insert(name.to_string(), digest(bytes));
    }
    let manifest = Manifest { format: MANIFEST_FORMAT.into(), model: model.kind().to_string(), step, files };
    let text = toml::to_string(&manifest).map_err(|e| invalid(&dir.join(MANIFEST), e.to_string()))?;
    // Everything is on disk under temporary names before any real name changes: a full disk
    // or a kill while writing leaves the previous checkpoint whole. The renames need no space;
    // a kill between them leaves files the previous manifest's checksums reject.
    let written = (|| {
        for (name, bytes) in [(MODEL_FILE, &model_bytes), (STATE_FILE, &state_bytes)] {
            checkpoint::write_atomic(&pending(dir, name), bytes)?;
        }
        checkpoint::write_atomic(&dir.join(MANIFEST), text.as_bytes())
    })();
    if written.is_err() {
        discard_pending(dir);
        return written;
    }
    finish_pending(dir, &manifest)
}

/// Where a file of a checkpoint being saved waits for its manifest.
fn pending(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.new"))
}

fn discard_pending(dir: &Path) {
    for name in [MODEL_FILE, STATE_FILE] {
        let _ = std::fs::remove_file(pending(dir, name));
    }
}

/// Puts each `.new` file that matches `manifest` in place and drops the others (the remains of
/// a save that never reached its manifest).
fn finish_pending(dir: &Path, manifest: &Manifest) -> Result<(), CheckpointError> {
    for name in [STATE_FILE, MODEL_FILE] {
        let path = pending(dir, name);
        if !path.exists() {
            continue;
        }
        let matches = manifest
            .files
            .get(name)
            .is_some_and(|want| entry(&path).is_ok_and(|got| (got.bytes, &got.crc32) == (want.bytes, &want.crc32)));
        if matches {
            std::fs::rename(&path, dir.join(name))
                .map_err(|source| CheckpointError::Io { path: dir.join(name), source })?;
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// Loads the checkpoint in `dir` into `model`, which must be built as it was: same kind, same
/// networks, same config (except the keys a resumed run may change). Refuses a torn pair, a
/// changed file and a changed config, each with what was found.
pub fn restore_checkpoint<M: Trainable + ?Sized>(model: &mut M, dir: &Path) -> Result<(), CheckpointError> {
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(invalid(
            &manifest_path,
            "no checkpoint here: the manifest is missing (a run that never reached its first checkpoint, or not a run folder)",
        ));
    }
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|source| CheckpointError::Io { path: manifest_path.clone(), source })?;
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| invalid(&manifest_path, format!("not a checkpoint manifest ({e})")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(invalid(&manifest_path, format!("format '{}', expected '{MANIFEST_FORMAT}'", manifest.format)));
    }
    finish_pending(dir, &manifest)?;
    if manifest.model != model.kind() {
        return Err(invalid(
            &manifest_path,
            format!("holds a '{}' run; this model is '{}'", manifest.model, model.kind()),
        ));
    }
    // Each file is read once: checked against the manifest, then parsed from the same bytes.
    let mut verified = Vec::new();
    for name in [MODEL_FILE, STATE_FILE] {
        let path = dir.join(name);
        let want = manifest.files.get(name).ok_or_else(|| invalid(&manifest_path, format!("names no {name}")))?;
        let bytes = std::fs::read(&path).map_err(|source| CheckpointError::Io { path: path.clone(), source })?;
        let got = digest(&bytes);
        if (got.bytes, &got.crc32) != (want.bytes, &want.crc32) {
            return Err(invalid(
                &path,
                format!(
                    "does not match the manifest of step {} ({} bytes, CRC {} written; {} bytes, CRC {} found): \
                     the checkpoint was torn or changed; restore the folder from a backup or start a new run",
                    manifest.step, want.bytes, want.crc32, got.bytes, got.crc32
                ),
            ));
        }
        verified.push(bytes);
    }
    let state_bytes = verified.pop().expect("two files read");
    let model_bytes = verified.pop().expect("two files read");

    let model_path = dir.join(MODEL_FILE);
    let (tensors, meta) = checkpoint::parse(&model_bytes, &model_path)?;
    check_format(&meta, MODEL_FORMAT, &model_path)?;
    check_step(&meta, manifest.step, &model_path)?;
    if let Some(saved) = meta.get("config") {
        check_same_config(saved, &model.config_toml(), &model_path)?;
    }
    for (name, net) in model.networks() {
        checkpoint::import(net, name, &tensors, &model_path)?;
    }

    let state_path = dir.join(STATE_FILE);
    let (tensors, mut meta) = checkpoint::parse(&state_bytes, &state_path)?;
    check_format(&meta, STATE_FORMAT, &state_path)?;
    check_step(&meta, manifest.step, &state_path)?;
    meta.remove("format");
    meta.remove("step");
    if let Some(name) = checkpoint::first_non_finite(tensors.iter().map(|(n, t)| (n.as_str(), t.data.as_slice()))) {
        return Err(invalid(&state_path, format!("'{name}' holds NaN or infinite values; use an earlier checkpoint")));
    }
    model.load_state(&TrainState::from_parts(manifest.step, tensors, meta, &state_path))
}

fn check_format(meta: &HashMap<String, String>, want: &str, path: &Path) -> Result<(), CheckpointError> {
    match meta.get("format") {
        Some(f) if f == want => Ok(()),
        Some(f) => Err(invalid(path, format!("format '{f}', expected '{want}'"))),
        None => Err(invalid(path, format!("not a shadergan file (no format in metadata; expected '{want}')"))),
    }
}

fn check_step(meta: &HashMap<String, String>, want: u64, path: &Path) -> Result<(), CheckpointError> {
    let step: u64 = checkpoint::meta(meta, "step", path)?;
    if step != want {
        return Err(invalid(path, format!("is from step {step} but the manifest names step {want}")));
    }
    Ok(())
}

/// Every leaf of a TOML table as `section.key = value`.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

/// Refuses to resume under a config that changes what the run computes, naming the first key.
pub fn check_same_config(saved: &str, now: &str, path: &Path) -> Result<(), CheckpointError> {
    let parse = |text: &str| -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Ok(t) = text.parse::<toml::Table>() {
            flatten("", &t, &mut out);
        }
        out
    };
    let (saved, now) = (parse(saved), parse(now));
    let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    for key in keys {
        if RESUMABLE_KEYS.contains(&key.as_str()) || key.starts_with("eval.") {
            continue;
        }
        let (a, b) = (saved.get(key), now.get(key));
        if a != b {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
            return Err(invalid(
                path,
                format!(
                    "config key {key} is {} in the checkpoint but {} now; resume with the run's own config.toml \
                     (only {} may change) or start a new --out",
                    show(a),
                    show(b),
                    RESUMABLE_KEYS.join(", ") + " and the [eval] section"
                ),
            ));
        }
    }
    Ok(())
}

/// Loads named networks' weights from a model checkpoint file, e.g. a generator alone for
/// sampling; returns the file's metadata (config, step, model kind).
pub fn load_networks(
    path: &Path,
    networks: &[(&str, &dyn Module)],
) -> Result<HashMap<String, String>, CheckpointError> {
    let (tensors, meta) = checkpoint::load(path)?;
    check_format(&meta, MODEL_FORMAT, path)?;
    for (name, net) in networks {
        checkpoint::import(*net, name, &tensors, path)?;
    }
    Ok(meta)
}

/// The model's networks and `state` as one safetensors blob: what rank 0 sends the other ranks
/// so they start where it does.
pub(crate) fn snapshot<M: Trainable + ?Sized>(model: &M, state: &TrainState) -> Result<Vec<u8>, CheckpointError> {
    let mut tensors = network_tensors(model);
    let (state_tensors, mut meta) = state.parts();
    tensors.extend(state_tensors.into_iter().map(|(k, v)| (format!("{SNAPSHOT_STATE}{k}"), v)));
    meta.insert("step".into(), state.step.to_string());
    checkpoint::serialize(Path::new("snapshot"), &tensors, meta)
}

/// Loads a [`snapshot`] into `model`.
pub(crate) fn restore_snapshot<M: Trainable + ?Sized>(model: &mut M, bytes: &[u8]) -> Result<(), CheckpointError> {
    let path = Path::new("rank 0's snapshot");
    let (mut tensors, mut meta) = checkpoint::parse(bytes, path)?;
    for (name, net) in model.networks() {
        checkpoint::import(net, name, &tensors, path)?;
    }
    let step: u64 = checkpoint::meta(&meta, "step", path)?;
    meta.remove("step");
    let state =
        tensors.drain().filter_map(|(k, v)| k.strip_prefix(SNAPSHOT_STATE).map(|n| (n.to_string(), v))).collect();
    model.load_state(&TrainState::from_parts(step, state, meta, path))
}

/// The prefix of the training state's tensors in a snapshot.
const SNAPSHOT_STATE: &str = "state/";
