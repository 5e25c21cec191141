// The matmul of matmul.wgsl for devices whose subgroups are 8 invocations wide (lavapipe on
// AVX2: one subgroup = one SIMD vector = one row of the 8x8 workgroup). Same parameters, tiling
// and results as matmul.wgsl; what differs is how operands reach the lanes, shaped by how
// llvmpipe compiles loads: a storage load whose address differs across lanes becomes a loop
// over the lanes (an exec-mask branch and a bounds check each), paid per load instruction.
// - A: the eight rows of a subgroup are the same for all its lanes, so each lane loads A at its
//   own k of a block of 8 and the values reach every lane by subgroupBroadcast from a constant
//   lane (an extract and a splat; subgroupShuffle with a variable lane is dearer and only
//   serves the tails).
// - B: read as vec4s where its layout allows (forward_n4, forward_k4), one lane loop per four
//   values.
// - Whole blocks of 8 k run with no per-k guards; a guarded tail takes the rest of K.

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
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// A one-dimensional workgroup of 64 (naga allows subgroup builtins only there), read as 8x8:
// invocation t has column lane t % 8 and row t / 8, and each row of 8 is one subgroup. This is
// the general entry (any strides); forward_n4 and forward_k4 below read B as vec4s.
@compute @workgroup_size(64, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
           @builtin(subgroup_invocation_id) lane: u32) {
    let i0 = wid.y * 64u + t / 8u;
    let j0 = wid.x * 64u + lane;
    let bat = wid.z;
    let rows = row_starts(i0, bat * p.a_batch);
    let last_j = p.n - 1u;
    let off = bat * p.b_batch;
    let cl = min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(off);
    let ch = min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(off);
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    let k_full = k_len & ~7u;
    var acc = zero_block();
    for (var kb = 0u; kb < k_full; kb = kb + 8u) {
        let av = load_a(rows, (kb + lane) * p.a_col);
        let bk = kb * p.b_row;
        let r = p.b_row;
        acc = rank1b(acc, subgroupBroadcast(av[0], 0u), subgroupBroadcast(av[1], 0u), load_b(cl, bk), load_b(ch, bk));
        acc = rank1b(acc, subgroupBroadcast(av[0], 1u), subgroupBroadcast(av[1], 1u), load_b(cl, bk + r), load_b(ch, bk + r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 2u), subgroupBroadcast(av[1], 2u), load_b(cl, bk + 2u * r), load_b(ch, bk + 2u * r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 3u), subgroupBroadcast(av[1], 3u), load_b(cl, bk + 3u * r), load_b(ch, bk + 3u * r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 4u), subgroupBroadcast(av[1], 4u), load_b(cl, bk + 4u * r), load_b(ch, bk + 4u * r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 5u), subgroupBroadcast(av[1], 5u), load_b(cl, bk + 5u * r), load_b(ch, bk + 5u * r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 6u), subgroupBroadcast(av[1], 6u), load_b(cl, bk + 6u * r), load_b(ch, bk + 6u * r));
        acc = rank1b(acc, subgroupBroadcast(av[0], 7u), subgroupBroadcast(av[1], 7u), load_b(cl, bk + 7u * r), load_b(ch, bk + 7u * r));
    }
    if (k_full < k_len) {
        let k_ok = k_full + lane < k_len;
        let av = load_a(rows, min(k_full + lane, k_len - 1u) * p.a_col);
        let a03 = select(vec4<f32>(0.0), av[0], k_ok);
        let a47 = select(vec4<f32>(0.0), av[1], k_ok);
        for (var s = 0u; s < k_len - k_full; s = s + 1u) {
            let bk = (k_full + s) * p.b_row;
            acc = rank1(acc, a03, a47, s, load_b(cl, bk), load_b(ch, bk));
        }
    }
    if (i0 >= p.m || j0 >= p.n) {
        return;
    }
    store_block(acc, bat * p.m * p.n, i0, j0, 8u);
}

fn load_b(cols: vec4<u32>, bk: u32) -> vec4<f32> {
    return vec4<f32>(b[cols.x + bk], b[cols.y + bk], b[cols.z + bk], b[cols.w + bk]);
}

// ---------------------------------------------------------------------------------------------
// Vec4 variants. llvmpipe turns every storage load whose address differs across lanes into a
// loop over the lanes with an exec-mask branch and a bounds check per lane; a vec4 load pays
// that loop once for four values. When B is contiguous along N (forward and input-gradient
// products) or along K (weight-gradient products, B transposed), each lane reads B as vec4s:
// two loop runs per k instead of eight. The main loop covers whole blocks of 8 k with no
// per-k guards; a guarded tail takes the rest.

@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

// A lane's 8x8 register block: rows r (8 apart), columns in lo (four) and hi (four more).
struct Block {
    lo0: vec4<f32>, hi0: vec4<f32>, lo1: vec4<f32>, hi1: vec4<f32>,
    lo2: vec4<f32>, hi2: vec4<f32>, lo3: vec4<f32>, hi3: vec4<f32>,
    lo4: vec4<f32>, hi4: vec4<f32>, lo5: vec4<f32>, hi5: vec4<f32>,
    lo6: vec4<f32>, hi6: vec4<f32>, lo7: vec4<f32>, hi7: vec4<f32>,
}

