// C[b] = A[b] · B[b] for row-major C of shape [batch, M, N]. A and B are read through strides, so
// transposed operands cost nothing extra: A(i, k) = a[b*a_batch + i*a_row + k*a_col].
// Each invocation accumulates a 4x4 block of C in registers; on lavapipe, register blocking beats
// workgroup-memory tiling (see ../shared/lavapipe.md), so there are no barriers here.

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
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i0 = gid.y * 4u;
    let j0 = gid.x * 4u;
    let bat = gid.z;
    if (i0 >= p.m || j0 >= p.n) {
        return;
    }
    // Rows and columns past the edge are clamped for loading and skipped for storing, so any
    // M and N work without padding the operands.
    let last_i = p.m - 1u;
    let last_j = p.n - 1u;
    let ra = vec4<u32>(min(i0, last_i), min(i0 + 1u, last_i), min(i0 + 2u, last_i), min(i0 + 3u, last_i)) * p.a_row
        + vec4<u32>(bat * p.a_batch);
    let cb = vec4<u32>(min(j0, last_j), min(j0 + 1u, last_j), min(j0 + 2u, last_j), min(j0 + 3u, last_j)) * p.b_col
        + vec4<u32>(bat * p.b_batch);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        let ak = kk * p.a_col;
        let bk = kk * p.b_row;
        let bv = vec4<f32>(b[cb.x + bk], b[cb.y + bk], b[cb.z + bk], b[cb.w + bk]);
        acc0 = acc0 + a[ra.x + ak] * bv;
        acc1 = acc1 + a[ra.y + ak] * bv;
        acc2 = acc2 + a[ra.z + ak] * bv;
        acc3 = acc3 + a[ra.w + ak] * bv;
    }
    let base = bat * p.m * p.n;
    store_row(base, i0, j0, acc0);
    store_row(base, i0 + 1u, j0, acc1);
    store_row(base, i0 + 2u, j0, acc2);
    store_row(base, i0 + 3u, j0, acc3);
}

fn store_row(base: u32, i: u32, j0: u32, v: vec4<f32>) {
    if (i >= p.m) {
        return;
    }
    let row = base + i * p.n;
    for (var t = 0u; t < 4u; t = t + 1u) {
        if (j0 + t < p.n) {
            c[row + j0 + t] = v[t];
        }
    }
}
