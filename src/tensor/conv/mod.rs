//! Convolutions (conv2d.wgsl, and matmul_conv.wgsl on the subgroup matmul): conv2d with an
//! optional fused bias and (leaky) ReLU, the transposed convolution and the weight gradient as
//! `Tensor` methods, and their gradient rules; `kernels` holds the launchers, which pick implicit
//! GEMM or a patch matrix. CPU reference: `reference::conv2d`, `reference::conv_transpose2d`,
//! `reference::conv2d_weight_grad`.

mod kernels;

use std::sync::Arc;

pub use kernels::*;

use super::elementwise::UnaryOp;
use super::{grad_enabled, Tensor};
use crate::autograd::{Backward, Op};
use crate::gpu::GpuBuffer;

impl Tensor {
    // ---- convolutions ----

    /// conv2d(x [N, Cin, H, W], weight [Cout, Cin, kh, kw]) with zero padding.
    pub fn conv2d(&self, weight: &Tensor, stride: usize, pad: usize) -> Tensor {
        self.check_device(weight);
        let g = conv_geometry(self.shape(), weight.shape(), stride, pad);
        let patch_per_sample = (g.c_in * g.kh * g.kw * g.oh * g.ow) as usize;
        if let Some(rows) = self.batch_rows_per_piece(patch_per_sample) {
            return self.map_batch_pieces(rows, |piece| piece.conv2d(weight, stride, pad));
        }
        let (out, cols) = conv2d_forward_with_cols(self.gpu(), &g, self.buffer(), weight.buffer());
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
        let epilogue = ConvEpilogue { bias: bias.map(|b| b.buffer()), slope: Some(slope) };
        if let Some(out) = conv2d_forward_implicit(self.gpu(), &g, self.buffer(), weight.buffer(), epilogue) {
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

    /// x `[N, C, ...]` plus bias `[C]` per channel; x itself without a bias.
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
        let out = conv2d_backward_input(self.gpu(), &g, self.buffer(), weight.buffer());
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
        let out = conv2d_backward_weight(self.gpu(), &g, self.buffer(), dy.buffer());
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

/// conv2d's gradients: the transposed convolution of g for x, and for w the weight gradient
/// (from the forward pass's patch matrix where one was kept).
pub(crate) fn conv2d_grad(
    b: &Backward,
    stride: usize,
    pad: usize,
    cols: Option<&Arc<GpuBuffer>>,
) -> Vec<Option<Tensor>> {
    let (x, w, g) = (b.input(0), b.input(1), b.g);
    let (h, wd) = (x.shape()[2], x.shape()[3]);
    let dx = b.want(0).then(|| g.conv_transpose2d_to(w, stride, pad, h, wd));
    let dw = b.want(1).then(|| match (cols, b.create_graph) {
        (Some(cols), false) => {
            let geo = conv_geometry(x.shape(), w.shape(), stride, pad);
            let dw = conv2d_backward_weight_from_cols(x.gpu(), &geo, cols, g.buffer());
            Tensor::from_buffer(x.gpu(), w.shape(), dw)
        }
        _ => x.conv2d_weight_grad(g, stride, pad, w.shape()[2], w.shape()[3]),
    });
    vec![dx, dw]
}

/// The fused conv + bias + activation: through the activation first (the output is positive
/// exactly where its input is), then conv2d's rules and the bias's sum; for gradients of
/// gradients, the ops apart.
pub(crate) fn conv2d_activated_grad(b: &Backward, stride: usize, pad: usize, slope: f32) -> Vec<Option<Tensor>> {
    let (x, w, bias, g) = (b.input(0), b.input(1), b.node.inputs.get(2), b.g);
    if b.create_graph {
        return b.through_composite(&x.conv2d_bias_activation_apart(w, bias, stride, pad, slope));
    }
    let y = b.saved_output(|| unreachable!("the output is kept"));
    let g_pre = super::elementwise::unary_backward(x.gpu(), UnaryOp::LeakyRelu, slope, y.buffer(), g.buffer());
    let g_pre = Tensor::from_buffer(x.gpu(), g.shape(), g_pre);
    let (h, wd, kh, kw) = (x.shape()[2], x.shape()[3], w.shape()[2], w.shape()[3]);
    let dx = b.want(0).then(|| g_pre.conv_transpose2d_to(w, stride, pad, h, wd));
    let dw = b.want(1).then(|| x.conv2d_weight_grad(&g_pre, stride, pad, kh, kw));
    let db = bias.filter(|_| b.want(2)).map(|bias| g_pre.sum(&[0, 2, 3], false).reshape(bias.shape()));
    vec![dx, dw, db]
}

/// The transposed convolution's gradients: conv2d of g for x, the weight gradient with the
/// roles of x and g swapped for w; at first order one patch matrix of g serves both.
pub(crate) fn conv_transpose2d_grad(b: &Backward, stride: usize, pad: usize) -> Vec<Option<Tensor>> {
    let (x, w, g) = (b.input(0), b.input(1), b.g);
    if !b.create_graph && b.want(0) && b.want(1) {
        let (gpu, geo) = (x.gpu(), conv_geometry(g.shape(), w.shape(), stride, pad));
        let (dx, cols) = conv2d_forward_with_cols(gpu, &geo, g.buffer(), w.buffer());
        let dw = conv2d_backward_weight_reusing(gpu, &geo, cols.as_ref(), g.buffer(), x.buffer());
        return vec![Some(Tensor::from_buffer(gpu, x.shape(), dx)), Some(Tensor::from_buffer(gpu, w.shape(), dw))];
    }
    let dx = b.want(0).then(|| g.conv2d(w, stride, pad));
    let dw = b.want(1).then(|| g.conv2d_weight_grad(x, stride, pad, w.shape()[2], w.shape()[3]));
    vec![dx, dw]
}

/// The weight gradient is bilinear in (x, dy): each input's gradient is the other op with g as
/// the weight.
pub(crate) fn conv2d_weight_grad_grad(b: &Backward, stride: usize, pad: usize) -> Vec<Option<Tensor>> {
    let (x, dy, g) = (b.input(0), b.input(1), b.g);
    let (h, wd) = (x.shape()[2], x.shape()[3]);
    let dx = b.want(0).then(|| dy.conv_transpose2d_to(g, stride, pad, h, wd));
    let ddy = b.want(1).then(|| x.conv2d(g, stride, pad));
    vec![dx, ddy]
}
