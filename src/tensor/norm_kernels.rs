//! Launches of the fused normalisation kernels (shaders/batchnorm.wgsl): batch norm directly,
//! instance and layer norm through views of the same [batch, channels, spatial] layout.

use bytemuck::{Pod, Zeroable};

use super::kernels::{grid_1d, WG_1D};
use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Pod, Zeroable)]
    pub struct BatchNormParams {
        pub batch: u32,
        pub channels: u32,
        pub spatial: u32,
        pub update_running: u32,
        pub eps: f32,
        pub momentum: f32,
        /// Row length (log2 texels) of x's texture copy: set by the kernel functions below,
        /// zero from callers.
        pub x_shift: u32,
        /// Row length (log2 texels) of dy's texture copy, as `x_shift`.
        pub dy_shift: u32,
        /// The forward pass's output is max(y, slope * y) for slope <= 1: a fused ReLU (0) or
        /// leaky ReLU; 1 leaves y as it is.
        pub slope: f32,
        pub _pad: [u32; 3],
    }
}

impl BatchNormParams {
    fn len(&self) -> usize {
        (self.batch * self.channels * self.spatial) as usize
    }

    /// The elementwise entry point and its grid: runs of sixteen or four vec4s of one channel
    /// where planes allow (each run loads its channel's values once: 16 measured 30-40% faster
    /// than 4 on 8x8 planes), single vec4s, or single values (batchnorm.wgsl).
    fn apply_kernel(&self, gpu: &Gpu, scalar: &'static str, vec4: &'static str) -> (Kernel, [u32; 3]) {
        if self.spatial.is_multiple_of(64) {
            (Kernel::new(Shader::BatchNorm, vec4).with("RUN", 16), grid_1d(gpu, self.len() / 64, WG_1D))
        } else if self.spatial.is_multiple_of(16) {
            (Kernel::new(Shader::BatchNorm, vec4).with("RUN", 4), grid_1d(gpu, self.len() / 16, WG_1D))
        } else if self.spatial.is_multiple_of(4) {
            (Kernel::new(Shader::BatchNorm, vec4), grid_1d(gpu, self.len() / 4, WG_1D))
        } else {
            (Kernel::new(Shader::BatchNorm, scalar), grid_1d(gpu, self.len(), WG_1D))
        }
    }

