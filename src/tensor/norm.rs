//! Fused normalisation (batchnorm.wgsl): batch, instance and layer norm with an optional
//! (leaky) ReLU, the launchers, the `Tensor` methods and the gradient rule (the fused backward
//! at first order, the composite formula for second order). CPU reference:
//! `reference::batch_norm_train`, `reference::normalize_groups`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::launch::{grid_1d, WG_1D};
use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::gpu::{Gpu, GpuBuffer, Kernel, Operand, Shader};

crate::uniform! {
    /// Fused normalisation over a `[batch, channels, spatial]` view (batchnorm.wgsl).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Pod, Zeroable)]
    pub struct BatchNormParams {
        /// Outer extent of the `[batch, channels, spatial]` view.
        pub batch: u32,
        /// Groups normalised separately.
        pub channels: u32,
        /// Inner extent.
        pub spatial: u32,
        /// 1: update the running statistics.
        pub update_running: u32,
        /// Added to the variance before the root.
        pub eps: f32,
        /// Weight of this batch in the running statistics.
        pub momentum: f32,
        /// Row length (log2 texels) of x's texture copy: set by the kernel functions below,
        /// zero from callers.
        pub x_shift: u32,
        /// Row length (log2 texels) of dy's texture copy, as `x_shift`.
        pub dy_shift: u32,
        /// The forward pass's output is max(y, slope * y) for slope <= 1: a fused ReLU (0) or
        /// leaky ReLU; 1 leaves y as it is.
        pub slope: f32,
        /// (Padding to 16 bytes.)
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
    let flat = |buf: Option<&GpuBuffer>| buf.filter(|_| vec4).map_or_else(Operand::storage, |b| gpu.flat_operand(b));
    let (x_read, dy_read) = (flat(Some(x)), flat(dy));
    let mut params = *p;
    (params.x_shift, params.dy_shift) = (x_read.shift(), dy_read.shift());
    let kernel = kernel.reading("X_TEXTURE", &x_read).reading("DY_TEXTURE", &dy_read);
    // (Forward entry points bind x's texture only.)
    let operands = [&x_read, &dy_read];
    let operands = &operands[..gpu.pipeline_texture_count(&kernel)];
    gpu.dispatch_with_textures(&kernel, &params, inputs, operands, outputs, grid);
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

/// The normalised, scaled, shifted (and activated) output from x and its statistics.
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

impl Tensor {
    // ---- fused normalisation ----

    /// Training-mode batch norm over x [N, C, ...] with batch statistics (biased variance),
    /// updating `running_mean`/`running_var` in place with `momentum` (unbiased variance).
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_train(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        self.batch_norm_train_leaky([gamma, beta], [running_mean, running_var], momentum, eps, 1.0)
    }

    /// `batch_norm_train` (affine [gamma, beta], running [mean, var]) followed by a leaky ReLU
    /// of `slope` (0: ReLU; 1: none), fused into its kernels: the activation costs no pass of
    /// its own. Slopes outside [0, 1] are refused.
    pub fn batch_norm_train_leaky(
        &self,
        [gamma, beta]: [&Tensor; 2],
        [running_mean, running_var]: [&Tensor; 2],
        momentum: f32,
        eps: f32,
        slope: f32,
    ) -> Tensor {
        assert!((0.0..=1.0).contains(&slope), "a fused activation's slope lies in [0, 1], got {slope}");
        assert!(self.rank() >= 2, "batch norm needs [N, C, ...], got {:?}", self.shape());
        let (n, c) = (self.shape()[0], self.shape()[1]);
        for t in [gamma, beta, running_mean, running_var] {
            assert_eq!(t.numel(), c, "batch norm over {c} channels given a tensor of shape {:?}", t.shape());
        }
        self.normalize_fused(
            [n, c, self.numel() / (n * c)],
            gamma,
            beta,
            Some((running_mean, running_var, momentum)),
            eps,
            slope,
        )
    }

    /// Instance norm: every (sample, channel) plane of x [N, C, ...] normalised on its own,
    /// without affine (callers add one). The batch-norm kernels over the view [1, N*C, rest].
    pub fn instance_norm(&self, eps: f32) -> Tensor {
        assert!(self.rank() >= 3, "instance norm needs [N, C, spatial...], got {:?}", self.shape());
        let planes = self.shape()[0] * self.shape()[1];
        let (ones, zeros) = (Tensor::ones(self.gpu(), &[planes]), Tensor::zeros(self.gpu(), &[planes]));
        self.normalize_fused([1, planes, self.numel() / planes], &ones, &zeros, None, eps, 1.0)
    }

    /// Layer norm's normalisation: each sample of x [N, ...] over all its other entries, without
    /// affine. The batch-norm kernels over the view [1, N, rest].
    pub fn layer_norm(&self, eps: f32) -> Tensor {
        assert!(self.rank() >= 2, "layer norm needs [N, ...], got {:?}", self.shape());
        let n = self.shape()[0];
        let (ones, zeros) = (Tensor::ones(self.gpu(), &[n]), Tensor::zeros(self.gpu(), &[n]));
        self.normalize_fused([1, n, self.numel() / n], &ones, &zeros, None, eps, 1.0)
    }

    /// x viewed as [outer, groups, inner], normalised per group over outer and inner, then
    /// gamma * x_hat + beta per group, then max(y, slope * y). Fused kernels; with
    /// `create_graph` its backward is the composite formula, so second-order gradients pass
    /// through.
    #[allow(clippy::too_many_arguments)]
    fn normalize_fused(
        &self,
        [outer, groups, inner]: [usize; 3],
        gamma: &Tensor,
        beta: &Tensor,
        running: Option<(&Tensor, &Tensor, f32)>,
        eps: f32,
        slope: f32,
    ) -> Tensor {
        let params = BatchNormParams {
            batch: outer as u32,
            channels: groups as u32,
            spatial: inner as u32,
            update_running: running.is_some() as u32,
            eps,
            momentum: running.map_or(0.0, |r| r.2),
            x_shift: 0,
            dy_shift: 0,
            slope,
            _pad: [0; 3],
        };
        let gpu = self.gpu();
        let stats =
            Arc::new(batch_norm_stats(gpu, &params, self.buffer(), running.map(|r| (r.0.buffer(), r.1.buffer()))));
        let y = batch_norm_forward(gpu, &params, self.buffer(), &stats, gamma.buffer(), beta.buffer());
        // (A fused activation's gradient recomputes its mask from x, stats, gamma and beta.)
        self.record(&[self, gamma, beta], self.shape().to_vec(), y, Op::BatchNorm { params, stats }, false)
    }

    /// The same normalisation from differentiable ops: what the fused kernels compute, used
    /// where a gradient of the gradient is needed.
    pub(crate) fn normalize_composite(&self, params: &BatchNormParams, gamma: &Tensor, beta: &Tensor) -> Tensor {
        let (outer, groups, inner) = (params.batch as usize, params.channels as usize, params.spatial as usize);
        let x = self.reshape(&[outer, groups, inner]);
        let mean = x.mean(&[0, 2], true);
        let centered = x.sub(&mean);
        let var = centered.square().mean(&[0, 2], true);
        let x_hat = centered.mul(&var.add_scalar(params.eps).powf(-0.5));
        let y = x_hat.mul(&gamma.reshape(&[1, groups, 1])).add(&beta.reshape(&[1, groups, 1]));
        y.reshape(self.shape()).activated(params.slope)
    }
}

/// The normalisation's gradient: the fused backward (which takes g through the fused
/// activation itself) at first order, the composite formula's for gradients of gradients.
pub(crate) fn norm_grad(b: &Backward, params: &BatchNormParams, stats: &GpuBuffer) -> Vec<Option<Tensor>> {
    let (x, gamma, beta, g) = (b.input(0), b.input(1), b.input(2), b.g);
    if b.create_graph {
        return b.through_composite(&x.normalize_composite(params, gamma, beta));
    }
    let c = params.channels as usize;
    let (dx, grad_stats) =
        batch_norm_backward(x.gpu(), params, x.buffer(), stats, [gamma.buffer(), beta.buffer()], g.buffer());
    let grad_stats = Tensor::from_buffer(x.gpu(), &[2, c], grad_stats);
    let dgamma = b.want(1).then(|| grad_stats.narrow(0, 1, 1).reshape(gamma.shape()));
    let dbeta = b.want(2).then(|| grad_stats.narrow(0, 0, 1).reshape(beta.shape()));
    vec![Some(Tensor::from_buffer(x.gpu(), x.shape(), dx)), dgamma, dbeta]
}
