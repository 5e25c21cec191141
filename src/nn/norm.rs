//! Normalisation layers. Batch, layer and instance norm share one set of fused kernels whose
//! backward falls back to the composite formula when a second-order gradient is asked for
//! (WGAN-GP critics use layer norm).

use crate::gpu::Gpu;
use crate::tensor::{no_grad, Tensor};

use super::{Mode, Role};

/// Shape [1, C, 1, ...] for broadcasting per-channel values over x.
fn channel_shape(x: &Tensor) -> Vec<usize> {
    let mut s = vec![1; x.rank()];
    s[1] = x.shape()[1];
    s
}

/// Batch norm over [N, C] or [N, C, H, W]: batch statistics in training (updating the running
/// ones with `momentum`, PyTorch's convention), running statistics in eval.
pub struct BatchNorm {
    /// Per-channel scale (gamma).
    pub weight: Tensor,
    /// Per-channel shift (beta).
    pub bias: Tensor,
    /// Running mean of the batch means.
    pub running_mean: Tensor,
    /// Running mean of the batch variances (unbiased).
    pub running_var: Tensor,
    /// Training batches seen (PyTorch's buffer, saved for compatibility).
    pub num_batches_tracked: Tensor,
    /// Weight of a new batch in the running statistics.
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl BatchNorm {
    /// Batch norm over `channels`: gamma 1, beta 0, running statistics 0 and 1.
    pub fn new(gpu: &Gpu, channels: usize) -> Self {
        BatchNorm {
            weight: Tensor::ones(gpu, &[channels]).requires_grad(),
            bias: Tensor::zeros(gpu, &[channels]).requires_grad(),
            running_mean: Tensor::zeros(gpu, &[channels]),
            running_var: Tensor::ones(gpu, &[channels]),
            num_batches_tracked: Tensor::zeros(gpu, &[1]),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// Normalised x (batch statistics in training, running ones in eval), scaled and shifted.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.forward_leaky(x, mode, 1.0)
    }

    /// forward, then a leaky ReLU of `slope` (0: ReLU; 1: none); in training mode fused into the
    /// batch-norm kernels (`Tensor::batch_norm_train_leaky`).
    pub fn forward_leaky(&self, x: &Tensor, mode: Mode, slope: f32) -> Tensor {
        let cs = channel_shape(x);
        assert_eq!(cs[1], self.weight.numel(), "batch norm for {} channels got {:?}", self.weight.numel(), x.shape());
        let normalized = match mode {
            Mode::Train if crate::tensor::collective::batch_norm_ranks().is_some() => {
                return self.forward_synchronized(x, &cs, slope);
            }
            Mode::Train => {
                let affine = [&self.weight, &self.bias];
                let running = [&self.running_mean, &self.running_var];
                let y = x.batch_norm_train_leaky(affine, running, self.momentum, self.eps, slope);
                let _no_graph = no_grad();
                self.num_batches_tracked.assign_from(&self.num_batches_tracked.add_scalar(1.0));
                return y;
            }
            Mode::Eval => {
                let mean = self.running_mean.reshape(&cs);
                let inv_std = self.running_var.reshape(&cs).add_scalar(self.eps).powf(-0.5);
                x.sub(&mean).mul(&inv_std)
            }
        };
        normalized.mul(&self.weight.reshape(&cs)).add(&self.bias.reshape(&cs)).activated(slope)
    }

    /// Training-mode batch norm over the global batch of a data-parallel job: the means of x
    /// and of (x - mean)² are averaged over the ranks by a differentiable op, so the backward
    /// pass averages its reductions over the ranks too (the ranks hold equal shares).
    fn forward_synchronized(&self, x: &Tensor, cs: &[usize], slope: f32) -> Tensor {
        let ranks = crate::tensor::collective::batch_norm_ranks().unwrap_or(1);
        let axes: Vec<isize> = (0..x.rank() as isize).filter(|&a| a != 1).collect();
        let mean = x.mean(&axes, true).mean_over_ranks();
        let centered = x.sub(&mean);
        let var = centered.square().mean(&axes, true).mean_over_ranks();
        let y = centered.div(&var.add_scalar(self.eps).sqrt());
        {
            let _no_graph = no_grad();
            let (c, m) = (cs[1], self.momentum);
            let count = (x.numel() / c * ranks) as f32;
            let unbiased = var.reshape(&[c]).scale(count / (count - 1.0).max(1.0));
            self.running_mean.assign_from(&self.running_mean.scale(1.0 - m).add(&mean.reshape(&[c]).scale(m)));
            self.running_var.assign_from(&self.running_var.scale(1.0 - m).add(&unbiased.scale(m)));
            self.num_batches_tracked.assign_from(&self.num_batches_tracked.add_scalar(1.0));
        }
        y.mul(&self.weight.reshape(cs)).add(&self.bias.reshape(cs)).activated(slope)
    }

    /// The layer's tensors with PyTorch's names.
    pub fn tensors(&self) -> Vec<(&'static str, Tensor, Role)> {
        vec![
            ("weight", self.weight.clone(), Role::Parameter),
            ("bias", self.bias.clone(), Role::Parameter),
            ("running_mean", self.running_mean.clone(), Role::Buffer),
            ("running_var", self.running_var.clone(), Role::Buffer),
            ("num_batches_tracked", self.num_batches_tracked.clone(), Role::Buffer),
        ]
    }
}

/// Layer norm over every axis but the batch, with an elementwise affine of that shape
/// (PyTorch's `nn.LayerNorm(x.shape[1:])`).
pub struct LayerNorm {
    /// Elementwise scale, of the normalised shape.
    pub weight: Tensor,
    /// Elementwise shift, of the normalised shape.
    pub bias: Tensor,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl LayerNorm {
    /// Layer norm over `normalized_shape` (every axis but the batch): scale 1, shift 0.
    pub fn new(gpu: &Gpu, normalized_shape: &[usize]) -> Self {
        LayerNorm {
            weight: Tensor::ones(gpu, normalized_shape).requires_grad(),
            bias: Tensor::zeros(gpu, normalized_shape).requires_grad(),
            eps: 1e-5,
        }
    }

    /// Each sample normalised over its other axes, then scaled and shifted.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        assert_eq!(
            &x.shape()[1..],
            self.weight.shape(),
            "layer norm over {:?} got {:?}",
            self.weight.shape(),
            x.shape()
        );
        x.layer_norm(self.eps).mul(&self.weight).add(&self.bias)
    }

    /// The layer's tensors with PyTorch's names.
    pub fn tensors(&self) -> Vec<(&'static str, Tensor, Role)> {
        vec![("weight", self.weight.clone(), Role::Parameter), ("bias", self.bias.clone(), Role::Parameter)]
    }
}

/// Instance norm: each (sample, channel) plane normalised on its own; optional per-channel
/// affine (CycleGAN's reference uses none).
pub struct InstanceNorm {
    /// Per-channel (scale, shift), if the layer has them.
    pub affine: Option<(Tensor, Tensor)>,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl InstanceNorm {
    /// Instance norm over `channels`, with a learned affine if `affine`.
    pub fn new(gpu: &Gpu, channels: usize, affine: bool) -> Self {
        InstanceNorm {
            affine: affine.then(|| {
                (Tensor::ones(gpu, &[channels]).requires_grad(), Tensor::zeros(gpu, &[channels]).requires_grad())
            }),
            eps: 1e-5,
        }
    }

    /// Each (sample, channel) plane normalised on its own.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        assert!(x.rank() >= 3, "instance norm needs [N, C, spatial...], got {:?}", x.shape());
        let y = x.instance_norm(self.eps);
        match &self.affine {
            Some((w, b)) => {
                let cs = channel_shape(x);
                y.mul(&w.reshape(&cs)).add(&b.reshape(&cs))
            }
            None => y,
        }
    }

