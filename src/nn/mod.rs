//! Layers, normalisations and losses built from the differentiable op set, and a `Sequential`
//! container whose parameter names match PyTorch's `nn.Sequential` state dict.

mod layers;
pub mod loss;
mod module;
mod norm;
mod spectral;

pub use layers::{
    normal_tensor, normal_values, one_hot, uniform_tensor, Conv2d, ConvTranspose2d, Embedding, Init, Linear,
    MinibatchDiscrimination,
};
pub use module::{manual_seed, Module};
pub use norm::{BatchNorm, InstanceNorm, LayerNorm, VirtualBatchNorm};
pub use spectral::{spectral_norm_all, SpectralNorm};

use crate::tensor::Tensor;

/// Whether normalisation layers use batch statistics (and update running ones) or the running
/// statistics (sampling, evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics, updating the running ones.
    Train,
    /// Running statistics (sampling, evaluation).
    Eval,
}

/// A tensor a layer owns: trainable parameters get gradients; buffers (running statistics) are
/// saved in checkpoints but never trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trained: gets gradients and optimizer updates.
    Parameter,
    /// Saved but never trained (running statistics).
    Buffer,
}

/// One stage of a `Sequential`: a built-in layer, or any `Module` (`Layer::custom`).
pub enum Layer {
    /// A linear layer.
    Linear(Linear),
    /// A convolution.
    Conv2d(Conv2d),
    /// A transposed convolution.
    ConvTranspose2d(ConvTranspose2d),
    /// Batch norm (fused with a following (leaky) ReLU).
    BatchNorm(BatchNorm),
    /// Layer norm.
    LayerNorm(LayerNorm),
    /// Instance norm.
    InstanceNorm(InstanceNorm),
    /// max(x, slope x).
    LeakyRelu(f32),
    /// max(x, 0).
    Relu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// Reshape to [batch, ...shape].
    Reshape(Vec<usize>),
    /// `[batch, ...]` to `[batch, rest]`.
    Flatten,
    /// Minibatch discrimination.
    MinibatchDiscrimination(MinibatchDiscrimination),
    /// Virtual batch norm.
    VirtualBatchNorm(VirtualBatchNorm),
    /// Mirror padding of the spatial axes by this many pixels (CycleGAN's generators).
    ReflectionPad(usize),
    /// x + block(x): a residual block (its tensors are named "{i}.block.{j}.{name}").
    Residual(Sequential),
    /// A module of your own (or any module, boxed).
    Custom(Box<dyn Module>),
}

impl Layer {
    /// Any module as a stage of a `Sequential`.
    pub fn custom(module: impl Module + 'static) -> Layer {
        Layer::Custom(Box::new(module))
    }

    /// The module behind a layer with one (the activations and reshapes have none).
    fn module(&self) -> Option<&dyn Module> {
        Some(match self {
            Layer::Linear(l) => l,
            Layer::Conv2d(l) => l,
            Layer::ConvTranspose2d(l) => l,
            Layer::BatchNorm(l) => l,
            Layer::LayerNorm(l) => l,
            Layer::InstanceNorm(l) => l,
            Layer::MinibatchDiscrimination(l) => l,
            Layer::VirtualBatchNorm(l) => l,
            Layer::Residual(block) => block,
            Layer::Custom(m) => m.as_ref(),
            _ => return None,
        })
    }
}

