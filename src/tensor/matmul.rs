//! Matrix products (matmul.wgsl, and matmul_subgroup.wgsl where the device runs it): the
//! operand modes, the launcher that picks how each operand travels, `Tensor::matmul` and its
//! gradient rule. CPU reference: `reference::matmul`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{binary, BinaryOp};
use super::reduce::{reduce, ReduceOp};
use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::gpu::wgsl_enum::WgslEnum;
use crate::gpu::{Gpu, GpuBuffer, Kernel, Operand, Shader};

crate::wgsl_enum! {
    /// How the subgroup matmul reads B.
    pub enum BOperand: "B_MODE" {
        /// Any strides, scalar loads.
        Strided = 0,
        /// Contiguous along N: vec4 loads of four columns.
        RowsVec4 = 1,
        /// Contiguous along K: a vec4 holds four k of one column.
        ColumnsVec4 = 2,
        /// As `RowsVec4`, from a texture copy whose texel rows are B's rows.
        RowsTexture = 3,
        /// As `ColumnsVec4`, from a texture copy whose texel rows are B's columns.
        ColumnsTexture = 4,
        /// A transposed convolution by output phase, gathered from the image (implicit GEMM).
        ConvPhases = 5,
        /// A convolution's patches gathered from the image (implicit GEMM).
        ConvPatches = 6,
        /// A convolution's patches with kernel taps as columns and output positions along K,
        /// gathered from the image (implicit GEMM for weight gradients).
        ConvTaps = 7,
    }
}

crate::wgsl_enum! {
    /// How the subgroup matmul reads A.
    pub enum AOperand: "A_MODE" {
        /// Any strides, from storage.
        Strided = 0,
        /// From a texture copy whose texel rows are A's lines along K.
        TextureAlongK = 1,
        /// From a texture copy whose texel rows are A's lines along M (whole tiles of rows).
        TextureAlongM = 2,
        /// A convolution's patch matrix gathered from the image's texture copy (weight gradients).
        ConvPatches = 3,
        /// An NCHW tensor's channels as rows, K running over its images and positions, from its
        /// flat texture copy (a convolution's output gradient, for weight gradients).
        ImageRows = 4,
    }
}

impl BOperand {
    /// Whether a lane's columns run along N (four consecutive columns per vec4).
    pub fn along_n(self) -> bool {
        matches!(
            self,
            BOperand::RowsVec4
                | BOperand::RowsTexture
                | BOperand::ConvPhases
                | BOperand::ConvPatches
                | BOperand::ConvTaps
        )
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Default, Pod, Zeroable)]
    pub(super) struct MatmulParams {
        pub m: u32,
        pub n: u32,
        pub k: u32,
        pub batch: u32,
        pub a_batch: u32,
        pub a_row: u32,
        pub a_col: u32,
        pub b_batch: u32,
        pub b_row: u32,
        pub b_col: u32,
        pub k_last: u32,
        pub a_shift: u32,
        pub b_shift: u32,
        /// Convolution geometry for the subgroup matmul's implicit GEMM (conv_kernels.rs): the
        /// source image's channels and plane, the grid of outputs, stride and padding.
        pub src_c: u32,
        pub src_h: u32,
        pub src_w: u32,
        pub grid_h: u32,
        pub grid_w: u32,
        pub stride: u32,
        pub pad: u32,
        /// The slope of B_MODE 6's fused (leaky) ReLU.
        pub slope: f32,
        pub _pad: [u32; 3],
    }
}

/// Rows per tile of the subgroup matmul: 64, or 16 or 32 for products with no more rows, whose
/// 64-row tiles would compute clamped copies of their last row.
pub(super) fn subgroup_tile_rows(m: usize) -> usize {
    match m {
        0..=16 => 16,
        17..=32 => 32,
        _ => 64,
    }
}

/// The register-blocked matmul (matmul_subgroup.wgsl with the device's lane exchange) reading
/// B and A as `b` and `a` say, with tiles of `subgroup_tile_rows(m)` rows; None on a device
/// that runs the portable kernels.
pub(super) fn blocked_kernel(gpu: &Gpu, b: BOperand, a: AOperand, m: usize) -> Option<Kernel> {
    let path = gpu.kernel_path();
    let row_groups = subgroup_tile_rows(m) / 16;
    let kernel = Kernel::new(path.blocked_matmul?, "forward")
        .with("B_MODE", b.code())
        .with("A_MODE", a.code())
        .with("ROW_GROUPS", row_groups as u32);
    // Pairs need two groups in the workgroup.
    Some(if path.paired_groups && row_groups >= 2 { kernel.with("PAIRED_GROUPS", 1) } else { kernel })
}

