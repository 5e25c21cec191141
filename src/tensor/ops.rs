//! The differentiable op set. Every op launches one kernel and, when a gradient is wanted,
//! records a node whose gradient rule (src/autograd.rs) is written in these same ops.

use std::sync::Arc;

use super::kernels::{self, contiguous_strides, BatchNormParams, ConvGeometry, LossKind, ReflectGeometry};
use super::{grad_enabled, BinaryOp, ReduceOp, Tensor, UnaryOp};
use crate::autograd::{Node, Op};
use crate::gpu::GpuBuffer;

/// numpy broadcasting of two shapes, or a message naming both.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

impl Tensor {
    fn record(&self, inputs: &[&Tensor], shape: Vec<usize>, buffer: GpuBuffer, op: Op, keep_output: bool) -> Tensor {
        let buffer = Arc::new(buffer);
        let wants_grad = grad_enabled() && inputs.iter().any(|t| t.tracks_grad()) && op.is_differentiable();
        let node = wants_grad.then(|| Node {
            op,
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            output: keep_output.then(|| buffer.clone()),
        });
        Tensor::from_parts(self.gpu(), shape, buffer, node)
    }

    fn check_device(&self, other: &Tensor) {
        assert!(self.gpu().same_device(other.gpu()), "tensors live on different devices");
    }

    // ---- elementwise, one operand ----

    /// Any unary kernel by code (for tests that sweep the whole op table).
    #[doc(hidden)]
    pub fn unary_for_tests(&self, op: UnaryOp, alpha: f32, beta: f32) -> Tensor {
        self.unary(op, alpha, beta)
    }

    #[doc(hidden)]
    pub fn binary_for_tests(&self, op: BinaryOp, other: &Tensor) -> Tensor {
        self.binary(op, other)
    }

