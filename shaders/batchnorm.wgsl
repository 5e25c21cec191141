// Normalisation over x [batch, channels, spatial] with per-channel statistics, fused: a workgroup
// per channel reduces, a flat pass applies. `stats` is [2, channels]: mean, then biased variance.
//   batch_stats     x -> stats, and running_mean/var <- (1-m)*running + m*(mean, unbiased var)
//   forward         x, stats, gamma, beta -> y = (x - mean) / sqrt(var + eps) * gamma + beta,
//                   then max(y, slope * y) (a fused ReLU or leaky ReLU; slope 1: none)
//   backward_stats  x, stats, dy, gamma, beta -> grad_stats [2, channels]: sum(g), sum(g * x_hat)
//   backward        x, stats, gamma, dy, grad_stats, beta -> dx
// where g is dy through the fused activation: dy where the normalised value is positive, slope
// * dy elsewhere (the mask recomputed from x, stats, gamma and beta as the forward pass formed
// it, so no pass of its own and no saved output is needed).
//   stats and flat passes: one entry point each, plus `_serial` (one invocation per channel)
//   and `4` (vec4s) variants.
// Batch norm is this layout directly; instance norm is [1, N*C, HW], layer norm [1, N, rest].
// First order: for a gradient of a gradient the autodiff layer uses the composite formula.

struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    update_running: u32,
    eps: f32,
    momentum: f32,
    // Rows of the flat texture copies of x and dy hold 2^x_shift and 2^dy_shift texels.
    x_shift: u32,
    dy_shift: u32,
    // forward and forward4 apply max(y, slope * y), a fused (leaky) ReLU; slope 1 is the
    // identity, so no branch on a uniform value is needed (see unary.wgsl).
    slope: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// stats: x -> stats, running_mean, running_var
@group(0) @binding(2) var<storage, read_write> stats_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;
// forward: x, stats, gamma, beta -> y
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
// backward_stats: x, stats, dy, gamma, beta -> grad_stats
@group(0) @binding(3) var<storage, read> dy_for_stats: array<f32>;
@group(0) @binding(4) var<storage, read> gamma_for_stats: array<f32>;
@group(0) @binding(5) var<storage, read> beta_for_stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_stats_out: array<f32>;
// backward: x, stats, gamma, dy, grad_stats, beta -> dx
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> grad_stats: array<f32>;
@group(0) @binding(6) var<storage, read> beta_for_backward: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
// forward4 and backward4: the same buffers as vec4s where a plane holds a multiple of 4 values
// (four neighbours share a channel: one set of per-channel loads serves four values).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dy4_stats: array<vec4<f32>>;

// The vec4 entry points read x and dy from flat texture copies (`Gpu::flat_texture`) when
// X_TEXTURE / DY_TEXTURE: llvmpipe fetches a texel for all lanes at once but loads storage lane
// by lane (see unary.wgsl). Otherwise 1x1 placeholders are bound.
@group(0) @binding(8) var x_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(9) var dy_tex: texture_storage_2d<rgba32float, read>;

const WIDE: u32 = 256u;
override WG: u32 = 256u;
override X_TEXTURE: bool = false;
override DY_TEXTURE: bool = false;
// forward4 and backward4: vec4s per invocation, all of one channel (the host checks that a
// plane holds a multiple of 4 * RUN values). The channel's statistics and affine parameters are
// storage loads, each a loop over the lanes on llvmpipe: one set of them then serves 4 * RUN
// values.
override RUN: u32 = 1u;

fn x_vec4(q: u32) -> vec4<f32> {
    if (X_TEXTURE) {
        return textureLoad(x_tex, vec2<u32>(q & ((1u << p.x_shift) - 1u), q >> p.x_shift));
    }
    return x4[q];
}

fn dy_vec4(q: u32) -> vec4<f32> {
    if (DY_TEXTURE) {
        return textureLoad(dy_tex, vec2<u32>(q & ((1u << p.dy_shift) - 1u), q >> p.dy_shift));
    }
    return dy4[q];
}
var<workgroup> part_a: array<f32, WIDE>;
var<workgroup> part_b: array<f32, WIDE>;

fn at(c: u32, j: u32) -> u32 {
    // j runs over the batch * spatial entries of channel c.
    return ((j / p.spatial) * p.channels + c) * p.spatial + j % p.spatial;
}

