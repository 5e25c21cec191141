// Data movement: one strided gather covers permute, expand (stride 0), slice (offset) and zero
// padding (a window per axis); reflection padding has its own pair, since its gradient folds
// several output positions back onto one input.

struct GatherParams {
    n: u32,
    rank: u32,
    offset: u32,
    // Elements of a line one invocation copies: llvmpipe ends an invocation's loops after 65535
    // steps in all, so long lines are split into chunks.
    chunk: u32,
    // Rows of src's flat texture copy hold 2^src_shift texels; it is read instead of storage when FROM_TEXTURE
    // (llvmpipe fetches a texel for all lanes at once but loads storage lane by lane; see unary.wgsl).
    src_shift: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    shape: array<vec4<u32>, 2>,
    strides: array<vec4<u32>, 2>,
    // Output coordinate c along axis d reads input coordinate c - lead[d], or zero when that
    // falls outside [0, extent[d]); a negative lead slices.
    lead: array<vec4<i32>, 2>,
    extent: array<vec4<u32>, 2>,
}

struct FillParams {
    n: u32,
    value: f32,
    _pad0: u32,
    _pad1: u32,
}

struct ReflectParams {
    planes: u32,
    h: u32,
    w: u32,
    top: u32,
    left: u32,
    oh: u32,
    ow: u32,
    _pad: u32,
}

struct TransposeParams {
    batch: u32,
    rows: u32,
    cols: u32,
    src_shift: u32,
}

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(0) var<uniform> tp: TransposeParams;
@group(0) @binding(0) var<uniform> fp: FillParams;
@group(0) @binding(0) var<uniform> rp: ReflectParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(1) var<storage, read_write> fill_dst: array<f32>;
// gather4: the same buffers as vec4s.
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

@group(0) @binding(3) var src_tex: texture_storage_2d<rgba32float, read>;

override WG: u32 = 256u;
override FROM_TEXTURE: bool = false;

fn src_value(i: u32) -> f32 {
    if (FROM_TEXTURE) {
        let q = i / 4u;
        return textureLoad(src_tex, vec2<u32>(q & ((1u << gp.src_shift) - 1u), q >> gp.src_shift))[i % 4u];
    }
    return src[i];
}

fn src_vec4(q: u32) -> vec4<f32> {
    return src_vec4_in_rows(q, gp.src_shift);
}

// vec4 q of src, from its flat texture copy (rows of 2^shift texels) when FROM_TEXTURE.
fn src_vec4_in_rows(q: u32, shift: u32) -> vec4<f32> {
    if (FROM_TEXTURE) {
        return textureLoad(src_tex, vec2<u32>(q & ((1u << shift) - 1u), q >> shift));
    }
    return src4[q];
}

fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG;
}

// Where output line `line` reads from (every axis but the last), and whether it is inside the
// source window at all.
struct LineSource {
    idx: i32,
    inside: bool,
}

fn line_source(line: u32) -> LineSource {
    var rem = line;
    var idx = i32(gp.offset);
    var inside = true;
    for (var d = i32(gp.rank) - 2; d >= 0; d = d - 1) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let c = rem % gp.shape[q][r];
        rem = rem / gp.shape[q][r];
        let t = i32(c) - gp.lead[q][r];
        inside = inside & (t >= 0) & (u32(t) < gp.extent[q][r]);
        idx = idx + t * i32(gp.strides[q][r]);
    }
    return LineSource(idx, inside);
}

// Invocation id -> (output line, first element of its chunk): one invocation per chunk of a
// line along the last axis, so the per-axis divisions (scalar code on llvmpipe) are paid once
// per chunk, not once per element. `ok` is false past the last line.
struct Chunk {
    line: u32,
    c0: u32,
    len: u32,
    ok: bool,
}

fn chunk_of(id: u32) -> Chunk {
    let last = gp.rank - 1u;
    let len = gp.shape[last / 4u][last % 4u];
    let chunks = (len + gp.chunk - 1u) / gp.chunk;
    let line = id / chunks;
    return Chunk(line, (id % chunks) * gp.chunk, len, line * len < gp.n);
}

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let ch = chunk_of(linear_id(gid, groups));
    if (!ch.ok) {
        return;
    }
    let source = line_source(ch.line);
    let last = gp.rank - 1u;
    let stride = i32(gp.strides[last / 4u][last % 4u]);
    let lead = gp.lead[last / 4u][last % 4u];
    let extent = gp.extent[last / 4u][last % 4u];
    let base = ch.line * ch.len;
    for (var c = ch.c0; c < min(ch.c0 + gp.chunk, ch.len); c = c + 1u) {
        let t = i32(c) - lead;
        let ok = source.inside & (t >= 0) & (u32(t) < extent);
        dst[base + c] = select(0.0, src_value(u32(select(0, source.idx + t * stride, ok))), ok);
    }
}

