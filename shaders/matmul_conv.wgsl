// Convolutions as implicit GEMM for matmul_subgroup.wgsl (the shader registry appends this file
// to it). B is gathered from the source image's flat texture copy (b_tex, rows of 2^b_shift
// texels) and C is stored straight into the NCHW result: no patch matrix, no col2im, no layout
// swap. A lane's columns are two runs of four outputs along an image row (grid_w and the
// source's rows are multiples of 4, so no run or texel straddles a row), and each texel fetched
// serves a whole run: four fetches per four k, as many as B_MODE 3 spends on a patch matrix's
// texture copy, without building the matrix or its copy.
//
// B_MODE 6, a convolution with a 4x4 kernel at stride 2 (stride 1 never has runs of four:
// its output rows are w + 2 pad - 3 wide, an odd number):
//   y[b, o, oy, ox] = sum_{c, ky, kx} W[o, 16c + 4ky + kx] · x[b, c, s*oy - pad + ky, s*ox - pad + kx]
// M = output channels, K = 16 * input channels (W as stored), N = batch * oh * ow. A panel of
// four k is one kernel row, whose four taps all read one window of the source row.
//
// B_MODE 5, a transposed convolution (a convolution's input gradient) whose kernel is two strides
// wide (DCGAN's 4x4 at stride 2), by output phase (y % s, x % s): each phase is an ordinary
// product over 2x2 taps,
//   dx[b, i, s*qy + py, s*qx + px] = sum_{c, ty, tx} A[i, 4c + 2ty + tx] · dy[b, c, qy + oy - ty, qx + ox - tx]
// with A = W[c, i, ry + s*ty, rx + s*tx] (conv2d.wgsl's phase_weights), taps ry, rx and offsets
// oy, ox fixed by the phase (phase_of). M = dx's channels, K = 4 * dy's channels,
// N = batch * grid_h * grid_w (one phase's outputs); workgroup z is the phase. K is a multiple
// of 64 there (A's rows are texture lines), so there is no tail.

//
// A_MODE 3, a convolution's weight gradient dW^T = cols · dy_rows with the patch matrix cols
// [16 c_in, batch * oh * ow] gathered from x (4x4 kernel, stride 2): row 16c + 4ky + kx,
// column (b, oy, ox) holds x[b, c, 2 oy - pad + ky, 2 ox - pad + kx]. A subgroup's sixteen rows
// are one input channel's taps, lane 2j + h's rows those with kx = j (ky = 0..3), and its four
// k a run of four positions along an output row: three texels hold each run (patch_run).

// B_MODE 6's and A_MODE 3's padding, as a constant: it fixes which texel components feed which
// tap.
override CONV_PAD: u32 = 0u;
// B_MODE 6's epilogue, applied as C is stored: a per-channel bias (BIAS) and a (leaky) ReLU
// max(y, slope * y) (ACTIVATE), so neither takes a pass of its own.
override BIAS: bool = false;
override ACTIVATE: bool = false;

// Output column n, the first of a run of four, as (offset of its image in the source, output
// row, output column / 4, image).
fn run_of_column(n: u32) -> vec4<u32> {
    let column = n % p.grid_w;
    let rest = n / p.grid_w;
    let image = rest / p.grid_h;
    return vec4<u32>(image * p.src_c * p.src_h * p.src_w, rest % p.grid_h, column / 4u, image);
}

// Texel x of the source row starting at texel `line` of B's texture, zero outside the row
// (padding).
fn src_texel(line: u32, x: i32, row_ok: bool) -> vec4<f32> {
    return row_texel(b_tex, p.b_shift, line, x, row_ok);
}

// The same in texture t (a flat copy with rows of 2^shift texels).
fn row_texel(t: texture_storage_2d<rgba32float, read>, shift: u32, line: u32, x: i32, row_ok: bool) -> vec4<f32> {
    let inside = row_ok & (x >= 0) & (x < i32(p.src_w / 4u));
    let q = select(0u, line + u32(x), inside);
    let v = textureLoad(t, vec2<u32>(q & ((1u << shift) - 1u), q >> shift));
    return select(vec4<f32>(0.0), v, inside);
}