fn tree_sum(lid: u32) {
    for (var stride = WIDE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            part_a[lid] = part_a[lid] + part_a[lid + stride];
            part_b[lid] = part_b[lid] + part_b[lid + stride];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WIDE)
fn batch_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let count = p.batch * p.spatial;
    var s = 0.0;
    for (var j = lid; j < count; j = j + WIDE) {
        s = s + x[at(c, j)];
    }
    part_a[lid] = s;
    part_b[lid] = 0.0;
    workgroupBarrier();
    tree_sum(lid);
    let mean = part_a[0] / f32(count);
    workgroupBarrier();
    // Two passes (mean first) keep the variance accurate when |mean| >> std.
    var q = 0.0;
    for (var j = lid; j < count; j = j + WIDE) {
        let d = x[at(c, j)] - mean;
        q = q + d * d;
    }
    part_a[lid] = q;
    part_b[lid] = 0.0;
    workgroupBarrier();
    tree_sum(lid);
    if (lid == 0u) {
        store_stats(c, mean, part_a[0] / f32(count), count);
    }
}

// stats <- (mean, biased variance) of group c; the running statistics follow when asked.
fn store_stats(c: u32, mean: f32, var_biased: f32, count: u32) {
    stats_out[c] = mean;
    stats_out[p.channels + c] = var_biased;
    if (p.update_running != 0u) {
        let unbiased = var_biased * f32(count) / f32(max(count, 2u) - 1u);
        running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * mean;
        running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * unbiased;
    }
}

// Channel c's values, loaded once per invocation (storage loads are loops over the lanes):
// `means` is (mean(g), mean(g * x_hat)) in the backward pass (unused forward).
//   forward   y = (x - mean) * inv_std * gamma + beta, then max(y, slope * y)
//   backward  dx = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
struct Channel {
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
    means: vec2<f32>,
}

fn forward_channel(c: u32) -> Channel {
    return Channel(stats[c], inverseSqrt(stats[p.channels + c] + p.eps), gamma[c], beta[c], vec2<f32>(0.0));
}

fn backward_channel(c: u32) -> Channel {
    let count = f32(p.batch * p.spatial);
    let means = vec2<f32>(grad_stats[c], grad_stats[p.channels + c]) / count;
    return Channel(stats[c], inverseSqrt(stats[p.channels + c] + p.eps), gamma[c], beta_for_backward[c], means);
}

fn stats_channel(c: u32) -> Channel {
    return Channel(stats[c], inverseSqrt(stats[p.channels + c] + p.eps), gamma_for_stats[c], beta_for_stats[c],
                   vec2<f32>(0.0));
}

// The normalised value before the activation (the same arithmetic in both directions, so the
// backward pass sees the forward pass's signs exactly).
fn affine(ch: Channel, v: vec4<f32>) -> vec4<f32> {
    return (v - ch.mean) * (ch.inv_std * ch.gamma) + ch.beta;
}

fn normalize(ch: Channel, v: vec4<f32>) -> vec4<f32> {
    let y = affine(ch, v);
    return max(y, p.slope * y);
}

// dy through the fused activation: the slope where the normalised value is not positive (the
// forward pass's max(y, slope * y) picks slope * y there; slope 1 leaves dy as it is).
fn through_activation(ch: Channel, v: vec4<f32>, dy: vec4<f32>) -> vec4<f32> {
    return select(p.slope * dy, dy, affine(ch, v) > vec4<f32>(0.0));
}

fn input_grad(ch: Channel, v: vec4<f32>, dy: vec4<f32>) -> vec4<f32> {
    let g = through_activation(ch, v, dy);
    let x_hat = (v - ch.mean) * ch.inv_std;
    return ch.gamma * ch.inv_std * (g - ch.means.x - x_hat * ch.means.y);
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.batch * p.channels * p.spatial) {
        return;
    }
    y[i] = normalize(forward_channel((i / p.spatial) % p.channels), vec4<f32>(x[i])).x;
}

@compute @workgroup_size(WG)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = RUN * (gid.x + gid.y * groups.x * WG);
    if (4u * first >= p.batch * p.channels * p.spatial) {
        return;
    }
    let c = (4u * first / p.spatial) % p.channels;
    let ch = forward_channel(c);
    for (var q = first; q < first + RUN; q = q + 1u) {
        y4[q] = normalize(ch, x_vec4(q));
    }
}

@compute @workgroup_size(WIDE)
fn backward_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let count = p.batch * p.spatial;
    let ch = stats_channel(c);
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = lid; j < count; j = j + WIDE) {
        let k = at(c, j);
        let g = through_activation(ch, vec4<f32>(x[k]), vec4<f32>(dy_for_stats[k])).x;
        sg = sg + g;
        sgx = sgx + g * (x[k] - ch.mean) * ch.inv_std;
    }
    part_a[lid] = sg;
    part_b[lid] = sgx;
    workgroupBarrier();
    tree_sum(lid);
    if (lid == 0u) {
        grad_stats_out[c] = part_a[0];
        grad_stats_out[p.channels + c] = part_b[0];
    }
}