    /// The layer's tensors with PyTorch's names.
    pub fn tensors(&self) -> Vec<(&'static str, Tensor, Role)> {
        match &self.affine {
            Some((w, b)) => vec![("weight", w.clone(), Role::Parameter), ("bias", b.clone(), Role::Parameter)],
            None => vec![],
        }
    }
}

/// Virtual batch norm (Salimans et al. 2016): each sample is normalised with the statistics of a
/// fixed reference batch together with itself, so a sample's output does not depend on the
/// other samples of its batch. The input is [reference rows; current rows] (the reference batch
/// goes through the network beside every batch, so its statistics follow the weights); the
/// reference rows are normalised with their own statistics.
pub struct VirtualBatchNorm {
    /// Per-channel scale.
    pub weight: Tensor,
    /// Per-channel shift.
    pub bias: Tensor,
    /// How many samples of each batch form the reference batch.
    pub reference: usize,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl VirtualBatchNorm {
    /// Virtual batch norm over `channels`, normalising by the first `reference` samples' statistics.
    pub fn new(gpu: &Gpu, channels: usize, reference: usize) -> Self {
        VirtualBatchNorm {
            weight: Tensor::ones(gpu, &[channels]).requires_grad(),
            bias: Tensor::zeros(gpu, &[channels]).requires_grad(),
            reference,
            eps: 1e-5,
        }
    }

    /// x normalised with the reference batch's statistics, scaled and shifted.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (r, rows) = (self.reference, x.shape()[0]);
        assert!(rows > r, "virtual batch norm needs the {r} reference rows first, got {:?}", x.shape());
        let spatial: Vec<isize> = (2..x.rank() as isize).collect();
        let all: Vec<isize> = std::iter::once(0).chain(spatial.iter().copied()).collect();
        let reference = x.narrow(0, 0, r);
        let current = x.narrow(0, r, rows - r);
        let mu_ref = reference.mean(&all, true);
        let sq_ref = reference.square().mean(&all, true);
        let normalise =
            |v: &Tensor, mu: &Tensor, sq: &Tensor| v.sub(mu).mul(&sq.sub(&mu.square()).add_scalar(self.eps).powf(-0.5));
        let w = 1.0 / (r as f32 + 1.0);
        let (mean_i, sq_i) = if spatial.is_empty() {
            (current.clone(), current.square())
        } else {
            (current.mean(&spatial, true), current.square().mean(&spatial, true))
        };
        let mu = mu_ref.scale(r as f32 * w).add(&mean_i.scale(w));
        let sq = sq_ref.scale(r as f32 * w).add(&sq_i.scale(w));
        let y = Tensor::cat(&[&normalise(&reference, &mu_ref, &sq_ref), &normalise(&current, &mu, &sq)], 0);
        let cs = channel_shape(x);
        y.mul(&self.weight.reshape(&cs)).add(&self.bias.reshape(&cs))
    }

    /// The layer's tensors with PyTorch's names.
    pub fn tensors(&self) -> Vec<(&'static str, Tensor, Role)> {
        vec![("weight", self.weight.clone(), Role::Parameter), ("bias", self.bias.clone(), Role::Parameter)]
    }
}
