//! shadergan: a GAN engine whose math runs as WGSL compute shaders through wgpu.

pub mod autograd;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod cyclegan;
pub mod cyclegan_run;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod host_speed;
pub mod models;
pub mod nn;
pub mod optim;
pub mod reference;
pub mod tensor;
pub mod toy;
pub mod train;
pub mod viz;

pub use autograd::{grad, Wrt};
pub use gpu::{Gpu, GpuOptions};
pub use tensor::{no_grad, Tensor};

/// What a program that builds and trains its own networks needs: `use shadergan::prelude::*;`.
pub mod prelude {
    pub use crate::autograd::grad;
    pub use crate::gpu::{Gpu, GpuOptions};
    pub use crate::nn::{
        manual_seed, BatchNorm, Conv2d, ConvTranspose2d, Init, InstanceNorm, Layer, LayerNorm, Linear, Mode, Module,
        Role, Sequential,
    };
    pub use crate::optim::{Adam, Optimizer, RmsProp, Sgd};
    pub use crate::tensor::{no_grad, Tensor};
}
