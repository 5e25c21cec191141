//! Reductions (reduce.wgsl): sums and maxima over axes, the launcher, the `Tensor` methods
//! and the gradient rules of sum and its adjoint, expand. CPU reference: `reference::reduce`.

use bytemuck::{Pod, Zeroable};

use super::launch::{collapse, contiguous_strides, grid_1d, pack, u32s, WG_1D};
use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::gpu::wgsl_enum::WgslEnum;
use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};

crate::wgsl_enum! {
    /// How a reduction combines values (reduce.wgsl).
    pub enum ReduceOp: "REDUCE" {
        /// The sum.
        Sum = 0,
        /// The largest value.
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
    let x_read = gpu.flat_operand(x);
    let params = ReduceParams {
        n_out: n_out as u32,
        n_reduce: n_reduce as u32,
        kept_rank: kept_shape.len() as u32,
        reduced_rank: red_shape.len() as u32,
        op: op.code(),
        x_shift: x_read.shift(),
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
    kernel = kernel.reading("FROM_TEXTURE", &x_read);
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&x_read], &[&out], grid);
    out
}

impl Tensor {
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
        let out = reduce(self.gpu(), ReduceOp::Sum, self.buffer(), self.shape(), &axes);
        let kept = self.reduced_shape(&axes, true);
        let summed = self.record(&[self], kept, out, Op::Sum, false);
        if keepdim {
            summed
        } else {
            summed.reshape(&self.reduced_shape(&axes, false))
        }
    }

    /// Mean over `axes` (negative counts from the end).
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let axes_n = self.normalize_axes(axes);
        let count: usize = axes_n.iter().map(|&a| self.shape()[a]).product();
        self.sum(axes, keepdim).scale(1.0 / count as f32)
    }

    /// Sum of every element, shape `[1]`.
    pub fn sum_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).sum(&[0], true)
    }

    /// Mean of every element, shape `[1]`.
    pub fn mean_all(&self) -> Tensor {
        self.sum_all().scale(1.0 / self.numel() as f32)
    }

    /// Maximum over `axes`; carries no gradient (use it for stabilising shifts).
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let axes = self.normalize_axes(axes);
        let out = reduce(self.gpu(), ReduceOp::Max, self.buffer(), self.shape(), &axes);
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
}

/// A sum's gradient spreads g back over the summed axes.
pub(crate) fn sum_grad(b: &Backward) -> Vec<Option<Tensor>> {
    vec![Some(b.g.expand(b.input(0).shape()))]
}

/// An expansion's gradient sums g over the repeated axes.
pub(crate) fn expand_grad(b: &Backward) -> Vec<Option<Tensor>> {
    vec![Some(b.g.sum_to(b.input(0).shape()))]
}
