// Optimizer updates, in place on the parameter and its state buffers. Bias corrections and the
// step count stay on the host, so each update is one dispatch over the parameter.

struct AdamParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    // 1 / (1 - beta1^t) and 1 / (1 - beta2^t)
    correction1: f32,
    correction2: f32,
}

struct Adam4Params {
    adam: AdamParams,
    // Rows of the four flat texture copies hold 2^shift texels.
    shift: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

struct RmsParams {
    n: u32,
    lr: f32,
    alpha: f32,
    eps: f32,
}

struct ClipParams {
    n: u32,
    low: f32,
    high: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> adam_p: AdamParams;
@group(0) @binding(0) var<uniform> sgd_p: SgdParams;
@group(0) @binding(0) var<uniform> rms_p: RmsParams;
@group(0) @binding(0) var<uniform> clip_p: ClipParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> state_a: array<f32>;
@group(0) @binding(4) var<storage, read_write> state_b: array<f32>;
@group(0) @binding(1) var<storage, read_write> clipped: array<f32>;
// adam4: the state as vec4s, updated in place, and flat texture copies of all four inputs
// (llvmpipe fetches a texel for all lanes at once but loads storage lane by lane).
@group(0) @binding(0) var<uniform> adam4_p: Adam4Params;
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(4) var grad_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var param_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var m_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var v_tex: texture_storage_2d<rgba32float, read>;

override WG: u32 = 256u;

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG;
}

// state_a = first moment, state_b = second moment.
@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= adam_p.n) {
        return;
    }
    let s = adam_update(adam_p, vec4<f32>(param[i]), vec4<f32>(grad[i]), vec4<f32>(state_a[i]), vec4<f32>(state_b[i]));
    state_a[i] = s.m.x;
    state_b[i] = s.v.x;
    param[i] = s.p.x;
}

// One Adam step of up to four values: the new parameter and moments.
struct AdamState {
    p: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

fn adam_update(h: AdamParams, p: vec4<f32>, grad: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> AdamState {
    let g = grad + h.weight_decay * p;
    let m_new = h.beta1 * m + (1.0 - h.beta1) * g;
    let v_new = h.beta2 * v + (1.0 - h.beta2) * g * g;
    return AdamState(p - h.lr * (m_new * h.correction1) / (sqrt(v_new * h.correction2) + h.eps), m_new, v_new);
}

// adam on four values per invocation, reading from the texture copies (n is a multiple of 4).
@compute @workgroup_size(WG)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let q = linear_id(gid, groups);
    let h = adam4_p.adam;
    if (4u * q >= h.n) {
        return;
    }
    let at = vec2<u32>(q & ((1u << adam4_p.shift) - 1u), q >> adam4_p.shift);
    let s = adam_update(h, textureLoad(param_tex, at), textureLoad(grad_tex, at), textureLoad(m_tex, at), textureLoad(v_tex, at));
    m4[q] = s.m;
    v4[q] = s.v;
    param4[q] = s.p;
}

// state_a = momentum buffer (PyTorch's convention: buf = momentum * buf + g; p -= lr * buf).
@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= sgd_p.n) {
        return;
    }
    let g = grad[i] + sgd_p.weight_decay * param[i];
    let buf = sgd_p.momentum * state_a[i] + g;
    state_a[i] = buf;
    param[i] = param[i] - sgd_p.lr * buf;
}

// state_a = running mean of squared gradients.
@compute @workgroup_size(WG)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= rms_p.n) {
        return;
    }
    let g = grad[i];
    let sq = rms_p.alpha * state_a[i] + (1.0 - rms_p.alpha) * g * g;
    state_a[i] = sq;
    param[i] = param[i] - rms_p.lr * g / (sqrt(sq) + rms_p.eps);
}

// WGAN's weight clipping.
@compute @workgroup_size(WG)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i < clip_p.n) {
        clipped[i] = clamp(clipped[i], clip_p.low, clip_p.high);
    }
}
