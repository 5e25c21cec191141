//! The GPU host: device, pipeline cache, buffer pool and the command recorder that batches every
//! dispatch of a training step into one command buffer.

mod buffer;
mod context;
pub mod kernel_path;
mod limits;
mod pipeline;
mod pipeline_cache;
mod profile;
mod readback;
pub mod shaders;
mod texture;
pub mod uniform;
pub mod wgsl_enum;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(target_arch = "wasm32"))]
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};

use profile::Profiler;
use uniform::UniformLayout;

pub use buffer::GpuBuffer;
use buffer::Pool;
pub use context::{describe, prepare_driver_environment, GpuOptions};
#[cfg(not(target_arch = "wasm32"))]
pub use context::{list_adapters, no_adapter_error};
pub use kernel_path::{choose_kernel_path, KernelPath, KernelSwitches};
pub use limits::{catch_device_limits, BufferTooLarge};
use pipeline::{Pipeline, PipelineKey};
pub use readback::PendingRead;
pub use shaders::Shader;
pub use texture::Operand;

/// Why no device could be opened.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter on any backend.
    #[error(
        "no GPU adapter found (Vulkan, Metal or DX12). On Linux without a GPU install the \
         software rasterizer: `apt-get install mesa-vulkan-drivers libvulkan1`"
    )]
    NoAdapter,
    /// Only an OpenGL adapter, which cannot compile the kernels.
    #[error(
        "only an OpenGL adapter was found ({found}); shadergan needs Vulkan, Metal or DX12. On \
         Linux without a GPU install the software Vulkan driver: `apt-get install \
         mesa-vulkan-drivers libvulkan1`, or run scripts/setup.sh"
    )]
    OnlyOpenGl {
        /// The OpenGL adapter found.
        found: String,
    },
    /// Adapters exist, but none matches the options.
    #[error("no adapter matches: wanted {wanted}; found: {found}")]
    NoMatchingAdapter {
        /// What the options asked for.
        wanted: String,
        /// The adapters found.
        found: String,
    },
    /// The browser offers no WebGPU adapter.
    #[error(
        "this browser offers no WebGPU adapter ({0}); shadergan needs WebGPU: a recent Chrome, Edge \
         or Firefox, from a secure context (https or localhost)"
    )]
    NoWebGpu(String),
    /// The adapter refused the device.
    #[error("could not open the GPU device: {0}")]
    Device(String),
    /// An invalid option (`SHADERGAN_KERNELS`), with what would be accepted.
    #[error("{0}")]
    Options(String),
}

/// Bytes reserved per dispatch in the uniform arena; every parameter struct must fit.
const PARAM_SLOT: u64 = 256;
const ARENA_SLOTS: u64 = 4096;

/// Commands recorded but not yet submitted, plus the uniform bytes they refer to.
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    uniforms: Vec<u8>,
    /// Incremented at each submit; a buffer stamped with the current epoch is still referenced
    /// by unsubmitted commands.
    epoch: u64,
    dispatches_since_submit: usize,
}

/// Counters for benchmarks and tests of the allocator.
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuStats {
    /// Kernels dispatched.
    pub dispatches: u64,
    /// Command buffers submitted.
    pub submits: u64,
    /// Storage buffers created (the pool reuses freed ones).
    pub buffers_created: u64,
    /// Bind groups created (the cache reuses them).
    pub bind_groups_created: u64,
    /// Floating-point operations of the matrix products dispatched (2·M·N·K each): every
    /// convolution, transposed convolution and linear layer, forward and backward.
    pub matmul_flops: u64,
    /// Bytes of buffers and textures in use now.
    pub live_bytes: u64,
    /// The most bytes held at once, pooled ones included.
    pub peak_bytes: u64,
}

/// The device and everything the host keeps for it (shared by every `Gpu` handle).
pub struct GpuInner {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter it was opened on.
    pub info: wgpu::AdapterInfo,
    /// The adapter's limits, all requested.
    pub limits: wgpu::Limits,
    uniform_arena: wgpu::Buffer,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    recorder: Mutex<Recorder>,
    pool: Mutex<Pool>,
    dispatches: AtomicU64,
    submits: AtomicU64,
    buffers_created: AtomicU64,
    bind_groups_created: AtomicU64,
    matmul_flops: AtomicU64,
    /// When set, every dispatch is timed (see profile.rs).
    profile: Mutex<Option<Profiler>>,
    /// The matmul and convolution kernels, chosen once (kernel_path.rs).
    kernel_path: KernelPath,
    no_texture_operands: bool,
    pipeline_cache: Option<pipeline_cache::DiskPipelineCache>,
    textures: Mutex<texture::TextureCache>,
    /// Bind groups by what they bind: pooled buffers and textures come back, so repeated work
    /// finds its bind groups again (a training step more of them as the cache fills: the
    /// pool's free buffers come back in a varying order).
    bind_groups: Mutex<HashMap<BindGroupKey, wgpu::BindGroup>>,
    /// The first error the device reported, where it reports them as events rather than at
    /// the call (a browser's WebGPU: the work it refused left its outputs untouched, so a read
    /// after it fails with this message instead of returning stale values).
    refused: Arc<Mutex<Option<String>>>,
}

