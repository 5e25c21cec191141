// Elementwise functions of one tensor. The op code is uniform across the dispatch, so the switch
// costs one predictable branch; gradients are compositions of these ops (see src/autograd).

struct Params {
    n: u32,
    op: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u;

fn stable_sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

fn stable_tanh(v: f32) -> f32 {
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
        return bitcast<f32>(0x7fc00000u); // NaN, as a negative base to a fractional power is
    }
    if (fract(e * 0.5) != 0.0) {
        return -r;
    }
    return r;
}

fn apply(op: u32, v: f32) -> f32 {
    switch op {
        case 0u: { return -v; }
        case 1u: { return exp(v); }
        case 2u: { return log(v); }
        case 3u: { return sqrt(v); }
        case 4u: { return abs(v); }
        case 5u: { return stable_tanh(v); }
        case 6u: { return stable_sigmoid(v); }
        case 7u: { return max(v, 0.0); }
        case 8u: { return select(p.alpha * v, v, v > 0.0); }
        // softplus(v) = max(v, 0) + log(1 + e^-|v|) stays finite for any v
        case 9u: { return max(v, 0.0) + log(1.0 + exp(-abs(v))); }
        case 10u: { return 1.0 / v; }
        case 11u: { return signed_pow(v, p.alpha); }
        case 12u: { return p.alpha * v + p.beta; }
        case 13u: { return select(0.0, 1.0, v > 0.0); }
        case 14u: { return select(p.alpha, 1.0, v > 0.0); }
        case 15u: { return sign(v); }
        case 16u: { return clamp(v, p.alpha, p.beta); }
        case 17u: { return select(0.0, 1.0, v >= p.alpha && v <= p.beta); }
        default: { return v; }
    }
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.n) {
        return;
    }
    y[i] = apply(p.op, x[i]);
}