impl Module for Layer {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        match self {
            Layer::LeakyRelu(slope) => x.leaky_relu(*slope),
            Layer::Relu => x.relu(),
            Layer::Tanh => x.tanh(),
            Layer::Sigmoid => x.sigmoid(),
            Layer::Reshape(shape) => {
                let mut full = vec![x.shape()[0]];
                full.extend_from_slice(shape);
                x.reshape(&full)
            }
            Layer::Flatten => x.flatten_from(1),
            Layer::ReflectionPad(p) => x.reflect_pad2d(*p, *p, *p, *p),
            Layer::Residual(block) => x.add(&block.forward(x, mode)),
            other => other.module().expect("every other layer is a module").forward(x, mode),
        }
    }

    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        match self {
            Layer::Residual(block) => {
                block.named_tensors().into_iter().map(|(n, t, r)| (format!("block.{n}"), t, r)).collect()
            }
            other => other.module().map(|m| m.named_tensors()).unwrap_or_default(),
        }
    }

    fn forward_activated(&self, x: &Tensor, mode: Mode, slope: f32) -> Option<Tensor> {
        match self {
            Layer::Residual(_) => None,
            other => other.module()?.forward_activated(x, mode, slope),
        }
    }

    fn fusable_slope(&self) -> Option<f32> {
        match self {
            Layer::Relu => Some(0.0),
            Layer::LeakyRelu(slope) if (0.0..=1.0).contains(slope) => Some(*slope),
            Layer::Custom(m) => m.fusable_slope(),
            _ => None,
        }
    }
}

/// Layers applied in order; tensors are named "{index}.{name}" like PyTorch's nn.Sequential.
#[derive(Default)]
pub struct Sequential {
    /// The stages, applied in order.
    pub layers: Vec<Layer>,
}

impl Sequential {
    /// The layers in order.
    pub fn new(layers: Vec<Layer>) -> Self {
        Sequential { layers }
    }

    /// The output (`Module::forward`, callable without the trait in scope).
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        Module::forward(self, x, mode)
    }

    /// The layers' tensors as "{index}.{name}" (`Module::named_tensors`).
    pub fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        Module::named_tensors(self)
    }

    /// The trainable parameters (`Module::parameters`).
    pub fn parameters(&self) -> Vec<Tensor> {
        Module::parameters(self)
    }

    /// How many trainable numbers the layers have.
    pub fn parameter_count(&self) -> usize {
        Module::parameter_count(self)
    }

    /// Appends a module (built-in or your own) as the next stage.
    pub fn push(mut self, module: impl Module + 'static) -> Self {
        self.layers.push(Layer::custom(module));
        self
    }

    /// Appends a built-in layer (an activation, a reshape, ...) as the next stage.
    pub fn then(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Output of every layer (feature matching and diagnostics read intermediate features). A
    /// batch norm or convolution fused with the activation after it (see `run`) reports the
    /// activated output in its own slot too: its pre-activation output is never formed.
    pub fn forward_all(&self, x: &Tensor, mode: Mode) -> Vec<Tensor> {
        self.forward_all_from(0, x, mode)
    }

    /// Outputs of layers `start..` given the input of layer `start` (as `forward_all`).
    pub fn forward_all_from(&self, start: usize, x: &Tensor, mode: Mode) -> Vec<Tensor> {
        let mut outs = Vec::with_capacity(self.layers.len() - start);
        self.run(start, x, mode, |_, out| outs.push(out.clone()));
        outs
    }

    /// Layers `start..` in order, `visit(i, output)` after each. Batch norm or a convolution
    /// followed by a (leaky) ReLU runs as one fused layer, with no pass of its own for the
    /// activation; both layers are visited with the fused output.
    fn run(&self, start: usize, x: &Tensor, mode: Mode, mut visit: impl FnMut(usize, &Tensor)) -> Tensor {
        let mut h = x.clone();
        let mut i = start;
        while i < self.layers.len() {
            let next_slope = self.layers.get(i + 1).and_then(Module::fusable_slope);
            let fused = next_slope.and_then(|slope| self.layers[i].forward_activated(&h, mode, slope));
            if let Some(out) = fused {
                h = out;
                visit(i, &h);
                visit(i + 1, &h);
                i += 2;
                continue;
            }
            h = self.layers[i].forward(&h, mode);
            visit(i, &h);
            i += 1;
        }
        h
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.run(0, x, mode, |_, _| {})
    }

    /// Each layer's tensors as "{index}.{name}", like PyTorch's nn.Sequential.
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.named_tensors().into_iter().map(move |(n, t, r)| (format!("{i}.{n}"), t, r)))
            .collect()
    }
}
