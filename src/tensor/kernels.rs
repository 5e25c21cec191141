//! Launches of the WGSL kernels on raw buffers: parameter blocks and grid sizes live here, the
//! math lives in shaders/, and autodiff lives a layer up.

use bytemuck::{Pod, Zeroable};

use crate::gpu::wgsl_enum::WgslEnum;
use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};
use crate::tensor::matmul_modes::{AOperand, BOperand};

pub use super::conv_kernels::{
    conv2d_backward_input, conv2d_backward_weight, conv2d_backward_weight_from_cols, conv2d_backward_weight_reusing,
    conv2d_forward, conv2d_forward_implicit, conv2d_forward_with_cols, ConvEpilogue, ConvGeometry,
};
pub use super::norm_kernels::{batch_norm_backward, batch_norm_forward, batch_norm_stats, BatchNormParams};
pub use super::optim_kernels::{
    adam_step, clip_in_place, rmsprop_step, sgd_step, AdamParams, RmspropParams, SgdParams,
};

pub const MAX_RANK: usize = 8;
pub(super) const WG_1D: u32 = 256;

/// A grid of `WG_1D`-wide workgroups covering `n` invocations, folded into two dimensions when
/// one would exceed the 65535 workgroups a dimension may hold.
pub(super) fn grid_1d(gpu: &Gpu, n: usize, wg: u32) -> [u32; 3] {
    let groups = (n as u64).div_ceil(wg as u64).max(1);
    let max = gpu.0.limits.max_compute_workgroups_per_dimension as u64;
    if groups <= max {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(max);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

fn pack<T: Copy + Default>(values: &[T]) -> [[T; 4]; 2] {
    assert!(values.len() <= MAX_RANK, "tensors have at most {MAX_RANK} axes");
    let mut out = [[T::default(); 4]; 2];
    for (d, &v) in values.iter().enumerate() {
        out[d / 4][d % 4] = v;
    }
    out
}

fn u32s(v: &[usize]) -> Vec<u32> {
    v.iter().map(|&x| u32::try_from(x).expect("tensor extent exceeds u32")).collect()
}

pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

crate::wgsl_enum! {
    /// Elementwise functions of one tensor (unary.wgsl).
    pub enum UnaryOp: "UNARY" {
        Neg = 0,
        Exp = 1,
        Log = 2,
        Sqrt = 3,
        Abs = 4,
        Tanh = 5,
        Sigmoid = 6,
        Relu = 7,
        LeakyRelu = 8,
        Softplus = 9,
        Recip = 10,
        Pow = 11,
        Affine = 12,
        Step = 13,
        LeakySlope = 14,
        Sign = 15,
        Clamp = 16,
        InRange = 17,
    }
}

impl UnaryOp {
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
        Add = 0,
        Sub = 1,
        Mul = 2,
        Div = 3,
        Max = 4,
        Min = 5,
        Greater = 6,
        Equal = 7,
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

pub fn unary(gpu: &Gpu, op: UnaryOp, alpha: f32, beta: f32, x: &GpuBuffer) -> GpuBuffer {
    let n = x.len();
    let y = gpu.alloc(n);
    let texture = gpu.flat_texture(x);
    let x_shift = texture.as_ref().map_or(0, |t| t.1);
    let params = UnaryParams { n: n as u32, alpha, beta, x_shift };
    // Four values per invocation (unary.wgsl).
    let kernel =
        Kernel::new(Shader::Unary, "forward").with("FROM_TEXTURE", texture.is_some() as u32).with("OP", op as u32);
    let view = gpu.texture_or_placeholder(texture.as_ref().map(|t| &t.0));
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&view], &[&y], grid_1d(gpu, n.div_ceil(4), WG_1D));
    y
}

crate::wgsl_enum! {
    /// The losses whose elementwise terms and gradient one pass computes (loss.wgsl).
    pub enum LossKind: "LOSS" {
        BceWithLogits = 0,
        SquaredError = 1,
        AbsoluteError = 2,
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct LossParams {
        n: u32,
        _pad: [u32; 3],
    }
}

/// (terms, dterms/dx) of a loss between predictions x and targets t of the same length.
pub fn loss_terms(gpu: &Gpu, kind: LossKind, x: &GpuBuffer, t: &GpuBuffer) -> (GpuBuffer, GpuBuffer) {
    let n = x.len();
    assert_eq!(t.len(), n, "loss: predictions and targets differ in length");
    let (terms, grad) = (gpu.alloc(n), gpu.alloc(n));
    let kernel = Kernel::new(Shader::Loss, "terms_and_grad").with("KIND", kind as u32);
    let params = LossParams { n: n as u32, _pad: [0; 3] };
    gpu.dispatch(&kernel, &params, &[x, t], &[&terms, &grad], grid_1d(gpu, n, WG_1D));
    (terms, grad)
}

/// dx = g * f'(v) for the activations with a fused first-order gradient (unary.wgsl's
/// `backward`): v is the input for ReLU and leaky ReLU (slope `alpha`), the output for tanh and
/// sigmoid.
pub fn unary_backward(gpu: &Gpu, op: UnaryOp, alpha: f32, v: &GpuBuffer, g: &GpuBuffer) -> GpuBuffer {
    assert!(op.fused_gradient_reads_output().is_some(), "{op:?} has no fused gradient");
    let n = v.len();
    assert_eq!(g.len(), n, "gradient and values differ in length");
    let dx = gpu.alloc(n);
    // Same length, so both copies have the same row length.
    let textures = gpu.flat_texture(v).zip(gpu.flat_texture(g));
    let params = UnaryParams { n: n as u32, alpha, beta: 0.0, x_shift: textures.as_ref().map_or(0, |t| t.0 .1) };
    let kernel =
        Kernel::new(Shader::Unary, "backward").with("FROM_TEXTURE", textures.is_some() as u32).with("OP", op as u32);
    let views = [
        gpu.texture_or_placeholder(textures.as_ref().map(|t| &t.0 .0)),
        gpu.texture_or_placeholder(textures.as_ref().map(|t| &t.1 .0)),
    ];
    gpu.dispatch_with_textures(
        &kernel,
        &params,
        &[v, g],
        &[&views[0], &views[1]],
        &[&dx],
        grid_1d(gpu, n.div_ceil(4), WG_1D),
    );
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

/// Strides that read a tensor of `shape` as if it had the broadcast shape `out` (0 along the
/// axes where it is broadcast).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = contiguous_strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len()).map(|d| if d < lead || shape[d - lead] == 1 { 0 } else { own[d - lead] }).collect()
}

/// Merges neighbouring axes that are contiguous in every operand, so the kernel's index
/// arithmetic runs over as few axes as possible (same-shape operands collapse to one axis).
fn collapse(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && strides.iter().zip(&out_strides).all(|(s, o)| *o.last().unwrap() == s[d] * shape[d]);
        if mergeable {
            *out_shape.last_mut().unwrap() *= shape[d];
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().unwrap() = s[d];
            }
        } else {
            out_shape.push(shape[d]);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[d]);
            }
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for o in out_strides.iter_mut() {
            o.push(0);
        }
    }
    (out_shape, out_strides)
}

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
            &Kernel::new(Shader::Binary, "forward").with("OP", op as u32),
            &params,
            &[a, b],
            &[&out],
            grid_1d(gpu, n, WG_1D),
        );
        return out;
    };
    // x * x and the like: one copy serves both operands.
    let a_tex = gpu.flat_texture(a);
    let b_tex = if std::ptr::eq(a, b) { None } else { gpu.flat_texture(b) };
    let b_tex_ref = if std::ptr::eq(a, b) { a_tex.as_ref() } else { b_tex.as_ref() };
    params.a_shift = a_tex.as_ref().map_or(0, |t| t.1);
    params.b_shift = b_tex_ref.map_or(0, |t| t.1);
    let kernel = Kernel::new(Shader::Binary, entry)
        .with("OP", op as u32)
        .with("A_TEXTURE", a_tex.is_some() as u32)
        .with("B_TEXTURE", b_tex_ref.is_some() as u32);
    let views =
        [gpu.texture_or_placeholder(a_tex.as_ref().map(|t| &t.0)), gpu.texture_or_placeholder(b_tex_ref.map(|t| &t.0))];
    let grid = grid_1d(gpu, n.div_ceil(4), WG_1D);
    gpu.dispatch_with_textures(&kernel, &params, &[a, b], &[&views[0], &views[1]], &[&out], grid);
    out
}

