// 2-d convolution lowered onto the matmul kernel (matmul.wgsl), which is the fastest code path
// on lavapipe. Shapes (NCHW):
//   x [batch, c_in, h, w], weight [c_out, c_in, kh, kw], y [batch, c_out, oh, ow],
//   oh = (h + 2*pad - kh) / stride + 1.
// The patch matrix `cols` is [c_in*kh*kw, batch*oh*ow]: row (ci, ky, kx), column (n, oy, ox).
//   forward:          y    = W · cols                 (then [c_out, batch, ...] -> NCHW)
//   backward_weight:  dW   = dy · cols^T, computed as (cols · dy_rows)^T with dy_rows
//                     [batch*oh*ow, c_out] where c_out allows (src/tensor/kernels.rs)
//   backward_input:   dcols = W^T · dy, dx = col2im(dcols)   (= transposed conv's forward)
// `im2col` builds cols from x; `col2im` is its adjoint, summing every patch entry that read a
// pixel back onto it. Where the kernel covers the whole image, cols is x transposed and the
// host skips im2col. The `_runs` entry points serve strides 1 and 2 from texture copies; the
// others serve every geometry.

struct Params {
    batch: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;
@group(0) @binding(1) var<storage, read> dcols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
// col2im4: dx as vec4s, when rows hold a multiple of 4 pixels.
@group(0) @binding(2) var<storage, read_write> dx4: array<vec4<f32>>;
// im2col4: cols as vec4s, when output rows hold a multiple of 4 patches.
@group(0) @binding(2) var<storage, read_write> cols4: array<vec4<f32>>;

// im2col4 and col2im read their input through a texture copy (x_tex: texel row = one image
// plane; dcols_tex: texel row = one row of dcols) when FROM_TEXTURE: llvmpipe fetches a texel
// for all lanes at once but reads storage lane by lane (see src/gpu/texture.rs). Otherwise a 1x1
// placeholder is bound.
@group(0) @binding(3) var x_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var dcols_tex: texture_storage_2d<rgba32float, read>;
// im2col_runs and col2im_runs read their input only from its texture (x's planes, dcols' rows)
// and write cols / dx as vec4s: no storage input, so the output takes binding 1.
@group(0) @binding(1) var<storage, read_write> runs_out: array<vec4<f32>>;
@group(0) @binding(2) var runs_in: texture_storage_2d<rgba32float, read>;

// (`quot`, exact f32-based division, comes from index_math.wgsl, which the registry appends.)

// Floats 4q + shift .. 4q + shift + 3 of a line from its texels q (t0) and q + 1 (t1).
fn run_of_four(t0: vec4<f32>, t1: vec4<f32>, shift: i32) -> vec4<f32> {
    var v = select(vec4<f32>(t0.w, t1.xyz), vec4<f32>(t0.zw, t1.xy), shift == 2);
    v = select(v, vec4<f32>(t0.yzw, t1.x), shift == 1);
    return select(v, t0, shift == 0);
}

override WG: u32 = 256u;
override FROM_TEXTURE: bool = false;
// im2col_runs and col2im_runs: the stride (1 or 2), which fixes which floats of the texels
// they fetch make up a vec4 of patches (im2col_runs) or pixels (col2im_runs).
override STRIDE: u32 = 1u;

// Float `i` of line `row` of a texture copy whose texel (x, y) holds floats 4x..4x+3 of line y.
fn line_value(t: texture_storage_2d<rgba32float, read>, row: u32, i: u32) -> f32 {
    return textureLoad(t, vec2<u32>(i / 4u, row))[i & 3u];
}

// What one im2col invocation writes: a line of `ow` patch entries starting at `dst`, read from
// row `src_row` of x from column `ix0` in steps of the stride, or zeros when `inside` is false
// (the line reads padding).
struct PatchLine {
    dst: u32,
    src_row: u32,
    ix0: i32,
    inside: bool,
    // The same row as an image plane and the offset of the row in it (for x_tex).
    plane: u32,
    plane_row: u32,
}

// Invocation i -> (patch row, image, output row): the integer divisions (which llvmpipe cannot
// vectorise) happen once per line of `ow` outputs instead of once per element.
fn patch_line(i: u32) -> PatchLine {
    let ksize = p.kh * p.kw;
    let lines = p.batch * p.oh;
    let row = i / lines;
    let line = i % lines;
    let ci = row / ksize;
    let ky = (row % ksize) / p.kw;
    let kx = row % p.kw;
    let n = line / p.oh;
    let oy = line % p.oh;
    let width = p.batch * p.oh * p.ow;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let inside = (iy >= 0) & (iy < i32(p.h));
    let plane = n * p.c_in + ci;
    let plane_row = u32(select(0, iy, inside)) * p.w;
    let src_row = plane * p.h * p.w + plane_row;
    return PatchLine(row * width + line * p.ow, src_row, i32(kx) - i32(p.pad), inside, plane, plane_row);
}

@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.c_in * p.kh * p.kw * p.batch * p.oh) {
        return;
    }
    let l = patch_line(i);
    var ix = l.ix0;
    for (var ox = 0u; ox < p.ow; ox = ox + 1u) {
        let ok = l.inside & (ix >= 0) & (ix < i32(p.w));
        cols[l.dst + ox] = select(0.0, x[l.src_row + u32(select(0, ix, ok))], ok);
        ix = ix + i32(p.stride);
    }
}

