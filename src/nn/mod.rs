//! Layers, normalisations and losses built from the differentiable op set, and a `Sequential`
//! container whose parameter names match PyTorch's `nn.Sequential` state dict.

pub mod loss;
mod norm;

pub use norm::{BatchNorm, InstanceNorm, LayerNorm, VirtualBatchNorm};

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// Whether normalisation layers use batch statistics (and update running ones) or the running
/// statistics (sampling, evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// A tensor a layer owns: trainable parameters get gradients; buffers (running statistics) are
/// saved in checkpoints but never trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Parameter,
    Buffer,
}

pub fn normal_tensor(gpu: &Gpu, shape: &[usize], mean: f32, std: f32, rng: &mut impl Rng) -> Tensor {
    let dist = Normal::new(mean, std).expect("standard deviation must be finite and >= 0");
    let data: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| dist.sample(rng)).collect();
    Tensor::from_vec(gpu, shape, &data)
}

pub fn uniform_tensor(gpu: &Gpu, shape: &[usize], bound: f32, rng: &mut impl Rng) -> Tensor {
    let data: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-bound..=bound)).collect();
    Tensor::from_vec(gpu, shape, &data)
}

/// How weights start: DCGAN's N(0, 0.02), or PyTorch's default uniform(±1/sqrt(fan_in)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Normal(f32),
    PyTorchDefault,
}

fn init_weight(gpu: &Gpu, shape: &[usize], fan_in: usize, init: Init, rng: &mut impl Rng) -> Tensor {
    match init {
        Init::Normal(std) => normal_tensor(gpu, shape, 0.0, std, rng),
        Init::PyTorchDefault => uniform_tensor(gpu, shape, 1.0 / (fan_in as f32).sqrt(), rng),
    }
    .requires_grad()
}

fn init_bias(gpu: &Gpu, n: usize, fan_in: usize, init: Init, rng: &mut impl Rng) -> Tensor {
    match init {
        Init::Normal(_) => Tensor::zeros(gpu, &[n]),
        Init::PyTorchDefault => uniform_tensor(gpu, &[n], 1.0 / (fan_in as f32).sqrt(), rng),
    }
    .requires_grad()
}

/// y = x W^T + b, weight [out, in] as in PyTorch.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(gpu: &Gpu, inputs: usize, outputs: usize, bias: bool, init: Init, rng: &mut impl Rng) -> Self {
        let weight = init_weight(gpu, &[outputs, inputs], inputs, init, rng);
        let bias = bias.then(|| init_bias(gpu, outputs, inputs, init, rng));
        Linear { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x2 = if x.rank() == 2 { x.clone() } else { x.flatten_from(1) };
        let y = x2.matmul_t(&self.weight, false, true);
        match &self.bias {
            Some(b) => y.add(b),
            None => y,
        }
    }
}

/// Rows of the identity: labels [batch] -> [batch, classes] (class conditioning, soft targets).
pub fn one_hot(gpu: &Gpu, labels: &[u32], classes: usize) -> Tensor {
    let mut data = vec![0.0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        assert!((l as usize) < classes, "label {l} out of range for {classes} classes");
        data[i * classes + l as usize] = 1.0;
    }
    Tensor::from_vec(gpu, &[labels.len(), classes], &data)
}

/// A learned vector per class (PyTorch's nn.Embedding): one_hot(labels) · weight, so the
/// gradient reaches exactly the rows that were used.
pub struct Embedding {
    pub weight: Tensor,
}

impl Embedding {
    pub fn new(gpu: &Gpu, classes: usize, dim: usize, rng: &mut impl Rng) -> Self {
        Embedding { weight: normal_tensor(gpu, &[classes, dim], 0.0, 1.0, rng).requires_grad() }
    }

    pub fn forward(&self, labels: &[u32]) -> Tensor {
        one_hot(self.weight.gpu(), labels, self.weight.shape()[0]).matmul(&self.weight)
    }
}

/// 2-d convolution, weight [out, in, k, k].
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        bias: bool,
        init: Init,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in = c_in * kernel * kernel;
        let weight = init_weight(gpu, &[c_out, c_in, kernel, kernel], fan_in, init, rng);
        let bias = bias.then(|| init_bias(gpu, c_out, fan_in, init, rng));
        Conv2d { weight, bias, stride, pad }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.stride, self.pad).add_channel_bias(self.bias.as_ref())
    }

    /// The layer followed by a (leaky) ReLU of `slope`, fused where the convolution allows
    /// (`Tensor::conv2d_bias_activation`).
    pub fn forward_activated(&self, x: &Tensor, slope: f32) -> Tensor {
        x.conv2d_bias_activation(&self.weight, self.bias.as_ref(), self.stride, self.pad, slope)
    }
}

/// Transposed 2-d convolution, weight [in, out, k, k] as in PyTorch.
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl ConvTranspose2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        output_padding: usize,
        bias: bool,
        init: Init,
        rng: &mut impl Rng,
    ) -> Self {
        // PyTorch computes fan_in of a transposed conv from weight.shape[1] * k * k.
        let fan_in = c_out * kernel * kernel;
        let weight = init_weight(gpu, &[c_in, c_out, kernel, kernel], fan_in, init, rng);
        let bias = bias.then(|| init_bias(gpu, c_out, fan_in, init, rng));
        ConvTranspose2d { weight, bias, stride, pad, output_padding }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose2d(&self.weight, self.stride, self.pad, self.output_padding)
            .add_channel_bias(self.bias.as_ref())
    }
}

