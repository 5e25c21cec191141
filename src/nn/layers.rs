//! The built-in layers with weights: linear, convolutions, embeddings and minibatch
//! discrimination, with PyTorch's layouts and builder-style constructors.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::module::with_init_rng;
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// A tensor of `shape` with values drawn from N(mean, std²).
///
/// # Panics
/// If `std` is negative or not finite (an initialisation constant of the calling code).
pub fn normal_tensor(gpu: &Gpu, shape: &[usize], mean: f32, std: f32, rng: &mut impl Rng) -> Tensor {
    Tensor::from_vec(gpu, shape, &normal_values(shape.iter().product(), mean, std, rng))
}

/// `n` values drawn from N(mean, std^2) on the host, as `normal_tensor` uploads them.
pub fn normal_values(n: usize, mean: f32, std: f32, rng: &mut impl Rng) -> Vec<f32> {
    let dist = Normal::new(mean, std).expect("standard deviation must be finite and >= 0");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// A tensor of `shape` with values drawn uniformly from [-bound, bound].
pub fn uniform_tensor(gpu: &Gpu, shape: &[usize], bound: f32, rng: &mut impl Rng) -> Tensor {
    let data: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-bound..=bound)).collect();
    Tensor::from_vec(gpu, shape, &data)
}

/// How weights start: DCGAN's N(0, 0.02), or PyTorch's default uniform(±1/sqrt(fan_in)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, std²) weights and zero biases (DCGAN's 0.02).
    Normal(f32),
    /// PyTorch's default: uniform within ±1/sqrt(fan_in), weights and biases.
    PyTorchDefault,
}

fn init_weight(gpu: &Gpu, shape: &[usize], fan_in: usize, init: Init, rng: &mut impl Rng) -> Tensor {
    match init {
        Init::Normal(std) => normal_tensor(gpu, shape, 0.0, std, rng),
        Init::PyTorchDefault => uniform_tensor(gpu, shape, 1.0 / (fan_in as f32).sqrt(), rng),
    }
    .requires_grad()
}

/// The builder methods every layer with a weight and an optional bias shares: `.bias(on)`,
/// `.init(init)` and `.init_with(init, rng)`. `$outputs` is the weight's axis of output
/// features (the bias's length); fan-in is the product of the axes after the first, as
/// PyTorch computes it (for a transposed convolution too).
macro_rules! weight_and_bias_builders {
    ($layer:ty, outputs_axis: $outputs:expr) => {
        impl $layer {
            /// With (a zero one, until the next `init`) or without a bias.
            pub fn bias(mut self, on: bool) -> Self {
                let outputs = self.weight.shape()[$outputs];
                self.bias = match (on, self.bias) {
                    (false, _) => None,
                    (true, Some(b)) => Some(b),
                    (true, None) => Some(Tensor::zeros(self.weight.gpu(), &[outputs]).requires_grad()),
                };
                self
            }

            /// Weights (and bias) redrawn as `init` says, from the module generator.
            pub fn init(self, init: Init) -> Self {
                with_init_rng(|rng| self.init_with(init, rng))
            }

            /// Weights (and bias) redrawn as `init` says, from `rng`: the weight first, then
            /// the bias.
            pub fn init_with(mut self, init: Init, rng: &mut impl Rng) -> Self {
                let shape = self.weight.shape().to_vec();
                let gpu = self.weight.gpu().clone();
                let fan_in = shape[1..].iter().product();
                let has_bias = self.bias.is_some();
                self.weight = init_weight(&gpu, &shape, fan_in, init, rng);
                self.bias = has_bias.then(|| init_bias(&gpu, shape[$outputs], fan_in, init, rng));
                self
            }
        }
    };
}

/// `.stride(s)` and `.padding(p)` of the convolution layers.
macro_rules! window_builders {
    ($layer:ty) => {
        impl $layer {
            /// Steps of the window.
            pub fn stride(mut self, stride: usize) -> Self {
                self.stride = stride;
                self
            }

            /// Zeros added on every side (for a transposed convolution: the padding of the
            /// convolution it transposes).
            pub fn padding(mut self, pad: usize) -> Self {
                self.pad = pad;
                self
            }
        }
    };
}

weight_and_bias_builders!(Linear, outputs_axis: 0);
weight_and_bias_builders!(Conv2d, outputs_axis: 0);
weight_and_bias_builders!(ConvTranspose2d, outputs_axis: 1);
window_builders!(Conv2d);
window_builders!(ConvTranspose2d);

fn init_bias(gpu: &Gpu, n: usize, fan_in: usize, init: Init, rng: &mut impl Rng) -> Tensor {
    match init {
        Init::Normal(_) => Tensor::zeros(gpu, &[n]),
        Init::PyTorchDefault => uniform_tensor(gpu, &[n], 1.0 / (fan_in as f32).sqrt(), rng),
    }
    .requires_grad()
}

