//! Spectral normalisation (Miyato et al. 2018) of a convolution or linear layer: the weight is
//! divided by an estimate of its largest singular value σ, which one power-iteration step per
//! training forward refines on the device. As PyTorch's `torch.nn.utils.spectral_norm`, σ is
//! differentiated through the weight with the iteration's vectors held fixed, and the state
//! dict names are `weight_orig`, `bias`, `weight_u` and `weight_v`.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Conv2d, Layer, Linear, Mode, Module, Role};
use crate::tensor::{no_grad, Tensor};

/// A convolution or linear layer whose weight is spectrally normalised.
pub struct SpectralNorm {
    layer: Layer,
    /// The left singular vector estimate, one value per output.
    pub u: Tensor,
    /// The right singular vector estimate, one value per input times kernel area.
    pub v: Tensor,
}

/// `v` scaled to unit length (PyTorch's `F.normalize` with eps 1e-12).
fn unit(v: &Tensor) -> Tensor {
    v.div(&v.square().sum_all().sqrt().clamp(1e-12, f32::MAX))
}

impl SpectralNorm {
    /// Spectral normalisation of `layer`, a `Layer::Conv2d` or `Layer::Linear`, with the
    /// starting vectors drawn from `rng`; any other layer is returned unchanged as the error.
    pub fn new(layer: Layer, rng: &mut impl Rng) -> Result<Self, Layer> {
        let weight = match &layer {
            Layer::Conv2d(Conv2d { weight, .. }) | Layer::Linear(Linear { weight, .. }) => weight.clone(),
            _ => return Err(layer),
        };
        let (rows, cols) = (weight.shape()[0], weight.numel() / weight.shape()[0]);
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(&mut *rng)).collect() };
        let u = unit(&Tensor::from_vec(weight.gpu(), &[rows], &draw(rows)));
        let v = unit(&Tensor::from_vec(weight.gpu(), &[cols], &draw(cols)));
        Ok(SpectralNorm { layer, u, v })
    }

    fn weight(&self) -> &Tensor {
        match &self.layer {
            Layer::Conv2d(c) => &c.weight,
            Layer::Linear(l) => &l.weight,
            _ => unreachable!("checked in new"),
        }
    }

    /// σ = uᵀ W v for the current vectors (differentiable in W).
    pub fn sigma(&self) -> Tensor {
        let w = self.weight();
        let matrix = w.reshape(&[w.shape()[0], w.numel() / w.shape()[0]]);
        let u = self.u.reshape(&[1, self.u.numel()]);
        u.matmul(&matrix).matmul(&self.v.reshape(&[self.v.numel(), 1])).reshape(&[1])
    }

    /// W / σ; in training mode u and v first take one power-iteration step.
    pub fn normalized_weight(&self, mode: Mode) -> Tensor {
        let w = self.weight();
        if mode == Mode::Train {
            let _no_graph = no_grad();
            let matrix = w.reshape(&[w.shape()[0], w.numel() / w.shape()[0]]);
            let v = unit(&self.u.reshape(&[1, self.u.numel()]).matmul(&matrix).reshape(&[self.v.numel()]));
            let u = unit(&matrix.matmul(&v.reshape(&[self.v.numel(), 1])).reshape(&[self.u.numel()]));
            self.v.assign_from(&v);
            self.u.assign_from(&u);
        }
        w.div(&self.sigma().reshape(&vec![1; w.rank()]))
    }
}

impl Module for SpectralNorm {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let w = self.normalized_weight(mode);
        match &self.layer {
            Layer::Conv2d(c) => x.conv2d(&w, c.stride, c.pad).add_channel_bias(c.bias.as_ref()),
            Layer::Linear(l) => {
                let x2 = if x.rank() == 2 { x.clone() } else { x.flatten_from(1) };
                let y = x2.matmul_t(&w, false, true);
                l.bias.as_ref().map_or(y.clone(), |b| y.add(b))
            }
            _ => unreachable!("checked in new"),
        }
    }

    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        let bias = match &self.layer {
            Layer::Conv2d(c) => c.bias.clone(),
            Layer::Linear(l) => l.bias.clone(),
            _ => None,
        };
        let mut t = vec![("weight_orig".to_string(), self.weight().clone(), Role::Parameter)];
        t.extend(bias.map(|b| ("bias".to_string(), b, Role::Parameter)));
        t.push(("weight_u".into(), self.u.clone(), Role::Buffer));
        t.push(("weight_v".into(), self.v.clone(), Role::Buffer));
        t
    }
}

/// Every convolution and linear layer of `layers` spectrally normalised (the others as they
/// are), the starting vectors drawn from `rng`.
pub fn spectral_norm_all(layers: Vec<Layer>, rng: &mut impl Rng) -> Vec<Layer> {
    layers.into_iter().map(|l| SpectralNorm::new(l, rng).map_or_else(|l| l, Layer::custom)).collect()
}
