//! Adapter selection and device creation.

use std::sync::Arc;

use super::kernel_path::KernelSwitches;
use super::pipeline_cache::DiskPipelineCache;
use super::{GpuError, GpuInner};

/// How to pick the adapter and its kernels. `from_env` reads `SHADERGAN_ADAPTER` (substring of
/// the adapter name), `SHADERGAN_CPU=1` (force the software adapter), `SHADERGAN_KERNELS`
/// (see [`KernelSwitches`]) and `SHADERGAN_LIMITS` (`webgpu` or `adapter`) so library users get
/// the CLI's switches.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use the first adapter whose name contains this (case-insensitive).
    pub adapter_name: Option<String>,
    /// Use only the software (CPU) adapter.
    pub force_cpu: bool,
    /// Switches that override the automatic kernel choice (`choose_kernel_path`).
    pub kernels: KernelSwitches,
    /// Folder of the on-disk pipeline cache (None: no cache); see `pipeline_cache::default_dir`.
    pub pipeline_cache_dir: Option<std::path::PathBuf>,
    /// Ask for no more than WebGPU's default limits (`SHADERGAN_LIMITS=webgpu`): what every
    /// browser offers (128 MiB per storage binding, 8 storage buffers per stage, 256
    /// invocations and 16 KiB of memory per workgroup). A model that trains under them trains in
    /// any browser with WebGPU; false: every limit the adapter has.
    pub webgpu_limits: bool,
}

/// The parsed value, or the default with the error logged.
fn logged_or_default<T: Default>(parsed: Result<T, String>) -> T {
    parsed.unwrap_or_else(|e| {
        log::warn!("{e}");
        T::default()
    })
}

/// The words `SHADERGAN_LIMITS` accepts: whether to request WebGPU's default limits.
fn parse_limits(text: &str) -> Result<bool, String> {
    match text.trim() {
        "" | "adapter" => Ok(false),
        "webgpu" => Ok(true),
        other => Err(format!(
            "SHADERGAN_LIMITS: unknown value '{other}'; accepted: adapter (every limit the adapter has, \
             the default) or webgpu (WebGPU's default limits, as in any browser)"
        )),
    }
}

impl GpuOptions {
    /// The options the environment asks for; an invalid `SHADERGAN_KERNELS` is an error that
    /// lists the accepted words.
    pub fn try_from_env() -> Result<Self, GpuError> {
        let kernels = KernelSwitches::parse(&std::env::var("SHADERGAN_KERNELS").unwrap_or_default());
        let webgpu_limits = parse_limits(&std::env::var("SHADERGAN_LIMITS").unwrap_or_default());
        Ok(Self::from_env_with(kernels.map_err(GpuError::Options)?, webgpu_limits.map_err(GpuError::Options)?))
    }

    /// As `try_from_env`, with an invalid `SHADERGAN_KERNELS` or `SHADERGAN_LIMITS` logged and
    /// ignored (for tests and benches, whose own options override it).
    pub fn from_env() -> Self {
        let kernels = KernelSwitches::parse(&std::env::var("SHADERGAN_KERNELS").unwrap_or_default());
        let webgpu_limits = parse_limits(&std::env::var("SHADERGAN_LIMITS").unwrap_or_default());
        Self::from_env_with(logged_or_default(kernels), logged_or_default(webgpu_limits))
    }

    fn from_env_with(kernels: KernelSwitches, webgpu_limits: bool) -> Self {
        GpuOptions {
            webgpu_limits,
            adapter_name: std::env::var("SHADERGAN_ADAPTER").ok().filter(|s| !s.is_empty()),
            force_cpu: matches!(std::env::var("SHADERGAN_CPU").as_deref(), Ok("1") | Ok("true") | Ok("yes")),
            kernels,
            pipeline_cache_dir: super::pipeline_cache::default_dir(),
        }
    }
}

/// One line describing an adapter, as `shadergan info` prints it.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    // Browsers may withhold the name (Chrome does); the device type still says whether the
    // adapter is the browser's software fallback (Cpu).
    let name = if info.name.is_empty() { "unnamed adapter" } else { &info.name };
    format!("{name} ({:?}, {:?})", info.backend, info.device_type)
}

#[cfg(not(target_arch = "wasm32"))]
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
    prepare_driver_environment();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Sets the driver switches shadergan relies on, in the process environment, before the first
/// Vulkan instance reads them; every instance shadergan creates calls it first. Code that makes
/// its own wgpu instance beside shadergan's should call it before that: see
/// `quiet_device_select_layer` and `separate_mesa_cache_per_vector_width`. A variable the user
/// set is left as it is.
pub fn prepare_driver_environment() {
    // A browser has no process environment, and its WebGPU chooses the driver itself.
    if cfg!(target_arch = "wasm32") {
        return;
    }
    quiet_device_select_layer();
    wide_vectors_on_avx512();
    separate_mesa_cache_per_vector_width();
}

/// llvmpipe compiles for 256-bit vectors unless `LP_NATIVE_VECTOR_WIDTH` says otherwise, even on
/// a CPU with AVX-512, where the kernels run faster at 512 bits: 16-wide subgroups, in which
/// pairs of groups share B's loads (BENCHMARKS.md). There a run that does not name a width
/// gets 512 bits.
fn wide_vectors_on_avx512() {
    if let Some(width) = default_vector_width(std::env::var_os("LP_NATIVE_VECTOR_WIDTH").is_some(), host_has_avx512()) {
        std::env::set_var("LP_NATIVE_VECTOR_WIDTH", width);
    }
}

/// The vector width to give llvmpipe: none when the user named one or the CPU lacks AVX-512.
pub(crate) fn default_vector_width(user_named_one: bool, avx512: bool) -> Option<&'static str> {
    (!user_named_one && avx512).then_some("512")
}

