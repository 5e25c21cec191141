//! Convolutions as matrix products. Where shapes allow (DCGAN's 4x4 stride-2 layers), as
//! implicit GEMM: the subgroup matmul gathers its operand from the image as it goes and stores
//! NCHW (matmul_conv.wgsl), forward, input gradient (by output phase) and weight gradient.
//! Elsewhere, patch matrices (im2col/col2im) around the fast matmul, with layout swaps between
//! NCHW and the products' channel-major layout.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};
use crate::tensor::launch::grid_1d;
use crate::tensor::matmul::{blocked_kernel, matmul, split_k, subgroup_tile_rows, AOperand, BOperand, MatmulParams};
use crate::tensor::movement::{copy, gather, transpose};
use crate::tensor::reduce::{reduce, ReduceOp};

crate::uniform! {
    /// Geometry of a 2-d convolution x [batch, c_in, h, w] -> y [batch, c_out, oh, ow].
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
    pub struct ConvGeometry {
        /// Images in the batch.
        pub batch: u32,
        /// Input channels.
        pub c_in: u32,
        /// Input height.
        pub h: u32,
        /// Input width.
        pub w: u32,
        /// Output channels.
        pub c_out: u32,
        /// Output height.
        pub oh: u32,
        /// Output width.
        pub ow: u32,
        /// Kernel height.
        pub kh: u32,
        /// Kernel width.
        pub kw: u32,
        /// Steps of the window.
        pub stride: u32,
        /// Zeros added on every side.
        pub pad: u32,
        /// (Padding to 16 bytes.)
        pub _pad0: u32,
    }
}

impl ConvGeometry {
    /// x's shape, `[batch, c_in, h, w]`.
    pub fn x_shape(&self) -> Vec<usize> {
        [self.batch, self.c_in, self.h, self.w].iter().map(|&v| v as usize).collect()
    }
    /// y's shape, `[batch, c_out, oh, ow]`.
    pub fn y_shape(&self) -> Vec<usize> {
        [self.batch, self.c_out, self.oh, self.ow].iter().map(|&v| v as usize).collect()
    }
    /// The weight's shape, `[c_out, c_in, kh, kw]`.
    pub fn w_shape(&self) -> Vec<usize> {
        [self.c_out, self.c_in, self.kh, self.kw].iter().map(|&v| v as usize).collect()
    }
}

impl ConvGeometry {
    /// The kernel covers the whole unpadded image, so each image is one patch: DCGAN's last
    /// discriminator layer, and the input gradient of the generator's first layer.
    pub fn one_patch_per_image(&self) -> bool {
        self.oh == 1 && self.ow == 1 && self.pad == 0 && self.kh == self.h && self.kw == self.w
    }
    /// A 4x4 kernel at stride 2 whose input and output rows hold runs of four: the convolutions
    /// whose patches the implicit products gather (forward and weight gradient).
    fn gathers_in_runs(&self) -> bool {
        self.kh == 4 && self.kw == 4 && self.stride == 2 && self.w.is_multiple_of(4) && self.ow.is_multiple_of(4)
    }
    fn patch_rows(&self) -> usize {
        (self.c_in * self.kh * self.kw) as usize
    }
    fn patch_cols(&self) -> usize {
        (self.batch * self.oh * self.ow) as usize
    }
}

