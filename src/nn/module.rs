//! `Module`: what a network piece is to the engine, for the built-in layers and for yours. A
//! module computes its output in train or eval mode and names the tensors it owns as PyTorch's
//! state dict would, so `Sequential` can hold any of them, optimizers find the parameters and
//! checkpoints load in PyTorch.

use std::cell::RefCell;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{BatchNorm, Conv2d, ConvTranspose2d, InstanceNorm, LayerNorm, Linear, MinibatchDiscrimination};
use super::{Mode, Role, VirtualBatchNorm};
use crate::tensor::Tensor;

/// A network piece. Implement `forward` and, if the module owns tensors, `named_tensors`; the
/// rest follows.
///
/// ```
/// use shadergan::nn::{Mode, Module, Role};
/// use shadergan::Tensor;
///
/// /// y = x * scale, with a learned scale per feature.
/// struct Scale {
///     scale: Tensor,
/// }
///
/// impl Module for Scale {
///     fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
///         x.mul(&self.scale)
///     }
///     fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
///         vec![("scale".into(), self.scale.clone(), Role::Parameter)]
///     }
/// }
/// ```
pub trait Module {
    /// The output for input `x`; `mode` says whether normalisations use batch statistics
    /// (`Mode::Train`) or running ones (`Mode::Eval`).
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor;

    /// The tensors this module owns, with PyTorch's state-dict names relative to the module
    /// (`weight`, `0.bias`, `block.1.running_mean`), trainable parameters and buffers alike.
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        Vec::new()
    }

    /// The trainable parameters, in `named_tensors` order.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_tensors().into_iter().filter(|(_, _, r)| *r == Role::Parameter).map(|(_, t, _)| t).collect()
    }

    /// How many trainable numbers the module has.
    fn parameter_count(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// This module followed by a (leaky) ReLU of `slope` (0: ReLU), computed in one fused pass,
    /// where the module has such a form (batch norm, convolution); None elsewhere. `Sequential`
    /// uses it when a module is followed by an activation.
    fn forward_activated(&self, _x: &Tensor, _mode: Mode, _slope: f32) -> Option<Tensor> {
        None
    }

    /// The slope of this module when it is a (leaky) ReLU that the module before it may fuse.
    fn fusable_slope(&self) -> Option<f32> {
        None
    }
}

thread_local! {
    static INIT_RNG: RefCell<ChaCha8Rng> = RefCell::new(ChaCha8Rng::seed_from_u64(0));
}

/// Seeds the generator that layers built with `new` draw their initial weights from (this
/// thread's; like `torch.manual_seed`). Layers whose weights must follow another seed take
/// theirs with `init_with(init, rng)`.
pub fn manual_seed(seed: u64) {
    INIT_RNG.with(|r| *r.borrow_mut() = ChaCha8Rng::seed_from_u64(seed));
}

/// Runs `f` with this thread's initialisation generator.
pub(crate) fn with_init_rng<T>(f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
    INIT_RNG.with(|r| f(&mut r.borrow_mut()))
}

/// Names of a layer's own tensors ("weight") as owned strings.
fn owned(tensors: Vec<(&'static str, Tensor, Role)>) -> Vec<(String, Tensor, Role)> {
    tensors.into_iter().map(|(n, t, r)| (n.to_string(), t, r)).collect()
}

/// The weight and (when present) bias of a linear or convolution layer.
fn weight_and_bias(weight: &Tensor, bias: &Option<Tensor>) -> Vec<(String, Tensor, Role)> {
    let mut v = vec![("weight".to_string(), weight.clone(), Role::Parameter)];
    if let Some(b) = bias {
        v.push(("bias".to_string(), b.clone(), Role::Parameter));
    }
    v
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        Linear::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        weight_and_bias(&self.weight, &self.bias)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        Conv2d::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        weight_and_bias(&self.weight, &self.bias)
    }
    fn forward_activated(&self, x: &Tensor, _mode: Mode, slope: f32) -> Option<Tensor> {
        Some(Conv2d::forward_activated(self, x, slope))
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        ConvTranspose2d::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        weight_and_bias(&self.weight, &self.bias)
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        BatchNorm::forward(self, x, mode)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        owned(self.tensors())
    }
    fn forward_activated(&self, x: &Tensor, mode: Mode, slope: f32) -> Option<Tensor> {
        Some(self.forward_leaky(x, mode, slope))
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        LayerNorm::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        owned(self.tensors())
    }
}

impl Module for InstanceNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        InstanceNorm::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        owned(self.tensors())
    }
}

impl Module for VirtualBatchNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        VirtualBatchNorm::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        owned(self.tensors())
    }
}

impl Module for MinibatchDiscrimination {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        MinibatchDiscrimination::forward(self, x)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        vec![("T".to_string(), self.t.clone(), Role::Parameter)]
    }
}
