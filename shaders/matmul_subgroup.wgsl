// The register-blocked matmul of every device (matmul.wgsl is the fallback `portable` path).
// Same parameters and results as matmul.wgsl; what differs is how operands reach the lanes, shaped by
// how llvmpipe compiles loads: a storage load whose address differs across lanes becomes a loop
// over the lanes (an exec-mask branch and a bounds check each), paid once per load instruction
// however many components it fetches.
//
// The kernel works in groups of eight consecutive invocations (a "group"). A lane reads the
// values of its group's other lanes through group_values, and B's panels through load_b_panels,
// which the registry appends from one of two files, each with the entry point `forward`:
// matmul_lanes_subgroup.wgsl, where a group is eight lanes of one subgroup of any width that is
// a multiple of 8 (8 on lavapipe at 256 bits, 16 at 512 bits, 32 on NVIDIA and Apple, 32 or 64
// on AMD), values move by shuffles, and two groups of one subgroup share B's loads; and
// matmul_lanes_shared.wgsl, for adapters without subgroups, where they move through workgroup
// memory between barriers.
//
// A workgroup of 8 * ROW_GROUPS invocations computes a (16 * ROW_GROUPS)x64 tile of C (64x64
// unless the product has at most 32 rows); group g = t / 8 owns rows r0..r0+15 (r0 = 16g
// within the tile) and lane l eight columns of the tile chosen by B's layout. Each
// block of 8 k adds eight rank-1 updates to the lane's 16x8 register block (two 8x8 halves),
// applied row by row (row_four_k says why).
// Each B value loaded feeds 16 rows (B's loads cost most: 8 rows per lane measured slower).
// - A: a group's rows are the same in all its lanes, so lane l loads A at its own
//   k = kb + l and the values reach every lane of the group by group_values.
// - B_MODE picks how B is read: 0 any strides (lane l owns columns l + 8t, scalar loads);
//   1 contiguous along N (lane l owns columns 4l..4l+3 and 32+4l..32+4l+3, two vec4 loads per
//   k); 2 contiguous along K (columns l + 8t, a vec4 holds four k of a column).
//   3 and 4 read the same layouts as 1 and 2 from b_tex, a copy of B as an Rgba32Float
//   storage texture whose texel rows are B's contiguous lines: llvmpipe fetches a texel for
//   all eight lanes in one call, where a storage load is a loop over the lanes
//   (examples/load_probe.rs: 1.3 ns against 15 ns per vec4 per invocation on an AVX2 host).
//   They are bound as read-only storage textures (a sampled fetch also works out mip levels:
//   30% dearer, BENCHMARKS.md). B stays bound for the K tail.
// - Whole blocks of 8 k run with no per-k guards; a guarded tail takes the rest of K.
// - B_MODE 5 and 6 compute convolutions without a patch matrix (implicit GEMM): B gathered
//   from the source image and C stored as NCHW (matmul_conv.wgsl, appended to this file by the
//   shader registry): 5 a transposed convolution by output phase, 6 a convolution. B_MODE 7
//   gathers a convolution's patches with taps as columns for its weight gradient (with
//   A_MODE 4), C stored as the weight is.

override B_MODE: u32 = B_MODE_STRIDED;
// A_MODE picks how A is read: 0 from storage (any strides); 1 and 2 from a_tex, a texture copy
// of A whose texel rows are A's contiguous lines: 1 when A is contiguous along K (in whole
// blocks of 8 k the lanes fetch the block's 32 texels, four each, and broadcast components; in
// the tail a lane reads one texel per row and keeps its own k's component), 2 when contiguous
// along M (one texel holds four rows at the lane's k; A's lines are whole tiles of rows there);
// 3 and 4 read as 1 does, gathering for weight gradients (matmul_conv.wgsl; K has no tail):
// 3 a convolution's patch matrix from x's texture copy, 4 an NCHW tensor's channels as rows
// with K over its images and positions, from its flat texture copy (with B_MODE 7).
override A_MODE: u32 = A_MODE_STRIDED;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch: u32,
    a_row: u32,
    a_col: u32,
    b_batch: u32,
    b_row: u32,
    b_col: u32,
    k_last: u32,
    // Row lengths (log2 texels) of flat texture copies: the images A_MODE 3 and 4 (a_shift)
    // and B_MODE 5, 6 and 7 (b_shift) gather from; matmul.wgsl's skinny entry's operands.
    a_shift: u32,
    b_shift: u32,
    // B_MODE 5, 6 and 7, A_MODE 3 and 4 (convolutions as implicit GEMM, matmul_conv.wgsl): the source
    // image's channels and plane (src_c x src_h x src_w), the grid of outputs a product covers
    // (grid_h x grid_w), stride and padding.
    src_c: u32,
    src_h: u32,
    src_w: u32,
    grid_h: u32,
    grid_w: u32,
    stride: u32,
    pad: u32,
    // B_MODE 6 with ACTIVATE: the slope of the (leaky) ReLU applied as C is stored.
    slope: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
