// Elementwise functions of two tensors with numpy broadcasting: the host gives the output shape
// and each operand's strides (0 along broadcast axes), at most 8 axes.

// `contiguous` and `broadcast4` read an operand from its flat texture copy (rows of
// 2^a_shift / 2^b_shift texels) when A_TEXTURE/B_TEXTURE: llvmpipe fetches a texel for all lanes at once
// but loads storage lane by lane (see unary.wgsl).

struct Params {
    n: u32,
    rank: u32,
    a_shift: u32,
    b_shift: u32,
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

@group(0) @binding(4) var a_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var b_tex: texture_storage_2d<rgba32float, read>;

override WG: u32 = 256u;
// The op, fixed per pipeline (see unary.wgsl).
override OP: u32 = BINARY_ADD;
override A_TEXTURE: bool = false;
override B_TEXTURE: bool = false;

fn a_vec4(i: u32) -> vec4<f32> {
    if (A_TEXTURE) {
        return textureLoad(a_tex, vec2<u32>(i & ((1u << p.a_shift) - 1u), i >> p.a_shift));
    }
    return a4[i];
}

fn b_vec4(i: u32) -> vec4<f32> {
    if (B_TEXTURE) {
        return textureLoad(b_tex, vec2<u32>(i & ((1u << p.b_shift) - 1u), i >> p.b_shift));
    }
    return b4[i];
}

fn apply(op: u32, u: f32, v: f32) -> f32 {
    return apply4(op, vec4<f32>(u), vec4<f32>(v)).x;
}

// Where output element i reads a (x) and b (y).
fn operand_offsets(i: u32) -> vec2<u32> {
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
    return vec2<u32>(ia, ib);
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.n) {
        return;
    }
    let at = operand_offsets(i);
    out[i] = apply(OP, a[at.x], b[at.y]);
}

// Broadcast operands whose last axis has a multiple of 4 values and stride 0 or 1 in each
// operand: four outputs per invocation, each operand read as one vec4 or one splat scalar (the
// host checks that an operand with stride 1 starts every run at a multiple of 4). A broadcast
// operand's vec4 read may reach into the padding past its last value (bindings cover whole
// 16-byte groups).
@compute @workgroup_size(WG)
fn broadcast4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (4u * i >= p.n) {
        return;
    }
    let at = operand_offsets(4u * i);
    let ia = at.x;
    let ib = at.y;
    // One entry point may bind each buffer as one type only: a broadcast value is a lane of a vec4.
    let last = p.rank - 1u;
    var u = a_vec4(ia / 4u);
    if (p.a_strides[last / 4u][last % 4u] == 0u) {
        u = vec4<f32>(u[ia % 4u]);
    }
    var v = b_vec4(ib / 4u);
    if (p.b_strides[last / 4u][last % 4u] == 0u) {
        v = vec4<f32>(v[ib % 4u]);
    }
    out4[i] = apply4(OP, u, v);
}

fn apply4(op: u32, u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    switch op {
        case BINARY_ADD: { return u + v; }
        case BINARY_SUB: { return u - v; }
        case BINARY_MUL: { return u * v; }
        case BINARY_DIV: { return u / v; }
        case BINARY_MAX: { return max(u, v); }
        case BINARY_MIN: { return min(u, v); }
        case BINARY_GREATER: { return select(vec4<f32>(0.0), vec4<f32>(1.0), u > v); }
        case BINARY_EQUAL: { return select(vec4<f32>(0.0), vec4<f32>(1.0), u == v); }
        // Only a code without its case gets here: NaN, never a silent identity.
        default: { return vec4<f32>(quiet_nan()); }
    }
}

// Same-shape operands and scalars (shapes that collapse to one axis; strides 1 or 0): four
// values per invocation, one vec4 access per operand (see unary.wgsl). The last vec4 may pass n into the padding of the
// output (bindings cover whole 16-byte groups); nothing reads the padding.
@compute @workgroup_size(WG)
fn contiguous(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (4u * i >= p.n) {
        return;
    }
    var u = vec4<f32>(a_vec4(0u).x);
    if (p.a_strides[0][0] == 1u) {
        u = a_vec4(i);
    }
    var v = vec4<f32>(b_vec4(0u).x);
    if (p.b_strides[0][0] == 1u) {
        v = b_vec4(i);
    }
    out4[i] = apply4(OP, u, v);
}