    /// The statistics entry point and its grid: serial per group for small groups (vec4 reads,
    /// and so longer groups, where planes hold a multiple of 4 values), a workgroup-wide tree
    /// per group for large ones.
    fn stats_kernel(&self, gpu: &Gpu, entries: [&'static str; 3]) -> (Kernel, [u32; 3]) {
        let [tree_entry, serial_entry, serial4_entry] = entries;
        const SERIAL_MAX: u32 = 4096;
        // Narrow workgroups: with one invocation per group, a 256-wide workgroup would leave
        // all but one core idle for the usual 64-512 channels.
        const SERIAL_WG: u32 = 16;
        let grid = grid_1d(gpu, self.channels as usize, SERIAL_WG);
        // One pass over batch * (spatial / 4 + 1) loop steps within llvmpipe's 65535 (with
        // room to spare).
        let vec4_steps = 2 * self.batch as usize * (self.spatial as usize / 4 + 1) + 64;
        if self.spatial.is_multiple_of(4) && vec4_steps <= 65535 {
            (Kernel::new(Shader::BatchNorm, serial4_entry).with("WG", SERIAL_WG), grid)
        } else if self.batch * self.spatial <= SERIAL_MAX {
            (Kernel::new(Shader::BatchNorm, serial_entry).with("WG", SERIAL_WG), grid)
        } else {
            (Kernel::new(Shader::BatchNorm, tree_entry), [self.channels, 1, 1])
        }
    }
}

/// Dispatches a batch-norm entry point with x (always the first input) and dy (when given)
/// through texture copies where the entry point reads them that way (the vec4 entry points).
fn dispatch_batch_norm(
    gpu: &Gpu,
    kernel: Kernel,
    p: &BatchNormParams,
    dy: Option<&GpuBuffer>,
    inputs: &[&GpuBuffer],
    outputs: &[&GpuBuffer],
    grid: [u32; 3],
) {
    let x = inputs[0];
    let vec4 = kernel.entry.ends_with('4');
    let x_tex = if vec4 { gpu.flat_texture(x) } else { None };
    let dy_tex = if vec4 { dy.and_then(|d| gpu.flat_texture(d)) } else { None };
    let mut params = *p;
    params.x_shift = x_tex.as_ref().map_or(0, |t| t.1);
    params.dy_shift = dy_tex.as_ref().map_or(0, |t| t.1);
    let kernel = kernel.with("X_TEXTURE", x_tex.is_some() as u32).with("DY_TEXTURE", dy_tex.is_some() as u32);
    let views = [
        gpu.texture_or_placeholder(x_tex.as_ref().map(|t| &t.0)),
        gpu.texture_or_placeholder(dy_tex.as_ref().map(|t| &t.0)),
    ];
    let textures: Vec<&wgpu::TextureView> = views.iter().take(gpu.pipeline_texture_count(&kernel)).collect();
    gpu.dispatch_with_textures(&kernel, &params, inputs, &textures, outputs, grid);
}

/// Per-channel [mean; biased variance] of x, updating the running statistics when given
/// (`p.update_running` must say the same).
pub fn batch_norm_stats(
    gpu: &Gpu,
    p: &BatchNormParams,
    x: &GpuBuffer,
    running: Option<(&GpuBuffer, &GpuBuffer)>,
) -> GpuBuffer {
    assert_eq!(p.update_running != 0, running.is_some(), "running statistics given iff they are updated");
    let stats = gpu.alloc(2 * p.channels as usize);
    // The entry point binds running buffers either way; unused ones are one-element stand-ins.
    let stand_ins;
    let (running_mean, running_var) = match running {
        Some(r) => r,
        None => {
            stand_ins = (gpu.alloc(1), gpu.alloc(1));
            (&stand_ins.0, &stand_ins.1)
        }
    };
    let (kernel, grid) = p.stats_kernel(gpu, ["batch_stats", "batch_stats_serial", "batch_stats_serial4"]);
    dispatch_batch_norm(gpu, kernel, p, None, &[x], &[&stats, running_mean, running_var], grid);
    stats
}

pub fn batch_norm_forward(
    gpu: &Gpu,
    p: &BatchNormParams,
    x: &GpuBuffer,
    stats: &GpuBuffer,
    gamma: &GpuBuffer,
    beta: &GpuBuffer,
) -> GpuBuffer {
    let y = gpu.alloc(p.len());
    let (kernel, grid) = p.apply_kernel(gpu, "forward", "forward4");
    dispatch_batch_norm(gpu, kernel, p, None, &[x, stats, gamma, beta], &[&y], grid);
    y
}

/// (dx, [sum dy; sum dy * x_hat]) of batch norm in training mode.
pub fn batch_norm_backward(
    gpu: &Gpu,
    p: &BatchNormParams,
    x: &GpuBuffer,
    stats: &GpuBuffer,
    [gamma, beta]: [&GpuBuffer; 2],
    dy: &GpuBuffer,
) -> (GpuBuffer, GpuBuffer) {
    let grad_stats = gpu.alloc(2 * p.channels as usize);
    let (kernel, grid) = p.stats_kernel(gpu, ["backward_stats", "backward_stats_serial", "backward_stats_serial4"]);
    dispatch_batch_norm(gpu, kernel, p, Some(dy), &[x, stats, dy, gamma, beta], &[&grad_stats], grid);
    let dx = gpu.alloc(p.len());
    let (kernel, grid) = p.apply_kernel(gpu, "backward", "backward4");
    dispatch_batch_norm(gpu, kernel, p, Some(dy), &[x, stats, gamma, dy, &grad_stats, beta], &[&dx], grid);
    (dx, grad_stats)
}