/// Whether every operand reads four consecutive outputs as one vec4 or one value: the last axis
/// holds a multiple of 4 values, and an operand that walks it (stride 1) starts each run of it
/// at a multiple of 4.
fn runs_of_four(shape: &[usize], strides: &[Vec<usize>]) -> bool {
    let last = shape.len() - 1;
    shape[last].is_multiple_of(4)
        && strides.iter().all(|s| s[last] == 0 || (s[last] == 1 && s[..last].iter().all(|t| t.is_multiple_of(4))))
}

crate::wgsl_enum! {
    /// How a reduction combines values (reduce.wgsl).
    pub enum ReduceOp: "REDUCE" {
        Sum = 0,
        Max = 1,
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct ReduceParams {
        n_out: u32,
        n_reduce: u32,
        kept_rank: u32,
        reduced_rank: u32,
        op: u32,
        x_shift: u32,
        _pad: [u32; 2],
        kept_shape: [[u32; 4]; 2],
        kept_strides: [[u32; 4]; 2],
        reduced_shape: [[u32; 4]; 2],
        reduced_strides: [[u32; 4]; 2],
    }
}

/// Reduces `axes` of a contiguous tensor; the result keeps the other axes in order.
pub fn reduce(gpu: &Gpu, op: ReduceOp, x: &GpuBuffer, shape: &[usize], axes: &[usize]) -> GpuBuffer {
    let strides = contiguous_strides(shape);
    let (mut kept_shape, mut kept_strides, mut red_shape, mut red_strides) = (vec![], vec![], vec![], vec![]);
    for d in 0..shape.len() {
        if axes.contains(&d) {
            red_shape.push(shape[d]);
            red_strides.push(strides[d]);
        } else {
            kept_shape.push(shape[d]);
            kept_strides.push(strides[d]);
        }
    }
    let (kept_shape, kept_strides) = collapse(&kept_shape, &[&kept_strides]);
    let (red_shape, red_strides) = collapse(&red_shape, &[&red_strides]);
    let n_out: usize = kept_shape.iter().product();
    let n_reduce: usize = red_shape.iter().product();
    let out = gpu.alloc(n_out);
    let texture = gpu.flat_texture(x);
    let params = ReduceParams {
        n_out: n_out as u32,
        n_reduce: n_reduce as u32,
        kept_rank: kept_shape.len() as u32,
        reduced_rank: red_shape.len() as u32,
        op: op as u32,
        x_shift: texture.as_ref().map_or(0, |t| t.1),
        _pad: [0; 2],
        kept_shape: pack(&u32s(&kept_shape)),
        kept_strides: pack(&u32s(&kept_strides[0])),
        reduced_shape: pack(&u32s(&red_shape)),
        reduced_strides: pack(&u32s(&red_strides[0])),
    };
    // Few long reductions (batch-norm statistics, losses) need a workgroup each to use the cores;
    // so do reductions too long for one invocation's loop budget.
    // The vec4 forms need every stride but the innermost one (of the kept axes for `rows4`,
    // of the reduced axes for `wide4`) to keep offsets at multiples of 4.
    let fours = |s: &[usize]| s.iter().all(|t| t.is_multiple_of(4));
    let (kl, rl) = (kept_shape.len() - 1, red_shape.len() - 1);
    let (ks, rs) = (&kept_strides[0], &red_strides[0]);
    // llvmpipe ends an invocation's loops, silently, after 65535 steps counted over all its
    // loops together: a step over the reduction costs 1, plus the offset's own loop for more
    // than one reduced axis (reduce.wgsl); a margin covers the other loops.
    let cost = if red_shape.len() == 1 { 1 } else { red_shape.len() + 2 };
    let fits = |steps: usize| steps * cost + 64 <= 65535;
    let mut kernel = if (n_out < 1024 && n_reduce >= 256) || !fits(n_reduce) {
        let vec4_runs = rs[rl] == 1 && red_shape[rl].is_multiple_of(4) && fours(&rs[..rl]) && fours(ks);
        // Each of the workgroup's lanes loops over its share of the reduction.
        let steps = if vec4_runs { n_reduce / 4 } else { n_reduce };
        let lanes = if fits(steps.div_ceil(64)) { 64 } else { 256 };
        assert!(fits(steps.div_ceil(lanes)), "a reduction of {n_reduce} values is longer than the kernels support");
        Kernel::new(Shader::Reduce, if vec4_runs { "wide4" } else { "wide" }).with("WIDE", lanes as u32)
    } else if ks[kl] == 1 && kept_shape[kl].is_multiple_of(4) && fours(&ks[..kl]) && fours(rs) {
        Kernel::new(Shader::Reduce, "rows4")
    } else {
        Kernel::new(Shader::Reduce, "rows")
    };
    let grid = match kernel.entry {
        "rows4" => grid_1d(gpu, n_out / 4, WG_1D),
        "rows" => grid_1d(gpu, n_out, WG_1D),
        _ => grid_1d(gpu, n_out, 1),
    };
    kernel = kernel.with("FROM_TEXTURE", texture.is_some() as u32);
    let view = gpu.texture_or_placeholder(texture.as_ref().map(|t| &t.0));
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&view], &[&out], grid);
    out
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