/// The patch matrix [c_in*kh*kw, batch*oh*ow] of x; stored transposed, [batch, c_in*kh*kw],
/// when each image is one patch (`ConvGeometry::one_patch_per_image`).
pub fn im2col(gpu: &Gpu, g: &ConvGeometry, x: &GpuBuffer) -> GpuBuffer {
    if g.one_patch_per_image() {
        // The patch matrix is x transposed: keep x's layout (a copy); the products take it as
        // it is (see conv2d_forward_from_cols), where a transpose would cost a pass.
        let cols = gpu.alloc(x.len());
        copy(gpu, x, &cols);
        return cols;
    }
    let cols = gpu.alloc(g.patch_rows() * g.patch_cols());
    let lines = g.patch_rows() * (g.batch * g.oh) as usize;
    // Four patches per store where output rows allow it (conv2d.wgsl).
    let groups = grid_1d(gpu, lines, 64);
    if g.ow.is_multiple_of(4) {
        // x's planes as texture lines where they are whole multiples of 64 floats (conv2d.wgsl).
        let plane = (g.h * g.w) as usize;
        let x_read = gpu.line_operand(x, plane);
        // (Its index arithmetic divides in f32, exact below 2^24 invocations.)
        let runs = (g.stride == 1 || g.stride == 2) && g.patch_rows() * (g.batch as usize) < 1 << 24;
        if x_read.textured() && runs {
            // Runs of texels, one invocation per (patch row, image): reads the texture alone.
            let kernel = Kernel::new(Shader::Conv2d, "im2col_runs").with("WG", 64).with("STRIDE", g.stride);
            let groups = grid_1d(gpu, g.patch_rows() * g.batch as usize, 64);
            gpu.dispatch_with_textures(&kernel, g, &[], &[&x_read], &[&cols], groups);
        } else {
            let kernel = Kernel::new(Shader::Conv2d, "im2col4").with("WG", 64).reading("FROM_TEXTURE", &x_read);
            gpu.dispatch_with_textures(&kernel, g, &[x], &[&x_read], &[&cols], groups);
        }
    } else {
        gpu.dispatch(&Kernel::new(Shader::Conv2d, "im2col").with("WG", 64), g, &[x], &[&cols], groups);
    }
    cols
}

/// [a, b, rest] -> [b, a, rest]: between NCHW and the channel-major layout of the GEMMs.
fn swap_leading(gpu: &Gpu, x: &GpuBuffer, a: usize, b: usize, rest: usize) -> GpuBuffer {
    if rest == 1 {
        return transpose(gpu, x, 1, a, b);
    }
    gather(gpu, x, &[b, a, rest], &[rest, b * rest, 1], &[0, 0, 0], &[b, a, rest])
}

/// y = conv2d(x, w), by the fastest path the shape and device allow.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests call it directly
pub fn conv2d_forward(gpu: &Gpu, g: &ConvGeometry, x: &GpuBuffer, w: &GpuBuffer) -> GpuBuffer {
    conv2d_forward_with_cols(gpu, g, x, w).0
}

/// conv2d, as implicit GEMM where the shape allows, else through x's patch matrix, which is
/// returned too: the weight gradient can reuse it rather than build it again.
pub fn conv2d_forward_with_cols(
    gpu: &Gpu,
    g: &ConvGeometry,
    x: &GpuBuffer,
    w: &GpuBuffer,
) -> (GpuBuffer, Option<GpuBuffer>) {
    if let Some(y) = conv2d_forward_implicit(gpu, g, x, w, ConvEpilogue::default()) {
        return (y, None);
    }
    let cols = im2col(gpu, g, x);
    (conv2d_forward_from_cols(gpu, g, &cols, w), Some(cols))
}

/// The weight gradient of conv2d(x, w) given dy, from x's patch matrix where the forward pass
/// built one (`conv2d_forward_with_cols`).
pub fn conv2d_backward_weight_reusing(
    gpu: &Gpu,
    g: &ConvGeometry,
    cols: Option<&GpuBuffer>,
    x: &GpuBuffer,
    dy: &GpuBuffer,
) -> GpuBuffer {
    match cols {
        Some(cols) => conv2d_backward_weight_from_cols(gpu, g, cols, dy),
        None => conv2d_backward_weight(gpu, g, x, dy),
    }
}