// im2col when ow is a multiple of 4: the same lines, four patches per store (fewer storage
// accesses, each a loop over the lanes on llvmpipe).
@compute @workgroup_size(WG)
fn im2col4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.c_in * p.kh * p.kw * p.batch * p.oh) {
        return;
    }
    let l = patch_line(i);
    let step = i32(p.stride);
    var ix = vec4<i32>(l.ix0) + vec4<i32>(0, step, 2 * step, 3 * step);
    for (var q = 0u; q < p.ow / 4u; q = q + 1u) {
        let ok = vec4<bool>(l.inside) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(p.w)));
        let cols_in_row = vec4<u32>(select(vec4<i32>(0), ix, ok));
        var v: vec4<f32>;
        if (FROM_TEXTURE) {
            let at = cols_in_row + vec4<u32>(l.plane_row);
            v = vec4<f32>(
                line_value(x_tex, l.plane, at.x), line_value(x_tex, l.plane, at.y),
                line_value(x_tex, l.plane, at.z), line_value(x_tex, l.plane, at.w),
            );
        } else {
            let at = cols_in_row + vec4<u32>(l.src_row);
            v = vec4<f32>(x[at.x], x[at.y], x[at.z], x[at.w]);
        }
        cols4[l.dst / 4u + q] = select(vec4<f32>(0.0), v, ok);
        ix = ix + vec4<i32>(4 * step);
    }
}

// im2col for stride 1 or 2 when output rows hold a multiple of 4 patches and x is read from
// its texture: one invocation per (patch row, image), writing its oh lines. Four neighbouring
// patches read x at ix0 + stride * (0..3), which lie in two texels (stride 1) or three
// (stride 2), and the last of them starts the next four: 1 or 2 fetches per vec4 stored,
// where im2col4 fetches a texel per patch. Lanes hold neighbouring images of the same patch
// row, so the texel offset (`shift`) is the same across a SIMD vector when w is a multiple of 4.
@compute @workgroup_size(WG)
fn im2col_runs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    let ksize = p.kh * p.kw;
    if (i >= ksize * p.c_in * p.batch) {
        return;
    }
    let row = quot(i, p.batch);
    let n = i - row * p.batch;
    let ci = quot(row, ksize);
    let tap = row - ci * ksize;
    let ky = quot(tap, p.kw);
    let kx = tap - ky * p.kw;
    let plane = i32(n * p.c_in + ci);
    let last_texel = i32(p.h * p.w / 4u) - 1;
    let st = i32(STRIDE);
    let quads = p.ow / 4u;
    var dst = (row * p.batch * p.oh * p.ow + n * p.oh * p.ow) / 4u;
    let ix0 = vec4<i32>(i32(kx) - i32(p.pad)) + vec4<i32>(0, 1, 2, 3) * st;
    var iy = i32(ky) - i32(p.pad);
    for (var oy = 0u; oy < p.oh; oy = oy + 1u) {
        if ((iy < 0) | (iy >= i32(p.h))) {
            for (var q = 0u; q < quads; q = q + 1u) {
                runs_out[dst + q] = vec4<f32>(0.0);
            }
        } else {
            let f = iy * i32(p.w) + ix0.x;
            let shift = f & 3;
            var t = f >> 2u;
            var ix = ix0;
            var t0 = textureLoad(runs_in, vec2<i32>(clamp(t, 0, last_texel), plane));
            for (var q = 0u; q < quads; q = q + 1u) {
                let t1 = textureLoad(runs_in, vec2<i32>(clamp(t + 1, 0, last_texel), plane));
                var v: vec4<f32>;
                if (STRIDE == 1u) {
                    v = run_of_four(t0, t1, shift);
                    t0 = t1;
                } else {
                    let t2 = textureLoad(runs_in, vec2<i32>(clamp(t + 2, 0, last_texel), plane));
                    v = select(vec4<f32>(t0.w, t1.y, t1.w, t2.y), vec4<f32>(t0.z, t1.x, t1.z, t2.x), shift == 2);
                    v = select(v, vec4<f32>(t0.y, t0.w, t1.y, t1.w), shift == 1);
                    v = select(v, vec4<f32>(t0.x, t0.z, t1.x, t1.z), shift == 0);
                    t0 = t2;
                }
                runs_out[dst + q] = select(vec4<f32>(0.0), v, (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(p.w))));
                ix = ix + vec4<i32>(4 * st);
                t = t + st;
            }
        }
        dst = dst + quads;
        iy = iy + st;
    }
}

