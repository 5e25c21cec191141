// C[b] = A[b] · B[b] for row-major C of shape [batch, M, N]. A and B are read through strides, so
// transposed operands cost nothing extra: A(i, k) = a[b*a_batch + i*a_row + k*a_col].
// A workgroup of 8x8 invocations computes a 64x64 tile of C, each invocation an 8x8 register
// block of rows i0 + 8r and columns j0 + 8t: neighbouring invocations (one SIMD vector on
// llvmpipe) touch neighbouring columns, so loads of B and stores of C are contiguous across
// lanes. Register blocking beats workgroup-memory tiling on lavapipe (../shared/lavapipe.md).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch: u32,
    a_row: u32,
    a_col: u32,
    b_batch: u32,
    b_row: u32,
    b_col: u32,
    // K of the last batch entry: split-K runs the batch axis over chunks of K.
    k_last: u32,
    // Row lengths (log2 texels) of A's and B's flat texture copies (`skinny` with A_TEXTURE,
    // B_TEXTURE; see unary.wgsl for why textures).
    a_shift: u32,
    b_shift: u32,
    // Convolution geometry of matmul_subgroup.wgsl's implicit GEMM (unused here).
    src_c: u32,
    src_h: u32,
    src_w: u32,
    grid_h: u32,
    grid_w: u32,
    stride: u32,
    pad: u32,
    slope: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var a_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var b_tex: texture_storage_2d<rgba32float, read>;

override A_TEXTURE: bool = false;
override B_TEXTURE: bool = false;

// Value e of a flat texture copy whose rows hold 2^shift texels.
fn flat_value(t: texture_storage_2d<rgba32float, read>, shift: u32, e: u32) -> f32 {
    let q = e / 4u;
    return textureLoad(t, vec2<u32>(q & ((1u << shift) - 1u), q >> shift))[e & 3u];
}

fn a_at(e: u32) -> f32 {
    if (A_TEXTURE) {
        return flat_value(a_tex, p.a_shift, e);
    }
    return a[e];
}

fn b_at(e: u32) -> f32 {
    if (B_TEXTURE) {
        return flat_value(b_tex, p.b_shift, e);
    }
    return b[e];
}

@compute @workgroup_size(8, 8, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i0 = wid.y * 64u + lid.y;
    let j0 = wid.x * 64u + lid.x;
    let bat = wid.z;
    if ((i0 >= p.m) | (j0 >= p.n)) {
        return;
    }
    // Rows and columns past the edge are clamped for loading and skipped for storing, so any
    // M and N work without padding the operands.
    let last_i = p.m - 1u;
    let last_j = p.n - 1u;
    let a_off = bat * p.a_batch;
    let b_off = bat * p.b_batch;
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    let ra0 = min(i0 + 0u, last_i) * p.a_row + a_off;
    let ra1 = min(i0 + 8u, last_i) * p.a_row + a_off;
    let ra2 = min(i0 + 16u, last_i) * p.a_row + a_off;
    let ra3 = min(i0 + 24u, last_i) * p.a_row + a_off;
    let ra4 = min(i0 + 32u, last_i) * p.a_row + a_off;
    let ra5 = min(i0 + 40u, last_i) * p.a_row + a_off;
    let ra6 = min(i0 + 48u, last_i) * p.a_row + a_off;
    let ra7 = min(i0 + 56u, last_i) * p.a_row + a_off;
    let cb_lo = vec4<u32>(min(j0 + 0u, last_j), min(j0 + 8u, last_j), min(j0 + 16u, last_j), min(j0 + 24u, last_j)) * p.b_col + vec4<u32>(b_off);
    let cb_hi = vec4<u32>(min(j0 + 32u, last_j), min(j0 + 40u, last_j), min(j0 + 48u, last_j), min(j0 + 56u, last_j)) * p.b_col + vec4<u32>(b_off);
    var acc0a = vec4<f32>(0.0);
    var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0);
    var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0);
    var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0);
    var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0);
    var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0);
    var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0);
    var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0);
    var acc7b = vec4<f32>(0.0);
    for (var kk = 0u; kk < k_len; kk = kk + 1u) {
        let ak = kk * p.a_col;
        let bk = kk * p.b_row;
        let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
        let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
        let a0 = a[ra0 + ak];
        acc0a = acc0a + a0 * b_lo;
        acc0b = acc0b + a0 * b_hi;
        let a1 = a[ra1 + ak];
        acc1a = acc1a + a1 * b_lo;
        acc1b = acc1b + a1 * b_hi;
        let a2 = a[ra2 + ak];
        acc2a = acc2a + a2 * b_lo;
        acc2b = acc2b + a2 * b_hi;
        let a3 = a[ra3 + ak];
        acc3a = acc3a + a3 * b_lo;
        acc3b = acc3b + a3 * b_hi;
        let a4 = a[ra4 + ak];
        acc4a = acc4a + a4 * b_lo;
        acc4b = acc4b + a4 * b_hi;
        let a5 = a[ra5 + ak];
        acc5a = acc5a + a5 * b_lo;
        acc5b = acc5b + a5 * b_hi;
        let a6 = a[ra6 + ak];
        acc6a = acc6a + a6 * b_lo;
        acc6b = acc6b + a6 * b_hi;
        let a7 = a[ra7 + ak];
        acc7a = acc7a + a7 * b_lo;
        acc7b = acc7b + a7 * b_hi;
    }
    let base = bat * p.m * p.n;
    store_row(base, i0 + 0u, j0, acc0a, acc0b);
    store_row(base, i0 + 8u, j0, acc1a, acc1b);
    store_row(base, i0 + 16u, j0, acc2a, acc2b);
    store_row(base, i0 + 24u, j0, acc3a, acc3b);
    store_row(base, i0 + 32u, j0, acc4a, acc4b);
    store_row(base, i0 + 40u, j0, acc5a, acc5b);
    store_row(base, i0 + 48u, j0, acc6a, acc6b);
    store_row(base, i0 + 56u, j0, acc7a, acc7b);
}