/// What the implicit forward product applies to its outputs as it stores them: a per-channel
/// bias, then a (leaky) ReLU max(y, slope * y).
#[derive(Clone, Copy, Default)]
pub struct ConvEpilogue<'a> {
    /// Per output channel, added as y is stored.
    pub bias: Option<&'a GpuBuffer>,
    /// The (leaky) ReLU's slope applied as y is stored.
    pub slope: Option<f32>,
}

/// conv2d as one product that gathers x's patches as it goes and stores y as NCHW (implicit
/// GEMM: matmul_subgroup.wgsl with matmul_conv.wgsl, B_MODE 6): no patch matrix, no texture
/// copy of one, no layout swap. Serves 4x4 kernels at stride 2 whose input and output rows
/// hold runs of four; None where the shape or the device does not allow it.
pub fn conv2d_forward_implicit(
    gpu: &Gpu,
    g: &ConvGeometry,
    x: &GpuBuffer,
    w: &GpuBuffer,
    epilogue: ConvEpilogue,
) -> Option<GpuBuffer> {
    // Fewer output channels would leave a 16-row tile mostly idle: the skinny product serves them.
    let fits = gpu.implicit_convs() && g.gathers_in_runs() && g.c_out > 4;
    if !fits {
        return None;
    }
    let x_read = gpu.flat_operand_any_size(x)?;
    let (m, k, n) = (g.c_out as usize, g.patch_rows(), g.patch_cols());
    gpu.count_matmul_flops(2 * (m * n * k) as u64);
    // W [c_out, 16 c_in] is A as stored; from a texture when its rows are whole texture lines.
    let w_read = gpu.line_operand(w, k);
    let mut params = gathered_b_params([1, m, k, n], x_read.shift(), conv_fields([g.c_in, g.h, g.w], [g.oh, g.ow], g));
    params.slope = epilogue.slope.unwrap_or(1.0);
    let tile_rows = subgroup_tile_rows(m);
    let a_mode = if w_read.textured() { AOperand::TextureAlongK } else { AOperand::Strided };
    let mut kernel = blocked_kernel(gpu, BOperand::ConvPatches, a_mode, m)?
        .with("CONV_PAD", g.pad)
        .with("BIAS", epilogue.bias.is_some() as u32)
        .with("ACTIVATE", epilogue.slope.is_some() as u32);
    kernel.note = format!("conv {m}x{k}x{n} implicit");
    let y = gpu.alloc(g.y_shape().iter().product());
    let groups = [(n as u32).div_ceil(64), m.div_ceil(tile_rows) as u32, 1];
    // Without a bias, W stands in for it (never read; see `matmul`).
    let bias = epilogue.bias.unwrap_or(w);
    gpu.dispatch_with_textures(&kernel, &params, &[w, x, bias], &[&x_read, &w_read], &[&y], groups);
    Some(y)
}

/// conv2d from x's patch matrix (shared with the weight gradient when both are needed).
pub fn conv2d_forward_from_cols(gpu: &Gpu, g: &ConvGeometry, cols: &GpuBuffer, w: &GpuBuffer) -> GpuBuffer {
    let (batch, c_out, k) = (g.batch as usize, g.c_out as usize, g.patch_rows());
    if g.one_patch_per_image() {
        // y [batch, c_out] = x [batch, K] · W^T: already NCHW (oh = ow = 1).
        return matmul(gpu, cols, w, 1, batch, k, c_out, false, true);
    }
    let y_cm = matmul(gpu, w, cols, 1, c_out, k, g.patch_cols(), false, false);
    swap_leading(gpu, &y_cm, c_out, batch, (g.oh * g.ow) as usize)
}

