//! Reverse-mode autodiff. Each op's gradient rule is written in the same differentiable ops,
//! so with `create_graph` the gradients are themselves graphs and can be differentiated again
//! (WGAN-GP's penalty needs d/dθ of ||∂D/∂x||).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::gpu::GpuBuffer;
use crate::tensor::kernels::{self, BatchNormParams, LossKind, ReflectGeometry};
use crate::tensor::ops::conv_geometry;
use crate::tensor::{enable_grad, no_grad, BinaryOp, Tensor, UnaryOp};

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Unary {
        op: UnaryOp,
        alpha: f32,
        beta: f32,
    },
    Binary(BinaryOp),
    /// Sum over some axes, keeping them with extent 1.
    Sum,
    Reshape,
    Permute(Vec<usize>),
    Expand,
    Window(Vec<i64>),
    ReflectPad(ReflectGeometry),
    ReflectPadBackward(ReflectGeometry),
    Matmul {
        trans_a: bool,
        trans_b: bool,
    },
    Conv2d {
        stride: usize,
        pad: usize,
        cols: Option<Arc<GpuBuffer>>,
    },
    ConvTranspose2d {
        stride: usize,
        pad: usize,
    },
    /// max(y, slope * y) of y = conv2d(x, w) (+ bias): inputs x, w and optionally the bias;
    /// one product with the bias and activation applied as it stores (its output is kept).
    Conv2dActivated {
        stride: usize,
        pad: usize,
        slope: f32,
    },
    Conv2dWeightGrad {
        stride: usize,
        pad: usize,
    },
    /// Elementwise loss terms of (prediction, target), with d terms / d prediction saved from
    /// the same pass.
    LossTerms {
        kind: LossKind,
        grad: Arc<GpuBuffer>,
    },
    /// Fused normalisation of inputs (x, gamma, beta) over the view [batch, channels, spatial]
    /// (batch, instance and layer norm), with its statistics saved.
    BatchNorm {
        params: BatchNormParams,
        stats: Arc<GpuBuffer>,
    },
}

impl std::fmt::Debug for ReflectGeometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} +({},{}) -> {}x{}", self.h, self.w, self.top, self.left, self.oh, self.ow)
    }
}

impl Op {
    /// Masks and comparisons are piecewise constant: no gradient flows through them.
    pub(crate) fn is_differentiable(&self) -> bool {
        !matches!(
            self,
            Op::Unary { op: UnaryOp::Step | UnaryOp::LeakySlope | UnaryOp::Sign | UnaryOp::InRange, .. }
                | Op::Binary(BinaryOp::Greater | BinaryOp::Equal)
        )
    }
}

/// How a tensor was computed: the op, its inputs, and (for ops whose gradient reuses it) the
/// output's buffer.
pub(crate) struct Node {
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) output: Option<Arc<GpuBuffer>>,
}

/// Gradients of `output` (seeded with `seed`, ones by default) with respect to each of `wrt`;
/// zeros where `output` does not depend on it. With `create_graph` the results record their
/// own graph and can be differentiated again.
pub fn grad(output: &Tensor, wrt: &[&Tensor], seed: Option<&Tensor>, create_graph: bool) -> Vec<Tensor> {
    let _mode = if create_graph { enable_grad() } else { no_grad() };
    let order = topological_order(output);
    let wanted: HashSet<u64> = wrt.iter().map(|t| t.id()).collect();
    let leads_to_wanted = ancestors_of_wanted(&order, &wanted);
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    let seed = match seed {
        Some(s) => {
            assert_eq!(s.shape(), output.shape(), "seed shape must match the output");
            s.clone()
        }
        None => Tensor::ones(output.gpu(), output.shape()),
    };
    grads.insert(output.id(), seed);
    let mut results: HashMap<u64, Tensor> = HashMap::new();
    for tensor in order.iter().rev() {
        let g = match grads.remove(&tensor.id()) {
            Some(g) => g,
            None => continue,
        };
        if wanted.contains(&tensor.id()) {
            results.insert(tensor.id(), g.clone());
        }
        let Some(node) = &tensor.0.node else { continue };
        // Gradients nobody asked for are not computed: in G's step, D's weights get none.
        let needed: Vec<bool> = node.inputs.iter().map(|i| leads_to_wanted.contains(&i.id())).collect();
        if !needed.iter().any(|&n| n) {
            continue;
        }
        let input_grads = backward(node, tensor, &g, &needed, create_graph);
        for (input, ig) in node.inputs.iter().zip(input_grads) {
            let Some(ig) = ig else { continue };
            if !input.tracks_grad() {
                continue;
            }
            debug_assert_eq!(ig.shape(), input.shape(), "gradient shape of {:?}", node.op);
            let acc = match grads.remove(&input.id()) {
                Some(prev) => prev.add(&ig),
                None => ig,
            };
            grads.insert(input.id(), acc);
        }
    }
    wrt.iter().map(|t| results.remove(&t.id()).unwrap_or_else(|| Tensor::zeros(t.gpu(), t.shape()))).collect()
}

