//! GPU tensors (f32, contiguous, row-major) that remember how they were computed, so gradients
//! can be taken of anything, gradients included.
//!
//! The ops live by family, each module beside its WGSL file with its launchers, its `Tensor`
//! methods and its gradient rules (RECIPE.md says how to add one): `elementwise` (unary.wgsl,
//! binary.wgsl), `reduce`, `movement`, `matmul` (matmul.wgsl, matmul_subgroup.wgsl), `conv`
//! (conv2d.wgsl, matmul_conv.wgsl), `norm` (batchnorm.wgsl), `loss`, and `optim_kernels`
//! (optim.wgsl, no gradients). `launch` holds what their launchers share.

pub mod collective;
pub(crate) mod conv;
pub(crate) mod elementwise;
#[cfg(feature = "internals")]
pub mod kernels;
#[cfg(not(feature = "internals"))]
pub(crate) mod kernels;
pub(crate) mod launch;
pub(crate) mod loss;
pub mod matmul;
pub(crate) mod movement;
pub(crate) mod norm;
mod optim_kernels;
pub(crate) mod reduce;
pub use elementwise::broadcast_shape;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::autograd::{Node, Op};
use crate::gpu::{Gpu, GpuBuffer};

pub use kernels::{BinaryOp, ReduceOp, UnaryOp};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// While alive, new tensors record no graph (like `torch.no_grad()`).
pub struct NoGradGuard {
    previous: bool,
}

/// Stops recording graphs on this thread until the guard drops.
pub fn no_grad() -> NoGradGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { previous }
}

/// Re-enables recording inside a `no_grad` region (for `create_graph` backward passes).
pub(crate) fn enable_grad() -> NoGradGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(true));
    NoGradGuard { previous }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Whether new tensors on this thread record their graph.
pub fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

pub(crate) struct TensorInner {
    pub(crate) id: u64,
    pub(crate) shape: Vec<usize>,
    pub(crate) buffer: Arc<GpuBuffer>,
    pub(crate) gpu: Gpu,
    pub(crate) requires_grad: bool,
    pub(crate) node: Option<Node>,
}

/// A tensor on the device (f32, contiguous, row-major) that remembers how it was computed.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorInner>);

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape())
    }
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

    pub(crate) fn from_parts(gpu: &Gpu, shape: Vec<usize>, buffer: Arc<GpuBuffer>, node: Option<Node>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), buffer.len());
        let requires_grad = node.is_some();
        Tensor(Arc::new(TensorInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            buffer,
            gpu: gpu.clone(),
            requires_grad,
            node,
        }))
    }

    pub(crate) fn from_buffer(gpu: &Gpu, shape: &[usize], buffer: GpuBuffer) -> Tensor {
        Tensor::from_parts(gpu, shape.to_vec(), Arc::new(buffer), None)
    }

    /// A tensor of `shape` holding `data`.
    pub fn from_vec(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} does not hold {} values", data.len());
        Tensor::from_buffer(gpu, shape, gpu.upload(data))
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Tensor {
        Tensor::from_buffer(gpu, shape, kernels::fill(gpu, shape.iter().product(), value))
    }

    /// Zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Tensor {
        Tensor::full(gpu, shape, 0.0)
    }

    /// Ones.
    pub fn ones(gpu: &Gpu, shape: &[usize]) -> Tensor {
        Tensor::full(gpu, shape, 1.0)
    }

    /// A one-element tensor of shape `[1]`.
    pub fn scalar(gpu: &Gpu, value: f32) -> Tensor {
        Tensor::from_vec(gpu, &[1], &[value])
    }

    /// A leaf that gradients are taken with respect to (a parameter, or WGAN-GP's x_hat).
    pub fn requires_grad(self) -> Tensor {
        let inner = &self.0;
        Tensor(Arc::new(TensorInner {
            id: inner.id,
            shape: inner.shape.clone(),
            buffer: inner.buffer.clone(),
            gpu: inner.gpu.clone(),
            requires_grad: true,
            node: None,
        }))
    }

    /// The same values cut from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(&self.0.gpu, self.0.shape.clone(), self.0.buffer.clone(), None)
    }

    /// A process-unique id.
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// The extents.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// How many axes.
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }
    /// How many elements.
    pub fn numel(&self) -> usize {
        self.0.buffer.len()
    }
    /// The device it lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.0.gpu
    }
    /// Its buffer on the device.
    pub fn buffer(&self) -> &GpuBuffer {
        &self.0.buffer
    }
    /// Whether gradients flow to or through it.
    pub fn tracks_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// Reads the values back (waits for the GPU).
    pub fn to_vec(&self) -> Vec<f32> {
        self.0.gpu.read(&self.0.buffer)
    }

    /// `to_vec` without blocking: the values once the device has produced them (the form a
    /// browser needs; natively it waits as `to_vec` does).
    pub async fn to_vec_async(&self) -> Vec<f32> {
        self.0.gpu.read_async(&self.0.buffer).await
    }

    /// Starts reading the values back now and returns their future: reads started together
    /// share one trip to the device (a whole model's weights, say), however they are awaited.
    pub fn to_vec_later(&self) -> impl std::future::Future<Output = Vec<f32>> + 'static {
        let pending = (self.numel() > 0).then(|| self.0.gpu.read_later(&self.0.buffer));
        async move {
            match pending {
                Some(read) => bytemuck::pod_collect_to_vec(&read.await),
                None => vec![],
            }
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> f32 {
        assert_eq!(self.numel(), 1, "item() of a tensor of shape {:?}", self.shape());
        self.to_vec()[0]
    }

    /// `item` without blocking.
    pub async fn item_async(&self) -> f32 {
        assert_eq!(self.numel(), 1, "item_async() of a tensor of shape {:?}", self.shape());
        self.to_vec_async().await[0]
    }

    /// Overwrites this tensor's buffer with another's values (running statistics, EMA), in
    /// order with the recorded work.
    pub fn assign_from(&self, other: &Tensor) {
        assert_eq!(other.numel(), self.numel(), "assign_from {:?} to {:?}", other.shape(), self.shape());
        kernels::copy(&self.0.gpu, &other.0.buffer, &self.0.buffer);
    }

    /// Overwrites the values in place (parameters loaded from a checkpoint); any graph that
    /// saved this tensor sees the new values.
    pub fn assign(&self, data: &[f32]) {
        assert_eq!(data.len(), self.numel(), "assign of {} values to {:?}", data.len(), self.shape());
        let staged = self.0.gpu.upload(data);
        // A GPU copy, so the write is ordered with the work already recorded.
        kernels::copy(&self.0.gpu, &staged, &self.0.buffer);
    }
}
