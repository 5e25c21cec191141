// Elementwise functions of one tensor; gradients are compositions of these ops (see
// src/autograd). The op is a pipeline constant, so each pipeline holds one case.
// Each invocation maps four values with one vec4 load and one vec4 store (llvmpipe loads
// storage in a loop over the lanes, a vec4 for about 3.3 times a scalar: one access per four
// values saves that loop's overhead and the index arithmetic). The last vec4 may pass n into
// the buffer's padding (bindings cover whole 16-byte groups); nothing reads the padding.

// With FROM_TEXTURE, x is read from its flat texture copy (`Gpu::flat_texture`, rows of
// 2^x_shift texels): llvmpipe fetches a texel for all lanes at once (1.3 ns per vec4 on an AVX2
// host) but loads storage lane by lane (15 ns; examples/load_probe.rs). Stores cost 2.8 ns.

struct Params {
    n: u32,
    alpha: f32,
    beta: f32,
    x_shift: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var x_tex: texture_storage_2d<rgba32float, read>;

override WG: u32 = 256u;
override FROM_TEXTURE: bool = false;
// The op, fixed per pipeline: llvmpipe compiled a switch on a uniform op code into code that
// paid for many cases per dispatch (relu on 1M values: 3.45 ms with the code in the
// uniform block).
override OP: u32 = UNARY_NEG;

fn x_vec4(i: u32) -> vec4<f32> {
    if (FROM_TEXTURE) {
        return textureLoad(x_tex, vec2<u32>(i & ((1u << p.x_shift) - 1u), i >> p.x_shift));
    }
    return x[i];
}

fn stable_sigmoid(v: vec4<f32>) -> vec4<f32> {
    // e^-|v| never overflows: 1 / (1 + e^-v) for v >= 0, e^v / (1 + e^v) below.
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4<f32>(0.0));
}

fn stable_tanh(v: vec4<f32>) -> vec4<f32> {
    // tanh through exp(-2|v|) never overflows, unlike the textbook (e^v - e^-v) / (e^v + e^-v).
    let t = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - t) / (1.0 + t);
}

fn signed_pow(v: f32, e: f32) -> f32 {
    if (e == 2.0) {
        return v * v;
    }
    if (e == 1.0) {
        return v;
    }
    let r = pow(abs(v), e);
    if (v >= 0.0) {
        return r;
    }
    if (fract(e) != 0.0) {
        return quiet_nan(); // NaN, as a negative base to a fractional power is
    }
    if (fract(e * 0.5) != 0.0) {
        return -r;
    }
    return r;
}

fn apply(op: u32, v: vec4<f32>) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    switch op {
        case UNARY_NEG: { return -v; }
        case UNARY_EXP: { return exp(v); }
        case UNARY_LOG: { return log(v); }
        case UNARY_SQRT: { return sqrt(v); }
        case UNARY_ABS: { return abs(v); }
        case UNARY_TANH: { return stable_tanh(v); }
        case UNARY_SIGMOID: { return stable_sigmoid(v); }
        case UNARY_RELU: { return max(v, zero); }
        case UNARY_LEAKY_RELU: { return select(p.alpha * v, v, v > zero); }
        // softplus(v) = max(v, 0) + log(1 + e^-|v|) stays finite for any v
        case UNARY_SOFTPLUS: { return max(v, zero) + log(1.0 + exp(-abs(v))); }
        case UNARY_RECIP: { return 1.0 / v; }
        case UNARY_POW: {
            let e = p.alpha;
            return vec4<f32>(signed_pow(v.x, e), signed_pow(v.y, e), signed_pow(v.z, e), signed_pow(v.w, e));
        }
        case UNARY_AFFINE: { return p.alpha * v + p.beta; }
        case UNARY_STEP: { return select(zero, one, v > zero); }
        case UNARY_LEAKY_SLOPE: { return select(vec4<f32>(p.alpha), one, v > zero); }
        case UNARY_SIGN: { return sign(v); }
        case UNARY_CLAMP: { return clamp(v, vec4<f32>(p.alpha), vec4<f32>(p.beta)); }
        case UNARY_IN_RANGE: { return select(zero, one, (v >= vec4<f32>(p.alpha)) & (v <= vec4<f32>(p.beta))); }
        // Only a code without its case gets here: NaN, never a silent identity.
        default: { return vec4<f32>(quiet_nan()); }
    }
}

// Invocation i maps values 4i..4i+3.
@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (4u * i >= p.n) {
        return;
    }
    y[i] = apply(OP, x_vec4(i));
}

// ---- first-order gradients of the activations ----
// dx = g * f'(v) in one pass, where the composite rule (src/autograd.rs) takes two or three:
// v is the input x for ReLU and leaky ReLU (slope alpha), the output y for tanh (1 - y^2) and
// sigmoid (y - y^2). A second-order gradient uses the composite
// rule, whose ops are differentiable. Same layout as forward: four values per invocation,
// v and g from their flat texture copies when FROM_TEXTURE (the same row length: same size).
@group(0) @binding(2) var<storage, read> upstream: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(4) var v_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var upstream_tex: texture_storage_2d<rgba32float, read>;

fn derivative(op: u32, v: vec4<f32>) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    switch op {
        case UNARY_TANH: { return one - v * v; }
        case UNARY_SIGMOID: { return v - v * v; }
        case UNARY_RELU: { return select(zero, one, v > zero); }
        case UNARY_LEAKY_RELU: { return select(vec4<f32>(p.alpha), one, v > zero); }
        default: { return vec4<f32>(quiet_nan()); }
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (4u * i >= p.n) {
        return;
    }
    var v: vec4<f32>;
    var g: vec4<f32>;
    if (FROM_TEXTURE) {
        let at = vec2<u32>(i & ((1u << p.x_shift) - 1u), i >> p.x_shift);
        v = textureLoad(v_tex, at);
        g = textureLoad(upstream_tex, at);
    } else {
        v = x[i];
        g = upstream[i];
    }
    dx[i] = g * derivative(OP, v);
}