// Adds the outer product of one k: A's eight rows come from lane `src` (which loaded that k)
// and B's eight columns are lo and hi.
fn rank1(t: Block, a03: vec4<f32>, a47: vec4<f32>, src: u32, lo: vec4<f32>, hi: vec4<f32>) -> Block {
    return rank1b(t, subgroupShuffle(a03, src), subgroupShuffle(a47, src), lo, hi);
}

// rank1 with A's eight rows already broadcast: s holds rows 0-3, u rows 4-7.
fn rank1b(t: Block, s: vec4<f32>, u: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Block {
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

// Four columns' vec4s along k -> four vec4s across the columns, one per k.
fn transpose4(c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(
        vec4<f32>(c0.x, c1.x, c2.x, c3.x),
        vec4<f32>(c0.y, c1.y, c2.y, c3.y),
        vec4<f32>(c0.z, c1.z, c2.z, c3.z),
        vec4<f32>(c0.w, c1.w, c2.w, c3.w),
    );
}

// Where a lane's eight rows of A start (clamped to the last row; clamped rows are not stored).
struct RowStarts {
    r03: vec4<u32>,
    r47: vec4<u32>,
}

fn row_starts(i0: u32, a_off: u32) -> RowStarts {
    let last_i = p.m - 1u;
    let r03 = min(vec4<u32>(i0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_i));
    let r47 = min(vec4<u32>(i0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_i));
    return RowStarts(r03 * p.a_row + vec4<u32>(a_off), r47 * p.a_row + vec4<u32>(a_off));
}

fn load_a(rows: RowStarts, ka: u32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(
        vec4<f32>(a[rows.r03.x + ka], a[rows.r03.y + ka], a[rows.r03.z + ka], a[rows.r03.w + ka]),
        vec4<f32>(a[rows.r47.x + ka], a[rows.r47.y + ka], a[rows.r47.z + ka], a[rows.r47.w + ka]),
    );
}

fn zero_block() -> Block {
    let z = vec4<f32>(0.0);
    return Block(z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z);
}

// Stores rows i0 + 8r; lo holds columns c0 + step * t, hi columns c0 + 32 + step * t.
fn store_block(t: Block, base: u32, i0: u32, c0: u32, step: u32) {
    store_cols(base, i0 + 0u, c0, step, t.lo0, t.hi0);
    store_cols(base, i0 + 8u, c0, step, t.lo1, t.hi1);
    store_cols(base, i0 + 16u, c0, step, t.lo2, t.hi2);
    store_cols(base, i0 + 24u, c0, step, t.lo3, t.hi3);
    store_cols(base, i0 + 32u, c0, step, t.lo4, t.hi4);
    store_cols(base, i0 + 40u, c0, step, t.lo5, t.hi5);
    store_cols(base, i0 + 48u, c0, step, t.lo6, t.hi6);
    store_cols(base, i0 + 56u, c0, step, t.lo7, t.hi7);
}

fn store_cols(base: u32, i: u32, c0: u32, step: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (i >= p.m) {
        return;
    }
    let row = base + i * p.n;
    for (var t = 0u; t < 4u; t = t + 1u) {
        let j = c0 + step * t;
        if (j < p.n) {
            c[row + j] = lo[t];
        }
        if (j + 32u < p.n) {
            c[row + j + 32u] = hi[t];
        }
    }
}

// B contiguous along N (b_col = 1; N, b_row and b_batch multiples of 4). Lane l owns columns
// 4l..4l+3 and 32+4l..32+4l+3 of the tile, one vec4 load each per k.
@compute @workgroup_size(64, 1, 1)
fn forward_n4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
              @builtin(subgroup_invocation_id) lane: u32) {
    let i0 = wid.y * 64u + t / 8u;
    let j0 = wid.x * 64u + 4u * lane;
    let bat = wid.z;
    let rows = row_starts(i0, bat * p.a_batch);
    // Column groups past the edge load the last group (N is a multiple of 4); never stored.
    let g_lo = (min(j0, p.n - 4u) + bat * p.b_batch) / 4u;
    let g_hi = (min(j0 + 32u, p.n - 4u) + bat * p.b_batch) / 4u;
    let row4 = p.b_row / 4u;
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    let k_full = k_len & ~7u;
    var acc = zero_block();
    for (var kb = 0u; kb < k_full; kb = kb + 8u) {
        let av = load_a(rows, (kb + lane) * p.a_col);
        let bk = kb * row4;
        acc = rank1b(acc, subgroupBroadcast(av[0], 0u), subgroupBroadcast(av[1], 0u), b4[g_lo + bk], b4[g_hi + bk]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 1u), subgroupBroadcast(av[1], 1u), b4[g_lo + bk + row4], b4[g_hi + bk + row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 2u), subgroupBroadcast(av[1], 2u), b4[g_lo + bk + 2u * row4], b4[g_hi + bk + 2u * row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 3u), subgroupBroadcast(av[1], 3u), b4[g_lo + bk + 3u * row4], b4[g_hi + bk + 3u * row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 4u), subgroupBroadcast(av[1], 4u), b4[g_lo + bk + 4u * row4], b4[g_hi + bk + 4u * row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 5u), subgroupBroadcast(av[1], 5u), b4[g_lo + bk + 5u * row4], b4[g_hi + bk + 5u * row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 6u), subgroupBroadcast(av[1], 6u), b4[g_lo + bk + 6u * row4], b4[g_hi + bk + 6u * row4]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 7u), subgroupBroadcast(av[1], 7u), b4[g_lo + bk + 7u * row4], b4[g_hi + bk + 7u * row4]);
    }
    if (k_full < k_len) {
        let k_ok = k_full + lane < k_len;
        let av = load_a(rows, min(k_full + lane, k_len - 1u) * p.a_col);
        let a03 = select(vec4<f32>(0.0), av[0], k_ok);
        let a47 = select(vec4<f32>(0.0), av[1], k_ok);
        for (var s = 0u; s < k_len - k_full; s = s + 1u) {
            let bk = (k_full + s) * row4;
            acc = rank1(acc, a03, a47, s, b4[g_lo + bk], b4[g_hi + bk]);
        }
    }
    if (i0 >= p.m || j0 >= p.n) {
        return;
    }
    store_block(acc, bat * p.m * p.n, i0, j0, 1u);
}