/// The subgroup matmul reading B and A as `b` and `a` say (matmul_subgroup.wgsl), with tiles
/// of `subgroup_tile_rows(m)` rows.
pub(super) fn subgroup_kernel(b: BOperand, a: AOperand, m: usize) -> Kernel {
    Kernel::new(Shader::MatmulSubgroup, "forward")
        .with("B_MODE", b.code())
        .with("A_MODE", a.code())
        .with("ROW_GROUPS", (subgroup_tile_rows(m) / 16) as u32)
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
    // The subgroup kernel reads B from a texture copy where B's lines allow one (B_MODE 3, 4).
    let mut b_texture = None;
    let mut a_texture = None;
    let mut flat = (None, None);
    let (mut kernel, groups) = if skinny {
        // Every operand value through its flat texture copy, where it has one.
        flat = (gpu.flat_texture(a), gpu.flat_texture(b));
        params.a_shift = flat.0.as_ref().map_or(0, |t| t.1);
        params.b_shift = flat.1.as_ref().map_or(0, |t| t.1);
        let kernel = Kernel::new(Shader::Matmul, "skinny")
            .with("A_TEXTURE", flat.0.is_some() as u32)
            .with("B_TEXTURE", flat.1.is_some() as u32);
        (kernel, [(n as u32).div_ceil(512), m as u32, runs as u32])
    } else {
        let subgroup = gpu.kernel_path().subgroup_matmul;
        let tile_rows = if subgroup { subgroup_tile_rows(m) } else { 64 };
        let kernel = if subgroup {
            // B read as vec4s where its layout allows (see matmul_subgroup.wgsl).
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
                b_texture = gpu.buffer_texture(b, if along_n { b_row } else { b_col });
                if b_texture.is_some() {
                    b_mode = if along_n { BOperand::RowsTexture } else { BOperand::ColumnsTexture };
                }
            }
            // A from a texture: its lines along K, or along M when they hold whole tiles of rows.
            let (a_mode, a_shift) = if a_col == 1 {
                (AOperand::TextureAlongK, a_row)
            } else if a_row == 1 && m.is_multiple_of(tile_rows) {
                (AOperand::TextureAlongM, a_col)
            } else {
                (AOperand::Strided, 0)
            };
            a_texture = if a_mode != AOperand::Strided { gpu.buffer_texture(a, a_shift) } else { None };
            let a_mode = if a_texture.is_some() { a_mode } else { AOperand::Strided };
            subgroup_kernel(b_mode, a_mode, m)
        } else {
            Kernel::new(Shader::Matmul, "forward")
        };
        (kernel, [(n as u32).div_ceil(64), m.div_ceil(tile_rows) as u32, runs as u32])
    };
    kernel.note = format!("{batch}x{m}x{k}x{n} t{}{} split{splits}", trans_a as u8, trans_b as u8);
    if kernel.shader == Shader::MatmulSubgroup {
        let (b_view, a_view) =
            (gpu.texture_or_placeholder(b_texture.as_ref()), gpu.texture_or_placeholder(a_texture.as_ref()));
        // (A stands in for the bias, which only B_MODE 6 reads: no buffer to allocate, and the
        // bind group stays the same from call to call.)
        gpu.dispatch_with_textures(&kernel, &params, &[a, b, a], &[&b_view, &a_view], &[&c], groups);
    } else if kernel.entry == "skinny" {
        let a_view = gpu.texture_or_placeholder(flat.0.as_ref().map(|t| &t.0));
        let b_view = gpu.texture_or_placeholder(flat.1.as_ref().map(|t| &t.0));
        gpu.dispatch_with_textures(&kernel, &params, &[a, b], &[&a_view, &b_view], &[&c], groups);
    } else {
        gpu.dispatch(&kernel, &params, &[a, b], &[&c], groups);
    }
    // Only now, with their reader recorded, may other copies reuse the textures.
    drop((a_texture, b_texture, flat));
    if splits > 1 {
        reduce(gpu, ReduceOp::Sum, &c, &[splits, m * n], &[0])
    } else {
        c
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct TransposeParams {
        batch: u32,
        rows: u32,
        cols: u32,
        src_shift: u32,
    }
}