/// Minibatch discrimination (Salimans et al. 2016): features [n, A] are projected by T to
/// `kernels` rows of `dims`, and each sample gets, per kernel, sum_j exp(-||M_i - M_j||_1) over
/// the other samples; these closeness scores are appended to its features ([n, A + kernels]),
/// so D can see a batch that lacks diversity.
pub struct MinibatchDiscrimination {
    pub t: Tensor,
    pub kernels: usize,
    pub dims: usize,
}

impl MinibatchDiscrimination {
    pub fn new(gpu: &Gpu, features: usize, kernels: usize, dims: usize, rng: &mut impl Rng) -> Self {
        MinibatchDiscrimination {
            t: normal_tensor(gpu, &[features, kernels * dims], 0.0, 0.05, rng).requires_grad(),
            kernels,
            dims,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        let m = x.matmul(&self.t).reshape(&[n, self.kernels, self.dims]);
        let diff = m.reshape(&[n, 1, self.kernels, self.dims]).sub(&m.reshape(&[1, n, self.kernels, self.dims]));
        let closeness = diff.abs().sum(&[3], false).neg().exp();
        // Each sample is at distance 0 from itself: drop that exp(0) = 1.
        let o = closeness.sum(&[1], false).add_scalar(-1.0);
        Tensor::cat(&[x, &o], 1)
    }
}

/// One stage of a `Sequential`.
pub enum Layer {
    Linear(Linear),
    Conv2d(Conv2d),
    ConvTranspose2d(ConvTranspose2d),
    BatchNorm(BatchNorm),
    LayerNorm(LayerNorm),
    InstanceNorm(InstanceNorm),
    LeakyRelu(f32),
    Relu,
    Tanh,
    Sigmoid,
    /// Reshape to [batch, ...shape].
    Reshape(Vec<usize>),
    Flatten,
    MinibatchDiscrimination(MinibatchDiscrimination),
    VirtualBatchNorm(VirtualBatchNorm),
    /// Mirror padding of the spatial axes by this many pixels (CycleGAN's generators).
    ReflectionPad(usize),
    /// x + block(x): a residual block (its tensors are named "{i}.block.{j}.{name}").
    Residual(Sequential),
}

impl Layer {
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        match self {
            Layer::Linear(l) => l.forward(x),
            Layer::Conv2d(l) => l.forward(x),
            Layer::ConvTranspose2d(l) => l.forward(x),
            Layer::BatchNorm(l) => l.forward(x, mode),
            Layer::LayerNorm(l) => l.forward(x),
            Layer::InstanceNorm(l) => l.forward(x),
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
            Layer::MinibatchDiscrimination(l) => l.forward(x),
            Layer::VirtualBatchNorm(l) => l.forward(x),
            Layer::ReflectionPad(p) => x.reflect_pad2d(*p, *p, *p, *p),
            Layer::Residual(block) => x.add(&block.forward(x, mode)),
        }
    }

    /// The tensors this layer owns, with PyTorch's attribute names (nested ones dotted).
    pub fn named(&self) -> Vec<(String, Tensor, Role)> {
        match self {
            Layer::Residual(block) => {
                block.named_tensors().into_iter().map(|(n, t, r)| (format!("block.{n}"), t, r)).collect()
            }
            other => other.tensors().into_iter().map(|(n, t, r)| (n.to_string(), t, r)).collect(),
        }
    }

    /// The tensors this layer owns directly, with PyTorch's attribute names.
    pub fn tensors(&self) -> Vec<(&'static str, Tensor, Role)> {
        let weight_bias = |w: &Tensor, b: &Option<Tensor>| {
            let mut v = vec![("weight", w.clone(), Role::Parameter)];
            if let Some(b) = b {
                v.push(("bias", b.clone(), Role::Parameter));
            }
            v
        };
        match self {
            Layer::Linear(l) => weight_bias(&l.weight, &l.bias),
            Layer::Conv2d(l) => weight_bias(&l.weight, &l.bias),
            Layer::ConvTranspose2d(l) => weight_bias(&l.weight, &l.bias),
            Layer::BatchNorm(l) => l.tensors(),
            Layer::LayerNorm(l) => l.tensors(),
            Layer::InstanceNorm(l) => l.tensors(),
            Layer::MinibatchDiscrimination(l) => vec![("T", l.t.clone(), Role::Parameter)],
            Layer::VirtualBatchNorm(l) => l.tensors(),
            _ => vec![],
        }
    }
}

/// The slope of an activation that batch norm's kernels can apply (ReLU, or a leaky ReLU with
/// a slope in [0, 1]).
fn fusable(layer: &Layer) -> Option<f32> {
    match layer {
        Layer::Relu => Some(0.0),
        Layer::LeakyRelu(slope) if (0.0..=1.0).contains(slope) => Some(*slope),
        _ => None,
    }
}

/// Layers applied in order; tensors are named "{index}.{name}" like PyTorch's nn.Sequential.
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Layer>,
}

impl Sequential {
    pub fn new(layers: Vec<Layer>) -> Self {
        Sequential { layers }
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.run(0, x, mode, |_, _| {})
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
            let fused = match (&self.layers[i], self.layers.get(i + 1).and_then(fusable)) {
                (Layer::BatchNorm(bn), Some(slope)) => Some(bn.forward_leaky(&h, mode, slope)),
                (Layer::Conv2d(conv), Some(slope)) => Some(conv.forward_activated(&h, slope)),
                _ => None,
            };
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

    pub fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.named().into_iter().map(move |(n, t, r)| (format!("{i}.{n}"), t, r)))
            .collect()
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        self.named_tensors().into_iter().filter(|(_, _, r)| *r == Role::Parameter).map(|(_, t, _)| t).collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.parameters().iter().map(|t| t.numel()).sum()
    }
}
