//! Launches of the optimizer updates (shaders/optim.wgsl), in place on a parameter and its
//! state buffers.

use bytemuck::{Pod, Zeroable};

use super::launch::{grid_1d, WG_1D};
use crate::gpu::{Gpu, GpuBuffer, Kernel, Operand, Shader};

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct AdamParams {
        pub n: u32,
        pub lr: f32,
        pub beta1: f32,
        pub beta2: f32,
        pub eps: f32,
        pub weight_decay: f32,
        pub correction1: f32,
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
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct SgdParams {
        pub n: u32,
        pub lr: f32,
        pub momentum: f32,
        pub weight_decay: f32,
    }
}

pub fn sgd_step(gpu: &Gpu, p: &SgdParams, grad: &GpuBuffer, param: &GpuBuffer, momentum: &GpuBuffer) {
    gpu.dispatch(&Kernel::new(Shader::Optim, "sgd"), p, &[grad], &[param, momentum], grid_1d(gpu, p.n as usize, WG_1D));
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct RmspropParams {
        pub n: u32,
        pub lr: f32,
        pub alpha: f32,
        pub eps: f32,
    }
}

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

pub fn clip_in_place(gpu: &Gpu, param: &GpuBuffer, low: f32, high: f32) {
    let params = ClipParams { n: param.len() as u32, low, high, _pad: 0 };
    gpu.dispatch(&Kernel::new(Shader::Optim, "clip"), &params, &[], &[param], grid_1d(gpu, param.len(), WG_1D));
}
