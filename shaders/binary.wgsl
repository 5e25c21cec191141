// Elementwise functions of two tensors with numpy broadcasting: the host gives the output shape
// and each operand's strides (0 along broadcast axes), at most 8 axes.

struct Params {
    n: u32,
    op: u32,
    rank: u32,
    _pad: u32,
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

fn apply(op: u32, u: f32, v: f32) -> f32 {
    switch op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return max(u, v); }
        case 5u: { return min(u, v); }
        case 6u: { return select(0.0, 1.0, u > v); }
        case 7u: { return select(0.0, 1.0, u == v); }
        default: { return u; }
    }
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.n) {
        return;
    }
    if (p.rank == 1u) {
        // Same-shape operands and scalars collapse to one axis: no division needed.
        out[i] = apply(p.op, a[i * p.a_strides[0][0]], b[i * p.b_strides[0][0]]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let extent = p.shape[q][r];
        let coord = rem % extent;
        rem = rem / extent;
        ia = ia + coord * p.a_strides[q][r];
        ib = ib + coord * p.b_strides[q][r];
    }
    out[i] = apply(p.op, a[ia], b[ib]);
}