// B_MODE 6 with BIAS: one value per row of C (output channel), added as C is stored; a
// placeholder otherwise.
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// C as vec4s: stores of four consecutive columns (along N) are one store, which llvmpipe runs
// as one loop over the lanes where four scalar stores would run four.
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
// B_MODE 3 and 4: texel (x, y) holds B's elements 4x..4x+3 of contiguous line y (a 1x1
// placeholder in the other modes).
@group(0) @binding(5) var b_tex: texture_storage_2d<rgba32float, read>;

@group(0) @binding(6) var a_tex: texture_storage_2d<rgba32float, read>;

fn a_texel(x: u32, y: u32) -> vec4<f32> {
    return textureLoad(a_tex, vec2<u32>(x, y));
}

// B gathered from an image (a convolution as implicit GEMM, matmul_conv.wgsl).
fn implicit_conv() -> bool {
    return (B_MODE == B_MODE_CONV_PHASES) | (B_MODE == B_MODE_CONV_PATCHES);
}

fn along_n() -> bool {
    return (B_MODE == B_MODE_ROWS_VEC4) | (B_MODE == B_MODE_ROWS_TEXTURE) | implicit_conv() | (B_MODE == B_MODE_CONV_TAPS);
}

fn along_k() -> bool {
    return (B_MODE == B_MODE_COLUMNS_VEC4) | (B_MODE == B_MODE_COLUMNS_TEXTURE);
}

fn texel(x: u32, y: u32) -> vec4<f32> {
    return textureLoad(b_tex, vec2<u32>(x, y));
}

fn b_at(i: u32) -> f32 {
    return b4[i >> 2u][i & 3u];
}

// A lane's 8x8 register block: row r of the subgroup in lo_r (four columns) and hi_r (four more).
struct Block {
    lo0: vec4<f32>, hi0: vec4<f32>, lo1: vec4<f32>, hi1: vec4<f32>,
    lo2: vec4<f32>, hi2: vec4<f32>, lo3: vec4<f32>, hi3: vec4<f32>,
    lo4: vec4<f32>, hi4: vec4<f32>, lo5: vec4<f32>, hi5: vec4<f32>,
    lo6: vec4<f32>, hi6: vec4<f32>, lo7: vec4<f32>, hi7: vec4<f32>,
}

fn zero_block() -> Block {
    let z = vec4<f32>(0.0);
    return Block(z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z);
}

