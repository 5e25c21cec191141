// The elementwise terms of a loss and their gradient with respect to the prediction, in one
// pass ("loss + its gradient"): terms[i] = l(x[i], t[i]) and grad[i] = dl/dx at the same
// point, which the first-order backward scales by the upstream gradient with no further math.
// The mean over the terms is a separate reduction (reduce.wgsl). KIND (a LossKind code):
//   BCE with logits  l = softplus(x) - x t    dl/dx = sigmoid(x) - t
//   squared error    l = (x - t)^2            dl/dx = 2 (x - t)
//   absolute error   l = |x - t|              dl/dx = sign(x - t)
// Written to stay finite for any logits: softplus as max(x, 0) + log(1 + e^-|x|), sigmoid
// through e^-|x| (as unary.wgsl does).

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override KIND: u32 = LOSS_BCE_WITH_LOGITS;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> terms: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(WG)
fn terms_and_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    let target_value = t[i];
    if (KIND == LOSS_BCE_WITH_LOGITS) {
        let e = exp(-abs(v));
        terms[i] = max(v, 0.0) + log(1.0 + e) - v * target_value;
        grad[i] = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0) - target_value;
    } else if (KIND == LOSS_SQUARED_ERROR) {
        let d = v - target_value;
        terms[i] = d * d;
        grad[i] = 2.0 * d;
    } else if (KIND == LOSS_ABSOLUTE_ERROR) {
        let d = v - target_value;
        terms[i] = abs(d);
        grad[i] = sign(d);
    } else {
        // Only a code without its case gets here: NaN, never a silent loss of zero.
        terms[i] = quiet_nan();
        grad[i] = quiet_nan();
    }
}