// ---- A_MODE 3: the patch matrix of a convolution's weight gradient ----

// Where lane `lane`'s rows (r0 + lane / 2 + 4 ky) read x: (offset of their channel's plane,
// the texel and component their window starts at relative to 2 (ox / 4) - ceil(pad / 4)).
// Subgroups past the last row read the last channel (never stored).
fn patch_lane(r0: u32, lane: u32) -> vec4<u32> {
    let channel = min(r0 / 16u, p.src_c - 1u);
    // Column 2 ox - pad + kx of a run starting at ox = 4r is float e of the texels from
    // 2r - ceil(pad / 4), with e = kx + 4 ceil(pad / 4) - pad in 0..6.
    let e = lane / 2u + 4u * ((CONV_PAD + 3u) / 4u) - CONV_PAD;
    return vec4<u32>(channel * p.src_h * p.src_w, e / 4u, e % 4u, 0u);
}

// Position `pos` (a multiple of 4) as (offset of its image in x, output row, output column / 4).
fn position_run(pos: u32) -> vec3<u32> {
    let per_image = p.grid_h * p.grid_w;
    let image = quot(pos, per_image);
    let rest = pos - image * per_image;
    let row = quot(rest, p.grid_w);
    return vec3<u32>(image * p.src_c * p.src_h * p.src_w, row, (rest - row * p.grid_w) / 4u);
}

// The lane's row with kernel row ky at the run's four positions: x row 2 oy - pad + ky, columns
// 2 (ox + t) - pad + kx: floats lead, lead + 2, lead + 4, lead + 6 of three texels.
fn patch_run(lane_rows: vec4<u32>, run: vec3<u32>, ky: u32) -> vec4<f32> {
    let y = i32(2u * run.y + ky) - i32(CONV_PAD);
    let row_ok = (y >= 0) & (y < i32(p.src_h));
    let line = (run.x + lane_rows.x + u32(max(y, 0)) * p.src_w) / 4u;
    let x0 = i32(2u * run.z + lane_rows.y) - i32((CONV_PAD + 3u) / 4u);
    let w0 = row_texel(a_tex, p.a_shift, line, x0, row_ok);
    let w1 = row_texel(a_tex, p.a_shift, line, x0 + 1, row_ok);
    let w2 = row_texel(a_tex, p.a_shift, line, x0 + 2, row_ok);
    let lead = lane_rows.z;
    let even = select(vec4<f32>(w0.x, w0.z, w1.x, w1.z), vec4<f32>(w0.z, w1.x, w1.z, w2.x), lead == 2u);
    let odd = select(vec4<f32>(w0.y, w0.w, w1.y, w1.w), vec4<f32>(w0.w, w1.y, w1.w, w2.y), lead == 3u);
    return select(even, odd, (lead & 1u) == 1u);
}

// ---- B_MODE 6: convolution ----

// B at k0 .. k0 + 3 (input channel k0 / 16, kernel row (k0 / 4) % 4, its four taps) for the
// lane's two runs, in load_b_panel's layout.
fn conv_panel(pl: Plan, k0: u32) -> array<vec4<f32>, 8> {
    let plane = (k0 / 16u) * p.src_h * p.src_w;
    let ky = (k0 / 4u) & 3u;
    let lo = conv_taps(pl.cols_lo, plane, ky);
    let hi = conv_taps(pl.cols_hi, plane, ky);
    return array<vec4<f32>, 8>(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], lo[3], hi[3]);
}

