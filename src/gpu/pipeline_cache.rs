//! wgpu's pipeline cache kept on disk, so a second run skips shader compilation on drivers
//! without a disk cache of their own (Mesa's drivers, lavapipe among them, have one; wgpu
//! offers the cache on Vulkan). A missing, unreadable or stale file only costs a cold start:
//! the driver validates the data and wgpu falls back to an empty cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct DiskPipelineCache {
    pub(crate) cache: wgpu::PipelineCache,
    path: PathBuf,
    /// New pipelines were compiled since the file was last written.
    dirty: AtomicBool,
}

/// Where caches live: `SHADERGAN_PIPELINE_CACHE_DIR`, else `$XDG_CACHE_HOME/shadergan`, else
/// `~/.cache/shadergan`; `SHADERGAN_PIPELINE_CACHE_DIR=off` turns the cache off.
pub(crate) fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("SHADERGAN_PIPELINE_CACHE_DIR") {
        Some(dir) if dir == "off" => None,
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => user_cache_home().map(|base| base.join("shadergan")),
    }
}

/// The user's cache folder: `$XDG_CACHE_HOME`, else `~/.cache`.
pub(crate) fn user_cache_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
}

impl DiskPipelineCache {
    /// None when the device has no pipeline cache or no folder is configured.
    pub(crate) fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo, dir: Option<&Path>) -> Option<Self> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        // The key names vendor, device and driver; lavapipe reports one device at every vector
        // width (LP_NATIVE_VECTOR_WIDTH), whose pipelines differ, so the subgroup width joins it.
        let key = format!("{}_sg{}", wgpu::util::pipeline_cache_key(info)?, info.subgroup_max_size);
        let path = dir?.join(key);
        let data = std::fs::read(&path).ok();
        log::info!(
            "pipeline cache {} ({})",
            path.display(),
            data.as_ref().map_or("none yet".to_string(), |d| format!("{} bytes", d.len()))
        );
        // SAFETY: the data is what `get_data` wrote for this adapter key; the driver checks
        // its header (vendor, device, driver version) and `fallback` replaces anything it
        // rejects with an empty cache.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("shadergan pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(DiskPipelineCache { cache, path, dirty: AtomicBool::new(false) })
    }

    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the cache if pipelines were added since the last write (atomically: a run that
    /// stops half-way never leaves a torn file). Failing to write only costs the next cold start.
    pub(crate) fn save_if_dirty(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(data) = self.cache.get_data() else { return };
        if let Err(e) = crate::checkpoint::write_atomic(&self.path, &data) {
            log::warn!("could not write the pipeline cache: {e}");
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
