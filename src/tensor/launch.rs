//! What every family's launcher shares: grid sizes, packed shapes and strides.

use crate::gpu::Gpu;

/// The most axes a kernel's shape and strides hold.
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

pub(super) fn pack<T: Copy + Default>(values: &[T]) -> [[T; 4]; 2] {
    assert!(values.len() <= MAX_RANK, "tensors have at most {MAX_RANK} axes");
    let mut out = [[T::default(); 4]; 2];
    for (d, &v) in values.iter().enumerate() {
        out[d / 4][d % 4] = v;
    }
    out
}

pub(super) fn u32s(v: &[usize]) -> Vec<u32> {
    v.iter().map(|&x| u32::try_from(x).expect("tensor extent exceeds u32")).collect()
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
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
pub(super) fn collapse(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
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

/// Whether every operand reads four consecutive outputs as one vec4 or one value: the last axis
/// holds a multiple of 4 values, and an operand that walks it (stride 1) starts each run of it
/// at a multiple of 4.
pub(super) fn runs_of_four(shape: &[usize], strides: &[Vec<usize>]) -> bool {
    let last = shape.len() - 1;
    shape[last].is_multiple_of(4)
        && strides.iter().all(|s| s[last] == 0 || (s[last] == 1 && s[..last].iter().all(|t| t.is_multiple_of(4))))
}