fn host_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Mesa 22's shader cache keys a compiled shader by its code and the CPU's features, not by
/// llvmpipe's vector width: after a run at one `LP_NATIVE_VECTOR_WIDTH`, a run at the other
/// would execute the shaders the first one compiled, with that width's vectors and speed and
/// its subgroups inside the reported ones (a subgroup sum of 8 lanes on a device that reports
/// 16; tests/driver_cache.rs). A run that names its width keeps Mesa's cache in a folder of that
/// width's own, beside Mesa's default one, unless the user placed Mesa's cache themselves.
/// (`wide_vectors_on_avx512` runs first, so a width it chose counts as named.)
fn separate_mesa_cache_per_vector_width() {
    if std::env::var_os("MESA_SHADER_CACHE_DIR").is_some() {
        return;
    }
    let Some(width) =
        std::env::var("LP_NATIVE_VECTOR_WIDTH").ok().filter(|w| w.bytes().all(|b| b.is_ascii_digit()) && !w.is_empty())
    else {
        return;
    };
    if let Some(base) = super::pipeline_cache::user_cache_home() {
        std::env::set_var("MESA_SHADER_CACHE_DIR", base.join(format!("mesa_shader_cache_lp{width}")));
    }
}

/// Mesa's implicit device-select layer asks the desktop session (Wayland, X11) which GPU is the
/// default, and on a machine without one prints `XDG_RUNTIME_DIR is invalid or not set` for
/// each Vulkan instance. shadergan ranks the adapters itself (`choose_adapter`), so the layer
/// has nothing to add: it is turned off unless the user set `NODEVICE_SELECT` themselves.
fn quiet_device_select_layer() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// Every adapter on the native backends (Vulkan, Metal, DX12).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(native_adapters())
}

#[cfg(not(target_arch = "wasm32"))]
const NATIVE: wgpu::Backends = wgpu::Backends::VULKAN.union(wgpu::Backends::METAL).union(wgpu::Backends::DX12);

#[cfg(not(target_arch = "wasm32"))]
async fn native_adapters() -> Vec<wgpu::Adapter> {
    new_instance(NATIVE).enumerate_adapters(NATIVE).await
}

/// The error for a machine without a native adapter. OpenGL adapters are named but refused:
/// Mesa's GLSL compiler rejects wgpu's translation of the kernels ("not allowed on function
/// parameter"), so a run there would stop at its first dispatch.
#[cfg(not(target_arch = "wasm32"))]
pub fn no_adapter_error() -> GpuError {
    let gl = pollster::block_on(new_instance(wgpu::Backends::GL).enumerate_adapters(wgpu::Backends::GL));
    match gl.first() {
        Some(a) => GpuError::OnlyOpenGl { found: describe(&a.get_info()) },
        None => GpuError::NoAdapter,
    }
}

/// The adapter `options` pick among the native ones: a name match, the software adapter if
/// forced, else the most capable kind (discrete before integrated before software).
#[cfg(not(target_arch = "wasm32"))]
async fn choose_adapter(options: &GpuOptions) -> Result<wgpu::Adapter, GpuError> {
    let adapters = native_adapters().await;
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
            no_adapter_error()
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

/// The page's WebGPU adapter: the browser picks it (high performance preferred; its fallback,
/// software adapter when `force_cpu`).
#[cfg(target_arch = "wasm32")]
async fn choose_adapter(options: &GpuOptions) -> Result<wgpu::Adapter, GpuError> {
    let instance = new_instance(wgpu::Backends::BROWSER_WEBGPU);
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: options.force_cpu,
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::NoWebGpu(e.to_string()))
}

/// Opens the device `options` choose, blocking until it is ready.
#[cfg(not(target_arch = "wasm32"))]
pub fn create(options: &GpuOptions) -> Result<Arc<GpuInner>, GpuError> {
    pollster::block_on(create_async(options))
}

/// Opens the device `options` choose, with every limit and the features the kernels use that
/// the adapter offers.
pub async fn create_async(options: &GpuOptions) -> Result<Arc<GpuInner>, GpuError> {
    let adapter = choose_adapter(options).await?;
    let info = adapter.get_info();
    log::info!("using adapter {}", describe(&info));
    let limits = match options.webgpu_limits {
        true => wgpu::Limits::defaults().or_worse_values_from(&adapter.limits()),
        false => adapter.limits(),
    };
    let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP | wgpu::Features::PIPELINE_CACHE;
    let features = adapter.features() & wanted;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("shadergan"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::Device(e.to_string()))?;
    let pipeline_cache = DiskPipelineCache::open(&device, &info, options.pipeline_cache_dir.as_deref());
    Ok(Arc::new(GpuInner::new(device, queue, info, limits, options, pipeline_cache)))
}

#[cfg(test)]
mod tests {
    use super::{default_vector_width, parse_limits};

    #[test]
    fn limits_words_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_limits(""), Ok(false));
        assert_eq!(parse_limits("adapter"), Ok(false));
        assert_eq!(parse_limits(" webgpu "), Ok(true));
        let err = parse_limits("browser").unwrap_err();
        assert!(err.contains("'browser'") && err.contains("webgpu") && err.contains("adapter"), "{err}");
    }

    #[test]
    fn llvmpipe_gets_512_bits_only_on_avx512_and_only_when_no_width_is_named() {
        assert_eq!(default_vector_width(false, true), Some("512"));
        assert_eq!(default_vector_width(true, true), None);
        assert_eq!(default_vector_width(false, false), None);
        assert_eq!(default_vector_width(true, false), None);
    }
}