/// [batch, rows, cols] -> [batch, cols, rows]: 4x4 blocks per invocation where both sides are
/// multiples of 4 (movement.wgsl), else the strided gather.
pub fn transpose(gpu: &Gpu, x: &GpuBuffer, batch: usize, rows: usize, cols: usize) -> GpuBuffer {
    if !rows.is_multiple_of(4) || !cols.is_multiple_of(4) {
        return gather(gpu, x, &[batch, cols, rows], &[rows * cols, 1, cols], &[0, 0, 0], &[batch, cols, rows]);
    }
    let out = gpu.alloc(x.len());
    let texture = gpu.flat_texture(x);
    let params = TransposeParams {
        batch: batch as u32,
        rows: rows as u32,
        cols: cols as u32,
        src_shift: texture.as_ref().map_or(0, |t| t.1),
    };
    let kernel =
        Kernel::new(Shader::Movement, "transpose4").with("WG", 64).with("FROM_TEXTURE", texture.is_some() as u32);
    let view = gpu.texture_or_placeholder(texture.as_ref().map(|t| &t.0));
    let blocks = batch * (rows / 4) * (cols / 4);
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&view], &[&out], grid_1d(gpu, blocks, 64));
    out
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct GatherParams {
        n: u32,
        rank: u32,
        offset: u32,
        chunk: u32,
        src_shift: u32,
        _pad: [u32; 3],
        shape: [[u32; 4]; 2],
        strides: [[u32; 4]; 2],
        lead: [[i32; 4]; 2],
        extent: [[u32; 4]; 2],
    }
}

