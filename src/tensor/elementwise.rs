//! Elementwise ops (unary.wgsl, binary.wgsl): the op codes, the launchers, the `Tensor`
//! methods and their gradient rules. CPU reference: `reference::unary`, `reference::binary`.

use bytemuck::{Pod, Zeroable};

use super::launch::{broadcast_strides, collapse, grid_1d, pack, runs_of_four, u32s, WG_1D};
use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::gpu::wgsl_enum::WgslEnum;
use crate::gpu::{Gpu, GpuBuffer, Kernel, Operand, Shader};

crate::wgsl_enum! {
    /// Elementwise functions of one tensor (unary.wgsl).
    pub enum UnaryOp: "UNARY" {
        /// -x.
        Neg = 0,
        /// e^x.
        Exp = 1,
        /// ln x.
        Log = 2,
        /// sqrt(x).
        Sqrt = 3,
        /// |x|.
        Abs = 4,
        /// tanh(x).
        Tanh = 5,
        /// 1 / (1 + e^-x).
        Sigmoid = 6,
        /// max(x, 0).
        Relu = 7,
        /// x where positive, alpha x elsewhere.
        LeakyRelu = 8,
        /// ln(1 + e^x).
        Softplus = 9,
        /// 1 / x.
        Recip = 10,
        /// x^alpha.
        Pow = 11,
        /// alpha x + beta.
        Affine = 12,
        /// 1 where x > 0, else 0.
        Step = 13,
        /// 1 where x > 0, else alpha (leaky ReLU's derivative).
        LeakySlope = 14,
        /// -1, 0 or 1.
        Sign = 15,
        /// x clamped into `[alpha, beta]`.
        Clamp = 16,
        /// 1 where alpha <= x <= beta, else 0.
        InRange = 17,
    }
}

impl UnaryOp {
    /// Masks and signs are piecewise constant: no gradient flows through them.
    pub fn has_gradient(self) -> bool {
        !matches!(self, UnaryOp::Step | UnaryOp::LeakySlope | UnaryOp::Sign | UnaryOp::InRange)
    }

    /// For the activations whose first-order gradient one pass computes (`unary_backward`):
    /// whether that pass reads the output (tanh, sigmoid) rather than the input (the ReLUs).
    /// None for every other op.
    pub fn fused_gradient_reads_output(self) -> Option<bool> {
        match self {
            UnaryOp::Relu | UnaryOp::LeakyRelu => Some(false),
            UnaryOp::Tanh | UnaryOp::Sigmoid => Some(true),
            _ => None,
        }
    }
}

crate::wgsl_enum! {
    /// Elementwise functions of two tensors, with broadcasting (binary.wgsl).
    pub enum BinaryOp: "BINARY" {
        /// a + b.
        Add = 0,
        /// a - b.
        Sub = 1,
        /// a b.
        Mul = 2,
        /// a / b.
        Div = 3,
        /// max(a, b).
        Max = 4,
        /// min(a, b).
        Min = 5,
        /// 1 where a > b, else 0.
        Greater = 6,
        /// 1 where a == b, else 0.
        Equal = 7,
    }
}

impl BinaryOp {
    /// Comparisons are piecewise constant: no gradient flows through them.
    pub fn has_gradient(self) -> bool {
        !matches!(self, BinaryOp::Greater | BinaryOp::Equal)
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct UnaryParams {
        n: u32,
        alpha: f32,
        beta: f32,
        x_shift: u32,
    }
}

/// y = op(x) elementwise, with op's parameters alpha and beta.
pub fn unary(gpu: &Gpu, op: UnaryOp, alpha: f32, beta: f32, x: &GpuBuffer) -> GpuBuffer {
    let n = x.len();
    let y = gpu.alloc(n);
    let x_read = gpu.flat_operand(x);
    let params = UnaryParams { n: n as u32, alpha, beta, x_shift: x_read.shift() };
    // Four values per invocation (unary.wgsl).
    let kernel = Kernel::new(Shader::Unary, "forward").reading("FROM_TEXTURE", &x_read).with("OP", op.code());
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&x_read], &[&y], grid_1d(gpu, n.div_ceil(4), WG_1D));
    y
}

