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

pub use autograd::grad;
pub use gpu::{Gpu, GpuOptions};
pub use tensor::{no_grad, Tensor};
