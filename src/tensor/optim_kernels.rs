//! Launches of the optimizer updates (shaders/optim.wgsl), in place on a parameter and its
//! state buffers.

use bytemuck::{Pod, Zeroable};

use super::launch::{grid_1d, WG_1D};
use crate::gpu::{Gpu, GpuBuffer, Kernel, Operand, Shader};

crate::uniform! {
    /// One Adam update of `n` values (optim.wgsl).
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct AdamParams {
        /// Values updated.
        pub n: u32,
        /// Learning rate.
        pub lr: f32,
        /// Decay of the first moment.
        pub beta1: f32,
        /// Decay of the second moment.
        pub beta2: f32,
        /// Added to the second moment's root.
        pub eps: f32,
        /// L2 penalty added to the gradient.
        pub weight_decay: f32,
        /// 1 - beta1^t (bias correction of the first moment).
        pub correction1: f32,
        /// 1 - beta2^t (bias correction of the second moment).
        pub correction2: f32,
    }
}

crate::uniform! {
    /// adam4's parameters: Adam's, and the row length (log2 texels) of the four flat texture copies.
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct Adam4Params {
        adam: AdamParams,
        shift: u32,
        _pad: [u32; 3],
    }
}

/// One Adam update in place. Where the buffers have flat texture copies (`Gpu::flat_operand`),
/// adam4 reads all four from them and updates four values per invocation: on llvmpipe a
/// storage load is a loop over the lanes, and the scalar kernel makes four per value.
pub fn adam_step(gpu: &Gpu, p: &AdamParams, grad: &GpuBuffer, param: &GpuBuffer, m: &GpuBuffer, v: &GpuBuffer) {
    let n = p.n as usize;
    // Same length, so the same row length; copied before the update overwrites them.
    let reads = [grad, param, m, v].map(|buf| gpu.flat_operand(buf));
    if reads.iter().all(Operand::textured) {
        let params = Adam4Params { adam: *p, shift: reads[0].shift(), _pad: [0; 3] };
        let kernel = Kernel::new(Shader::Optim, "adam4");
        let operands: Vec<&Operand> = reads.iter().collect();
        gpu.dispatch_with_textures(&kernel, &params, &[], &operands, &[param, m, v], grid_1d(gpu, n / 4, WG_1D));
        return;
    }
    gpu.dispatch(&Kernel::new(Shader::Optim, "adam"), p, &[grad], &[param, m, v], grid_1d(gpu, n, WG_1D));
}

crate::uniform! {
    /// One SGD update of `n` values (optim.wgsl).
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct SgdParams {
        /// Values updated.
        pub n: u32,
        /// Learning rate.
        pub lr: f32,
        /// Momentum.
        pub momentum: f32,
        /// L2 penalty added to the gradient.
        pub weight_decay: f32,
    }
}

/// One SGD (momentum) update in place.
pub fn sgd_step(gpu: &Gpu, p: &SgdParams, grad: &GpuBuffer, param: &GpuBuffer, momentum: &GpuBuffer) {
    gpu.dispatch(&Kernel::new(Shader::Optim, "sgd"), p, &[grad], &[param, momentum], grid_1d(gpu, p.n as usize, WG_1D));
}

crate::uniform! {
    /// One RMSprop update of `n` values (optim.wgsl).
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct RmspropParams {
        /// Values updated.
        pub n: u32,
        /// Learning rate.
        pub lr: f32,
        /// Decay of the running mean of squares.
        pub alpha: f32,
        /// Added to the root of the running mean.
        pub eps: f32,
    }
}

/// One RMSprop update in place.
pub fn rmsprop_step(gpu: &Gpu, p: &RmspropParams, grad: &GpuBuffer, param: &GpuBuffer, square_avg: &GpuBuffer) {
    gpu.dispatch(
        &Kernel::new(Shader::Optim, "rmsprop"),
        p,
        &[grad],
        &[param, square_avg],
        grid_1d(gpu, p.n as usize, WG_1D),
    );
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct ClipParams {
        n: u32,
        low: f32,
        high: f32,
        _pad: u32,
    }
}

/// Clamps every value of `param` into `[low, high]` in place (WGAN's weight clipping).
pub fn clip_in_place(gpu: &Gpu, param: &GpuBuffer, low: f32, high: f32) {
    let params = ClipParams { n: param.len() as u32, low, high, _pad: 0 };
    gpu.dispatch(&Kernel::new(Shader::Optim, "clip"), &params, &[], &[param], grid_1d(gpu, param.len(), WG_1D));
}