/// The tensors of `order` (inputs before users) through which some wanted tensor is reached.
fn ancestors_of_wanted(order: &[Tensor], wanted: &HashSet<u64>) -> HashSet<u64> {
    let mut reach: HashSet<u64> = wanted.clone();
    for t in order {
        if let Some(node) = &t.0.node {
            if node.inputs.iter().any(|i| reach.contains(&i.id())) {
                reach.insert(t.id());
            }
        }
    }
    reach
}

/// Every tensor the output depends on through tracked ops, inputs before their users.
fn topological_order(output: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative post-order: (tensor, children pushed yet?)
    let mut stack = vec![(output.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !t.tracks_grad() || !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = &t.0.node {
            for input in &node.inputs {
                if input.tracks_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

/// The saved output of `node` for rules written in terms of y: recomputed (and so
/// differentiable) when building a graph, else the forward pass's own buffer.
fn saved_output(node: &Node, output: &Tensor, create_graph: bool, recompute: impl FnOnce() -> Tensor) -> Tensor {
    match (&node.output, create_graph) {
        (Some(buf), false) => Tensor::from_parts(output.gpu(), output.shape().to_vec(), buf.clone(), None),
        _ => recompute(),
    }
}

/// The gradients of `node`'s needed inputs, with a graph, through `composite`: the node's output
/// recomputed from differentiable ops (for fused ops whose own rule is first order).
fn through_composite(composite: &Tensor, node: &Node, g: &Tensor, needed: &[bool]) -> Vec<Option<Tensor>> {
    let wanted = |i: &usize| needed.get(*i).copied().unwrap_or(false);
    let wrt: Vec<&Tensor> = (0..node.inputs.len()).filter(wanted).map(|i| &node.inputs[i]).collect();
    let mut grads = grad(composite, &wrt, Some(g), true).into_iter();
    (0..node.inputs.len()).map(|i| wanted(&i).then(|| grads.next().expect("one gradient per input"))).collect()
}

/// The gradient of each input of `node` given the output gradient `g`; `None` where the input
/// is not `needed`.
fn backward(node: &Node, output: &Tensor, g: &Tensor, needed: &[bool], create_graph: bool) -> Vec<Option<Tensor>> {
    let x = &node.inputs[0];
    let want = |i: usize| needed.get(i).copied().unwrap_or(false);
    match &node.op {
        Op::Unary { op, alpha, beta } => {
            let (alpha, beta) = (*alpha, *beta);
            let y = || saved_output(node, output, create_graph, || x.unary(*op, alpha, beta));
            if let (false, Some(reads_output)) = (create_graph, op.fused_gradient_reads_output()) {
                // First order: the activation's gradient in one fused pass.
                let v = if reads_output { y() } else { x.clone() };
                let dx = kernels::unary_backward(x.gpu(), *op, alpha, v.buffer(), g.buffer());
                return vec![Some(Tensor::from_buffer(x.gpu(), x.shape(), dx))];
            }
            let dx = match op {
                UnaryOp::Neg => g.neg(),
                UnaryOp::Exp => g.mul(&y()),
                UnaryOp::Log => g.div(x),
                UnaryOp::Sqrt => g.div(&y()).scale(0.5),
                UnaryOp::Abs => g.mul(&x.sign()),
                UnaryOp::Tanh => {
                    let y = y();
                    g.sub(&g.mul(&y.mul(&y)))
                }
                UnaryOp::Sigmoid => {
                    let y = y();
                    g.mul(&y.sub(&y.mul(&y)))
                }
                UnaryOp::Relu => g.mul(&x.step()),
                UnaryOp::LeakyRelu => g.mul(&x.leaky_slope(alpha)),
                UnaryOp::Softplus => g.mul(&x.sigmoid()),
                UnaryOp::Recip => {
                    let y = y();
                    g.mul(&y.mul(&y)).neg()
                }
                UnaryOp::Pow => g.mul(&x.powf(alpha - 1.0)).scale(alpha),
                UnaryOp::Affine => g.scale(alpha),
                UnaryOp::Clamp => g.mul(&x.in_range(alpha, beta)),
                UnaryOp::Step | UnaryOp::LeakySlope | UnaryOp::Sign | UnaryOp::InRange => return vec![None],
            };
            vec![Some(dx)]
        }
        Op::Binary(op) => {
            let b = &node.inputs[1];
            let (ga, gb): (Option<Tensor>, Option<Tensor>) = match op {
                BinaryOp::Add => (want(0).then(|| g.clone()), want(1).then(|| g.clone())),
                BinaryOp::Sub => (want(0).then(|| g.clone()), want(1).then(|| g.neg())),
                BinaryOp::Mul => (want(0).then(|| g.mul(b)), want(1).then(|| g.mul(x))),
                BinaryOp::Div => {
                    let ga = g.div(b);
                    let gb = want(1).then(|| ga.mul(x).div(b).neg());
                    (Some(ga), gb)
                }
                BinaryOp::Max | BinaryOp::Min => {
                    // Ties send the gradient to the first operand, like a select.
                    let first = if *op == BinaryOp::Max { x.greater(b) } else { b.greater(x) };
                    let first = first.add(&x.equal(b));
                    let ga = g.mul(&first);
                    let gb = want(1).then(|| g.sub(&ga));
                    (Some(ga), gb)
                }
                BinaryOp::Greater | BinaryOp::Equal => return vec![None, None],
            };
            vec![ga.filter(|_| want(0)).map(|t| t.sum_to(x.shape())), gb.map(|t| t.sum_to(b.shape()))]
        }
        Op::Sum => vec![Some(g.expand(x.shape()))],
        Op::Expand => vec![Some(g.sum_to(x.shape()))],
        Op::Reshape => vec![Some(g.reshape(x.shape()))],
        Op::Permute(perm) => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            vec![Some(g.permute(&inverse))]
        }
        Op::Window(lead) => {
            let back: Vec<i64> = lead.iter().map(|l| -l).collect();
            vec![Some(g.window(&back, x.shape()))]
        }
        Op::ReflectPad(geometry) => vec![Some(g.reflect_pad2d_backward(*geometry))],
        Op::ReflectPadBackward(geometry) => {
            vec![Some(g.reflect_pad2d(
                geometry.top as usize,
                (geometry.oh - geometry.h - geometry.top) as usize,
                geometry.left as usize,
                (geometry.ow - geometry.w - geometry.left) as usize,
            ))]
        }
        Op::Matmul { trans_a, trans_b } => {
            let (ta, tb) = (*trans_a, *trans_b);
            let b = &node.inputs[1];
            let da = want(0).then(|| if ta { b.matmul_t(g, tb, true) } else { g.matmul_t(b, false, !tb) });
            let db = want(1).then(|| if tb { g.matmul_t(x, true, ta) } else { x.matmul_t(g, !ta, false) });
            vec![da, db]
        }
        Op::Conv2d { stride, pad, cols } => {
            let w = &node.inputs[1];
            let (h, wd) = (x.shape()[2], x.shape()[3]);
            let dx = want(0).then(|| g.conv_transpose2d_to(w, *stride, *pad, h, wd));
            let dw = want(1).then(|| match (cols, create_graph) {
                (Some(cols), false) => {
                    let geo = conv_geometry(x.shape(), w.shape(), *stride, *pad);
                    Tensor::from_buffer(
                        x.gpu(),
                        w.shape(),
                        kernels::conv2d_backward_weight_from_cols(x.gpu(), &geo, cols, g.buffer()),
                    )
                }
                _ => x.conv2d_weight_grad(g, *stride, *pad, w.shape()[2], w.shape()[3]),
            });
            vec![dx, dw]
        }
        Op::Conv2dActivated { stride, pad, slope } => {
            let (w, bias, (s, p)) = (&node.inputs[1], node.inputs.get(2), (*stride, *pad));
            if create_graph {
                // The fused rule below is first order: differentiate the ops apart instead.
                return through_composite(&x.conv2d_bias_activation_apart(w, bias, s, p, *slope), node, g, needed);
            }
            // Through the activation first: the output is positive exactly where its input is.
            let y = saved_output(node, output, false, || unreachable!("the output is kept"));
            let g_pre = kernels::unary_backward(x.gpu(), UnaryOp::LeakyRelu, *slope, y.buffer(), g.buffer());
            let g_pre = Tensor::from_buffer(x.gpu(), g.shape(), g_pre);
            let (h, wd, kh, kw) = (x.shape()[2], x.shape()[3], w.shape()[2], w.shape()[3]);
            let dx = want(0).then(|| g_pre.conv_transpose2d_to(w, s, p, h, wd));
            let dw = want(1).then(|| x.conv2d_weight_grad(&g_pre, s, p, kh, kw));
            let db = bias.filter(|_| want(2)).map(|b| g_pre.sum(&[0, 2, 3], false).reshape(b.shape()));
            vec![dx, dw, db]
        }
        Op::ConvTranspose2d { stride, pad } => {
            let w = &node.inputs[1];
            if !create_graph && want(0) && want(1) {
                // Both gradients read g's patches: a patch matrix, where dx builds one, serves dw too.
                let (gpu, geo) = (x.gpu(), conv_geometry(g.shape(), w.shape(), *stride, *pad));
                let (dx, cols) = kernels::conv2d_forward_with_cols(gpu, &geo, g.buffer(), w.buffer());
                let dw = kernels::conv2d_backward_weight_reusing(gpu, &geo, cols.as_ref(), g.buffer(), x.buffer());
                return vec![
                    Some(Tensor::from_buffer(x.gpu(), x.shape(), dx)),
                    Some(Tensor::from_buffer(x.gpu(), w.shape(), dw)),
                ];
            }
            let dx = want(0).then(|| g.conv2d(w, *stride, *pad));
            let dw = want(1).then(|| g.conv2d_weight_grad(x, *stride, *pad, w.shape()[2], w.shape()[3]));
            vec![dx, dw]
        }
        Op::LossTerms { kind, grad: saved } => {
            let t = &node.inputs[1];
            let bce = *kind == LossKind::BceWithLogits;
            // d terms / dx: the saved values, or for a second order the formula as ops (the
            // saved buffer is a constant to autodiff). The distances' dt is its negation.
            let dx = (want(0) || (want(1) && !bce)).then(|| {
                let d = if create_graph {
                    match kind {
                        LossKind::BceWithLogits => x.sigmoid().sub(t),
                        LossKind::SquaredError => x.sub(t).scale(2.0),
                        LossKind::AbsoluteError => x.sub(t).sign(),
                    }
                } else {
                    Tensor::from_parts(x.gpu(), x.shape().to_vec(), saved.clone(), None)
                };
                d.mul(g)
            });
            let dt = want(1).then(|| if bce { x.mul(g).neg() } else { dx.as_ref().expect("computed for dt").neg() });
            vec![dx.filter(|_| want(0)), dt]
        }
        Op::BatchNorm { params, stats } => {
            let (gamma, beta, c) = (&node.inputs[1], &node.inputs[2], params.channels as usize);
            if create_graph {
                // The fused backward is first order: differentiate the composite formula instead.
                return through_composite(&x.normalize_composite(params, gamma, beta), node, g, needed);
            }
            // (The kernels take g through the fused activation themselves.)
            let (dx, grad_stats) = kernels::batch_norm_backward(
                x.gpu(),
                params,
                x.buffer(),
                stats,
                [gamma.buffer(), beta.buffer()],
                g.buffer(),
            );
            let grad_stats = Tensor::from_buffer(x.gpu(), &[2, c], grad_stats);
            let dgamma = want(1).then(|| grad_stats.narrow(0, 1, 1).reshape(gamma.shape()));
            let dbeta = want(2).then(|| grad_stats.narrow(0, 0, 1).reshape(beta.shape()));
            vec![Some(Tensor::from_buffer(x.gpu(), x.shape(), dx)), dgamma, dbeta]
        }
        Op::Conv2dWeightGrad { stride, pad } => {
            let dy = &node.inputs[1];
            let (h, wd) = (x.shape()[2], x.shape()[3]);
            let dx = want(0).then(|| dy.conv_transpose2d_to(g, *stride, *pad, h, wd));
            let ddy = want(1).then(|| x.conv2d(g, *stride, *pad));
            vec![dx, ddy]
        }
    }
}