// Adds the outer product of one k: A's rows 0-3 in s and 4-7 in u (the same in every lane),
// B's eight columns of this lane in lo and hi.
fn rank1(t: Block, s: vec4<f32>, u: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Block {
    return Block(
        fma(vec4<f32>(s.x), lo, t.lo0), fma(vec4<f32>(s.x), hi, t.hi0),
        fma(vec4<f32>(s.y), lo, t.lo1), fma(vec4<f32>(s.y), hi, t.hi1),
        fma(vec4<f32>(s.z), lo, t.lo2), fma(vec4<f32>(s.z), hi, t.hi2),
        fma(vec4<f32>(s.w), lo, t.lo3), fma(vec4<f32>(s.w), hi, t.hi3),
        fma(vec4<f32>(u.x), lo, t.lo4), fma(vec4<f32>(u.x), hi, t.hi4),
        fma(vec4<f32>(u.y), lo, t.lo5), fma(vec4<f32>(u.y), hi, t.hi5),
        fma(vec4<f32>(u.z), lo, t.lo6), fma(vec4<f32>(u.z), hi, t.hi6),
        fma(vec4<f32>(u.w), lo, t.lo7), fma(vec4<f32>(u.w), hi, t.hi7),
    );
}

// Where this lane reads A and B; fixed for the whole reduction.
struct Plan {
    // A: start of each of the sixteen rows (clamped to the last row; those are never stored).
    rows03: vec4<u32>,
    rows47: vec4<u32>,
    rows8b: vec4<u32>,
    rows_cf: vec4<u32>,
    // B: the lane's columns (scalar starts for B_MODE 0, vec4 indices for 1 and 2; runs for 5
    // and 6, tap_run for 7).
    cols_lo: vec4<u32>,
    cols_hi: vec4<u32>,
    // B_MODE 3: texel columns of lo and hi, first texel row (k = 0). B_MODE 4: texel rows of
    // the eight columns, first texel column (k = 0). B_MODE 7: tex_start is the position of k = 0.
    tex_lo: vec4<u32>,
    tex_hi: vec4<u32>,
    tex_start: u32,
    // A_MODE 1: first float of the lines in a_tex (the rows hold texel rows). A_MODE 2: the
    // texel row of k = 0 (the rows hold the texel columns of rows 0-3, 4-7, 8-11, 12-15).
    // A_MODE 3 and 4: the position (column of the patch matrix) of k = 0.
    a_base: u32,
    // A_MODE 1: texel rows of this lane's rows lane / 2 + 4q (q = 0..3) in the whole blocks.
    // A_MODE 3: where those rows read x (patch_lane). A_MODE 4: the rows (clamped to the last).
    a_lines: vec4<u32>,
    // B_MODE 5: the workgroup's output phase (phase_of).
    phase: vec4<u32>,
}

fn make_plan(r0: u32, j0: u32, bat: u32, lane: u32) -> Plan {
    // B_MODE 5: A holds every phase's matrix; this dispatch's workgroups index the row phase.
    let a_off = select(bat, phase_index(bat), B_MODE == B_MODE_CONV_PHASES) * p.a_batch;
    var rows03 = row_starts(r0, 0u, a_off);
    var rows47 = row_starts(r0, 4u, a_off);
    var rows8b = row_starts(r0, 8u, a_off);
    var rows_cf = row_starts(r0, 12u, a_off);
    var a_base = 0u;
    var a_lines = vec4<u32>(0u);
    if (A_MODE == A_MODE_TEXTURE_ALONG_K) {
        // Element a_off + row * a_row + k is float a_off % a_row + k of texel row a_off / a_row + row.
        let first = vec4<u32>(a_off / p.a_row);
        rows03 = first + row_indices(r0, 0u);
        rows47 = first + row_indices(r0, 4u);
        rows8b = first + row_indices(r0, 8u);
        rows_cf = first + row_indices(r0, 12u);
        a_base = a_off % p.a_row;
        let lane_rows = vec4<u32>(r0 + lane / 2u) + vec4<u32>(0u, 4u, 8u, 12u);
        a_lines = first + min(lane_rows, vec4<u32>(p.m - 1u));
    } else if (A_MODE == A_MODE_CONV_PATCHES) {
        a_base = a_off;
        a_lines = patch_lane(r0, lane);
    } else if (A_MODE == A_MODE_IMAGE_ROWS) {
        // a_batch is the length of a chunk of K: a_off is this chunk's first position.
        a_base = a_off;
        let lane_rows = vec4<u32>(r0 + lane / 2u) + vec4<u32>(0u, 4u, 8u, 12u);
        a_lines = min(lane_rows, vec4<u32>(p.m - 1u));
    } else if (A_MODE == A_MODE_TEXTURE_ALONG_M) {
        // Element a_off + k * a_col + row is float a_off % a_col + row of texel row a_off / a_col + k.
        let x0 = (a_off % p.a_col + r0) / 4u;
        rows03 = vec4<u32>(x0);
        rows47 = vec4<u32>(x0 + 1u);
        rows8b = vec4<u32>(x0 + 2u);
        rows_cf = vec4<u32>(x0 + 3u);
        a_base = a_off / p.a_col;
    }
    let last_j = p.n - 1u;
    let b_off = bat * p.b_batch;
    var cols_lo: vec4<u32>;
    var cols_hi: vec4<u32>;
    var tex_lo = vec4<u32>(0u);
    var tex_hi = vec4<u32>(0u);
    var tex_start = 0u;
    if (along_n()) {
        // N is a multiple of 4 here; groups past the edge load the last group (never stored).
        cols_lo = vec4<u32>((min(j0, p.n - 4u) + b_off) / 4u);
        cols_hi = vec4<u32>((min(j0 + 32u, p.n - 4u) + b_off) / 4u);
        // Element b_off + k * b_row + j is texel ((b_off % b_row + j) / 4, b_off / b_row + k).
        let line = b_off % p.b_row;
        tex_lo = vec4<u32>((line + min(j0, p.n - 4u)) / 4u);
        tex_hi = vec4<u32>((line + min(j0 + 32u, p.n - 4u)) / 4u);
        tex_start = b_off / p.b_row;
    } else if (B_MODE == B_MODE_COLUMNS_TEXTURE) {
        // Element b_off + j * b_col + k is texel ((b_off % b_col + k) / 4, b_off / b_col + j).
        let first = b_off / p.b_col;
        tex_lo = vec4<u32>(first) + min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_j));
        tex_hi = vec4<u32>(first) + min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_j));
        tex_start = (b_off % p.b_col) / 4u;
        cols_lo = min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(b_off);
        cols_hi = min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(b_off);
    } else {
        cols_lo = min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(b_off);
        cols_hi = min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(b_off);
        if (B_MODE == B_MODE_COLUMNS_VEC4) {
            cols_lo = cols_lo / 4u;
            cols_hi = cols_hi / 4u;
        }
    }
    var phase = vec4<u32>(0u);
    if (implicit_conv()) {
        // The lane's two runs of four outputs (run_of_column).
        cols_lo = run_of_column(min(j0, p.n - 4u));
        cols_hi = run_of_column(min(j0 + 32u, p.n - 4u));
        if (B_MODE == B_MODE_CONV_PHASES) {
            phase = phase_of(phase_index(bat));
        }
    }
    if (B_MODE == B_MODE_CONV_TAPS) {
        // The lane's two runs of four taps; b_batch is the length of a chunk of K, so b_off is
        // this chunk's first position.
        cols_lo = tap_run(min(j0, p.n - 4u));
        cols_hi = tap_run(min(j0 + 32u, p.n - 4u));
        tex_start = b_off;
    }
    return Plan(rows03, rows47, rows8b, rows_cf, cols_lo, cols_hi, tex_lo, tex_hi, tex_start, a_base, a_lines, phase);
}

