//! shadergan: a GAN engine whose math runs as WGSL compute shaders through wgpu.

pub mod gpu;
pub mod nn;
pub mod optim;
pub mod autograd;
pub mod reference;
pub mod tensor;

pub use autograd::grad;
pub use gpu::{Gpu, GpuOptions};
pub use tensor::{no_grad, Tensor};