/// dx of conv2d given dy (a transposed convolution of dy).
pub fn conv2d_backward_input(gpu: &Gpu, g: &ConvGeometry, dy: &GpuBuffer, w: &GpuBuffer) -> GpuBuffer {
    if g.one_patch_per_image() {
        // dx [batch, c_in*kh*kw] = dy [batch, c_out] · W [c_out, c_in*kh*kw], already NCHW: no
        // patch matrix to fold back (a transposed convolution of 1x1 inputs, as DCGAN's first
        // generator layer, lands here).
        return matmul(gpu, dy, w, 1, g.batch as usize, g.c_out as usize, g.patch_rows(), false, false);
    }
    if let Some(dx) = backward_input_by_phases(gpu, g, dy, w) {
        return dx;
    }
    let dy_cm = swap_leading(gpu, dy, g.batch as usize, g.c_out as usize, (g.oh * g.ow) as usize);
    let dcols = matmul(gpu, w, &dy_cm, 1, g.patch_rows(), g.c_out as usize, g.patch_cols(), true, false);
    let n: usize = g.x_shape().iter().product();
    let dx = gpu.alloc(n);
    let dcols_read = gpu.line_operand(&dcols, g.patch_cols());
    // Runs of four pixels per phase where the stride and rows allow it (conv2d.wgsl; it divides
    // its index in f32, exact below 2^24 invocations, and reads dcols from the texture alone),
    // else four pixels per store where rows allow that, else one row per invocation.
    let run_pixels = 4 * g.stride as usize;
    if dcols_read.textured()
        && (1..=2).contains(&g.stride)
        && g.w.is_multiple_of(4 * g.stride)
        && n / run_pixels < 1 << 24
    {
        let kernel = Kernel::new(Shader::Conv2d, "col2im_runs").with("WG", 64).with("STRIDE", g.stride);
        gpu.dispatch_with_textures(&kernel, g, &[], &[&dcols_read], &[&dx], grid_1d(gpu, n / run_pixels, 64));
        return dx;
    }
    let (entry, invocations) =
        if g.w.is_multiple_of(4) { ("col2im4", n / 4) } else { ("col2im", (g.batch * g.c_in * g.h) as usize) };
    let kernel = Kernel::new(Shader::Conv2d, entry).with("WG", 64).reading("FROM_TEXTURE", &dcols_read);
    gpu.dispatch_with_textures(&kernel, g, &[&dcols], &[&dcols_read], &[&dx], grid_1d(gpu, invocations, 64));
    dx
}

/// dW of conv2d given x and dy.
pub fn conv2d_backward_weight(gpu: &Gpu, g: &ConvGeometry, x: &GpuBuffer, dy: &GpuBuffer) -> GpuBuffer {
    backward_weight_by_taps(gpu, g, x, dy)
        .or_else(|| backward_weight_implicit(gpu, g, x, dy))
        .unwrap_or_else(|| conv2d_backward_weight_from_cols(gpu, g, &im2col(gpu, g, x), dy))
}

/// The weight gradient as dW = dy · patches^T, stored as W is, with dy read in place as A
/// (A_MODE 4) and the patches gathered from x with taps as columns (B_MODE 7): the operands
/// travel as they do in `conv2d_forward_implicit`, and neither dy nor the result is
/// transposed. Serves the shapes `conv2d_forward_implicit` does with 16-row tiles of output
/// channels, whole 64-column tiles of taps (c_in a multiple of 4) and output planes of whole
/// blocks of 8 positions; None elsewhere.
fn backward_weight_by_taps(gpu: &Gpu, g: &ConvGeometry, x: &GpuBuffer, dy: &GpuBuffer) -> Option<GpuBuffer> {
    let (m, n, k) = (g.c_out as usize, g.patch_rows(), g.patch_cols());
    let fits = gpu.implicit_convs()
        && g.gathers_in_runs()
        && m >= 16
        && n.is_multiple_of(64)
        && (g.oh * g.ow).is_multiple_of(8)
        // Positions are divided in f32 (index_math.wgsl's quot).
        && k < 1 << 24;
    if !fits {
        return None;
    }
    let x_read = gpu.flat_operand_any_size(x)?;
    let dy_read = gpu.flat_operand_any_size(dy)?;
    gpu.count_matmul_flops(2 * (m * n * k) as u64);
    let (splits, k_chunk) = split_k(1, m.div_ceil(64) * n / 64, false, k);
    // Chunk i of K starts at position i * k_chunk, in A and in B.
    let conv = conv_fields([g.c_in, g.h, g.w], [g.oh, g.ow], g);
    let params = chunked_params([m, n, k], (splits, k_chunk), k_chunk, [dy_read.shift(), x_read.shift()], conv);
    let tile_rows = subgroup_tile_rows(m);
    let mut kernel = blocked_kernel(gpu, BOperand::ConvTaps, AOperand::ImageRows, m)?.with("CONV_PAD", g.pad);
    kernel.note = format!("conv weight grad {m}x{k}x{n} split{splits} by taps");
    let dw = gpu.alloc(splits * m * n);
    let groups = [(n / 64) as u32, m.div_ceil(tile_rows) as u32, splits as u32];
    gpu.dispatch_with_textures(&kernel, &params, &[dy, x, dy], &[&x_read, &dy_read], &[&dw], groups);
    drop((x_read, dy_read));
    Some(if splits > 1 { reduce(gpu, ReduceOp::Sum, &dw, &[splits, m * n], &[0]) } else { dw })
}

