//! Safetensors files written atomically (temp file + rename), readable by PyTorch's
//! `safetensors.torch.load_file`. Model weights and training state are separate files.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::nn::Module;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not what was expected.
    #[error("checkpoint {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what would be accepted.
        problem: String,
    },
}

fn invalid(path: &Path, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid { path: path.to_path_buf(), problem: problem.into() }
}

/// One named tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The extents.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// PyTorch keeps `num_batches_tracked` as int64; everything else here is f32.
fn is_integer_buffer(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// A file written under a temporary name in its folder, put in place by `Staged::commit`
/// (a rename, which needs no space and is atomic) or removed when dropped uncommitted.
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

/// Writes `bytes` to a temporary file beside `path`, flushed to disk. The temporary name is
/// unique to the process and call, so concurrent writers of one file (a shared pipeline cache,
/// say) never rename each other's half-written data into place: the last complete write wins.
fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, CheckpointError> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    let call = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tmp.push(format!(".{}-{call}.tmp", std::process::id()));
    let staged = Staged { tmp: PathBuf::from(tmp), path: path.to_path_buf(), committed: false };
    std::fs::File::create(&staged.tmp).and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all())).map_err(io)?;
    Ok(staged)
}

impl Staged {
    /// Puts the file in place under its real name.
    fn commit(mut self) -> Result<(), CheckpointError> {
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|source| CheckpointError::Io { path: self.path.clone(), source })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so a crash never
/// leaves a half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    stage(path, bytes)?.commit()
}

/// Writes `tensors` and `metadata` to `path` as safetensors, atomically (temp file + rename).
pub fn save(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    write_atomic(path, &serialize(path, tensors, metadata)?)
}

/// `tensors` and `metadata` as safetensors bytes (`path` names the file in errors).
pub fn serialize(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            if is_integer_buffer(name) {
                // A 0-d int64, exactly PyTorch's buffer, so load_state_dict(strict=True) accepts it.
                let ints: Vec<i64> = t.data.iter().map(|&v| v.round() as i64).collect();
                let shape = if ints.len() == 1 { vec![] } else { t.shape.clone() };
                (name.clone(), bytemuck::cast_slice(&ints).to_vec(), Dtype::I64, shape)
            } else {
                (name.clone(), bytemuck::cast_slice(&t.data).to_vec(), Dtype::F32, t.shape.clone())
            }
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, b, d, s)| {
            Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(|e| invalid(path, e.to_string()))?))
        })
        .collect::<Result<_, CheckpointError>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| invalid(path, e.to_string()))
}

/// A file's tensors by name, and its metadata.
pub type Loaded = (HashMap<String, HostTensor>, HashMap<String, String>);

/// Reads a safetensors file, checking every tensor's shape against its data.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    parse(&read_file(path)?, path)
}

/// A checkpoint file's bytes, or an error naming the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    if !path.exists() {
        return Err(invalid(path, "no such file"));
    }
    std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
}

/// Safetensors bytes read as [`load`] reads a file (`path` names them in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded, CheckpointError> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| invalid(path, format!("not a valid safetensors file ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(path, e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::I64 => {
                view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
            }
            other => {
                return Err(invalid(path, format!("tensor '{name}' has dtype {other:?}; only F32 and I64 are read")))
            }
        };
        out.insert(name, HostTensor { shape: view.shape().to_vec(), data });
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Every tensor of `net` (parameters and buffers) under `prefix.`.
pub fn export(net: &dyn Module, prefix: &str) -> Vec<(String, HostTensor)> {
    net.named_tensors()
        .into_iter()
        .map(|(name, t, _)| (format!("{prefix}.{name}"), HostTensor { shape: t.shape().to_vec(), data: t.to_vec() }))
        .collect()
}

/// [`export`] without blocking (the browser's way): every tensor's read starts before any is
/// awaited.
pub async fn export_async(net: &dyn Module, prefix: &str) -> Vec<(String, HostTensor)> {
    let reads: Vec<_> = net
        .named_tensors()
        .into_iter()
        .map(|(name, t, _)| (format!("{prefix}.{name}"), t.shape().to_vec(), t.to_vec_later()))
        .collect();
    let mut out = Vec::with_capacity(reads.len());
    for (name, shape, values) in reads {
        out.push((name, HostTensor { shape, data: values.await }));
    }
    out
}

/// Loads `net`'s tensors from `tensors`, checking that every one is present with its shape.
pub fn import(
    net: &dyn Module,
    prefix: &str,
    tensors: &HashMap<String, HostTensor>,
    path: &Path,
) -> Result<(), CheckpointError> {
    for (name, t, _) in net.named_tensors() {
        let key = format!("{prefix}.{name}");
        let found = tensors
            .get(&key)
            .ok_or_else(|| invalid(path, format!("missing tensor '{key}' (was it saved from another model?)")))?;
        let shape_ok = found.shape == t.shape() || (found.shape.iter().product::<usize>() == 1 && t.numel() == 1);
        if !shape_ok {
            return Err(invalid(
                path,
                format!("tensor '{key}' has shape {:?}, the model needs {:?}", found.shape, t.shape()),
            ));
        }
        if found.data.iter().any(|v| !v.is_finite()) {
            return Err(invalid(
                path,
                format!("tensor '{key}' holds NaN or infinite values (saved from a diverged run, or damaged); use an earlier checkpoint"),
            ));
        }
        t.assign(&found.data);
    }
    Ok(())
}

/// The name of the first tensor holding a NaN or an infinity.
pub fn first_non_finite<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [f32])>) -> Option<&'a str> {
    tensors.into_iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())).map(|(n, _)| n)
}

/// A metadata value parsed, or an error naming the key.
pub fn meta<T: std::str::FromStr>(
    meta: &HashMap<String, String>,
    key: &str,
    path: &Path,
) -> Result<T, CheckpointError> {
    let raw = meta.get(key).ok_or_else(|| invalid(path, format!("metadata has no '{key}'")))?;
    raw.parse().map_err(|_| invalid(path, format!("metadata '{key}' = '{raw}' is not valid")))
}
