//! Movement (movement.wgsl): reshape, permute, expand, zero padding and slicing (one window
//! op), concatenation and reflection padding; the launchers (gather, transpose, fill, copy,
//! reflect), the `Tensor` methods and their gradient rules. CPU reference:
//! `reference::permute`, `reference::pad`, `reference::reflect_pad2d`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::broadcast_shape;
use super::launch::{broadcast_strides, contiguous_strides, grid_1d, pack, u32s, WG_1D};
use super::{grad_enabled, Tensor};
use crate::autograd::{Backward, Node, Op};
use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};

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
    let x_read = gpu.flat_operand(x);
    let params =
        TransposeParams { batch: batch as u32, rows: rows as u32, cols: cols as u32, src_shift: x_read.shift() };
    let kernel = Kernel::new(Shader::Movement, "transpose4").with("WG", 64).reading("FROM_TEXTURE", &x_read);
    let blocks = batch * (rows / 4) * (cols / 4);
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&x_read], &[&out], grid_1d(gpu, blocks, 64));
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

/// `out[c] = x[offset + sum_d (c_d - lead_d) * strides_d]`, zero where c_d - lead_d leaves
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
    let x_read = gpu.flat_operand(x);
    let params = GatherParams {
        n: n as u32,
        rank: out_shape.len() as u32,
        offset: 0,
        chunk: CHUNK as u32,
        src_shift: x_read.shift(),
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
    let kernel = Kernel::new(Shader::Movement, entry).with("WG", 64).reading("FROM_TEXTURE", &x_read);
    gpu.dispatch_with_textures(&kernel, &params, &[x], &[&x_read], &[out], grid_1d(gpu, invocations, 64));
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

/// A buffer of `n` copies of `value`.
pub fn fill(gpu: &Gpu, n: usize, value: f32) -> GpuBuffer {
    let out = gpu.alloc(n);
    let params = FillParams { n: n as u32, value, _pad: [0; 2] };
    gpu.dispatch(&Kernel::new(Shader::Movement, "fill"), &params, &[], &[&out], grid_1d(gpu, n, WG_1D));
    out
}

crate::uniform! {
    /// Mirror padding of planes (movement.wgsl).
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    pub struct ReflectGeometry {
        /// Planes (batch times channels).
        pub planes: u32,
        /// Plane height.
        pub h: u32,
        /// Plane width.
        pub w: u32,
        /// Rows mirrored above.
        pub top: u32,
        /// Columns mirrored on the left.
        pub left: u32,
        /// Padded height.
        pub oh: u32,
        /// Padded width.
        pub ow: u32,
        /// (Padding to 16 bytes.)
        pub _pad: u32,
    }
}

/// Mirror padding of each plane as `g` says.
pub fn reflect_pad(gpu: &Gpu, g: &ReflectGeometry, x: &GpuBuffer) -> GpuBuffer {
    let n = (g.planes * g.oh * g.ow) as usize;
    let out = gpu.alloc(n);
    gpu.dispatch(&Kernel::new(Shader::Movement, "reflect_pad"), g, &[x], &[&out], grid_1d(gpu, n, WG_1D));
    out
}

/// The adjoint of `reflect_pad`: a padded gradient folded back onto the plane.
pub fn reflect_pad_backward(gpu: &Gpu, g: &ReflectGeometry, dy: &GpuBuffer) -> GpuBuffer {
    let n = (g.planes * g.h * g.w) as usize;
    let out = gpu.alloc(n);
    gpu.dispatch(&Kernel::new(Shader::Movement, "reflect_pad_backward"), g, &[dy], &[&out], grid_1d(gpu, n, WG_1D));
    out
}

impl Tensor {
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

    /// Axes from `axis` on merged into one.
    pub fn flatten_from(&self, axis: usize) -> Tensor {
        let mut shape: Vec<usize> = self.shape()[..axis].to_vec();
        shape.push(self.shape()[axis..].iter().product());
        self.reshape(&shape)
    }

    /// The axes in the order `perm` gives (numpy's transpose).
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
            transpose(self.gpu(), self.buffer(), batch, self.shape()[r - 2], self.shape()[r - 1])
        } else {
            let strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
            gather(self.gpu(), self.buffer(), &shape, &strides, &vec![0; shape.len()], &shape)
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
        let strides = broadcast_strides(self.shape(), shape);
        let out = gather(self.gpu(), self.buffer(), shape, &strides, &vec![0; shape.len()], shape);
        self.record(&[self], shape.to_vec(), out, Op::Expand, false)
    }

    /// The window op behind zero padding and slicing: output coordinate c reads input
    /// coordinate c - lead (zero outside the input), for an output of `shape`.
    pub(crate) fn window(&self, lead: &[i64], shape: &[usize]) -> Tensor {
        assert_eq!(lead.len(), self.rank());
        let strides = contiguous_strides(self.shape());
        let out = gather(self.gpu(), self.buffer(), shape, &strides, lead, self.shape());
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
        let out = reflect_pad(self.gpu(), &g, self.buffer());
        let mut shape = self.shape().to_vec();
        shape[r - 2] = g.oh as usize;
        shape[r - 1] = g.ow as usize;
        self.record(&[self], shape, out, Op::ReflectPad(g), false)
    }

    /// The adjoint of `reflect_pad2d`: folds a padded gradient back onto the unpadded image.
    pub(crate) fn reflect_pad2d_backward(&self, g: ReflectGeometry) -> Tensor {
        let out = reflect_pad_backward(self.gpu(), &g, self.buffer());
        let r = self.rank();
        let mut shape = self.shape().to_vec();
        shape[r - 2] = g.h as usize;
        shape[r - 1] = g.w as usize;
        self.record(&[self], shape, out, Op::ReflectPadBackward(g), false)
    }
}

/// A reshape's gradient is g in the input's shape.
pub(crate) fn reshape_grad(b: &Backward) -> Vec<Option<Tensor>> {
    vec![Some(b.g.reshape(b.input(0).shape()))]
}

/// A permutation's gradient is g under the inverse permutation.
pub(crate) fn permute_grad(b: &Backward, perm: &[usize]) -> Vec<Option<Tensor>> {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    vec![Some(b.g.permute(&inverse))]
}

/// A window's gradient is the opposite window of g (padding and slicing undo each other).
pub(crate) fn window_grad(b: &Backward, lead: &[i64]) -> Vec<Option<Tensor>> {
    let back: Vec<i64> = lead.iter().map(|l| -l).collect();
    vec![Some(b.g.window(&back, b.input(0).shape()))]
}

/// Reflection padding and its adjoint are each other's gradients.
pub(crate) fn reflect_pad_grad(b: &Backward, geometry: ReflectGeometry, adjoint: bool) -> Vec<Option<Tensor>> {
    if !adjoint {
        return vec![Some(b.g.reflect_pad2d_backward(geometry))];
    }
    vec![Some(b.g.reflect_pad2d(
        geometry.top as usize,
        (geometry.oh - geometry.h - geometry.top) as usize,
        geometry.left as usize,
        (geometry.ow - geometry.w - geometry.left) as usize,
    ))]
}