fn row_starts(r0: u32, first: u32, a_off: u32) -> vec4<u32> {
    return row_indices(r0, first) * p.a_row + vec4<u32>(a_off);
}

// Rows r0 + first .. r0 + first + 3, clamped to the last row (those are never stored).
fn row_indices(r0: u32, first: u32) -> vec4<u32> {
    return min(vec4<u32>(r0 + first) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
}

// The first tile column a lane owns (its lo columns are this + step * t, see store_block).
fn lane_column(lane: u32) -> u32 {
    return select(lane, 4u * lane, along_n());
}

// Eight rows of A at k: rows starting at r03 and r47.
fn load_a(r03: vec4<u32>, r47: vec4<u32>, a_base: u32, k: u32) -> array<vec4<f32>, 2> {
    if (A_MODE == A_MODE_TEXTURE_ALONG_K) {
        let x = (a_base + k) / 4u;
        let c = (a_base + k) & 3u;
        return array<vec4<f32>, 2>(
            vec4<f32>(a_texel(x, r03.x)[c], a_texel(x, r03.y)[c], a_texel(x, r03.z)[c], a_texel(x, r03.w)[c]),
            vec4<f32>(a_texel(x, r47.x)[c], a_texel(x, r47.y)[c], a_texel(x, r47.z)[c], a_texel(x, r47.w)[c]),
        );
    }
    if (A_MODE == A_MODE_TEXTURE_ALONG_M) {
        return array<vec4<f32>, 2>(a_texel(r03.x, a_base + k), a_texel(r47.x, a_base + k));
    }
    let ka = k * p.a_col;
    return array<vec4<f32>, 2>(
        vec4<f32>(a[r03.x + ka], a[r03.y + ka], a[r03.z + ka], a[r03.w + ka]),
        vec4<f32>(a[r47.x + ka], a[r47.y + ka], a[r47.z + ka], a[r47.w + ka]),
    );
}

// B's columns of this lane for the four k from k0: lo/hi of k0 + s in [2s], [2s + 1].
fn load_b_panel(pl: Plan, k0: u32) -> array<vec4<f32>, 8> {
    if (B_MODE == B_MODE_CONV_PHASES) {
        return conv_phase_panel(pl, k0);
    }
    if (B_MODE == B_MODE_CONV_PATCHES) {
        return conv_panel(pl, k0);
    }
    if (B_MODE == B_MODE_CONV_TAPS) {
        return conv_tap_panel(pl, k0);
    }
    if (B_MODE == B_MODE_ROWS_TEXTURE) {
        let y = pl.tex_start + k0;
        return array<vec4<f32>, 8>(
            texel(pl.tex_lo.x, y), texel(pl.tex_hi.x, y),
            texel(pl.tex_lo.x, y + 1u), texel(pl.tex_hi.x, y + 1u),
            texel(pl.tex_lo.x, y + 2u), texel(pl.tex_hi.x, y + 2u),
            texel(pl.tex_lo.x, y + 3u), texel(pl.tex_hi.x, y + 3u),
        );
    }
    if (B_MODE == B_MODE_COLUMNS_TEXTURE) {
        let x = pl.tex_start + k0 / 4u;
        return transpose_panel(
            texel(x, pl.tex_lo.x), texel(x, pl.tex_lo.y), texel(x, pl.tex_lo.z), texel(x, pl.tex_lo.w),
            texel(x, pl.tex_hi.x), texel(x, pl.tex_hi.y), texel(x, pl.tex_hi.z), texel(x, pl.tex_hi.w),
        );
    }
    if (B_MODE == B_MODE_ROWS_VEC4) {
        let r = p.b_row / 4u;
        let q = k0 * r;
        return array<vec4<f32>, 8>(
            b4[pl.cols_lo.x + q], b4[pl.cols_hi.x + q],
            b4[pl.cols_lo.x + q + r], b4[pl.cols_hi.x + q + r],
            b4[pl.cols_lo.x + q + 2u * r], b4[pl.cols_hi.x + q + 2u * r],
            b4[pl.cols_lo.x + q + 3u * r], b4[pl.cols_hi.x + q + 3u * r],
        );
    }
    if (B_MODE == B_MODE_COLUMNS_VEC4) {
        let q = k0 / 4u;
        return transpose_panel(
            b4[pl.cols_lo.x + q], b4[pl.cols_lo.y + q], b4[pl.cols_lo.z + q], b4[pl.cols_lo.w + q],
            b4[pl.cols_hi.x + q], b4[pl.cols_hi.y + q], b4[pl.cols_hi.z + q], b4[pl.cols_hi.w + q],
        );
    }
    let r = p.b_row;
    let q = k0 * r;
    return array<vec4<f32>, 8>(
        b_cols(pl.cols_lo, q), b_cols(pl.cols_hi, q),
        b_cols(pl.cols_lo, q + r), b_cols(pl.cols_hi, q + r),
        b_cols(pl.cols_lo, q + 2u * r), b_cols(pl.cols_hi, q + 2u * r),
        b_cols(pl.cols_lo, q + 3u * r), b_cols(pl.cols_hi, q + 3u * r),
    );
}

// Four k of each of the lane's eight columns (l0..l3 its lo columns, h0..h3 its hi ones) as
// the panel's k-major layout.
fn transpose_panel(l0: vec4<f32>, l1: vec4<f32>, l2: vec4<f32>, l3: vec4<f32>,
                   h0: vec4<f32>, h1: vec4<f32>, h2: vec4<f32>, h3: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        vec4<f32>(l0.x, l1.x, l2.x, l3.x), vec4<f32>(h0.x, h1.x, h2.x, h3.x),
        vec4<f32>(l0.y, l1.y, l2.y, l3.y), vec4<f32>(h0.y, h1.y, h2.y, h3.y),
        vec4<f32>(l0.z, l1.z, l2.z, l3.z), vec4<f32>(h0.z, h1.z, h2.z, h3.z),
        vec4<f32>(l0.w, l1.w, l2.w, l3.w), vec4<f32>(h0.w, h1.w, h2.w, h3.w),
    );
}