/// The weight gradient as dW^T = cols · dy_rows (as `conv2d_backward_weight_from_cols` takes it
/// for 64-multiple channel counts) with cols gathered from x as the product goes (implicit
/// GEMM: matmul_subgroup.wgsl's A_MODE 3): no patch matrix and no texture copy of one. Serves
/// the shapes `conv2d_forward_implicit` does, with whole blocks of 8 positions; None elsewhere.
fn backward_weight_implicit(gpu: &Gpu, g: &ConvGeometry, x: &GpuBuffer, dy: &GpuBuffer) -> Option<GpuBuffer> {
    let (c_out, spatial) = (g.c_out as usize, (g.oh * g.ow) as usize);
    let (m, k) = (g.patch_rows(), g.patch_cols());
    let fits = gpu.implicit_convs()
        && g.gathers_in_runs()
        && c_out.is_multiple_of(64)
        && k.is_multiple_of(8)
        // Positions are divided in f32 (index_math.wgsl's quot).
        && k < 1 << 24;
    if !fits {
        return None;
    }
    let x_read = gpu.flat_operand_any_size(x)?;
    let dy_rows = transpose(gpu, dy, g.batch as usize, c_out, spatial);
    let dy_read = gpu.line_operand(&dy_rows, c_out).textured_only()?;
    gpu.count_matmul_flops(2 * (m * k * c_out) as u64);
    let (splits, k_chunk) = split_k(1, m.div_ceil(64) * c_out.div_ceil(64), false, k);
    // Chunk i of K starts at position i * k_chunk and at dy_rows' row of that position.
    let conv = conv_fields([g.c_in, g.h, g.w], [g.oh, g.ow], g);
    let params = chunked_params([m, c_out, k], (splits, k_chunk), k_chunk * c_out, [x_read.shift(), 0], conv);
    let tile_rows = subgroup_tile_rows(m);
    let mut kernel = blocked_kernel(gpu, BOperand::RowsTexture, AOperand::ConvPatches, m)?.with("CONV_PAD", g.pad);
    kernel.note = format!("conv weight grad {m}x{k}x{c_out} split{splits} implicit");
    let dw_t = gpu.alloc(splits * m * c_out);
    let groups = [c_out.div_ceil(64) as u32, m.div_ceil(tile_rows) as u32, splits as u32];
    gpu.dispatch_with_textures(&kernel, &params, &[x, &dy_rows, x], &[&dy_read, &x_read], &[&dw_t], groups);
    drop((x_read, dy_read));
    let dw_t = if splits > 1 { reduce(gpu, ReduceOp::Sum, &dw_t, &[splits, m * c_out], &[0]) } else { dw_t };
    Some(transpose(gpu, &dw_t, 1, m, c_out))
}

