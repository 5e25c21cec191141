// The matmul of matmul.wgsl for devices whose subgroups are 8 invocations wide (lavapipe on
// AVX2: one subgroup = one SIMD vector = one row of the 8x8 workgroup). Each lane loads A for
// its own k of a block of 8, and the eight values are broadcast with subgroupShuffle instead of
// every lane loading every A value: one load replaces eight on llvmpipe, where storage loads
// are per-lane gathers. Same parameters, bindings and tiling as matmul.wgsl.

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
    k_last: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// A one-dimensional workgroup of 64 (naga allows subgroup builtins only there), read as 8x8:
// invocation t has column lane t % 8 and row t / 8, and each row of 8 is one subgroup.
@compute @workgroup_size(64, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
           @builtin(subgroup_invocation_id) lane: u32) {
    let i0 = wid.y * 64u + t / 8u;
    let j0 = wid.x * 64u + t % 8u;
    let bat = wid.z;
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
    for (var kb = 0u; kb < k_len; kb = kb + 8u) {
        let k_ok = kb + lane < k_len;
        let ka = min(kb + lane, k_len - 1u) * p.a_col;
        let av0 = select(0.0, a[ra0 + ka], k_ok);
        let av1 = select(0.0, a[ra1 + ka], k_ok);
        let av2 = select(0.0, a[ra2 + ka], k_ok);
        let av3 = select(0.0, a[ra3 + ka], k_ok);
        let av4 = select(0.0, a[ra4 + ka], k_ok);
        let av5 = select(0.0, a[ra5 + ka], k_ok);
        let av6 = select(0.0, a[ra6 + ka], k_ok);
        let av7 = select(0.0, a[ra7 + ka], k_ok);
        if (kb + 0u < k_len) {
            let bk = (kb + 0u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 0u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 0u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 0u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 0u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 0u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 0u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 0u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 0u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 1u < k_len) {
            let bk = (kb + 1u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 1u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 1u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 1u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 1u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 1u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 1u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 1u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 1u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 2u < k_len) {
            let bk = (kb + 2u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 2u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 2u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 2u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 2u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 2u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 2u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 2u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 2u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 3u < k_len) {
            let bk = (kb + 3u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 3u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 3u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 3u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 3u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 3u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 3u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 3u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 3u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 4u < k_len) {
            let bk = (kb + 4u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 4u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 4u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 4u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 4u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 4u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 4u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 4u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 4u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 5u < k_len) {
            let bk = (kb + 5u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 5u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 5u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 5u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 5u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 5u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 5u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 5u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 5u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 6u < k_len) {
            let bk = (kb + 6u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 6u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 6u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 6u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 6u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 6u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 6u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 6u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 6u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
        if (kb + 7u < k_len) {
            let bk = (kb + 7u) * p.b_row;
            let b_lo = vec4<f32>(b[cb_lo.x + bk], b[cb_lo.y + bk], b[cb_lo.z + bk], b[cb_lo.w + bk]);
            let b_hi = vec4<f32>(b[cb_hi.x + bk], b[cb_hi.y + bk], b[cb_hi.z + bk], b[cb_hi.w + bk]);
            let s0 = subgroupShuffle(av0, 7u);
            acc0a = acc0a + s0 * b_lo;
            acc0b = acc0b + s0 * b_hi;
            let s1 = subgroupShuffle(av1, 7u);
            acc1a = acc1a + s1 * b_lo;
            acc1b = acc1b + s1 * b_hi;
            let s2 = subgroupShuffle(av2, 7u);
            acc2a = acc2a + s2 * b_lo;
            acc2b = acc2b + s2 * b_hi;
            let s3 = subgroupShuffle(av3, 7u);
            acc3a = acc3a + s3 * b_lo;
            acc3b = acc3b + s3 * b_hi;
            let s4 = subgroupShuffle(av4, 7u);
            acc4a = acc4a + s4 * b_lo;
            acc4b = acc4b + s4 * b_hi;
            let s5 = subgroupShuffle(av5, 7u);
            acc5a = acc5a + s5 * b_lo;
            acc5b = acc5b + s5 * b_hi;
            let s6 = subgroupShuffle(av6, 7u);
            acc6a = acc6a + s6 * b_lo;
            acc6b = acc6b + s6 * b_hi;
            let s7 = subgroupShuffle(av7, 7u);
            acc7a = acc7a + s7 * b_lo;
            acc7b = acc7b + s7 * b_hi;
        }
    }
    if (i0 >= p.m || j0 >= p.n) {
        return;
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