fn store_row(base: u32, i: u32, j0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (i >= p.m) {
        return;
    }
    let row = base + i * p.n;
    for (var t = 0u; t < 4u; t = t + 1u) {
        if (j0 + 8u * t < p.n) {
            c[row + j0 + 8u * t] = lo[t];
        }
        if (j0 + 8u * (t + 4u) < p.n) {
            c[row + j0 + 8u * (t + 4u)] = hi[t];
        }
    }
}

// Skinny products (M <= 4 after the host swaps a one-column product into a one-row one): a
// 64x64 tile would leave most of its lanes idle. Here an invocation owns one row and eight
// columns 64 apart, so the lanes of a workgroup read neighbouring columns of B together and
// every A value loaded serves eight products.
const SKINNY_WG: u32 = 64u;

@compute @workgroup_size(SKINNY_WG)
fn skinny(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.y;
    let bat = wid.z;
    let j0 = wid.x * SKINNY_WG * 8u + lid;
    if (j0 >= p.n) {
        return;
    }
    let last_j = p.n - 1u;
    let ra = bat * p.a_batch + i * p.a_row;
    let b_off = bat * p.b_batch;
    let cb_lo = vec4<u32>(j0, min(j0 + 64u, last_j), min(j0 + 128u, last_j), min(j0 + 192u, last_j)) * p.b_col
        + vec4<u32>(b_off);
    let cb_hi = vec4<u32>(min(j0 + 256u, last_j), min(j0 + 320u, last_j), min(j0 + 384u, last_j), min(j0 + 448u, last_j))
        * p.b_col + vec4<u32>(b_off);
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var kk = 0u; kk < k_len; kk = kk + 1u) {
        let bk = kk * p.b_row;
        let av = a_at(ra + kk * p.a_col);
        lo = lo + av * vec4<f32>(b_at(cb_lo.x + bk), b_at(cb_lo.y + bk), b_at(cb_lo.z + bk), b_at(cb_lo.w + bk));
        hi = hi + av * vec4<f32>(b_at(cb_hi.x + bk), b_at(cb_hi.y + bk), b_at(cb_hi.z + bk), b_at(cb_hi.w + bk));
    }
    let row = bat * p.m * p.n + i * p.n;
    for (var t = 0u; t < 4u; t = t + 1u) {
        if (j0 + 64u * t < p.n) {
            c[row + j0 + 64u * t] = lo[t];
        }
        if (j0 + 64u * (t + 4u) < p.n) {
            c[row + j0 + 64u * (t + 4u)] = hi[t];
        }
    }
}