/// out[c] = x[offset + sum_d (c_d - lead_d) * strides_d], zero where c_d - lead_d leaves
/// [0, extent_d). Permute, expand, slice and zero padding are all this one kernel.
pub fn gather(
    gpu: &Gpu,
    x: &GpuBuffer,
    out_shape: &[usize],
    strides: &[usize],
    lead: &[i64],
    extent: &[usize],
) -> GpuBuffer {
    let out = gpu.alloc(out_shape.iter().product());
    gather_into(gpu, x, &out, out_shape, strides, lead, extent);
    out
}

/// dst <- src for buffers of the same length.
pub fn copy(gpu: &Gpu, src: &GpuBuffer, dst: &GpuBuffer) {
    gpu.copy_buffer(src, dst);
}

fn gather_into(
    gpu: &Gpu,
    x: &GpuBuffer,
    out: &GpuBuffer,
    out_shape: &[usize],
    strides: &[usize],
    lead: &[i64],
    extent: &[usize],
) {
    let n: usize = out_shape.iter().product();
    let len = out_shape.last().copied().unwrap_or(1).max(1);
    // llvmpipe stops an invocation's loops after 65535 steps in all: no invocation copies more.
    const CHUNK: usize = 4096;
    let invocations = (n / len) * len.div_ceil(CHUNK);
    let leads: Vec<i32> = lead.iter().map(|&l| i32::try_from(l).expect("pad exceeds i32")).collect();
    let texture = gpu.flat_texture(x);
    let params = GatherParams {
        n: n as u32,
        rank: out_shape.len() as u32,
        offset: 0,
        chunk: CHUNK as u32,
        src_shift: texture.as_ref().map_or(0, |t| t.1),
        _pad: [0; 3],
        shape: pack(&u32s(out_shape)),
        strides: pack(&u32s(strides)),
        lead: pack(&leads),
        extent: pack(&u32s(extent)),
    };
    // Lines whose last axis is a plain, 4-aligned copy move four values at a time.
    let r = out_shape.len();
    let plain_last = r > 0 && strides[r - 1] == 1 && lead[r - 1] == 0 && extent[r - 1] == len;
    let aligned = len.is_multiple_of(4) && strides[..r.saturating_sub(1)].iter().all(|s| s.is_multiple_of(4));
    let entry = if plain_last && aligned { "gather4" } else { "gather" };
    let kernel = Kernel::new(Shader::Movement, entry).with("WG", 64).with("FROM_TEXTURE", texture.is_some() as u32);
    let view = gpu.texture_or_placeholder(texture.as_ref().map(|t| &t.0));
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&view], &[out], grid_1d(gpu, invocations, 64));
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct FillParams {
        n: u32,
        value: f32,
        _pad: [u32; 2],
    }
}