/// How many chunks of K a product runs as, and their length, for a product of `tiles` output
/// tiles. Split-K: a small output with a long reduction (a weight gradient summed over every
/// position of the batch) would occupy a handful of invocations; instead each chunk runs as a
/// batch entry and a sum over the chunks finishes the job.
pub(super) fn split_k(batch: usize, tiles: usize, skinny: bool, k: usize) -> (usize, usize) {
    let mut splits = if batch == 1 && !skinny && tiles < 16 && k >= 1024 { (16 / tiles).clamp(2, k / 256) } else { 1 };
    // llvmpipe ends an invocation's loops after 65535 steps in all (silently): K chunks stay
    // well below that.
    const MAX_K: usize = 32768;
    if k > MAX_K {
        assert_eq!(batch, 1, "batched matmul with K = {k} > {MAX_K} is not supported");
        splits = splits.max(k.div_ceil(MAX_K));
    }
    // Chunks of a multiple of 8 keep every chunk of a K-contiguous operand vec4-aligned.
    let k_chunk = k.div_ceil(splits).next_multiple_of(8);
    (k.div_ceil(k_chunk), k_chunk)
}

/// C[batch, m, n] = op(A) · op(B) where A is stored [batch, m, k] ([batch, k, m] if
/// `trans_a`) and B is stored [batch, k, n] ([batch, n, k] if `trans_b`).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    gpu: &Gpu,
    a: &GpuBuffer,
    b: &GpuBuffer,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> GpuBuffer {
    if n == 1 && m > 1 {
        // C [m, 1] and C^T [1, m] share a layout: compute C^T = op(B)^T op(A)^T, a skinny product.
        return matmul(gpu, b, a, batch, n, k, m, !trans_b, !trans_a);
    }
    gpu.count_matmul_flops(2 * (batch * m * n * k) as u64);
    if m == 1 && batch == 1 && n <= 512 && k >= 1024 && n * k <= 1 << 24 {
        // A vector times a matrix with few columns and a long reduction (DCGAN's last
        // discriminator layer: 64 outputs of 4096 products each). The skinny kernel would run
        // it as one workgroup of long serial loops; as a product of B with a broadcast A and a
        // sum over K it is two passes at memory speed.
        let (b_shape, a_shape, axis) = if trans_b { ([n, k], [1, k], 1) } else { ([k, n], [k, 1], 0) };
        let products = binary(gpu, BinaryOp::Mul, b, &b_shape, a, &a_shape, &b_shape);
        return reduce(gpu, ReduceOp::Sum, &products, &b_shape, &[axis]);
    }
    let (a_row, a_col) = if trans_a { (1, m) } else { (k, 1) };
    let (b_row, b_col) = if trans_b { (1, k) } else { (n, 1) };
    // A 64x64 tile of a product with at most four rows would leave most of its lanes idle.
    let skinny = m <= 4;
    let (splits, k_chunk) = split_k(batch, m.div_ceil(64) * n.div_ceil(64) * batch, skinny, k);
    let (a_batch, b_batch, runs) =
        if splits > 1 { (k_chunk * a_col, k_chunk * b_row, splits) } else { (m * k, k * n, batch) };
    let mut params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: if splits > 1 { k_chunk } else { k } as u32,
        batch: runs as u32,
        a_batch: a_batch as u32,
        a_row: a_row as u32,
        a_col: a_col as u32,
        b_batch: b_batch as u32,
        b_row: b_row as u32,
        b_col: b_col as u32,
        k_last: if splits > 1 { k - (splits - 1) * k_chunk } else { k } as u32,
        ..MatmulParams::default()
    };
    let c = gpu.alloc(runs * m * n);
    // How A and B travel: texture copies where their lines allow one (see matmul_subgroup.wgsl).
    let (mut a_read, mut b_read) = (Operand::storage(), Operand::storage());
    let (mut kernel, groups) = if skinny {
        // Every operand value through its flat texture copy, where it has one.
        (a_read, b_read) = (gpu.flat_operand(a), gpu.flat_operand(b));
        (params.a_shift, params.b_shift) = (a_read.shift(), b_read.shift());
        let kernel = Kernel::new(Shader::Matmul, "skinny").reading("A_TEXTURE", &a_read).reading("B_TEXTURE", &b_read);
        (kernel, [(n as u32).div_ceil(512), m as u32, runs as u32])
    } else {
        let blocked = gpu.kernel_path().blocked_matmul.is_some();
        let tile_rows = if blocked { subgroup_tile_rows(m) } else { 64 };
        let kernel = if blocked {
            // B read as vec4s where its layout allows.
            let aligned = |v: usize| v.is_multiple_of(4);
            let mut b_mode = if b_col == 1 && aligned(b_row) && aligned(b_batch) {
                BOperand::RowsVec4
            } else if b_row == 1 && aligned(b_col) && aligned(b_batch) {
                BOperand::ColumnsVec4
            } else {
                BOperand::Strided
            };
            if b_mode != BOperand::Strided {
                let along_n = b_mode == BOperand::RowsVec4;
                b_read = gpu.line_operand(b, if along_n { b_row } else { b_col });
                if b_read.textured() {
                    b_mode = if along_n { BOperand::RowsTexture } else { BOperand::ColumnsTexture };
                }
            }
            // A from a texture: its lines along K, or along M when they hold whole tiles of rows.
            let (a_mode, a_line) = if a_col == 1 {
                (AOperand::TextureAlongK, a_row)
            } else if a_row == 1 && m.is_multiple_of(tile_rows) {
                (AOperand::TextureAlongM, a_col)
            } else {
                (AOperand::Strided, 0)
            };
            if a_mode != AOperand::Strided {
                a_read = gpu.line_operand(a, a_line);
            }
            let a_mode = if a_read.textured() { a_mode } else { AOperand::Strided };
            blocked_kernel(gpu, b_mode, a_mode, m).expect("the device runs the blocked matmul")
        } else {
            Kernel::new(Shader::Matmul, "forward")
        };
        (kernel, [(n as u32).div_ceil(64), m.div_ceil(tile_rows) as u32, runs as u32])
    };
    kernel.note = format!("{batch}x{m}x{k}x{n} t{}{} split{splits}", trans_a as u8, trans_b as u8);
    if matches!(kernel.shader, Shader::MatmulSubgroup | Shader::MatmulShared) {
        // (A stands in for the bias, which only B_MODE 6 reads: no buffer to allocate, and the
        // bind group stays the same from call to call.)
        gpu.dispatch_with_textures(&kernel, &params, &[a, b, a], &[&b_read, &a_read], &[&c], groups);
    } else if kernel.entry == "skinny" {
        gpu.dispatch_with_textures(&kernel, &params, &[a, b], &[&a_read, &b_read], &[&c], groups);
    } else {
        gpu.dispatch(&kernel, &params, &[a, b], &[&c], groups);
    }
    // Only now, with their reader recorded, may other copies reuse the textures.
    drop((a_read, b_read));
    if splits > 1 {
        reduce(gpu, ReduceOp::Sum, &c, &[splits, m * n], &[0])
    } else {
        c
    }
}

impl Tensor {
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
        let out = matmul(self.gpu(), self.buffer(), other.buffer(), batch, m, ka, n, trans_a, trans_b);
        let shape = if r == 3 { vec![batch, m, n] } else { vec![m, n] };
        self.record(&[self, other], shape, out, Op::Matmul { trans_a, trans_b }, false)
    }

    /// The matrix product self · other.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.matmul_t(other, false, false)
    }
}

/// d(op(A) op(B)): each operand's gradient is a product of g with the other, transposed to
/// match how the operand was read.
pub(crate) fn matmul_grad(b: &Backward, ta: bool, tb: bool) -> Vec<Option<Tensor>> {
    let (x, y, g) = (b.input(0), b.input(1), b.g);
    let dx = b.want(0).then(|| if ta { y.matmul_t(g, tb, true) } else { g.matmul_t(y, false, !tb) });
    let dy = b.want(1).then(|| if tb { g.matmul_t(x, true, ta) } else { x.matmul_t(g, !ta, false) });
    vec![dx, dy]
}
