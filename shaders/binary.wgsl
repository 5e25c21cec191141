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
// The same buffers as vec4s, for `contiguous`.
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

override WG: u32 = 256u;

fn apply(op: u32, u: f32, v: f32) -> f32 {
    return apply4(op, vec4<f32>(u), vec4<f32>(v)).x;
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.n) {
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

fn apply4(op: u32, u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    switch op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return max(u, v); }
        case 5u: { return min(u, v); }
        case 6u: { return select(vec4<f32>(0.0), vec4<f32>(1.0), u > v); }
        case 7u: { return select(vec4<f32>(0.0), vec4<f32>(1.0), u == v); }
        default: { return u; }
    }
}

// Same-shape operands and scalars (shapes that collapse to one axis; strides 1 or 0): four
// values per invocation, one vec4 access per operand (llvmpipe pays a loop over the lanes per
// storage access, whatever its width). The last vec4 may pass n into the padding of the
// output (bindings cover whole 16-byte groups); nothing reads the padding.
@compute @workgroup_size(WG)
fn contiguous(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (4u * i >= p.n) {
        return;
    }
    var u = vec4<f32>(a4[0].x);
    if (p.a_strides[0][0] == 1u) {
        u = a4[i];
    }
    var v = vec4<f32>(b4[0].x);
    if (p.b_strides[0][0] == 1u) {
        v = b4[i];
    }
    out4[i] = apply4(p.op, u, v);
}
