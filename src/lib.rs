//! shadergan: a GAN engine whose math runs as WGSL compute shaders through wgpu.

pub mod gpu;