/// dW of conv2d from x's patch matrix and dy.
pub fn conv2d_backward_weight_from_cols(gpu: &Gpu, g: &ConvGeometry, cols: &GpuBuffer, dy: &GpuBuffer) -> GpuBuffer {
    let (batch, c_out, spatial) = (g.batch as usize, g.c_out as usize, (g.oh * g.ow) as usize);
    if g.one_patch_per_image() {
        // dW [c_out, K] = dy^T · x, with dy [batch, c_out] and x [batch, K] as they are.
        return matmul(gpu, dy, cols, 1, c_out, batch, g.patch_rows(), true, false);
    }
    if c_out.is_multiple_of(64) {
        // dW^T = cols · dy_rows with dy_rows [batch*oh*ow, c_out] (dy's channels innermost):
        // both operands then stream along their rows. dW = dy · cols^T instead reads cols^T
        // down its columns, a texel from a different row in each lane, which the CPU's
        // prefetchers do not follow (30% slower on lavapipe). The transposes are small.
        let dy_rows = transpose(gpu, dy, batch, c_out, spatial);
        let dw_t = matmul(gpu, cols, &dy_rows, 1, g.patch_rows(), g.patch_cols(), c_out, false, false);
        return transpose(gpu, &dw_t, 1, g.patch_rows(), c_out);
    }
    let dy_cm = swap_leading(gpu, dy, batch, c_out, spatial);
    matmul(gpu, &dy_cm, cols, 1, c_out, g.patch_cols(), g.patch_rows(), false, true)
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct PhaseWeightParams {
        c_in: u32,
        c_out: u32,
        kh: u32,
        kw: u32,
        stride: u32,
        weight_shift: u32,
        _pad: [u32; 2],
    }
}

/// The input gradient as one product per output phase, reading dy in place (implicit GEMM:
/// matmul_subgroup.wgsl, B_MODE 5): no layout swap of dy, no patch matrix of dx's gradient and
/// no col2im. Serves kernels two strides wide (DCGAN's 4x4 at stride 2) with pad <= stride
/// and rows of runs of four; None where the shape or the device does not allow it.
fn backward_input_by_phases(gpu: &Gpu, g: &ConvGeometry, dy: &GpuBuffer, w: &GpuBuffer) -> Option<GpuBuffer> {
    let s = g.stride;
    let fits = gpu.implicit_convs()
        && g.kh == 2 * s
        && g.kw == 2 * s
        && g.pad <= s
        && g.h.is_multiple_of(s)
        && g.w.is_multiple_of(s)
        && (g.w / s).is_multiple_of(4)
        && g.ow.is_multiple_of(4)
        // A's rows as texture lines (multiples of 64 floats); K then has no tail.
        && g.c_out.is_multiple_of(16)
        // Below a 16-row tile most lanes would compute clamped copies of the last row.
        && g.c_in >= 16;
    if !fits {
        return None;
    }
    let (su, c_in, c_out) = (s as usize, g.c_in as usize, g.c_out as usize);
    let (m, k) = (c_in, 4 * c_out);
    let (q_h, q_w) = (g.h / s, g.w / s);
    let n = g.batch as usize * (q_h * q_w) as usize;
    let w_read = gpu.flat_operand_any_size(w)?;
    let dy_read = gpu.flat_operand_any_size(dy)?;
    // A for phase (ry, rx): [c_in, 4 c_out] with A[i, 4c + 2ty + tx] = W[c, i, ry + s ty, rx + s tx].
    let a = gpu.alloc(su * su * c_in * k);
    let params = PhaseWeightParams {
        c_in: g.c_in,
        c_out: g.c_out,
        kh: g.kh,
        kw: g.kw,
        stride: s,
        weight_shift: w_read.shift(),
        _pad: [0; 2],
    };
    let kernel = Kernel::new(Shader::Conv2d, "phase_weights").with("WG", 64);
    let groups = [g.c_out.div_ceil(64), g.c_in, s * s];
    gpu.dispatch_with_textures(&kernel, &params, &[], &[&w_read], &[&a], groups);
    // (Rows of 4 c_out floats, a multiple of 64: a texture line each, within the size limit
    // unless the layer is enormous.)
    let a_read = gpu.line_operand(&a, k).textured_only()?;
    let phases = su * su;
    gpu.count_matmul_flops(2 * (phases * m * n * k) as u64);
    // One dispatch per column phase rx, whose workgroups' z runs over the row phases: the
    // kernel takes rx and the phase's column offset ox as constants (matmul_conv.wgsl).
    let params = gathered_b_params([su, m, k, n], dy_read.shift(), conv_fields([g.c_out, g.oh, g.ow], [q_h, q_w], g));
    let tile_rows = subgroup_tile_rows(m);
    let dx = gpu.alloc(g.x_shape().iter().product());
    let groups = [(n as u32).div_ceil(64), m.div_ceil(tile_rows) as u32, s];
    let inputs = [&a, dy, &a];
    for rx in 0..s {
        let px = (rx + s - g.pad % s) % s;
        let ox = (px + g.pad - rx) / s;
        let mut kernel = blocked_kernel(gpu, BOperand::ConvPhases, AOperand::TextureAlongK, m)?
            .with("PHASE_COLUMN", rx)
            .with("PHASE_OX", ox);
        kernel.note = format!("conv_transpose {phases}x{m}x{k}x{n} by phases");
        gpu.dispatch_with_textures(&kernel, &params, &inputs, &[&dy_read, &a_read], &[&dx], groups);
    }
    Some(dx)
}