fn b_cols(cols: vec4<u32>, q: u32) -> vec4<f32> {
    return vec4<f32>(b_at(cols.x + q), b_at(cols.y + q), b_at(cols.z + q), b_at(cols.w + q));
}

// B's eight columns of this lane at one k, by scalar reads in any mode (for the tail).
fn b_at_k(pl: Plan, kk: u32) -> array<vec4<f32>, 2> {
    if (along_n()) {
        let q = kk * p.b_row;
        let lo = 4u * pl.cols_lo.x + q;
        let hi = 4u * pl.cols_hi.x + q;
        return array<vec4<f32>, 2>(
            vec4<f32>(b_at(lo), b_at(lo + 1u), b_at(lo + 2u), b_at(lo + 3u)),
            vec4<f32>(b_at(hi), b_at(hi + 1u), b_at(hi + 2u), b_at(hi + 3u)),
        );
    }
    let scale = select(1u, 4u, B_MODE == B_MODE_COLUMNS_VEC4);
    if (B_MODE == B_MODE_COLUMNS_TEXTURE) {
        return array<vec4<f32>, 2>(b_cols(pl.cols_lo, kk * p.b_row), b_cols(pl.cols_hi, kk * p.b_row));
    }
    let q = kk * p.b_row;
    return array<vec4<f32>, 2>(b_cols(pl.cols_lo * scale, q), b_cols(pl.cols_hi * scale, q));
}