/// y = x W^T + b, weight [out, in] as in PyTorch.
pub struct Linear {
    /// `[outputs, inputs]`.
    pub weight: Tensor,
    /// `[outputs]`, if the layer has one.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// An `inputs -> outputs` layer with a bias, initialised as PyTorch's `nn.Linear` from the
    /// module generator (`manual_seed`). Chain `.bias(false)`, `.init(...)` or `.init_with(...)`.
    pub fn new(gpu: &Gpu, inputs: usize, outputs: usize) -> Self {
        let weight = Tensor::zeros(gpu, &[outputs, inputs]).requires_grad();
        let layer = Linear { weight, bias: Some(Tensor::zeros(gpu, &[outputs]).requires_grad()) };
        layer.init(Init::PyTorchDefault)
    }

    /// x W^T + b; inputs with more than two axes are flattened from the second.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x2 = if x.rank() == 2 { x.clone() } else { x.flatten_from(1) };
        let y = x2.matmul_t(&self.weight, false, true);
        match &self.bias {
            Some(b) => y.add(b),
            None => y,
        }
    }
}

/// Rows of the identity: labels `[batch]` -> `[batch, classes]` (class conditioning, soft targets).
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
    /// One row per class, `[classes, dim]`.
    pub weight: Tensor,
}

impl Embedding {
    /// `classes` vectors of `dim` values, drawn from N(0, 1) as PyTorch does.
    pub fn new(gpu: &Gpu, classes: usize, dim: usize, rng: &mut impl Rng) -> Self {
        Embedding { weight: normal_tensor(gpu, &[classes, dim], 0.0, 1.0, rng).requires_grad() }
    }

    /// The vectors of `labels`, `[labels.len(), dim]`.
    pub fn forward(&self, labels: &[u32]) -> Tensor {
        one_hot(self.weight.gpu(), labels, self.weight.shape()[0]).matmul(&self.weight)
    }
}

/// 2-d convolution, weight [out, in, k, k].
pub struct Conv2d {
    /// `[c_out, c_in, kernel, kernel]`.
    pub weight: Tensor,
    /// `[c_out]`, if the layer has one.
    pub bias: Option<Tensor>,
    /// Steps of the window.
    pub stride: usize,
    /// Zeros added on every side.
    pub pad: usize,
}

impl Conv2d {
    /// A `c_in -> c_out` convolution with a `kernel` x `kernel` window: stride 1, no padding, a
    /// bias, PyTorch's default initialisation from the module generator (`manual_seed`). Chain
    /// `.stride(s)`, `.padding(p)`, `.bias(false)`, `.init(...)` or `.init_with(...)`.
    pub fn new(gpu: &Gpu, c_in: usize, c_out: usize, kernel: usize) -> Self {
        let weight = Tensor::zeros(gpu, &[c_out, c_in, kernel, kernel]).requires_grad();
        let layer = Conv2d { weight, bias: Some(Tensor::zeros(gpu, &[c_out]).requires_grad()), stride: 1, pad: 0 };
        layer.init(Init::PyTorchDefault)
    }

    /// conv2d(x, weight) + bias.
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
    /// `[c_in, c_out, kernel, kernel]` (PyTorch's layout).
    pub weight: Tensor,
    /// `[c_out]`, if the layer has one.
    pub bias: Option<Tensor>,
    /// Steps of the window over the output.
    pub stride: usize,
    /// The padding of the convolution this one transposes.
    pub pad: usize,
    /// Rows and columns added at the bottom and right of the output.
    pub output_padding: usize,
}

impl ConvTranspose2d {
    /// A `c_in -> c_out` transposed convolution with a `kernel` x `kernel` window: stride 1, no
    /// padding, a bias, PyTorch's default initialisation from the module generator. Chain
    /// `.stride(s)`, `.padding(p)`, `.output_padding(p)`, `.bias(false)`, `.init(...)` or
    /// `.init_with(...)`.
    pub fn new(gpu: &Gpu, c_in: usize, c_out: usize, kernel: usize) -> Self {
        let weight = Tensor::zeros(gpu, &[c_in, c_out, kernel, kernel]).requires_grad();
        let bias = Some(Tensor::zeros(gpu, &[c_out]).requires_grad());
        ConvTranspose2d { weight, bias, stride: 1, pad: 0, output_padding: 0 }.init(Init::PyTorchDefault)
    }

    /// Rows and columns added at the bottom and right, picking among the sizes a stride
    /// above 1 makes ambiguous.
    pub fn output_padding(mut self, output_padding: usize) -> Self {
        self.output_padding = output_padding;
        self
    }

    /// conv_transpose2d(x, weight) + bias.
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
    /// The projection T, `[features, kernels * dims]`.
    pub t: Tensor,
    /// Closeness scores appended per sample.
    pub kernels: usize,
    /// Size of each projected row.
    pub dims: usize,
}

impl MinibatchDiscrimination {
    /// T drawn from N(0, 0.05²) for `features` inputs.
    pub fn new(gpu: &Gpu, features: usize, kernels: usize, dims: usize, rng: &mut impl Rng) -> Self {
        MinibatchDiscrimination {
            t: normal_tensor(gpu, &[features, kernels * dims], 0.0, 0.05, rng).requires_grad(),
            kernels,
            dims,
        }
    }

    /// x with each sample's closeness scores appended, `[n, features + kernels]`.
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