// B contiguous along K (b_row = 1; b_col and b_batch multiples of 4). Lane l owns columns
// l + 8t as in `forward` and reads four k of each column per vec4 load.
@compute @workgroup_size(64, 1, 1)
fn forward_k4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
              @builtin(subgroup_invocation_id) lane: u32) {
    let i0 = wid.y * 64u + t / 8u;
    let j0 = wid.x * 64u + lane;
    let bat = wid.z;
    let rows = row_starts(i0, bat * p.a_batch);
    let last_j = p.n - 1u;
    let off = bat * p.b_batch;
    let cl = (min(vec4<u32>(j0) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(off)) / 4u;
    let ch = (min(vec4<u32>(j0) + vec4<u32>(32u, 40u, 48u, 56u), vec4<u32>(last_j)) * p.b_col + vec4<u32>(off)) / 4u;
    let k_len = select(p.k, p.k_last, bat + 1u == p.batch);
    let k_full = k_len & ~7u;
    var acc = zero_block();
    for (var kb = 0u; kb < k_full; kb = kb + 8u) {
        let av = load_a(rows, (kb + lane) * p.a_col);
        let q = kb / 4u;
        let lo = transpose4(b4[cl.x + q], b4[cl.y + q], b4[cl.z + q], b4[cl.w + q]);
        let hi = transpose4(b4[ch.x + q], b4[ch.y + q], b4[ch.z + q], b4[ch.w + q]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 0u), subgroupBroadcast(av[1], 0u), lo[0], hi[0]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 1u), subgroupBroadcast(av[1], 1u), lo[1], hi[1]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 2u), subgroupBroadcast(av[1], 2u), lo[2], hi[2]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 3u), subgroupBroadcast(av[1], 3u), lo[3], hi[3]);
        let lo2 = transpose4(b4[cl.x + q + 1u], b4[cl.y + q + 1u], b4[cl.z + q + 1u], b4[cl.w + q + 1u]);
        let hi2 = transpose4(b4[ch.x + q + 1u], b4[ch.y + q + 1u], b4[ch.z + q + 1u], b4[ch.w + q + 1u]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 4u), subgroupBroadcast(av[1], 4u), lo2[0], hi2[0]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 5u), subgroupBroadcast(av[1], 5u), lo2[1], hi2[1]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 6u), subgroupBroadcast(av[1], 6u), lo2[2], hi2[2]);
        acc = rank1b(acc, subgroupBroadcast(av[0], 7u), subgroupBroadcast(av[1], 7u), lo2[3], hi2[3]);
    }
    if (k_full < k_len) {
        // Fewer than 8 k remain: only those are shuffled from A and read from B, so nothing
        // past K (not even a non-finite neighbour) reaches the sums.
        let k_ok = k_full + lane < k_len;
        let av = load_a(rows, min(k_full + lane, k_len - 1u) * p.a_col);
        let a03 = select(vec4<f32>(0.0), av[0], k_ok);
        let a47 = select(vec4<f32>(0.0), av[1], k_ok);
        for (var s = 0u; s < k_len - k_full; s = s + 1u) {
            let kk = k_full + s;
            let q = kk / 4u;
            let e = kk % 4u;
            let lo = vec4<f32>(b4[cl.x + q][e], b4[cl.y + q][e], b4[cl.z + q][e], b4[cl.w + q][e]);
            let hi = vec4<f32>(b4[ch.x + q][e], b4[ch.y + q][e], b4[ch.z + q][e], b4[ch.w + q][e]);
            acc = rank1(acc, a03, a47, s, lo, hi);
        }
    }
    if (i0 >= p.m || j0 >= p.n) {
        return;
    }
    store_block(acc, bat * p.m * p.n, i0, j0, 8u);
}