// Groups of eight lanes per workgroup, 16 rows each: 4 (64-row tiles), or 1 or 2 for products with at most
// 16 or 32 rows, whose 64-row tiles would compute clamped copies of their last row.
override ROW_GROUPS: u32 = 4u;

// The product for invocation t of workgroup wid, lane `lane` (0..7) of its group. The entry
// point `forward` is in the lane-exchange file the registry appends (matmul_lanes_*.wgsl).
fn product(wid: vec3<u32>, t: u32, lane: u32) {
    let r0 = wid.y * 16u * ROW_GROUPS + 16u * (t / 8u);
    let bat = wid.z;
    let j0 = wid.x * 64u + lane_column(lane);
    let pl = make_plan(r0, j0, bat, lane);
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    let k_full = k_len & ~7u;
    // Rows r0..r0+7 in top, r0+8..r0+15 in bottom: each B value loaded feeds both. (32 rows
    // per subgroup, halving B's fetches per product, measured no faster, with either order of
    // the updates: examples/matmul_probe and the width-64 step.)
    var top = zero_block();
    var bottom = zero_block();
    // Each block's products go row by row (see row_four_k); 16 k per block measured no faster.
    for (var kb = 0u; kb < k_full; kb = kb + 8u) {
        let a_k = load_a_block(pl, kb, lane);
        let b = load_b_panels(pl, kb);
        top = block_eight_k(top, a_k, 0u, b[0], b[1]);
        bottom = block_eight_k(bottom, a_k, 2u, b[0], b[1]);
    }
    if (k_full < k_len) {
        // Fewer than 8 k remain: only those are shuffled from A and read from B, so nothing
        // past K (not even a non-finite neighbour) reaches the sums.
        let kk = min(k_full + lane, k_len - 1u);
        let at = load_a(pl.rows03, pl.rows47, pl.a_base, kk);
        let ab = load_a(pl.rows8b, pl.rows_cf, pl.a_base, kk);
        for (var s = 0u; s < k_len - k_full; s = s + 1u) {
            let bv = b_at_k(pl, k_full + s);
            top = rank1(top, group_value(at[0], s), group_value(at[1], s), bv[0], bv[1]);
            bottom = rank1(bottom, group_value(ab[0], s), group_value(ab[1], s), bv[0], bv[1]);
        }
    }
    if ((r0 >= p.m) | (j0 >= p.n)) {
        return;
    }
    if (implicit_conv()) {
        store_runs(top, pl, r0, j0);
        store_runs(bottom, pl, r0 + 8u, j0);
        return;
    }
    let step = select(8u, 1u, along_n());
    store_block(top, bat * p.m * p.n, r0, j0, step);
    store_block(bottom, bat * p.m * p.n, r0 + 8u, j0, step);
}

// B's two panels of the block at kb, both gathered by this lane (load_b_panels, unshared).
fn own_b_panels(pl: Plan, kb: u32) -> array<array<vec4<f32>, 8>, 2> {
    return array(load_b_panel(pl, kb), load_b_panel(pl, kb + 4u));
}

// A's sixteen rows at k = kb .. kb + 7, the same in every lane: lo[q][j] holds row 4q + j at
// kb .. kb + 3, hi[q][j] at kb + 4 .. kb + 7.
struct ABlock {
    lo: array<array<vec4<f32>, 4>, 4>,
    hi: array<array<vec4<f32>, 4>, 4>,
}