// One invocation per row of dx (image, channel, iy). A pixel was read by patch (oy, ox) through
// tap (ky, kx) exactly when oy * stride = iy + pad - ky. Stepping a tap by the stride moves the
// patch by one, and stepping the pixel moves its first tap by one: the cursors below keep every
// integer division (scalar code on llvmpipe) out of the per-pixel work. Every tap of a pixel is
// summed in a register and the pixel stored once (storage accesses are per-lane loops).
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    if (i >= p.batch * p.c_in * p.h) {
        return;
    }
    let r = pixel_row(i);
    var c = first_pixel();
    for (var ix = 0u; ix < p.w; ix = ix + 1u) {
        dx[i * p.w + ix] = pixel_sum(r, c);
        c = next_pixel(c);
    }
}

// col2im when rows hold a multiple of 4 pixels: one invocation per four neighbouring pixels of a
// row, four pixels per store. Neighbouring lanes share the row and the pixels' tap pattern, so
// the tap loops run in step across a SIMD vector (llvmpipe executes a divergent loop for the
// union of its lanes' iterations).
@compute @workgroup_size(WG)
fn col2im4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    let quads = p.w / 4u;
    if (i >= p.batch * p.c_in * p.h * quads) {
        return;
    }
    let r = pixel_row(i / quads);
    let tx = 4u * (i % quads) + p.pad;
    let c0 = PixelColumn(tx % p.stride, i32(tx / p.stride));
    let c1 = next_pixel(c0);
    let c2 = next_pixel(c1);
    let c3 = next_pixel(c2);
    dx4[i] = vec4<f32>(pixel_sum(r, c0), pixel_sum(r, c1), pixel_sum(r, c2), pixel_sum(r, c3));
}

// col2im for stride 1 or 2 when rows hold a multiple of 4 * stride pixels and dcols is read
// from its texture: one invocation per 4 * stride neighbouring pixels of a row. Pixels of one
// phase (ix mod stride) take their taps from the same dcols rows at consecutive ox, so each
// tap row gives four pixels' values as one run of four floats, one or two texel fetches (the
// fetch, not the arithmetic, is what costs on llvmpipe), where col2im4 fetches a texel per
// pixel and tap. The phases' sums interleave into `STRIDE` vec4 stores.
@compute @workgroup_size(WG)
fn col2im_runs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    let per_row = p.w / (4u * STRIDE);
    if (i >= p.batch * p.c_in * p.h * per_row) {
        return;
    }
    // Divisions in f32 (`quot`; the host keeps i below 2^24), stride shifts and masks.
    let row = quot(i, per_row);
    let g = i - row * per_row;
    let image_channel = quot(row, p.h);
    let iy = row - image_channel * p.h;
    let n = quot(image_channel, p.c_in);
    let ty0 = iy + p.pad;
    let ky0 = ty0 & (STRIDE - 1u);
    let r = PixelRow(n, image_channel - n * p.c_in, ky0, i32((ty0 - ky0) / STRIDE));
    let even = phase_run(r, g, 0u);
    if (STRIDE == 1u) {
        runs_out[i] = even;
    } else {
        let odd = phase_run(r, g, 1u);
        runs_out[2u * i] = vec4<f32>(even.x, odd.x, even.y, odd.y);
        runs_out[2u * i + 1u] = vec4<f32>(even.z, odd.z, even.w, odd.w);
    }
}

// Sums of the four pixels ix = 4 * STRIDE * g + STRIDE * j + phase (j = 0..3) of row r. Tap kx
// reaches them when kx = phase + pad (mod stride), from patch columns ox = 4g + j + c with
// c = (phase + pad - kx) / stride.
fn phase_run(r: PixelRow, g: u32, phase: u32) -> vec4<f32> {
    let st = STRIDE;
    let kx0 = (phase + p.pad) & (st - 1u);
    let c0 = i32((phase + p.pad - kx0) / st);
    let spatial = p.oh * p.ow;
    let last_texel = i32(p.batch * spatial / 4u) - 1;
    var acc = vec4<f32>(0.0);
    var oy = r.oy0;
    for (var ky = r.ky0; (ky < p.kh) & (oy >= 0); ky = ky + st) {
        if (u32(oy) < p.oh) {
            let base = i32(r.n * spatial + u32(oy) * p.ow);
            var ox = vec4<i32>(i32(4u * g) + c0) + vec4<i32>(0, 1, 2, 3);
            for (var kx = kx0; kx < p.kw; kx = kx + st) {
                let dcols_row = (r.ci * p.kh + ky) * p.kw + kx;
                let f = base + ox.x;
                let q = f >> 2u;
                let shift = f & 3;
                let t0 = textureLoad(runs_in, vec2<i32>(clamp(q, 0, last_texel), i32(dcols_row)));
                var run = t0;
                if (shift != 0) {
                    let t1 = textureLoad(runs_in, vec2<i32>(clamp(q + 1, 0, last_texel), i32(dcols_row)));
                    run = run_of_four(t0, t1, shift);
                }
                let inside = (ox >= vec4<i32>(0)) & (ox < vec4<i32>(i32(p.ow)));
                acc = acc + select(vec4<f32>(0.0), run, inside);
                ox = ox - vec4<i32>(1);
            }
        }
        oy = oy - 1;
    }
    return acc;
}

