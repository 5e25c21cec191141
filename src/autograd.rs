//! Reverse-mode autodiff: the tape (`Op`, `Node`), the walk over it (`grad`), and a dispatch to
//! each op family's gradient rules (in src/tensor/, beside the ops). Each rule is written in the
//! same differentiable ops, so with `create_graph` the gradients are themselves graphs and can
//! be differentiated again (WGAN-GP's penalty needs d/dθ of ||∂D/∂x||).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::gpu::GpuBuffer;
use crate::tensor::kernels::{BatchNormParams, LossKind, ReflectGeometry};
use crate::tensor::loss;
use crate::tensor::{
    collective, conv, elementwise, enable_grad, matmul, movement, no_grad, norm, reduce, BinaryOp, Tensor, UnaryOp,
};

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
    /// The element-wise mean over the ranks of a data-parallel job.
    MeanOverRanks,
}

impl std::fmt::Debug for ReflectGeometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} +({},{}) -> {}x{}", self.h, self.w, self.top, self.left, self.oh, self.ow)
    }
}

impl Op {
    /// Whether gradients flow through the op (not through masks and comparisons).
    pub(crate) fn is_differentiable(&self) -> bool {
        match self {
            Op::Unary { op, .. } => op.has_gradient(),
            Op::Binary(op) => op.has_gradient(),
            _ => true,
        }
    }
}

/// How a tensor was computed: the op, its inputs, and (for ops whose gradient reuses it) the
/// output's buffer.
pub(crate) struct Node {
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) output: Option<Arc<GpuBuffer>>,
}

/// The tensors a gradient is taken with respect to: `&[&x, &w]`, `&net.parameters()`, a `Vec`
/// of either, or an array.
pub trait Wrt {
    /// The tensors, in order.
    fn tensors(&self) -> Vec<&Tensor>;
}

impl Wrt for [&Tensor] {
    fn tensors(&self) -> Vec<&Tensor> {
        self.to_vec()
    }
}