/// dx = g * f'(v) for the activations with a fused first-order gradient (unary.wgsl's
/// `backward`): v is the input for ReLU and leaky ReLU (slope `alpha`), the output for tanh and
/// sigmoid.
pub fn unary_backward(gpu: &Gpu, op: UnaryOp, alpha: f32, v: &GpuBuffer, g: &GpuBuffer) -> GpuBuffer {
    assert!(op.fused_gradient_reads_output().is_some(), "{op:?} has no fused gradient");
    let n = v.len();
    assert_eq!(g.len(), n, "gradient and values differ in length");
    let dx = gpu.alloc(n);
    // Same length, so both copies have the same row length; the entry point reads both or neither.
    let (mut v_read, mut g_read) = (gpu.flat_operand(v), gpu.flat_operand(g));
    if !(v_read.textured() && g_read.textured()) {
        (v_read, g_read) = (Operand::storage(), Operand::storage());
    }
    let params = UnaryParams { n: n as u32, alpha, beta: 0.0, x_shift: v_read.shift() };
    let kernel = Kernel::new(Shader::Unary, "backward").reading("FROM_TEXTURE", &v_read).with("OP", op.code());
    let grid = grid_1d(gpu, n.div_ceil(4), WG_1D);
    gpu.dispatch_with_textures(&kernel, &params, &[v, g], &[&v_read, &g_read], &[&dx], grid);
    dx
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct BinaryParams {
        n: u32,
        rank: u32,
        a_shift: u32,
        b_shift: u32,
        shape: [[u32; 4]; 2],
        a_strides: [[u32; 4]; 2],
        b_strides: [[u32; 4]; 2],
    }
}

/// a op b elementwise with numpy broadcasting to `out_shape`.
pub fn binary(
    gpu: &Gpu,
    op: BinaryOp,
    a: &GpuBuffer,
    a_shape: &[usize],
    b: &GpuBuffer,
    b_shape: &[usize],
    out_shape: &[usize],
) -> GpuBuffer {
    let n: usize = out_shape.iter().product();
    let out = gpu.alloc(n);
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let (shape, strides) = collapse(out_shape, &[&sa, &sb]);
    let mut params = BinaryParams {
        n: n as u32,
        rank: shape.len() as u32,
        a_shift: 0,
        b_shift: 0,
        shape: pack(&u32s(&shape)),
        a_strides: pack(&u32s(&strides[0])),
        b_strides: pack(&u32s(&strides[1])),
    };
    // Same-shape operands and scalars (one axis), or runs of four: four values per invocation,
    // operands from their texture copies where they have one (binary.wgsl).
    let entry = if shape.len() == 1 {
        "contiguous"
    } else if runs_of_four(&shape, &strides) {
        "broadcast4"
    } else {
        gpu.dispatch(
            &Kernel::new(Shader::Binary, "forward").with("OP", op.code()),
            &params,
            &[a, b],
            &[&out],
            grid_1d(gpu, n, WG_1D),
        );
        return out;
    };
    // (x * x and the like: the second request finds the first's copy.)
    let (a_read, b_read) = (gpu.flat_operand(a), gpu.flat_operand(b));
    (params.a_shift, params.b_shift) = (a_read.shift(), b_read.shift());
    let kernel = Kernel::new(Shader::Binary, entry)
        .with("OP", op.code())
        .reading("A_TEXTURE", &a_read)
        .reading("B_TEXTURE", &b_read);
    let grid = grid_1d(gpu, n.div_ceil(4), WG_1D);
    gpu.dispatch_with_textures(&kernel, &params, &[a, b], &[&a_read, &b_read], &[&out], grid);
    out
}

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
    // ---- elementwise, one operand ----

    /// Any unary kernel by code (for tests that sweep the whole op table).
    #[cfg(feature = "internals")]
    pub fn unary_for_tests(&self, op: UnaryOp, alpha: f32, beta: f32) -> Tensor {
        self.unary(op, alpha, beta)
    }

    /// Any binary kernel by code (for tests that sweep the whole op table).
    #[cfg(feature = "internals")]
    pub fn binary_for_tests(&self, op: BinaryOp, other: &Tensor) -> Tensor {
        self.binary(op, other)
    }

    pub(crate) fn unary(&self, op: UnaryOp, alpha: f32, beta: f32) -> Tensor {
        let out = unary(self.gpu(), op, alpha, beta, self.buffer());
        let keep = matches!(op, UnaryOp::Exp | UnaryOp::Sqrt | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Recip);
        self.record(&[self], self.shape().to_vec(), out, Op::Unary { op, alpha, beta }, keep)
    }

    /// -x.
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg, 0.0, 0.0)
    }
    /// e^x.
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp, 0.0, 0.0)
    }
    /// ln x.
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log, 0.0, 0.0)
    }
    /// sqrt(x).
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt, 0.0, 0.0)
    }
    /// |x|.
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs, 0.0, 0.0)
    }
    /// tanh(x).
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh, 0.0, 0.0)
    }
    /// 1 / (1 + e^-x), stable for any x.
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid, 0.0, 0.0)
    }
    /// max(x, 0).
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu, 0.0, 0.0)
    }
    /// max(x, slope x) for slope in `[0, 1]` (x where positive, slope x elsewhere).
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
    /// 1 / x.
    pub fn recip(&self) -> Tensor {
        self.unary(UnaryOp::Recip, 0.0, 0.0)
    }
    /// x^exponent (signed for odd integer exponents).
    pub fn powf(&self, exponent: f32) -> Tensor {
        self.unary(UnaryOp::Pow, exponent, 0.0)
    }
    /// x².
    pub fn square(&self) -> Tensor {
        self.powf(2.0)
    }
    /// scale * x + shift
    pub fn affine(&self, scale: f32, shift: f32) -> Tensor {
        self.unary(UnaryOp::Affine, scale, shift)
    }
    /// factor · x.
    pub fn scale(&self, factor: f32) -> Tensor {
        self.affine(factor, 0.0)
    }
    /// x + value.
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
    /// -1, 0 or 1 (no gradient).
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
        let out = binary(self.gpu(), op, self.buffer(), self.shape(), other.buffer(), other.shape(), &shape);
        self.record(&[self, other], shape, out, Op::Binary(op), false)
    }

    /// self + other, broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Add, other)
    }
    /// self - other, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Sub, other)
    }
    /// self · other, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Mul, other)
    }
    /// self / other, broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Div, other)
    }
    /// The larger of the two, broadcasting (ties send the gradient to self).
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(BinaryOp::Max, other)
    }
    /// The smaller of the two, broadcasting (ties send the gradient to self).
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
}