fn load_a_block(pl: Plan, kb: u32, lane: u32) -> ABlock {
    if (A_MODE == A_MODE_CONV_PATCHES) {
        // As A_MODE 1, with each lane's four runs gathered from x.
        let run = position_run(pl.a_base + kb + 4u * (lane & 1u));
        return quads_block(patch_run(pl.a_lines, run, 0u), patch_run(pl.a_lines, run, 1u),
                           patch_run(pl.a_lines, run, 2u), patch_run(pl.a_lines, run, 3u));
    }
    if (A_MODE == A_MODE_IMAGE_ROWS) {
        // As A_MODE 1, each lane's four texels at its rows' positions in the image.
        return quads_block(image_rows_texel(pl, kb, lane, pl.a_lines.x), image_rows_texel(pl, kb, lane, pl.a_lines.y),
                           image_rows_texel(pl, kb, lane, pl.a_lines.z), image_rows_texel(pl, kb, lane, pl.a_lines.w));
    }
    if (A_MODE == A_MODE_TEXTURE_ALONG_K) {
        // Lane 2j + h holds k kb + 4h .. kb + 4h + 3 of row j + 4q in quads[q]: four texel
        // fetches per 8 k where one per row would use a quarter of each texel.
        let x = (pl.a_base + kb) / 4u + (lane & 1u);
        return quads_block(a_texel(x, pl.a_lines.x), a_texel(x, pl.a_lines.y), a_texel(x, pl.a_lines.z),
                           a_texel(x, pl.a_lines.w));
    }
    // Lane l holds the rows at k = kb + l.
    let at = load_a(pl.rows03, pl.rows47, pl.a_base, kb + lane);
    let ab = load_a(pl.rows8b, pl.rows_cf, pl.a_base, kb + lane);
    let r03 = group_values(at[0]);
    let r47 = group_values(at[1]);
    let r8b = group_values(ab[0]);
    let rcf = group_values(ab[1]);
    return ABlock(
        array(by_row(lanes_0_3(r03)), by_row(lanes_0_3(r47)), by_row(lanes_0_3(r8b)), by_row(lanes_0_3(rcf))),
        array(by_row(lanes_4_7(r03)), by_row(lanes_4_7(r47)), by_row(lanes_4_7(r8b)), by_row(lanes_4_7(rcf))),
    );
}

// The block from each lane's four quads (lane 2j + h: k kb + 4h .. kb + 4h + 3 of row j + 4q
// in quad q).
fn quads_block(q0: vec4<f32>, q1: vec4<f32>, q2: vec4<f32>, q3: vec4<f32>) -> ABlock {
    let g0 = group_values(q0);
    let g1 = group_values(q1);
    let g2 = group_values(q2);
    let g3 = group_values(q3);
    return ABlock(
        array(even_lanes(g0), even_lanes(g1), even_lanes(g2), even_lanes(g3)),
        array(odd_lanes(g0), odd_lanes(g1), odd_lanes(g2), odd_lanes(g3)),
    );
}

// A group's values (group_values: lane l's in [l]) from lanes 0, 2, 4, 6 (even_lanes),
// 1, 3, 5, 7 (odd_lanes), 0-3 or 4-7.
fn even_lanes(g: array<vec4<f32>, 8>) -> array<vec4<f32>, 4> {
    return array(g[0], g[2], g[4], g[6]);
}

fn odd_lanes(g: array<vec4<f32>, 8>) -> array<vec4<f32>, 4> {
    return array(g[1], g[3], g[5], g[7]);
}

fn lanes_0_3(g: array<vec4<f32>, 8>) -> array<vec4<f32>, 4> {
    return array(g[0], g[1], g[2], g[3]);
}

fn lanes_4_7(g: array<vec4<f32>, 8>) -> array<vec4<f32>, 4> {
    return array(g[4], g[5], g[6], g[7]);
}

// Four k of four rows (v[s][j]: row j at k + s) as four rows' values at four k (out[j][s]).
// (Free on llvmpipe, which keeps each component of a vec4 in a register of its own.)
fn by_row(v: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
    return array(
        vec4<f32>(v[0][0], v[1][0], v[2][0], v[3][0]),
        vec4<f32>(v[0][1], v[1][1], v[2][1], v[3][1]),
        vec4<f32>(v[0][2], v[1][2], v[2][2], v[3][2]),
        vec4<f32>(v[0][3], v[1][3], v[2][3], v[3][3]),
    );
}