impl Wrt for [Tensor] {
    fn tensors(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}

impl Wrt for Vec<&Tensor> {
    fn tensors(&self) -> Vec<&Tensor> {
        self.clone()
    }
}

impl Wrt for Vec<Tensor> {
    fn tensors(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}

impl<const N: usize> Wrt for [&Tensor; N] {
    fn tensors(&self) -> Vec<&Tensor> {
        self.to_vec()
    }
}

impl<const N: usize> Wrt for [Tensor; N] {
    fn tensors(&self) -> Vec<&Tensor> {
        self.iter().collect()
    }
}

/// How [`grad_with`] runs the backward pass: `GradOptions::default()` is [`grad`]'s.
#[derive(Clone, Copy, Default)]
pub struct GradOptions<'a> {
    seed: Option<&'a Tensor>,
    create_graph: bool,
}

impl<'a> GradOptions<'a> {
    /// Starts the backward pass from `seed` (the upstream gradient, `output`'s shape) instead
    /// of ones: a vector-Jacobian product.
    pub fn seed(mut self, seed: &'a Tensor) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Records the gradients' own graph, so that they can be differentiated again (gradient
    /// penalties, R1, second order).
    pub fn create_graph(mut self) -> Self {
        self.create_graph = true;
        self
    }
}

/// Gradients of `output` with respect to each of `wrt` (d sum(output) / d w); zeros where
/// `output` does not depend on it. `wrt` is anything [`Wrt`] takes: `grad(&loss, &[&x])` or
/// `grad(&loss, &net.parameters())`.
pub fn grad<W: Wrt + ?Sized>(output: &Tensor, wrt: &W) -> Vec<Tensor> {
    grad_with(output, wrt, GradOptions::default())
}

/// [`grad`] with an upstream gradient or a recorded graph:
/// `grad_with(&y, &[&x], GradOptions::default().seed(&dy).create_graph())`.
pub fn grad_with<W: Wrt + ?Sized>(output: &Tensor, wrt: &W, options: GradOptions) -> Vec<Tensor> {
    let GradOptions { seed, create_graph } = options;
    let wrt = wrt.tensors();
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

/// What a gradient rule sees: the node, its output, the output's gradient `g`, which inputs
/// need a gradient, and whether the gradients must record their own graph. Each family's
/// module holds its rules (`elementwise::unary_grad`, `conv::conv2d_grad`, ...); `backward`
/// only dispatches to them.
pub(crate) struct Backward<'a> {
    pub(crate) node: &'a Node,
    output: &'a Tensor,
    pub(crate) g: &'a Tensor,
    needed: &'a [bool],
    pub(crate) create_graph: bool,
}

impl Backward<'_> {
    /// The node's input `i`.
    pub(crate) fn input(&self, i: usize) -> &Tensor {
        &self.node.inputs[i]
    }

    /// Whether input `i` needs a gradient.
    pub(crate) fn want(&self, i: usize) -> bool {
        self.needed.get(i).copied().unwrap_or(false)
    }

    /// The node's output for rules written in terms of y: recomputed (and so differentiable)
    /// when building a graph, else the forward pass's own buffer.
    pub(crate) fn saved_output(&self, recompute: impl FnOnce() -> Tensor) -> Tensor {
        match (&self.node.output, self.create_graph) {
            (Some(buf), false) => {
                Tensor::from_parts(self.output.gpu(), self.output.shape().to_vec(), buf.clone(), None)
            }
            _ => recompute(),
        }
    }

    /// The needed inputs' gradients, with a graph, through `composite`: the node's output
    /// recomputed from differentiable ops (for fused ops whose own rule is first order).
    pub(crate) fn through_composite(&self, composite: &Tensor) -> Vec<Option<Tensor>> {
        let inputs = &self.node.inputs;
        let wrt: Vec<&Tensor> = (0..inputs.len()).filter(|&i| self.want(i)).map(|i| &inputs[i]).collect();
        let mut grads = grad_with(composite, &wrt, GradOptions::default().seed(self.g).create_graph()).into_iter();
        (0..inputs.len()).map(|i| self.want(i).then(|| grads.next().expect("one gradient per input"))).collect()
    }
}

/// The gradient of each input of `node` given the output gradient `g`; `None` where the input
/// is not `needed`.
fn backward(node: &Node, output: &Tensor, g: &Tensor, needed: &[bool], create_graph: bool) -> Vec<Option<Tensor>> {
    let b = Backward { node, output, g, needed, create_graph };
    match &node.op {
        Op::Unary { op, alpha, beta } => elementwise::unary_grad(&b, *op, *alpha, *beta),
        Op::Binary(op) => elementwise::binary_grad(&b, *op),
        Op::Sum => reduce::sum_grad(&b),
        Op::Expand => reduce::expand_grad(&b),
        Op::Reshape => movement::reshape_grad(&b),
        Op::Permute(perm) => movement::permute_grad(&b, perm),
        Op::Window(lead) => movement::window_grad(&b, lead),
        Op::ReflectPad(geometry) => movement::reflect_pad_grad(&b, *geometry, false),
        Op::ReflectPadBackward(geometry) => movement::reflect_pad_grad(&b, *geometry, true),
        Op::Matmul { trans_a, trans_b } => matmul::matmul_grad(&b, *trans_a, *trans_b),
        Op::Conv2d { stride, pad, cols } => conv::conv2d_grad(&b, *stride, *pad, cols.as_ref()),
        Op::Conv2dActivated { stride, pad, slope } => conv::conv2d_activated_grad(&b, *stride, *pad, *slope),
        Op::ConvTranspose2d { stride, pad } => conv::conv_transpose2d_grad(&b, *stride, *pad),
        Op::Conv2dWeightGrad { stride, pad } => conv::conv2d_weight_grad_grad(&b, *stride, *pad),
        Op::LossTerms { kind, grad } => loss::loss_grad(&b, *kind, grad),
        Op::BatchNorm { params, stats } => norm::norm_grad(&b, params, stats),
        Op::MeanOverRanks => collective::mean_over_ranks_grad(&b),
    }
}