/// A bind group's identity: its pipeline (pipelines are never evicted, so the address is
/// stable), each buffer with its bound size, and each texture view.
#[derive(PartialEq, Eq, Hash)]
struct BindGroupKey {
    pipeline: usize,
    buffers: Vec<(wgpu::Buffer, u64)>,
    textures: Vec<wgpu::TextureView>,
}

/// Past this many cached bind groups the cache starts over (a run whose buffers keep changing
/// would otherwise grow it without bound).
const BIND_GROUP_CACHE_MAX: usize = 8192;

/// A handle to the device; cheap to clone.
#[derive(Clone)]
pub struct Gpu(pub(crate) Arc<GpuInner>);

/// One entry point of one shader, with its pipeline constants: what a dispatch runs.
pub struct Kernel {
    /// The shader (op family).
    pub shader: Shader,
    /// The entry point's name.
    pub entry: &'static str,
    /// WGSL `override` constants (workgroup sizes, tile shapes).
    pub constants: Vec<(&'static str, u32)>,
    /// Shown in profiles (e.g. a matmul's m x k x n).
    pub note: String,
}

impl Kernel {
    /// The entry point `entry` of `shader`, with no constants set.
    pub fn new(shader: Shader, entry: &'static str) -> Self {
        Kernel { shader, entry, constants: vec![], note: String::new() }
    }
    /// Sets the override constant `name`.
    pub fn with(mut self, name: &'static str, value: u32) -> Self {
        self.constants.push((name, value));
        self
    }
    /// Sets the boolean constant `name` that tells the entry point to read `operand` from its
    /// texture copy.
    pub fn reading(self, name: &'static str, operand: &Operand) -> Self {
        self.with(name, operand.textured() as u32)
    }
}

impl GpuInner {
    fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
        options: &GpuOptions,
        pipeline_cache: Option<pipeline_cache::DiskPipelineCache>,
    ) -> Self {
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP);
        let kernel_path =
            choose_kernel_path(subgroups.then_some((info.subgroup_min_size, info.subgroup_max_size)), options.kernels);
        log::info!("kernels: {}", kernel_path.reason);
        let uniform_arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size: PARAM_SLOT * ARENA_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        assert!(limits.min_uniform_buffer_offset_alignment as u64 <= PARAM_SLOT);
        let refused = device_errors(&device);
        GpuInner {
            device,
            queue,
            info,
            limits,
            uniform_arena,
            pipelines: Mutex::new(HashMap::new()),
            recorder: Mutex::new(Recorder {
                encoder: None,
                pass: None,
                uniforms: Vec::new(),
                epoch: 1,
                dispatches_since_submit: 0,
            }),
            pool: Mutex::new(Pool::default()),
            dispatches: AtomicU64::new(0),
            submits: AtomicU64::new(0),
            buffers_created: AtomicU64::new(0),
            bind_groups_created: AtomicU64::new(0),
            matmul_flops: AtomicU64::new(0),
            profile: Mutex::new(None),
            kernel_path,
            no_texture_operands: options.kernels.storage_only,
            pipeline_cache,
            textures: Mutex::new(texture::TextureCache::default()),
            bind_groups: Mutex::new(HashMap::new()),
            refused,
        }
    }
}

/// Where `device`'s uncaptured errors are kept. Natively wgpu reports a refused call by
/// panicking at it, which is kept (nothing reaches the device unvalidated there); a browser's
/// WebGPU reports them later, as events, which are kept here for the next read to raise.
fn device_errors(device: &wgpu::Device) -> Arc<Mutex<Option<String>>> {
    let refused = Arc::new(Mutex::new(None));
    if cfg!(target_arch = "wasm32") {
        let first = refused.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            first.lock().unwrap().get_or_insert_with(|| e.to_string());
        }));
    }
    refused
}

#[cfg(not(target_arch = "wasm32"))]
static DEFAULT_GPU: OnceLock<Result<Gpu, GpuError>> = OnceLock::new();

