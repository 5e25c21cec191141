// Sum or max over a set of axes. The host splits the input's axes into kept ones (one output
// element per combination) and reduced ones, each with its input stride.
// `rows`: one invocation per output, for many short reductions.
// `wide`: one workgroup per output with a tree in workgroup memory, for few long reductions.

struct Params {
    n_out: u32,
    n_reduce: u32,
    kept_rank: u32,
    reduced_rank: u32,
    op: u32,
    _pad0: u32,
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

override WG: u32 = 256u;
const WIDE: u32 = 256u;
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

fn reduced_offset(j: u32) -> u32 {
    var rem = j;
    var off = 0u;
    for (var d = i32(p.reduced_rank) - 1; d >= 0; d = d - 1) {
        let e = p.reduced_shape[u32(d) / 4u][u32(d) % 4u];
        off = off + (rem % e) * p.reduced_strides[u32(d) / 4u][u32(d) % 4u];
        rem = rem / e;
    }
    return off;
}

fn identity() -> f32 {
    if (p.op == 1u) {
        return -3.4028235e38;
    }
    return 0.0;
}

fn combine(acc: f32, v: f32) -> f32 {
    if (p.op == 1u) {
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
    if (p.reduced_rank == 1u) {
        let s = p.reduced_strides[0][0];
        for (var j = 0u; j < p.n_reduce; j = j + 1u) {
            acc = combine(acc, x[base + j * s]);
        }
    } else {
        for (var j = 0u; j < p.n_reduce; j = j + 1u) {
            acc = combine(acc, x[base + reduced_offset(j)]);
        }
    }
    y[o] = acc;
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
        if (p.reduced_rank == 1u) {
            let s = p.reduced_strides[0][0];
            for (var j = lid; j < p.n_reduce; j = j + WIDE) {
                acc = combine(acc, x[base + j * s]);
            }
        } else {
            for (var j = lid; j < p.n_reduce; j = j + WIDE) {
                acc = combine(acc, x[base + reduced_offset(j)]);
            }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WIDE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = combine(partial[lid], partial[lid + stride]);
        }
        workgroupBarrier();
    }
    if (in_range && lid == 0u) {
        y[o] = partial[0];
    }
}