/// The gradient of a unary op: the fused one-pass rule for the activations at first order,
/// else the derivative written in differentiable ops.
pub(crate) fn unary_grad(b: &Backward, op: UnaryOp, alpha: f32, beta: f32) -> Vec<Option<Tensor>> {
    let (x, g) = (b.input(0), b.g);
    let y = || b.saved_output(|| x.unary(op, alpha, beta));
    if let (false, Some(reads_output)) = (b.create_graph, op.fused_gradient_reads_output()) {
        let v = if reads_output { y() } else { x.clone() };
        let dx = unary_backward(x.gpu(), op, alpha, v.buffer(), g.buffer());
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

/// The gradient of a broadcasting binary op, summed back to each operand's shape.
pub(crate) fn binary_grad(b: &Backward, op: BinaryOp) -> Vec<Option<Tensor>> {
    let (x, y, g) = (b.input(0), b.input(1), b.g);
    let (gx, gy): (Option<Tensor>, Option<Tensor>) = match op {
        BinaryOp::Add => (b.want(0).then(|| g.clone()), b.want(1).then(|| g.clone())),
        BinaryOp::Sub => (b.want(0).then(|| g.clone()), b.want(1).then(|| g.neg())),
        BinaryOp::Mul => (b.want(0).then(|| g.mul(y)), b.want(1).then(|| g.mul(x))),
        BinaryOp::Div => {
            let gx = g.div(y);
            let gy = b.want(1).then(|| gx.mul(x).div(y).neg());
            (Some(gx), gy)
        }
        BinaryOp::Max | BinaryOp::Min => {
            // Ties send the gradient to the first operand, like a select.
            let first = if op == BinaryOp::Max { x.greater(y) } else { y.greater(x) };
            let first = first.add(&x.equal(y));
            let gx = g.mul(&first);
            let gy = b.want(1).then(|| g.sub(&gx));
            (Some(gx), gy)
        }
        BinaryOp::Greater | BinaryOp::Equal => return vec![None, None],
    };
    vec![gx.filter(|_| b.want(0)).map(|t| t.sum_to(x.shape())), gy.map(|t| t.sum_to(y.shape()))]
}