// A run's four outputs at taps (ky, 0..3): source row 2 oy - pad + ky, columns
// 2 (ox + j) - pad + kx. The run's window starts at column 8 (ox / 4) - pad: component `lead` of
// texel 2 (ox / 4) - ceil(pad / 4), and spans 10 floats from lead <= 3, so four texels hold it.
fn conv_taps(run: vec4<u32>, plane: u32, ky: u32) -> array<vec4<f32>, 4> {
    let y = i32(2u * run.y + ky) - i32(CONV_PAD);
    let row_ok = (y >= 0) & (y < i32(p.src_h));
    let line = (run.x + plane + u32(max(y, 0)) * p.src_w) / 4u;
    let x0 = i32(2u * run.z) - i32((CONV_PAD + 3u) / 4u);
    let window = array<vec4<f32>, 4>(src_texel(line, x0, row_ok), src_texel(line, x0 + 1, row_ok),
                                     src_texel(line, x0 + 2, row_ok), src_texel(line, x0 + 3, row_ok));
    let lead = (4u - CONV_PAD % 4u) % 4u;
    return array<vec4<f32>, 4>(window_run(window, lead), window_run(window, lead + 1u),
                               window_run(window, lead + 2u), window_run(window, lead + 3u));
}

// Window floats e, e + 2, e + 4, e + 6.
fn window_run(window: array<vec4<f32>, 4>, e: u32) -> vec4<f32> {
    return vec4<f32>(window_float(window, e), window_float(window, e + 2u), window_float(window, e + 4u),
                     window_float(window, e + 6u));
}

// Window float f, by selects over constant indices rather than by indexing the array with f.
fn window_float(window: array<vec4<f32>, 4>, f: u32) -> f32 {
    let t = select(select(window[0], window[1], f >= 4u), select(window[2], window[3], f >= 12u), f >= 8u);
    let q = f & 3u;
    return select(select(t.x, t.y, q == 1u), select(t.z, t.w, q == 3u), q >= 2u);
}

// ---- B_MODE 7 with A_MODE 4: a convolution's weight gradient with taps as columns ----
//
// dW [c_out, 16 c_in] = dy [c_out, positions] · patches^T, stored as W is. B's column
// 16c + 4ky + kx at position k = (image, oy, ox) holds x[image, c, 2 oy - pad + ky,
// 2 ox - pad + kx]: a lane's four columns are one kernel row's four taps, and a panel's four k
// a run of four positions along an output row, so a panel is the 4x4 block conv_taps gathers
// for a convolution, transposed. A is dy itself (NCHW) from its flat texture: row r at
// position k is dy[image, r, k % plane], with plane = grid_h * grid_w a multiple of 8 so that
// a block of 8 k lies in one image. No transpose of dy or of the result is needed.

// Column j (a multiple of 4) as (offset of its channel's plane in x, kernel row).
fn tap_run(j: u32) -> vec4<u32> {
    return vec4<u32>((j / 16u) * p.src_h * p.src_w, (j / 4u) % 4u, 0u, 0u);
}

// B at positions k0 .. k0 + 3 of this chunk of K for the lane's two runs of taps, in
// load_b_panel's layout.
fn conv_tap_panel(pl: Plan, k0: u32) -> array<vec4<f32>, 8> {
    let run = vec4<u32>(position_run(pl.tex_start + k0), 0u);
    let lo = conv_taps(run, pl.cols_lo.x, pl.cols_lo.y);
    let hi = conv_taps(run, pl.cols_hi.x, pl.cols_hi.y);
    return array<vec4<f32>, 8>(
        vec4<f32>(lo[0].x, lo[1].x, lo[2].x, lo[3].x), vec4<f32>(hi[0].x, hi[1].x, hi[2].x, hi[3].x),
        vec4<f32>(lo[0].y, lo[1].y, lo[2].y, lo[3].y), vec4<f32>(hi[0].y, hi[1].y, hi[2].y, hi[3].y),
        vec4<f32>(lo[0].z, lo[1].z, lo[2].z, lo[3].z), vec4<f32>(hi[0].z, hi[1].z, hi[2].z, hi[3].z),
        vec4<f32>(lo[0].w, lo[1].w, lo[2].w, lo[3].w), vec4<f32>(hi[0].w, hi[1].w, hi[2].w, hi[3].w),
    );
}

