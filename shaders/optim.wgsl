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
    let g = grad[i] + adam_p.weight_decay * param[i];
    let m = adam_p.beta1 * state_a[i] + (1.0 - adam_p.beta1) * g;
    let v = adam_p.beta2 * state_b[i] + (1.0 - adam_p.beta2) * g * g;
    state_a[i] = m;
    state_b[i] = v;
    let m_hat = m * adam_p.correction1;
    let v_hat = v * adam_p.correction2;
    param[i] = param[i] - adam_p.lr * m_hat / (sqrt(v_hat) + adam_p.eps);
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