pub fn fill(gpu: &Gpu, n: usize, value: f32) -> GpuBuffer {
    let out = gpu.alloc(n);
    let params = FillParams { n: n as u32, value, _pad: [0; 2] };
    gpu.dispatch(&Kernel::new(Shader::Movement, "fill"), &params, &[], &[&out], grid_1d(gpu, n, WG_1D));
    out
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct ReflectGeometry {
        pub planes: u32,
        pub h: u32,
        pub w: u32,
        pub top: u32,
        pub left: u32,
        pub oh: u32,
        pub ow: u32,
        pub _pad: u32,
    }
}

pub fn reflect_pad(gpu: &Gpu, g: &ReflectGeometry, x: &GpuBuffer) -> GpuBuffer {
    let n = (g.planes * g.oh * g.ow) as usize;
    let out = gpu.alloc(n);
    gpu.dispatch(&Kernel::new(Shader::Movement, "reflect_pad"), g, &[x], &[&out], grid_1d(gpu, n, WG_1D));
    out
}

pub fn reflect_pad_backward(gpu: &Gpu, g: &ReflectGeometry, dy: &GpuBuffer) -> GpuBuffer {
    let n = (g.planes * g.h * g.w) as usize;
    let out = gpu.alloc(n);
    gpu.dispatch(&Kernel::new(Shader::Movement, "reflect_pad_backward"), g, &[dy], &[&out], grid_1d(gpu, n, WG_1D));
    out
}