// A_MODE 4: the texel lane 2j + h reads for the block at kb: four floats of row `row` from
// position kb + 4h of this chunk of K.
fn image_rows_texel(pl: Plan, kb: u32, lane: u32, row: u32) -> vec4<f32> {
    let plane = p.grid_h * p.grid_w;
    let pos = pl.a_base + kb;
    let image = quot(pos, plane);
    let q = ((image * p.m + row) * plane + pos - image * plane) / 4u + (lane & 1u);
    return textureLoad(a_tex, vec2<u32>(q & ((1u << p.a_shift) - 1u), q >> p.a_shift));
}

// ---- B_MODE 5: transposed convolution by output phase ----

// B_MODE 5 runs one dispatch per column phase rx (PHASE_COLUMN) whose workgroups' z is the row
// phase ry, so that which texel components hold a run's taps (PHASE_OX, the phase's ox) is a
// constant: chosen at run time it cost a blend per value of B.
override PHASE_COLUMN: u32 = 0u;
override PHASE_OX: u32 = 0u;

// The phase z = ry * s + rx of workgroups with z index ry.
fn phase_index(ry: u32) -> u32 {
    return ry * p.stride + PHASE_COLUMN;
}

// Phase z = ry * s + rx as (py, px, oy, ox): the kernel rows r = ry + s*t feed output rows of
// phase py = (ry - pad) mod s from dy row qy + oy - t, with oy = (py + pad - ry) / s.
fn phase_of(z: u32) -> vec4<u32> {
    let s = p.stride;
    let ry = z / s;
    let rx = z % s;
    let py = (ry + s - p.pad % s) % s;
    let px = (rx + s - p.pad % s) % s;
    // ox = (px + pad - rx) / s, worked out by the launcher as PHASE_OX.
    return vec4<u32>(py, px, (py + p.pad - ry) / s, PHASE_OX);
}

// B at k0 .. k0 + 3 (channel k0 / 4, its four taps) for the lane's two runs, in load_b_panel's
// layout.
fn conv_phase_panel(pl: Plan, k0: u32) -> array<vec4<f32>, 8> {
    let plane = (k0 / 4u) * p.src_h * p.src_w;
    let lo0 = phase_taps(pl.cols_lo, plane, pl.phase, 0u);
    let hi0 = phase_taps(pl.cols_hi, plane, pl.phase, 0u);
    let lo1 = phase_taps(pl.cols_lo, plane, pl.phase, 1u);
    let hi1 = phase_taps(pl.cols_hi, plane, pl.phase, 1u);
    return array<vec4<f32>, 8>(lo0[0], hi0[0], lo0[1], hi0[1], lo1[0], hi1[0], lo1[1], hi1[1]);
}

// A run's four values at taps (ty, 0) and (ty, 1): dy row qy + oy - ty, columns qx + ox - tx
// for tx = 0, 1. ox is 0 or 1 (pad <= s), so both windows lie in the two texels from
// qx / 4 + ox - 1: with ox = 0 they are (second) and (first.w, second.xyz); with ox = 1
// (first.yzw, second.x) and (first).
fn phase_taps(run: vec4<u32>, plane: u32, ph: vec4<u32>, ty: u32) -> array<vec4<f32>, 2> {
    let y = i32(run.y + ph.z) - i32(ty);
    let row_ok = (y >= 0) & (y < i32(p.src_h));
    let line = (run.x + plane + u32(max(y, 0)) * p.src_w) / 4u;
    let x0 = i32(run.z + ph.w) - 1;
    let first = src_texel(line, x0, row_ok);
    let second = src_texel(line, x0 + 1, row_ok);
    if (PHASE_OX == 1u) {
        return array<vec4<f32>, 2>(vec4<f32>(first.yzw, second.x), first);
    }
    return array<vec4<f32>, 2>(second, vec4<f32>(first.w, second.xyz));
}