/// Parameters of an implicit weight-gradient product [m, n] over k positions in `splits` chunks
/// of `k_chunk` (the batch entries, summed afterwards): chunk i starts at position i * k_chunk
/// in A and `b_chunk` floats further on in B, whose rows are n long. `shifts` are A's and B's
/// flat-texture row lengths.
fn chunked_params(
    [m, n, k]: [usize; 3],
    (splits, k_chunk): (usize, usize),
    b_chunk: usize,
    [a_shift, b_shift]: [u32; 2],
    conv: MatmulParams,
) -> MatmulParams {
    MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k_chunk.min(k) as u32,
        batch: splits as u32,
        a_batch: k_chunk as u32,
        a_row: 1,
        a_col: 1,
        b_batch: b_chunk as u32,
        b_row: n as u32,
        b_col: 1,
        k_last: (k - (splits - 1) * k_chunk) as u32,
        a_shift,
        b_shift,
        ..conv
    }
}

/// MatmulParams' convolution fields (matmul_conv.wgsl): the source image's channels and plane,
/// the grid of outputs the product covers, and g's stride and padding.
fn conv_fields(source: [u32; 3], grid: [u32; 2], g: &ConvGeometry) -> MatmulParams {
    let [src_c, src_h, src_w] = source;
    let [grid_h, grid_w] = grid;
    MatmulParams { src_c, src_h, src_w, grid_h, grid_w, stride: g.stride, pad: g.pad, ..MatmulParams::default() }
}

/// Parameters of an implicit product whose A is [batch, m, k] as stored (rows along K) and
/// whose B is gathered along N from the image in the flat texture of rows of 2^b_shift texels
/// (B_MODE 5 and 6), with `conv`'s convolution fields.
fn gathered_b_params([batch, m, k, n]: [usize; 4], b_shift: u32, conv: MatmulParams) -> MatmulParams {
    MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        batch: batch as u32,
        a_batch: (m * k) as u32,
        a_row: k as u32,
        a_col: 1,
        b_row: n as u32,
        b_col: 1,
        k_last: k as u32,
        b_shift,
        ..conv
    }
}
