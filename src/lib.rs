#![warn(missing_docs)]
//! shadergan: a GAN engine whose math runs as WGSL compute shaders through wgpu, on any GPU
//! (Vulkan, Metal, DX12) or on the CPU through Mesa's lavapipe.
//!
//! Tensors live on the device and remember how they were computed, so `grad` differentiates
//! anything, gradients included. Networks are `Module`s; `Sequential` holds built-in layers and
//! your own. A GAN's two updates, on a toy generator and critic:
//!
//! ```
//! use shadergan::nn::loss::bce_with_logits;
//! use shadergan::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gpu = Gpu::default_device()?;
//! manual_seed(0);
//! let g = Sequential::default().push(Linear::new(&gpu, 8, 16)).then(Layer::Relu).push(Linear::new(&gpu, 16, 2));
//! let d = Sequential::default().push(Linear::new(&gpu, 2, 16)).then(Layer::LeakyRelu(0.2)).push(Linear::new(&gpu, 16, 1));
//! let (mut opt_g, mut opt_d) = (Adam::new(2e-4, 0.5, 0.999), Adam::new(2e-4, 0.5, 0.999));
//! let (ones, zeros) = (Tensor::ones(&gpu, &[32, 1]), Tensor::zeros(&gpu, &[32, 1]));
//! let real = Tensor::from_vec(&gpu, &[32, 2], &vec![0.5; 64]);
//! let z = Tensor::from_vec(&gpu, &[32, 8], &(0..256).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>());
//!
//! // (1) update D on real and detached fake samples
//! let fake = g.forward(&z, Mode::Train);
//! let loss_d = bce_with_logits(&d.forward(&real, Mode::Train), &ones)
//!     .add(&bce_with_logits(&d.forward(&fake.detach(), Mode::Train), &zeros));
//! opt_d.step(&d.parameters(), &grad(&loss_d, &d.parameters()));
//! // (2) update G through D
//! let loss_g = bce_with_logits(&d.forward(&fake, Mode::Train), &ones);
//! opt_g.step(&g.parameters(), &grad(&loss_g, &g.parameters()));
//! assert!(loss_d.item().is_finite() && loss_g.item().is_finite());
//! # Ok(())
//! # }
//! ```
//!
//! The CLI (`shadergan train --config FILE`) trains the DCGAN family and CycleGAN from TOML
//! configs with checkpoints, resume, sample grids and a report; `examples/` shows the library
//! on its own.

pub mod autograd;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod cyclegan;
pub mod data;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod eval;
pub mod gpu;
pub mod mixture;
pub mod models;
pub mod nn;
pub mod optim;
/// Plain f64 CPU implementations of every kernel, which the tests compare the shaders against
/// (with the `internals` feature).
#[cfg(any(test, feature = "internals"))]
pub mod reference;
pub mod tasks;
pub mod tensor;
pub mod toy;
pub mod train;
pub mod viz;

pub use autograd::{grad, grad_with, GradOptions, Wrt};
pub use gpu::{Gpu, GpuOptions};
pub use tensor::{no_grad, Tensor};

/// What a program that builds and trains its own networks needs: `use shadergan::prelude::*;`.
pub mod prelude {
    pub use crate::autograd::{grad, grad_with, GradOptions};
    pub use crate::gpu::{Gpu, GpuOptions};
    pub use crate::nn::{
        manual_seed, BatchNorm, Conv2d, ConvTranspose2d, Init, InstanceNorm, Layer, LayerNorm, Linear, Mode, Module,
        Role, Sequential,
    };
    pub use crate::optim::{Adam, Optimizer, RmsProp, Sgd};
    pub use crate::tensor::{no_grad, Tensor};
    pub use crate::train::{Metrics, TrainState, Trainable, Trainer};
}
