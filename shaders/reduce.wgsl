// Sum or max over a set of axes. The host splits the input's axes into kept ones (one output
// element per combination) and reduced ones, each with its input stride.
// `rows`: one invocation per output, for many short reductions.
// `wide`: one workgroup per output with a tree in workgroup memory, for few long reductions.
// `rows4` and `wide4` are the same with vec4 accesses where the host finds runs of four
// (fewer storage accesses, each a loop over the lanes on llvmpipe).

struct Params {
    n_out: u32,
    n_reduce: u32,
    kept_rank: u32,
    reduced_rank: u32,
    op: u32,
    // Rows of x's flat texture copy hold 2^x_shift texels; it is read instead of storage when FROM_TEXTURE
    // (llvmpipe fetches a texel for all lanes at once but loads storage lane by lane; see unary.wgsl).
    x_shift: u32,
    _pad1: u32,
    _pad2: u32,
    kept_shape: array<vec4<u32>, 2>,
    kept_strides: array<vec4<u32>, 2>,
    reduced_shape: array<vec4<u32>, 2>,
    reduced_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// The same buffers as vec4s, for the entry points that read or write four values at once.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

@group(0) @binding(3) var x_tex: texture_storage_2d<rgba32float, read>;

override WG: u32 = 256u;
override FROM_TEXTURE: bool = false;
// Lanes per output in `wide` (a power of two): fewer lanes means fewer barrier rounds, which
// llvmpipe runs as switches between the lanes' coroutines (64 measured 40% faster than 256 on
// layer norm's sums). The host picks more for reductions that would pass the loop budget.
override WIDE: u32 = 64u;

fn x_value(i: u32) -> f32 {
    if (FROM_TEXTURE) {
        let q = i / 4u;
        return textureLoad(x_tex, vec2<u32>(q & ((1u << p.x_shift) - 1u), q >> p.x_shift))[i % 4u];
    }
    return x[i];
}

fn x_vec4(q: u32) -> vec4<f32> {
    if (FROM_TEXTURE) {
        return textureLoad(x_tex, vec2<u32>(q & ((1u << p.x_shift) - 1u), q >> p.x_shift));
    }
    return x4[q];
}
var<workgroup> partial: array<f32, WIDE>;

fn kept_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var d = i32(p.kept_rank) - 1; d >= 0; d = d - 1) {
        let e = p.kept_shape[u32(d) / 4u][u32(d) % 4u];
        off = off + (rem % e) * p.kept_strides[u32(d) / 4u][u32(d) % 4u];
        rem = rem / e;
    }
    return off;
}

// Rank 1 skips the loop: llvmpipe's budget of 65535 loop steps per invocation counts the
// steps of every loop, this one's included (the host sizes reductions to fit; see reduce()).
fn reduced_offset(j: u32) -> u32 {
    if (p.reduced_rank == 1u) {
        return j * p.reduced_strides[0][0];
    }
    var rem = j;
    var off = 0u;
    for (var d = i32(p.reduced_rank) - 1; d >= 0; d = d - 1) {
        let e = p.reduced_shape[u32(d) / 4u][u32(d) % 4u];
        off = off + (rem % e) * p.reduced_strides[u32(d) / 4u][u32(d) % 4u];
        rem = rem / e;
    }
    return off;
}

// combine() sums for every code but REDUCE_MAX; the start value alone tells the codes apart,
// so a code without its case sums from NaN: a loud result, never a silent sum.
fn identity() -> f32 {
    if (p.op == REDUCE_MAX) {
        return bitcast<f32>(0xff7fffffu); // -f32::MAX: its decimal form rounds past the range, which Tint refuses
    }
    if (p.op == REDUCE_SUM) {
        return 0.0;
    }
    return quiet_nan();
}

fn combine(acc: f32, v: f32) -> f32 {
    if (p.op == REDUCE_MAX) {
        return max(acc, v);
    }
    return acc + v;
}

@compute @workgroup_size(WG)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * WG;
    if (o >= p.n_out) {
        return;
    }
    let base = kept_offset(o);
    var acc = identity();
    for (var j = 0u; j < p.n_reduce; j = j + 1u) {
        acc = combine(acc, x_value(base + reduced_offset(j)));
    }
    y[o] = acc;
}

fn combine4(acc: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    if (p.op == REDUCE_MAX) {
        return max(acc, v);
    }
    return acc + v;
}

// Four neighbouring outputs per invocation: the kept axes end in a stride-1 axis of a multiple
// of 4 outputs, and every other stride is a multiple of 4.
@compute @workgroup_size(WG)
fn rows4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * WG;
    if (4u * o >= p.n_out) {
        return;
    }
    let base = kept_offset(4u * o);
    var acc = vec4<f32>(identity());
    for (var j = 0u; j < p.n_reduce; j = j + 1u) {
        acc = combine4(acc, x_vec4((base + reduced_offset(j)) / 4u));
    }
    y4[o] = acc;
}

@compute @workgroup_size(WIDE)
fn wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let o = wid.x + wid.y * groups.x;
    // Every invocation of the workgroup must reach the barriers, so no early return here.
    let in_range = o < p.n_out;
    var acc = identity();
    if (in_range) {
        let base = kept_offset(o);
        for (var j = lid; j < p.n_reduce; j = j + WIDE) {
            acc = combine(acc, x_value(base + reduced_offset(j)));
        }
    }
    partial[lid] = acc;
    store_tree(o, in_range, lid);
}

// `wide` for reductions whose innermost reduced axis is stride 1 with a multiple of 4 values
// (every other stride a multiple of 4): each invocation reads vec4s, then folds their lanes.
@compute @workgroup_size(WIDE)
fn wide4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
         @builtin(num_workgroups) groups: vec3<u32>) {
    let o = wid.x + wid.y * groups.x;
    let in_range = o < p.n_out;
    var acc4 = vec4<f32>(identity());
    if (in_range) {
        let base = kept_offset(o);
        for (var j = lid; j < p.n_reduce / 4u; j = j + WIDE) {
            acc4 = combine4(acc4, x_vec4((base + reduced_offset(4u * j)) / 4u));
        }
    }
    partial[lid] = combine(combine(acc4.x, acc4.y), combine(acc4.z, acc4.w));
    store_tree(o, in_range, lid);
}

// Folds the workgroup's partial results into partial[0] and stores it as output o. Every
// invocation of the workgroup must call this (it holds barriers).
fn store_tree(o: u32, in_range: bool, lid: u32) {
    workgroupBarrier();
    for (var stride = WIDE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = combine(partial[lid], partial[lid + stride]);
        }
        workgroupBarrier();
    }
    if (in_range & (lid == 0u)) {
        y[o] = partial[0];
    }
}