// gather when the last axis is a plain copy (stride 1, no window on it) and lines, strides and
// the offset are multiples of 4: four values per load and store (fewer storage accesses, each a
// loop over the lanes on llvmpipe).
@compute @workgroup_size(WG)
fn gather4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let ch = chunk_of(linear_id(gid, groups));
    if (!ch.ok) {
        return;
    }
    let source = line_source(ch.line);
    let first = u32(select(0, source.idx, source.inside)) / 4u;
    let base = ch.line * ch.len / 4u;
    for (var c = ch.c0 / 4u; c < min(ch.c0 + gp.chunk, ch.len) / 4u; c = c + 1u) {
        dst4[base + c] = select(vec4<f32>(0.0), src_vec4(first + c), source.inside);
    }
}

// Batched transpose [batch, rows, cols] -> [batch, cols, rows] when rows and cols are
// multiples of 4: one invocation per 4x4 block, four vec4 loads and four vec4 stores, where
// the strided gather reads one value per invocation (its per-invocation cost dominates).
// Neighbouring lanes take neighbouring blocks along a row, so their texel fetches are adjacent.
@compute @workgroup_size(WG)
fn transpose4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    let col_quads = tp.cols / 4u;
    let row_quads = tp.rows / 4u;
    if (i >= tp.batch * row_quads * col_quads) {
        return;
    }
    let line = i / col_quads;
    let cq = i - line * col_quads;
    let b = line / row_quads;
    let rq = line - b * row_quads;
    let src_row = (b * tp.rows + 4u * rq) * col_quads + cq;
    let v0 = transpose_src(src_row);
    let v1 = transpose_src(src_row + col_quads);
    let v2 = transpose_src(src_row + 2u * col_quads);
    let v3 = transpose_src(src_row + 3u * col_quads);
    let dst_row = (b * tp.cols + 4u * cq) * row_quads + rq;
    dst4[dst_row] = vec4<f32>(v0.x, v1.x, v2.x, v3.x);
    dst4[dst_row + row_quads] = vec4<f32>(v0.y, v1.y, v2.y, v3.y);
    dst4[dst_row + 2u * row_quads] = vec4<f32>(v0.z, v1.z, v2.z, v3.z);
    dst4[dst_row + 3u * row_quads] = vec4<f32>(v0.w, v1.w, v2.w, v3.w);
}

fn transpose_src(q: u32) -> vec4<f32> {
    return src_vec4_in_rows(q, tp.src_shift);
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i < fp.n) {
        fill_dst[i] = fp.value;
    }
}

fn reflect_index(t: i32, size: i32) -> i32 {
    if (t < 0) {
        return -t;
    }
    if (t >= size) {
        return 2 * (size - 1) - t;
    }
    return t;
}

// dst [planes, oh, ow] from src [planes, h, w], mirrored at the edges without repeating them.
@compute @workgroup_size(WG)
fn reflect_pad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= rp.planes * rp.oh * rp.ow) {
        return;
    }
    let plane = i / (rp.oh * rp.ow);
    let s = i % (rp.oh * rp.ow);
    let iy = reflect_index(i32(s / rp.ow) - i32(rp.top), i32(rp.h));
    let ix = reflect_index(i32(s % rp.ow) - i32(rp.left), i32(rp.w));
    dst[i] = src[plane * rp.h * rp.w + u32(iy) * rp.w + u32(ix)];
}

// The adjoint: dst [planes, h, w] sums the src [planes, oh, ow] positions that read each input.
// Along one axis at most three padded coordinates map to an input coordinate: itself and its
// mirror images across either edge.
@compute @workgroup_size(WG)
fn reflect_pad_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= rp.planes * rp.h * rp.w) {
        return;
    }
    let plane = i / (rp.h * rp.w);
    let s = i % (rp.h * rp.w);
    let iy = i32(s / rp.w);
    let ix = i32(s % rp.w);
    let h = i32(rp.h);
    let w = i32(rp.w);
    let ty = vec3<i32>(iy, -iy, 2 * (h - 1) - iy) + vec3<i32>(i32(rp.top));
    let tx = vec3<i32>(ix, -ix, 2 * (w - 1) - ix) + vec3<i32>(i32(rp.left));
    // The mirror images coincide with the position itself on the edge rows and columns.
    let y_ok = vec3<bool>(true, iy != 0, iy != h - 1);
    let x_ok = vec3<bool>(true, ix != 0, ix != w - 1);
    var acc = 0.0;
    for (var a = 0u; a < 3u; a = a + 1u) {
        let oy = ty[a];
        if (!y_ok[a] | (oy < 0) | (oy >= i32(rp.oh))) {
            continue;
        }
        for (var b = 0u; b < 3u; b = b + 1u) {
            let ox = tx[b];
            if (!x_ok[b] | (ox < 0) | (ox >= i32(rp.ow))) {
                continue;
            }
            acc = acc + src[plane * rp.oh * rp.ow + u32(oy) * rp.ow + u32(ox)];
        }
    }
    dst[i] = acc;
}