// ---- Stores of C (store_c and store_whole serve matmul_subgroup.wgsl's store_cols too) ----

// C's float i.
fn store_c(i: u32, v: f32) {
    c[i / 4u][i % 4u] = v;
}

// C's floats i .. i + 3 (i a multiple of 4), where `inside`.
fn store_whole(i: u32, inside: bool, v: vec4<f32>) {
    if (inside) {
        c[i / 4u] = v;
    }
}

// Rows i0 .. i0 + 7 of the block into the result: each run's four outputs lie `step` apart in
// their row (1 for a convolution, s for a phase of a transposed one), channels a plane apart.
fn store_runs(t: Block, pl: Plan, i0: u32, j0: u32) {
    let step = select(1u, p.stride, B_MODE == B_MODE_CONV_PHASES);
    let out_w = p.grid_w * step;
    let out_plane = p.grid_h * step * out_w;
    let lo = run_output(pl.cols_lo, pl.phase, step, out_w, out_plane);
    let hi = run_output(pl.cols_hi, pl.phase, step, out_w, out_plane);
    let hi_ok = j0 + 32u < p.n;
    store_run_row(i0 + 0u, lo, hi, hi_ok, step, out_plane, t.lo0, t.hi0);
    store_run_row(i0 + 1u, lo, hi, hi_ok, step, out_plane, t.lo1, t.hi1);
    store_run_row(i0 + 2u, lo, hi, hi_ok, step, out_plane, t.lo2, t.hi2);
    store_run_row(i0 + 3u, lo, hi, hi_ok, step, out_plane, t.lo3, t.hi3);
    store_run_row(i0 + 4u, lo, hi, hi_ok, step, out_plane, t.lo4, t.hi4);
    store_run_row(i0 + 5u, lo, hi, hi_ok, step, out_plane, t.lo5, t.hi5);
    store_run_row(i0 + 6u, lo, hi, hi_ok, step, out_plane, t.lo6, t.hi6);
    store_run_row(i0 + 7u, lo, hi, hi_ok, step, out_plane, t.lo7, t.hi7);
}

// Where a run's first output lands in the result's channel 0 (ph: phase_of, zero for B_MODE 6).
fn run_output(run: vec4<u32>, ph: vec4<u32>, step: u32, out_w: u32, out_plane: u32) -> u32 {
    let y = step * run.y + ph.x;
    let x = step * 4u * run.z + ph.y;
    return run.w * p.m * out_plane + y * out_w + x;
}

fn store_run_row(i: u32, lo: u32, hi: u32, hi_ok: bool, step: u32, out_plane: u32, vlo: vec4<f32>,
                 vhi: vec4<f32>) {
    if (i >= p.m) {
        return;
    }
    let out_lo = epilogue(i, vlo);
    let out_hi = epilogue(i, vhi);
    if (step == 1u) {
        // A run's four outputs are consecutive and aligned (runs start at multiples of 4 in
        // rows of a multiple of 4): one vec4 store each.
        store_whole(lo + i * out_plane, true, out_lo);
        store_whole(hi + i * out_plane, hi_ok, out_hi);
        return;
    }
    for (var t = 0u; t < 4u; t = t + 1u) {
        store_c(lo + i * out_plane + step * t, out_lo[t]);
        if (hi_ok) {
            store_c(hi + i * out_plane + step * t, out_hi[t]);
        }
    }
}

// Row i's values with the bias and activation B_MODE 6 asks for.
fn epilogue(i: u32, v: vec4<f32>) -> vec4<f32> {
    var y = v;
    if (BIAS) {
        y = y + bias[i];
    }
    if (ACTIVATE) {
        y = max(y, p.slope * y);
    }
    return y;
}