impl Gpu {
    /// Opens the adapter `options` choose (natively; in a browser use `new_async`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(options: &GpuOptions) -> Result<Gpu, GpuError> {
        context::create(options).map(Gpu)
    }

    /// Opens the adapter `options` choose without blocking: the one way in a browser, where
    /// the page's WebGPU answers only once control returns to its event loop.
    pub async fn new_async(options: &GpuOptions) -> Result<Gpu, GpuError> {
        context::create_async(options).await.map(Gpu)
    }

    /// The process-wide device, chosen once from the environment (`SHADERGAN_ADAPTER`,
    /// `SHADERGAN_CPU`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn default_device() -> Result<Gpu, GpuError> {
        DEFAULT_GPU.get_or_init(|| GpuOptions::try_from_env().and_then(|o| Gpu::new(&o))).clone()
    }

    /// The adapter.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.0.info
    }

    /// Whether the adapter runs on the CPU (lavapipe, SwiftShader, a browser's software
    /// fallback) rather than on a GPU.
    pub fn is_software(&self) -> bool {
        self.0.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The matmul and convolution kernels this device runs, and why (`choose_kernel_path`).
    pub fn kernel_path(&self) -> KernelPath {
        self.0.kernel_path
    }

    /// Whether convolutions may run as implicit GEMM (the subgroup matmul gathering patches as
    /// it goes).
    pub fn implicit_convs(&self) -> bool {
        self.0.kernel_path.implicit_convs
    }

    /// The device's limits (the adapter's, all requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }

    /// Counters since the device opened.
    pub fn stats(&self) -> GpuStats {
        let pool = self.0.pool.lock().unwrap();
        GpuStats {
            dispatches: self.0.dispatches.load(Ordering::Relaxed),
            submits: self.0.submits.load(Ordering::Relaxed),
            buffers_created: self.0.buffers_created.load(Ordering::Relaxed),
            bind_groups_created: self.0.bind_groups_created.load(Ordering::Relaxed),
            matmul_flops: self.0.matmul_flops.load(Ordering::Relaxed),
            live_bytes: pool.live_bytes,
            peak_bytes: pool.peak_bytes,
        }
    }

    /// Adds a matrix product's operation count to the statistics (for FLOP/s reports).
    pub(crate) fn count_matmul_flops(&self, flops: u64) {
        self.0.matmul_flops.fetch_add(flops, Ordering::Relaxed);
    }

    /// Whether two handles are the same device.
    pub fn same_device(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Records one dispatch. `params` goes to the entry point's uniform block; `inputs` bind to its
    /// read-only storage bindings and `outputs` to its read-write ones, in binding order.
    pub fn dispatch<P: UniformLayout>(
        &self,
        kernel: &Kernel,
        params: &P,
        inputs: &[&GpuBuffer],
        outputs: &[&GpuBuffer],
        workgroups: [u32; 3],
    ) {
        self.dispatch_with_textures(kernel, params, inputs, &[], outputs, workgroups)
    }

    /// [`Gpu::dispatch`] for entry points that also read textures: one per [`Operand`] (its
    /// copy, or a placeholder where it is read from storage), bound in binding order after the
    /// buffer inputs.
    pub fn dispatch_with_textures<P: UniformLayout>(
        &self,
        kernel: &Kernel,
        params: &P,
        inputs: &[&GpuBuffer],
        operands: &[&Operand],
        outputs: &[&GpuBuffer],
        workgroups: [u32; 3],
    ) {
        let pipe = self.pipeline(kernel);
        let b = &pipe.bindings;
        assert_eq!(
            (inputs.len(), operands.len(), outputs.len()),
            (b.inputs.len(), b.textures.len(), b.outputs.len()),
            "{}::{} binds {} inputs, {} textures and {} outputs",
            kernel.shader.file_name(),
            kernel.entry,
            b.inputs.len(),
            b.textures.len(),
            b.outputs.len()
        );
        pipe.layout_checked.get_or_init(|| {
            if let Some(decl) = &b.uniform_decl {
                if let Err(e) = uniform::check_layout::<P>(kernel.shader.file_name(), decl) {
                    panic!("{}::{}: {e}", kernel.shader.file_name(), kernel.entry);
                }
            }
        });
        let textures = self.operand_views(operands);
        let param_bytes = bytemuck::bytes_of(params);
        assert!(param_bytes.len() as u64 <= PARAM_SLOT, "parameter block larger than {PARAM_SLOT} bytes");
        // The outputs' texture copies go stale with this dispatch (before any lock is taken:
        // dropping a copy locks the texture cache).
        for out in outputs {
            out.copies.invalidate();
        }
        if workgroups.contains(&0) {
            return;
        }
        let max = self.0.limits.max_compute_workgroups_per_dimension;
        assert!(workgroups.iter().all(|&w| w <= max), "dispatch {workgroups:?} exceeds {max} per dimension");

        // Lock order: profile, then recorder.
        let mut profile = self.0.profile.lock().unwrap();
        let mut rec = self.0.recorder.lock().unwrap();
        if rec.uniforms.len() as u64 >= PARAM_SLOT * ARENA_SLOTS {
            drop(rec);
            self.flush();
            rec = self.0.recorder.lock().unwrap();
        }
        let offset = rec.uniforms.len() as u32;
        rec.uniforms.extend_from_slice(param_bytes);
        rec.uniforms.resize(offset as usize + PARAM_SLOT as usize, 0);
        let epoch = rec.epoch;

        let bound: Vec<(u32, &GpuBuffer)> = pipe
            .bindings
            .inputs
            .iter()
            .zip(inputs)
            .chain(pipe.bindings.outputs.iter().zip(outputs))
            .map(|(&binding, &buf)| (binding, buf))
            .collect();
        // Whole 16-byte groups, so a vec4 view of the buffer sees its last values (pooled
        // buffers are multiples of 64 bytes: this never passes their end).
        let bound_size = |buf: &GpuBuffer| (buf.len.max(1) * 4).next_multiple_of(16) as u64;
        for (_, buf) in &bound {
            buf.epoch.store(epoch, Ordering::Relaxed);
        }
        let key = BindGroupKey {
            pipeline: Arc::as_ptr(&pipe) as usize,
            buffers: bound.iter().map(|(_, buf)| (buf.raw().clone(), bound_size(buf))).collect(),
            textures: textures.clone(),
        };
        let mut bind_groups = self.0.bind_groups.lock().unwrap();
        if bind_groups.len() >= BIND_GROUP_CACHE_MAX && !bind_groups.contains_key(&key) {
            bind_groups.clear();
        }
        let bind_group =
            bind_groups.entry(key).or_insert_with(|| self.create_bind_group(&pipe, &bound, bound_size, &textures));
        let bind_group = bind_group.clone();
        drop(bind_groups);
        let stamped = match profile.as_mut().and_then(|p| p.timestamps.as_mut()) {
            Some(ts) => {
                // A pass of its own, stamped at its start and end.
                let pair = ts.claim_pair(profile_key(kernel, workgroups));
                rec.pass = None;
                let pass = rec
                    .encoder_mut(&self.0.device)
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &ts.set,
                            beginning_of_pass_write_index: Some(2 * pair),
                            end_of_pass_write_index: Some(2 * pair + 1),
                        }),
                    })
                    .forget_lifetime();
                rec.pass = Some(pass);
                Some(ts.is_full())
            }
            None => None,
        };
        let pass = rec.pass_mut(&self.0.device);
        pass.set_pipeline(&pipe.pipeline);
        let dynamic: &[u32] = if pipe.bindings.uniform.is_some() { &[offset] } else { &[] };
        pass.set_bind_group(0, &bind_group, dynamic);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        rec.dispatches_since_submit += 1;
        self.0.dispatches.fetch_add(1, Ordering::Relaxed);
        if stamped.is_some() {
            rec.pass = None;
        }
        drop(rec);
        match stamped {
            Some(true) => self.read_timestamps(profile.as_mut().expect("stamped only while profiling")),
            Some(false) => {}
            None if profile.is_some() => {
                drop(profile);
                // Everything before this dispatch was already waited for: this wait times it alone.
                let t = std::time::Instant::now();
                self.synchronize();
                let seconds = t.elapsed().as_secs_f64();
                if let Some(p) = self.0.profile.lock().unwrap().as_mut() {
                    p.add(profile_key(kernel, workgroups), seconds);
                }
            }
            None => {}
        }
    }

    /// Submits everything recorded so far (without waiting for it).
    pub fn flush(&self) {
        let mut rec = self.0.recorder.lock().unwrap();
        rec.pass = None;
        let Some(encoder) = rec.encoder.take() else {
            return;
        };
        if !rec.uniforms.is_empty() {
            self.0.queue.write_buffer(&self.0.uniform_arena, 0, &rec.uniforms);
            rec.uniforms.clear();
        }
        self.0.queue.submit(Some(encoder.finish()));
        rec.epoch += 1;
        rec.dispatches_since_submit = 0;
        self.0.submits.fetch_add(1, Ordering::Relaxed);
    }

    /// The on-disk pipeline cache file, where the device has one.
    pub fn pipeline_cache_path(&self) -> Option<&std::path::Path> {
        self.0.pipeline_cache.as_ref().map(|c| c.path())
    }
}

impl Recorder {
    fn encoder_mut(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder
            .get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }))
    }

    fn pass_mut(&mut self, device: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let pass = self
                .encoder_mut(device)
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        self.pass.as_mut().unwrap()
    }
}

fn profile_key(kernel: &Kernel, workgroups: [u32; 3]) -> String {
    let constants: String = kernel.constants.iter().map(|(name, value)| format!(" {name}={value}")).collect();
    format!("{}::{} {:?} {}{constants}", kernel.shader.file_name(), kernel.entry, workgroups, kernel.note)
}