// dx = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.batch * p.channels * p.spatial) {
        return;
    }
    dx[i] = input_grad(backward_channel((i / p.spatial) % p.channels), vec4<f32>(x[i]), vec4<f32>(dy[i])).x;
}

@compute @workgroup_size(WG)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = RUN * (gid.x + gid.y * groups.x * WG);
    if (4u * first >= p.batch * p.channels * p.spatial) {
        return;
    }
    let c = (4u * first / p.spatial) % p.channels;
    let ch = backward_channel(c);
    for (var q = first; q < first + RUN; q = q + 1u) {
        dx4[q] = input_grad(ch, x_vec4(q), dy_vec4(q));
    }
}

// Small groups (instance norm over an 8x8 plane, say): one invocation per group, serially.
// A 256-wide workgroup with a barrier tree per group costs far more than it saves there,
// on lavapipe most of all (barriers switch between coroutines).
@compute @workgroup_size(WG)
fn batch_stats_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = gid.x + gid.y * groups.x * WG;
    if (c >= p.channels) {
        return;
    }
    let count = p.batch * p.spatial;
    var s = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        s = s + x[at(c, j)];
    }
    let mean = s / f32(count);
    var q = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        let d = x[at(c, j)] - mean;
        q = q + d * d;
    }
    store_stats(c, mean, q / f32(count), count);
}

@compute @workgroup_size(WG)
fn backward_stats_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = gid.x + gid.y * groups.x * WG;
    if (c >= p.channels) {
        return;
    }
    let count = p.batch * p.spatial;
    let ch = stats_channel(c);
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        let k = at(c, j);
        let g = through_activation(ch, vec4<f32>(x[k]), vec4<f32>(dy_for_stats[k])).x;
        sg = sg + g;
        sgx = sgx + g * (x[k] - ch.mean) * ch.inv_std;
    }
    grad_stats_out[c] = sg;
    grad_stats_out[p.channels + c] = sgx;
}

// The serial statistics when planes hold a multiple of 4 values: vec4 reads, image by image,
// with no per-value index division (scalar code on llvmpipe). Used up to the loop budget
// (llvmpipe stops an invocation after 65535 loop steps in all), checked by the host.
@compute @workgroup_size(WG)
fn batch_stats_serial4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = gid.x + gid.y * groups.x * WG;
    if (c >= p.channels) {
        return;
    }
    // One pass over values shifted by the channel's first one: var = E[d^2] - E[d]^2 with
    // d = x - x_0. The shift keeps the difference accurate when |mean| >> std (x_0 is a
    // sample, a few deviations from the mean), as a second pass around the mean would, at
    // half the reads.
    let quads = p.spatial / 4u;
    let shift = x_vec4(c * quads).x;
    var s = vec4<f32>(0.0);
    var sq = vec4<f32>(0.0);
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let base = (n * p.channels + c) * quads;
        for (var q = 0u; q < quads; q = q + 1u) {
            let d = x_vec4(base + q) - shift;
            s = s + d;
            sq = sq + d * d;
        }
    }
    let count = f32(p.batch * p.spatial);
    let mean_d = (s.x + s.y + s.z + s.w) / count;
    let var_biased = max((sq.x + sq.y + sq.z + sq.w) / count - mean_d * mean_d, 0.0);
    store_stats(c, shift + mean_d, var_biased, p.batch * p.spatial);
}

@compute @workgroup_size(WG)
fn backward_stats_serial4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = gid.x + gid.y * groups.x * WG;
    if (c >= p.channels) {
        return;
    }
    let quads = p.spatial / 4u;
    let ch = stats_channel(c);
    var sg = vec4<f32>(0.0);
    var sgx = vec4<f32>(0.0);
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let base = (n * p.channels + c) * quads;
        for (var q = 0u; q < quads; q = q + 1u) {
            let v = x_vec4(base + q);
            let g = through_activation(ch, v, dy4_for_stats(base + q));
            sg = sg + g;
            sgx = sgx + g * (v - ch.mean) * ch.inv_std;
        }
    }
    grad_stats_out[c] = sg.x + sg.y + sg.z + sg.w;
    grad_stats_out[p.channels + c] = sgx.x + sgx.y + sgx.z + sgx.w;
}

// dy_vec4 for backward_stats_serial4, where dy sits at binding 3 (an entry point binds each
// buffer under one name only).
fn dy4_for_stats(q: u32) -> vec4<f32> {
    if (DY_TEXTURE) {
        return textureLoad(dy_tex, vec2<u32>(q & ((1u << p.dy_shift) - 1u), q >> p.dy_shift));
    }
    return dy4_stats[q];
}