// One row's four columns of half `half` (0: lo, 1: hi) after four k; a[s] is the row's A at
// k + s. Blocks are updated row by row, each accumulator taking all its k at once, rather than
// k by k over the whole block: llvmpipe keeps every vec4 as four SIMD registers, so the 32
// accumulators live on the stack, and this order loads and stores each once per 8 k
// (the six products of examples/matmul_probe: 5-20% faster, BENCHMARKS.md).
fn row_four_k(acc: vec4<f32>, a: vec4<f32>, panel: array<vec4<f32>, 8>, half: u32) -> vec4<f32> {
    var r = fma(vec4<f32>(a.x), panel[half], acc);
    r = fma(vec4<f32>(a.y), panel[2u + half], r);
    r = fma(vec4<f32>(a.z), panel[4u + half], r);
    return fma(vec4<f32>(a.w), panel[6u + half], r);
}

// Block t (A's rows 4q .. 4q + 7 of the sixteen in a) after a's 8 k; b0, b1 hold B's panels at
// those k.
fn block_eight_k(t: Block, a: ABlock, q: u32, b0: array<vec4<f32>, 8>, b1: array<vec4<f32>, 8>) -> Block {
    return Block(
        row_eight_k(t.lo0, a, b0, b1, q, 0u, 0u),
        row_eight_k(t.hi0, a, b0, b1, q, 0u, 1u),
        row_eight_k(t.lo1, a, b0, b1, q, 1u, 0u),
        row_eight_k(t.hi1, a, b0, b1, q, 1u, 1u),
        row_eight_k(t.lo2, a, b0, b1, q, 2u, 0u),
        row_eight_k(t.hi2, a, b0, b1, q, 2u, 1u),
        row_eight_k(t.lo3, a, b0, b1, q, 3u, 0u),
        row_eight_k(t.hi3, a, b0, b1, q, 3u, 1u),
        row_eight_k(t.lo4, a, b0, b1, q + 1u, 0u, 0u),
        row_eight_k(t.hi4, a, b0, b1, q + 1u, 0u, 1u),
        row_eight_k(t.lo5, a, b0, b1, q + 1u, 1u, 0u),
        row_eight_k(t.hi5, a, b0, b1, q + 1u, 1u, 1u),
        row_eight_k(t.lo6, a, b0, b1, q + 1u, 2u, 0u),
        row_eight_k(t.hi6, a, b0, b1, q + 1u, 2u, 1u),
        row_eight_k(t.lo7, a, b0, b1, q + 1u, 3u, 0u),
        row_eight_k(t.hi7, a, b0, b1, q + 1u, 3u, 1u),
    );
}

// Row j of rows 4q .. 4q + 3, columns of half `half`, after the 8 k of a.
fn row_eight_k(acc: vec4<f32>, a: ABlock, b0: array<vec4<f32>, 8>, b1: array<vec4<f32>, 8>, q: u32, j: u32,
               half: u32) -> vec4<f32> {
    return row_four_k(row_four_k(acc, a.lo[q][j], b0, half), a.hi[q][j], b1, half);
}

// Stores rows i0 + r; lo holds columns c0 + step * t, hi columns c0 + 32 + step * t.
fn store_block(t: Block, base: u32, i0: u32, c0: u32, step: u32) {
    store_cols(base, i0 + 0u, c0, step, t.lo0, t.hi0);
    store_cols(base, i0 + 1u, c0, step, t.lo1, t.hi1);
    store_cols(base, i0 + 2u, c0, step, t.lo2, t.hi2);
    store_cols(base, i0 + 3u, c0, step, t.lo3, t.hi3);
    store_cols(base, i0 + 4u, c0, step, t.lo4, t.hi4);
    store_cols(base, i0 + 5u, c0, step, t.lo5, t.hi5);
    store_cols(base, i0 + 6u, c0, step, t.lo6, t.hi6);
    store_cols(base, i0 + 7u, c0, step, t.lo7, t.hi7);
}

fn store_cols(base: u32, i: u32, c0: u32, step: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (i >= p.m) {
        return;
    }
    let row = base + i * p.n;
    if (step == 1u) {
        // Along N, N is a multiple of 4: the four columns from c0 are whole and aligned.
        store_whole(row + c0, c0 < p.n, lo);
        store_whole(row + c0 + 32u, c0 + 32u < p.n, hi);
        return;
    }
    for (var t = 0u; t < 4u; t = t + 1u) {
        let j = c0 + step * t;
        if (j < p.n) {
            store_c(row + j, lo[t]);
        }
        if (j + 32u < p.n) {
            store_c(row + j + 32u, hi[t]);
        }
    }
}