// Row iy of channel ci of image n, as col2im's pixels see it: its first tap along y and the
// patch row that tap belongs to.
struct PixelRow {
    n: u32,
    ci: u32,
    ky0: u32,
    oy0: i32,
}

fn pixel_row(i: u32) -> PixelRow {
    let iy = i % p.h;
    let ty0 = iy + p.pad;
    let ky0 = ty0 % p.stride;
    return PixelRow(i / (p.c_in * p.h), (i / p.h) % p.c_in, ky0, i32((ty0 - ky0) / p.stride));
}

// A pixel's first tap along x and the patch column that tap belongs to.
struct PixelColumn {
    kx0: u32,
    ox0: i32,
}

fn first_pixel() -> PixelColumn {
    return PixelColumn(p.pad % p.stride, i32(p.pad / p.stride));
}

fn next_pixel(c: PixelColumn) -> PixelColumn {
    if (c.kx0 + 1u == p.stride) {
        return PixelColumn(0u, c.ox0 + 1);
    }
    return PixelColumn(c.kx0 + 1u, c.ox0);
}

// Every patch entry that read the pixel, summed.
fn pixel_sum(r: PixelRow, c: PixelColumn) -> f32 {
    let spatial = p.oh * p.ow;
    let width = p.batch * spatial;
    let st = p.stride;
    var acc = 0.0;
    var oy = r.oy0;
    for (var ky = r.ky0; (ky < p.kh) & (oy >= 0); ky = ky + st) {
        if (u32(oy) < p.oh) {
            let first = r.n * spatial + u32(oy) * p.ow;
            var ox = c.ox0;
            for (var kx = c.kx0; (kx < p.kw) & (ox >= 0); kx = kx + st) {
                if (u32(ox) < p.ow) {
                    let row = (r.ci * p.kh + ky) * p.kw + kx;
                    if (FROM_TEXTURE) {
                        acc = acc + line_value(dcols_tex, row, first + u32(ox));
                    } else {
                        acc = acc + dcols[row * width + first + u32(ox)];
                    }
                }
                ox = ox - 1;
            }
        }
        oy = oy - 1;
    }
    return acc;
}

// ---- weights for the transposed convolution by phases (matmul_subgroup.wgsl, B_MODE 5) ----
// For a kernel two strides wide, phase z = ry * stride + rx takes the taps
// (ry + stride * ty, rx + stride * tx), ty, tx in {0, 1}; its A holds them per (input channel i,
// output channel c) as one vec4: phase_taps[(z * c_in + i) * c_out + c] =
// W[c, i, ry + s ty, rx + s tx] for (ty, tx) = (0, 0), (0, 1), (1, 0), (1, 1).
// W is read from its flat texture copy (texel rows of 2^weight_shift texels): the lanes' reads
// are kernels apart, and a storage read would be a loop over them.
struct PhaseWeightParams {
    c_in: u32,
    c_out: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    weight_shift: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> pw: PhaseWeightParams;
@group(0) @binding(1) var<storage, read_write> phase_taps: array<vec4<f32>>;
@group(0) @binding(2) var weight_tex: texture_storage_2d<rgba32float, read>;

fn weight_at(e: u32) -> f32 {
    let q = e / 4u;
    return textureLoad(weight_tex, vec2<u32>(q & ((1u << pw.weight_shift) - 1u), q >> pw.weight_shift))[e & 3u];
}

// One invocation per (c, i, z) on a grid [c_out / WG, c_in, stride^2]: no index division,
// which llvmpipe runs lane by lane.
@compute @workgroup_size(WG)
fn phase_weights(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= pw.c_out) {
        return;
    }
    let i = gid.y;
    let z = gid.z;
    let first = (c * pw.c_in + i) * pw.kh * pw.kw + (z / pw.stride) * pw.kw + z % pw.stride;
    let down = pw.stride * pw.kw;
    phase_taps[(z * pw.c_in + i) * pw.c_out + c] = vec4<f32>(weight_at(first), weight_at(first + pw.stride),
                                                             weight_at(first + down), weight_at(first + down + pw.stride));
}
