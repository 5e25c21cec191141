//! Adapter selection and device creation.

use std::sync::Arc;

use super::pipeline_cache::DiskPipelineCache;
use super::{GpuError, GpuInner};

/// How to pick the adapter. `Default` reads `SHADERGAN_ADAPTER` (substring of the adapter name)
/// and `SHADERGAN_CPU=1` (force the software adapter) so library users get the CLI's switches.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub adapter_name: Option<String>,
    pub force_cpu: bool,
    /// Use only kernels that run on any adapter (no subgroup-specialised variants):
    /// `SHADERGAN_PORTABLE_KERNELS=1`.
    pub portable_kernels: bool,
    /// Read every operand from storage buffers, never from texture copies (for comparisons,
    /// or a driver whose textures misbehave): `SHADERGAN_NO_TEXTURES=1`.
    pub no_texture_operands: bool,
    /// Run every convolution through an explicit patch matrix (im2col / col2im around the
    /// matmul), never as implicit GEMM (for comparisons): `SHADERGAN_PATCH_MATRIX_CONVS=1`.
    pub patch_matrix_convs: bool,
    /// Folder of the on-disk pipeline cache (None: no cache); see `pipeline_cache::default_dir`.
    pub pipeline_cache_dir: Option<std::path::PathBuf>,
}

impl GpuOptions {
    pub fn from_env() -> Self {
        let adapter_name = std::env::var("SHADERGAN_ADAPTER").ok().filter(|s| !s.is_empty());
        let force_cpu = matches!(std::env::var("SHADERGAN_CPU").as_deref(), Ok("1") | Ok("true") | Ok("yes"));
        let portable_kernels = matches!(std::env::var("SHADERGAN_PORTABLE_KERNELS").as_deref(), Ok("1") | Ok("true"));
        let no_texture_operands = matches!(std::env::var("SHADERGAN_NO_TEXTURES").as_deref(), Ok("1") | Ok("true"));
        let patch_matrix_convs =
            matches!(std::env::var("SHADERGAN_PATCH_MATRIX_CONVS").as_deref(), Ok("1") | Ok("true"));
        let pipeline_cache_dir = super::pipeline_cache::default_dir();
        GpuOptions {
            adapter_name,
            force_cpu,
            portable_kernels,
            no_texture_operands,
            patch_matrix_convs,
            pipeline_cache_dir,
        }
    }
}

/// One line describing an adapter, as `shadergan info` prints it.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

fn rank(device_type: wgpu::DeviceType) -> u32 {
    // A real GPU wins by default: the high-performance preference of the issue.
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter on the native backends; the GL fallback only when none is found there.
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    let native = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let adapters = pollster::block_on(new_instance(native).enumerate_adapters(native));
    if !adapters.is_empty() {
        return adapters;
    }
    let gl = pollster::block_on(new_instance(wgpu::Backends::GL).enumerate_adapters(wgpu::Backends::GL));
    if !gl.is_empty() {
        log::warn!("no Vulkan/Metal/DX12 adapter found; falling back to OpenGL");
    }
    gl
}

pub fn choose_adapter(options: &GpuOptions) -> Result<wgpu::Adapter, GpuError> {
    let adapters = list_adapters();
    let names: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .into_iter()
        .filter(|a| {
            let info = a.get_info();
            let name_ok = options
                .adapter_name
                .as_ref()
                .is_none_or(|want| info.name.to_lowercase().contains(&want.to_lowercase()));
            let cpu_ok = !options.force_cpu || info.device_type == wgpu::DeviceType::Cpu;
            name_ok && cpu_ok
        })
        .collect();
    if candidates.is_empty() {
        return Err(if names.is_empty() {
            GpuError::NoAdapter
        } else {
            GpuError::NoMatchingAdapter {
                wanted: match (&options.adapter_name, options.force_cpu) {
                    (Some(n), true) => format!("a CPU adapter named like '{n}'"),
                    (Some(n), false) => format!("an adapter named like '{n}'"),
                    (None, _) => "a CPU (software) adapter".to_string(),
                },
                found: names.join(", "),
            }
        });
    }
    candidates.sort_by_key(|a| rank(a.get_info().device_type));
    Ok(candidates.swap_remove(0))
}

pub fn create(options: &GpuOptions) -> Result<Arc<GpuInner>, GpuError> {
    let adapter = choose_adapter(options)?;
    let info = adapter.get_info();
    log::info!("using adapter {}", describe(&info));
    let limits = adapter.limits();
    let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP | wgpu::Features::PIPELINE_CACHE;
    let features = adapter.features() & wanted;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("shadergan"),
        required_features: features,
        required_limits: limits.clone(),
        ..Default::default()
    }))
    .map_err(|e| GpuError::Device(e.to_string()))?;
    let pipeline_cache = DiskPipelineCache::open(&device, &info, options.pipeline_cache_dir.as_deref());
    Ok(Arc::new(GpuInner::new(device, queue, info, limits, options, pipeline_cache)))
}