    pub(crate) fn unary(&self, op: UnaryOp, alpha: f32, beta: f32) -> Tensor {
        let out = kernels::unary(self.gpu(), op, alpha, beta, self.buffer());
        let keep = matches!(op, UnaryOp::Exp | UnaryOp::Sqrt | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Recip);
        self.record(&[self], self.shape().to_vec(), out, Op::Unary { op, alpha, beta }, keep)
    }

    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg, 0.0, 0.0)
    }
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp, 0.0, 0.0)
    }
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log, 0.0, 0.0)
    }
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt, 0.0, 0.0)
    }
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs, 0.0, 0.0)
    }
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh, 0.0, 0.0)
    }
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid, 0.0, 0.0)
    }
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu, 0.0, 0.0)
    }
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary(UnaryOp::LeakyRelu, slope, 0.0)
    }

    /// A fused activation's slope applied as ops: the leaky ReLU of `slope`, nothing at 1.
    pub(crate) fn activated(&self, slope: f32) -> Tensor {
        if slope == 1.0 {
            self.clone()
        } else {
            self.leaky_relu(slope)
        }
    }
    /// log(1 + e^x), computed without overflow.
    pub fn softplus(&self) -> Tensor {
        self.unary(UnaryOp::Softplus, 0.0, 0.0)
    }
    pub fn recip(&self) -> Tensor {
        self.unary(UnaryOp::Recip, 0.0, 0.0)
    }
    pub fn powf(&self, exponent: f32) -> Tensor {
        self.unary(UnaryOp::Pow, exponent, 0.0)
    }
    pub fn square(&self) -> Tensor {
        self.powf(2.0)
    }
    /// scale * x + shift
    pub fn affine(&self, scale: f32, shift: f32) -> Tensor {
        self.unary(UnaryOp::Affine, scale, shift)
    }
    pub fn scale(&self, factor: f32) -> Tensor {
        self.affine(factor, 0.0)
    }
    pub fn add_scalar(&self, value: f32) -> Tensor {
        self.affine(1.0, value)
    }
    /// Clamped values; the gradient passes where the input lies inside [low, high].
    pub fn clamp(&self, low: f32, high: f32) -> Tensor {
        self.unary(UnaryOp::Clamp, low, high)
    }
    /// 1 where x > 0, else 0 (no gradient).
    pub fn step(&self) -> Tensor {
        self.unary(UnaryOp::Step, 0.0, 0.0)
    }
    /// 1 where x > 0, else `slope`: leaky ReLU's derivative (no gradient).
    pub fn leaky_slope(&self, slope: f32) -> Tensor {
        self.unary(UnaryOp::LeakySlope, slope, 0.0)
    }
    pub fn sign(&self) -> Tensor {
        self.unary(UnaryOp::Sign, 0.0, 0.0)
    }
    /// 1 where low <= x <= high, else 0 (no gradient).
    pub fn in_range(&self, low: f32, high: f32) -> Tensor {
        self.unary(UnaryOp::InRange, low, high)
    }

    // ---- elementwise, two operands with broadcasting ----

    pub(crate) fn binary(&self, op: BinaryOp, other: &Tensor) -> Tensor {
        self.check_device(other);
        let shape = broadcast_shape(self.shape(), other.shape()).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        let out = kernels::binary(self.gpu(), op, self.buffer(), self.shape(), other.buffer(), other.shape(), &shape);
        self.record(&[self, other], shape, out, Op::Binary(op), false)
    }

    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Add, other)
    }
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Sub, other)
    }
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Mul, other)
    }
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Div, other)
    }
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Max, other)
    }
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Min, other)
    }
    /// 1 where self > other (no gradient).
    pub fn greater(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Greater, other)
    }
    /// 1 where self == other (no gradient).
    pub fn equal(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Equal, other)
    }

    // ---- reductions ----

    fn normalize_axes(&self, axes: &[isize]) -> Vec<usize> {
        let rank = self.rank() as isize;
        let mut out: Vec<usize> = axes
            .iter()
            .map(|&a| {
                let a = if a < 0 { a + rank } else { a };
                assert!((0..rank).contains(&a), "axis {a} out of range for shape {:?}", self.shape());
                a as usize
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn reduced_shape(&self, axes: &[usize], keepdim: bool) -> Vec<usize> {
        let mut shape = Vec::new();
        for (d, &e) in self.shape().iter().enumerate() {
            if !axes.contains(&d) {
                shape.push(e);
            } else if keepdim {
                shape.push(1);
            }
        }
        shape
    }

    /// Sum over `axes` (negative counts from the end).
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let axes = self.normalize_axes(axes);
        let out = kernels::reduce(self.gpu(), ReduceOp::Sum, self.buffer(), self.shape(), &axes);
        let kept = self.reduced_shape(&axes, true);
        let summed = self.record(&[self], kept, out, Op::Sum, false);
        if keepdim {
            summed
        } else {
            summed.reshape(&self.reduced_shape(&axes, false))
        }
    }

    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let axes_n = self.normalize_axes(axes);
        let count: usize = axes_n.iter().map(|&a| self.shape()[a]).product();
        self.sum(axes, keepdim).scale(1.0 / count as f32)
    }

    /// Sum of every element, shape [1].
    pub fn sum_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).sum(&[0], true)
    }

    pub fn mean_all(&self) -> Tensor {
        self.sum_all().scale(1.0 / self.numel() as f32)
    }

    /// Maximum over `axes`; carries no gradient (use it for stabilising shifts).
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let axes = self.normalize_axes(axes);
        let out = kernels::reduce(self.gpu(), ReduceOp::Max, self.buffer(), self.shape(), &axes);
        Tensor::from_buffer(self.gpu(), &self.reduced_shape(&axes, keepdim), out)
    }

    /// Sums broadcast axes away so a gradient matches the operand's `shape`.
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let lead = self.rank() - shape.len();
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&d| d < lead || (shape[d - lead] == 1 && self.shape()[d] != 1))
            .map(|d| d as isize)
            .collect();
        self.sum(&axes, true).reshape(shape)
    }

    // ---- shape and movement ----

    /// The same buffer read with another shape of equal size.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), self.numel(), "cannot reshape {:?} to {shape:?}", self.shape());
        if shape == self.shape() {
            return self.clone();
        }
        let wants_grad = grad_enabled() && self.tracks_grad();
        let node = wants_grad.then(|| Node { op: Op::Reshape, inputs: vec![self.clone()], output: None });
        Tensor::from_parts(self.gpu(), shape.to_vec(), self.0.buffer.clone(), node)
    }

    pub fn flatten_from(&self, axis: usize) -> Tensor {
        let mut shape: Vec<usize> = self.shape()[..axis].to_vec();
        shape.push(self.shape()[axis..].iter().product());
        self.reshape(&shape)
    }

    pub fn permute(&self, perm: &[usize]) -> Tensor {
        assert_eq!(perm.len(), self.rank(), "permutation {perm:?} of shape {:?}", self.shape());
        let mut seen = vec![false; perm.len()];
        for &p in perm {
            assert!(p < perm.len() && !seen[p], "{perm:?} is not a permutation");
            seen[p] = true;
        }
        let own = contiguous_strides(self.shape());
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let r = perm.len();
        let swaps_last_two = r >= 2
            && perm[r - 2] == r - 1
            && perm[r - 1] == r - 2
            && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p);
        let out = if swaps_last_two {
            let batch = self.shape()[..r - 2].iter().product();
            kernels::transpose(self.gpu(), self.buffer(), batch, self.shape()[r - 2], self.shape()[r - 1])
        } else {
            let strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
            kernels::gather(self.gpu(), self.buffer(), &shape, &strides, &vec![0; shape.len()], &shape)
        };
        self.record(&[self], shape, out, Op::Permute(perm.to_vec()), false)
    }

    /// Swaps the last two axes.
    pub fn t(&self) -> Tensor {
        let r = self.rank();
        assert!(r >= 2, "t() needs two axes, got {:?}", self.shape());
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&perm)
    }

    /// Repeats along axes of extent 1 (and new leading axes) to reach `shape`.
    pub fn expand(&self, shape: &[usize]) -> Tensor {
        if shape == self.shape() {
            return self.clone();
        }
        let joined = broadcast_shape(self.shape(), shape).unwrap_or_else(|e| panic!("expand: {e}"));
        assert_eq!(joined, shape, "cannot expand {:?} to {shape:?}", self.shape());
        let strides = kernels::broadcast_strides(self.shape(), shape);
        let out = kernels::gather(self.gpu(), self.buffer(), shape, &strides, &vec![0; shape.len()], shape);
        self.record(&[self], shape.to_vec(), out, Op::Expand, false)
    }

    /// The window op behind zero padding and slicing: output coordinate c reads input
    /// coordinate c - lead (zero outside the input), for an output of `shape`.
    pub(crate) fn window(&self, lead: &[i64], shape: &[usize]) -> Tensor {
        assert_eq!(lead.len(), self.rank());
        let strides = contiguous_strides(self.shape());
        let out = kernels::gather(self.gpu(), self.buffer(), shape, &strides, lead, self.shape());
        self.record(&[self], shape.to_vec(), out, Op::Window(lead.to_vec()), false)
    }

    /// Zero padding: `pads[d] = (before, after)` for each axis.
    pub fn pad(&self, pads: &[(usize, usize)]) -> Tensor {
        assert_eq!(pads.len(), self.rank(), "pad needs one (before, after) per axis");
        let lead: Vec<i64> = pads.iter().map(|p| p.0 as i64).collect();
        let shape: Vec<usize> = self.shape().iter().zip(pads).map(|(&e, p)| e + p.0 + p.1).collect();
        self.window(&lead, &shape)
    }

    /// Elements [start, start + len) along `axis`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        assert!(start + len <= self.shape()[axis], "narrow {start}+{len} beyond {:?} on axis {axis}", self.shape());
        let mut lead = vec![0i64; self.rank()];
        lead[axis] = -(start as i64);
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        self.window(&lead, &shape)
    }

    /// Concatenation along `axis`, as a sum of zero-padded pieces (so its gradient is slicing).
    pub fn cat(parts: &[&Tensor], axis: usize) -> Tensor {
        assert!(!parts.is_empty(), "cat of nothing");
        let total: usize = parts.iter().map(|t| t.shape()[axis]).sum();
        let mut offset = 0;
        let mut acc: Option<Tensor> = None;
        for part in parts {
            let mut pads: Vec<(usize, usize)> = vec![(0, 0); part.rank()];
            for (d, &e) in part.shape().iter().enumerate() {
                if d != axis {
                    assert_eq!(
                        e,
                        parts[0].shape()[d],
                        "cat: shapes {:?} and {:?} differ off axis {axis}",
                        part.shape(),
                        parts[0].shape()
                    );
                }
            }
            let len = part.shape()[axis];
            pads[axis] = (offset, total - offset - len);
            offset += len;
            let padded = part.pad(&pads);
            acc = Some(match acc {
                None => padded,
                Some(a) => a.add(&padded),
            });
        }
        acc.unwrap()
    }

    /// Mirror padding of the last two axes (without repeating the edge), as CycleGAN uses.
    pub fn reflect_pad2d(&self, top: usize, bottom: usize, left: usize, right: usize) -> Tensor {
        let r = self.rank();
        assert!(r >= 2, "reflect_pad2d needs two spatial axes");
        let (h, w) = (self.shape()[r - 2], self.shape()[r - 1]);
        assert!(
            top < h && bottom < h && left < w && right < w,
            "reflection pad wider than the image {:?}",
            self.shape()
        );
        let g = ReflectGeometry {
            planes: (self.numel() / (h * w)) as u32,
            h: h as u32,
            w: w as u32,
            top: top as u32,
            left: left as u32,
            oh: (h + top + bottom) as u32,
            ow: (w + left + right) as u32,
            _pad: 0,
        };
        let out = kernels::reflect_pad(self.gpu(), &g, self.buffer());
        let mut shape = self.shape().to_vec();
        shape[r - 2] = g.oh as usize;
        shape[r - 1] = g.ow as usize;
        self.record(&[self], shape, out, Op::ReflectPad(g), false)
    }

    /// The adjoint of `reflect_pad2d`: folds a padded gradient back onto the unpadded image.
    pub(crate) fn reflect_pad2d_backward(&self, g: ReflectGeometry) -> Tensor {
        let out = kernels::reflect_pad_backward(self.gpu(), &g, self.buffer());
        let r = self.rank();
        let mut shape = self.shape().to_vec();
        shape[r - 2] = g.h as usize;
        shape[r - 1] = g.w as usize;
        self.record(&[self], shape, out, Op::ReflectPadBackward(g), false)
    }

    // ---- fused normalisation ----

    /// Training-mode batch norm over x [N, C, ...] with batch statistics (biased variance),
    /// updating `running_mean`/`running_var` in place with `momentum` (unbiased variance).
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_train(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        self.batch_norm_train_leaky([gamma, beta], [running_mean, running_var], momentum, eps, 1.0)
    }

    /// `batch_norm_train` (affine [gamma, beta], running [mean, var]) followed by a leaky ReLU
    /// of `slope` (0: ReLU; 1: none), fused into its kernels: the activation costs no pass of
    /// its own. Slopes outside [0, 1] are refused.
    pub fn batch_norm_train_leaky(
        &self,
        [gamma, beta]: [&Tensor; 2],
        [running_mean, running_var]: [&Tensor; 2],
        momentum: f32,
        eps: f32,
        slope: f32,
    ) -> Tensor {
        assert!((0.0..=1.0).contains(&slope), "a fused activation's slope lies in [0, 1], got {slope}");
        assert!(self.rank() >= 2, "batch norm needs [N, C, ...], got {:?}", self.shape());
        let (n, c) = (self.shape()[0], self.shape()[1]);
        for t in [gamma, beta, running_mean, running_var] {
            assert_eq!(t.numel(), c, "batch norm over {c} channels given a tensor of shape {:?}", t.shape());
        }
        self.normalize_fused(
            [n, c, self.numel() / (n * c)],
            gamma,
            beta,
            Some((running_mean, running_var, momentum)),
            eps,
            slope,
        )
    }

    /// Instance norm: every (sample, channel) plane of x [N, C, ...] normalised on its own,
    /// without affine (callers add one). The batch-norm kernels over the view [1, N*C, rest].
    pub fn instance_norm(&self, eps: f32) -> Tensor {
        assert!(self.rank() >= 3, "instance norm needs [N, C, spatial...], got {:?}", self.shape());
        let planes = self.shape()[0] * self.shape()[1];
        let (ones, zeros) = (Tensor::ones(self.gpu(), &[planes]), Tensor::zeros(self.gpu(), &[planes]));
        self.normalize_fused([1, planes, self.numel() / planes], &ones, &zeros, None, eps, 1.0)
    }

    /// Layer norm's normalisation: each sample of x [N, ...] over all its other entries, without
    /// affine. The batch-norm kernels over the view [1, N, rest].
    pub fn layer_norm(&self, eps: f32) -> Tensor {
        assert!(self.rank() >= 2, "layer norm needs [N, ...], got {:?}", self.shape());
        let n = self.shape()[0];
        let (ones, zeros) = (Tensor::ones(self.gpu(), &[n]), Tensor::zeros(self.gpu(), &[n]));
        self.normalize_fused([1, n, self.numel() / n], &ones, &zeros, None, eps, 1.0)
    }

    /// x viewed as [outer, groups, inner], normalised per group over outer and inner, then
    /// gamma * x_hat + beta per group, then max(y, slope * y). Fused kernels; with
    /// `create_graph` its backward is the composite formula, so second-order gradients pass
    /// through.
    #[allow(clippy::too_many_arguments)]
    fn normalize_fused(
        &self,
        [outer, groups, inner]: [usize; 3],
        gamma: &Tensor,
        beta: &Tensor,
        running: Option<(&Tensor, &Tensor, f32)>,
        eps: f32,
        slope: f32,
    ) -> Tensor {
        let params = BatchNormParams {
            batch: outer as u32,
            channels: groups as u32,
            spatial: inner as u32,
            update_running: running.is_some() as u32,
            eps,
            momentum: running.map_or(0.0, |r| r.2),
            x_shift: 0,
            dy_shift: 0,
            slope,
            _pad: [0; 3],
        };
        let gpu = self.gpu();
        let stats = Arc::new(kernels::batch_norm_stats(
            gpu,
            &params,
            self.buffer(),
            running.map(|r| (r.0.buffer(), r.1.buffer())),
        ));
        let y = kernels::batch_norm_forward(gpu, &params, self.buffer(), &stats, gamma.buffer(), beta.buffer());
        // (A fused activation's gradient recomputes its mask from x, stats, gamma and beta.)
        self.record(&[self, gamma, beta], self.shape().to_vec(), y, Op::BatchNorm { params, stats }, false)
    }

    /// The same normalisation from differentiable ops: what the fused kernels compute, used
    /// where a gradient of the gradient is needed.
    pub(crate) fn normalize_composite(&self, params: &BatchNormParams, gamma: &Tensor, beta: &Tensor) -> Tensor {
        let (outer, groups, inner) = (params.batch as usize, params.channels as usize, params.spatial as usize);
        let x = self.reshape(&[outer, groups, inner]);
        let mean = x.mean(&[0, 2], true);
        let centered = x.sub(&mean);
        let var = centered.square().mean(&[0, 2], true);
        let x_hat = centered.mul(&var.add_scalar(params.eps).powf(-0.5));
        let y = x_hat.mul(&gamma.reshape(&[1, groups, 1])).add(&beta.reshape(&[1, groups, 1]));
        y.reshape(self.shape()).activated(params.slope)
    }

    // ---- losses ----

    /// The elementwise terms of a loss of predictions `self` against `target` (same shape):
    /// BCE with logits, squared or absolute error. One pass computes them together with their
    /// gradient, which the backward pass then only scales (loss.wgsl).
    pub fn loss_terms(&self, kind: LossKind, target: &Tensor) -> Tensor {
        self.check_device(target);
        assert_eq!(
            self.shape(),
            target.shape(),
            "loss: predictions {:?} and targets {:?} differ",
            self.shape(),
            target.shape()
        );
        let (terms, grad) = kernels::loss_terms(self.gpu(), kind, self.buffer(), target.buffer());
        self.record(&[self, target], self.shape().to_vec(), terms, Op::LossTerms { kind, grad: Arc::new(grad) }, false)
    }

    // ---- linear algebra ----

    /// Matrix product of the last two axes (an optional leading batch axis must match):
    /// op(self) · op(other) with op = transpose where asked.
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        self.check_device(other);
        assert!(
            (self.rank() == 2 && other.rank() == 2)
                || (self.rank() == 3 && other.rank() == 3 && self.shape()[0] == other.shape()[0]),
            "matmul of {:?} and {:?}: both 2-d, or 3-d with the same batch",
            self.shape(),
            other.shape()
        );
        let r = self.rank();
        let batch = if r == 3 { self.shape()[0] } else { 1 };
        let (a0, a1) = (self.shape()[r - 2], self.shape()[r - 1]);
        let (b0, b1) = (other.shape()[r - 2], other.shape()[r - 1]);
        let (m, ka) = if trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if trans_b { (b1, b0) } else { (b0, b1) };
        assert_eq!(
            ka,
            kb,
            "matmul inner extents differ: {:?} x {:?} (trans {trans_a}, {trans_b})",
            self.shape(),
            other.shape()
        );
        let out = kernels::matmul(self.gpu(), self.buffer(), other.buffer(), batch, m, ka, n, trans_a, trans_b);
        let shape = if r == 3 { vec![batch, m, n] } else { vec![m, n] };
        self.record(&[self, other], shape, out, Op::Matmul { trans_a, trans_b }, false)
    }

    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.matmul_t(other, false, false)
    }

    // ---- convolutions ----

    /// conv2d(x [N, Cin, H, W], weight [Cout, Cin, kh, kw]) with zero padding.
    pub fn conv2d(&self, weight: &Tensor, stride: usize, pad: usize) -> Tensor {
        self.check_device(weight);
        let g = conv_geometry(self.shape(), weight.shape(), stride, pad);
        let patch_per_sample = (g.c_in * g.kh * g.kw * g.oh * g.ow) as usize;
        if let Some(rows) = self.batch_rows_per_piece(patch_per_sample) {
            return self.map_batch_pieces(rows, |piece| piece.conv2d(weight, stride, pad));
        }
        let (out, cols) = kernels::conv2d_forward_with_cols(self.gpu(), &g, self.buffer(), weight.buffer());
        // A patch matrix, where one was built, is kept for the weight gradient (first-order
        // backward passes).
        let keep = cols.filter(|_| grad_enabled() && weight.tracks_grad()).map(Arc::new);
        self.record(&[self, weight], g.y_shape(), out, Op::Conv2d { stride, pad, cols: keep }, false)
    }

    /// act(conv2d(x, weight) + bias) with act the (leaky) ReLU max(y, slope * y) (slope 0: ReLU):
    /// where the implicit convolution serves the shape, one product whose stores add the bias
    /// and apply the activation; elsewhere the three ops apart.
    pub fn conv2d_bias_activation(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        pad: usize,
        slope: f32,
    ) -> Tensor {
        self.check_device(weight);
        assert!((0.0..=1.0).contains(&slope), "conv2d_bias_activation: slope {slope} outside [0, 1]");
        let g = conv_geometry(self.shape(), weight.shape(), stride, pad);
        if let Some(b) = bias {
            self.check_device(b);
            assert_eq!(b.numel(), g.c_out as usize, "conv2d bias: {:?} for {} output channels", b.shape(), g.c_out);
        }
        let epilogue = kernels::ConvEpilogue { bias: bias.map(|b| b.buffer()), slope: Some(slope) };
        if let Some(out) = kernels::conv2d_forward_implicit(self.gpu(), &g, self.buffer(), weight.buffer(), epilogue) {
            let inputs: Vec<&Tensor> = [self, weight].into_iter().chain(bias).collect();
            // The output is kept: the activation's gradient masks by its sign.
            return self.record(&inputs, g.y_shape(), out, Op::Conv2dActivated { stride, pad, slope }, true);
        }
        self.conv2d_bias_activation_apart(weight, bias, stride, pad, slope)
    }

    /// `conv2d_bias_activation` as three differentiable ops (its fallback, and its rule for
    /// gradients of gradients).
    pub(crate) fn conv2d_bias_activation_apart(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        pad: usize,
        slope: f32,
    ) -> Tensor {
        self.conv2d(weight, stride, pad).add_channel_bias(bias).leaky_relu(slope)
    }

    /// x [N, C, ...] plus bias [C] per channel; x itself without a bias.
    pub fn add_channel_bias(&self, bias: Option<&Tensor>) -> Tensor {
        match bias {
            Some(b) => {
                let mut shape = vec![1; self.rank()];
                shape[1] = b.numel();
                self.add(&b.reshape(&shape))
            }
            None => self.clone(),
        }
    }

    /// Samples per piece when a batch's patch matrix (`per_sample` values each) would not fit
    /// in one storage binding (128 MiB on lavapipe); None when it fits.
    fn batch_rows_per_piece(&self, per_sample: usize) -> Option<usize> {
        let limit = self.gpu().limits().max_storage_buffer_binding_size as usize / 4;
        let n = self.shape()[0];
        (n > 1 && n * per_sample > limit).then(|| (limit / per_sample).max(1))
    }

    /// `f` over pieces of `rows` samples, joined along the batch axis (differentiably).
    fn map_batch_pieces(&self, rows: usize, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let n = self.shape()[0];
        let pieces: Vec<Tensor> =
            (0..n).step_by(rows).map(|start| f(&self.narrow(0, start, rows.min(n - start)))).collect();
        Tensor::cat(&pieces.iter().collect::<Vec<_>>(), 0)
    }

    /// Transposed convolution of x [N, Cin, h, w] with weight [Cin, Cout, kh, kw] (PyTorch's
    /// layout): the input gradient of conv2d. `output_padding` picks among the sizes that
    /// stride > 1 makes ambiguous.
    pub fn conv_transpose2d(&self, weight: &Tensor, stride: usize, pad: usize, output_padding: usize) -> Tensor {
        let (kh, kw) = (weight.shape()[2], weight.shape()[3]);
        assert!(self.rank() == 4 && weight.rank() == 4, "conv_transpose2d takes 4-d input and weight");
        let out_h = ((self.shape()[2] - 1) * stride + kh + output_padding).checked_sub(2 * pad);
        let out_w = ((self.shape()[3] - 1) * stride + kw + output_padding).checked_sub(2 * pad);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else { panic!("conv_transpose2d: padding {pad} too large") };
        self.conv_transpose2d_to(weight, stride, pad, out_h, out_w)
    }

    pub(crate) fn conv_transpose2d_to(
        &self,
        weight: &Tensor,
        stride: usize,
        pad: usize,
        out_h: usize,
        out_w: usize,
    ) -> Tensor {
        self.check_device(weight);
        let (n, c_in) = (self.shape()[0], self.shape()[1]);
        assert_eq!(weight.shape()[0], c_in, "conv_transpose2d: input has {c_in} channels, weight {:?}", weight.shape());
        let c_out = weight.shape()[1];
        // The conv whose input gradient this is maps [n, c_out, out_h, out_w] to our input.
        let g =
            conv_geometry(&[n, c_out, out_h, out_w], &[c_in, c_out, weight.shape()[2], weight.shape()[3]], stride, pad);
        let patch_per_sample = (g.c_out * g.kh * g.kw * g.oh * g.ow) as usize;
        if let Some(rows) = self.batch_rows_per_piece(patch_per_sample) {
            return self.map_batch_pieces(rows, |piece| piece.conv_transpose2d_to(weight, stride, pad, out_h, out_w));
        }
        assert_eq!(
            g.y_shape(),
            self.shape(),
            "conv_transpose2d: output {out_h}x{out_w} does not map back to input {:?}",
            self.shape()
        );
        let out = kernels::conv2d_backward_input(self.gpu(), &g, self.buffer(), weight.buffer());
        self.record(&[self, weight], g.x_shape(), out, Op::ConvTranspose2d { stride, pad }, false)
    }

    /// The weight gradient of conv2d(x = self, w) given its output gradient `dy`.
    pub(crate) fn conv2d_weight_grad(&self, dy: &Tensor, stride: usize, pad: usize, kh: usize, kw: usize) -> Tensor {
        self.check_device(dy);
        let c_out = dy.shape()[1];
        let g = conv_geometry(self.shape(), &[c_out, self.shape()[1], kh, kw], stride, pad);
        assert_eq!(
            g.y_shape(),
            dy.shape(),
            "conv weight gradient: dy {:?} does not match x {:?}",
            dy.shape(),
            self.shape()
        );
        let out = kernels::conv2d_backward_weight(self.gpu(), &g, self.buffer(), dy.buffer());
        self.record(&[self, dy], g.w_shape(), out, Op::Conv2dWeightGrad { stride, pad }, false)
    }
}

pub(crate) fn conv_geometry(x: &[usize], w: &[usize], stride: usize, pad: usize) -> ConvGeometry {
    assert!(x.len() == 4 && w.len() == 4, "conv2d takes x [N,C,H,W] and weight [Cout,Cin,kh,kw], got {x:?} and {w:?}");
    assert_eq!(x[1], w[1], "conv2d: input has {} channels but weight {w:?} expects {}", x[1], w[1]);
    assert!(stride >= 1, "conv2d stride must be at least 1");
    let (h, wd) = (x[2] + 2 * pad, x[3] + 2 * pad);
    assert!(h >= w[2] && wd >= w[3], "conv2d: kernel {}x{} larger than padded input {h}x{wd}", w[2], w[3]);
    ConvGeometry {
        batch: x[0] as u32,
        c_in: x[1] as u32,
        h: x[2] as u32,
        w: x[3] as u32,
        c_out: w[0] as u32,
        oh: ((h - w[2]) / stride + 1) as u32,
        ow: ((wd - w[3]) / stride + 1) as u32,
        kh: w[2] as u32,
        kw: w[3] as u32,
        stride: stride as u32,
        pad: pad as u32,
        _pad0: 0,
    }
}
