// 2-d convolution as implicit GEMM, with its two gradients side by side. Shapes (NCHW):
//   x [batch, c_in, h, w], weight [c_out, c_in, kh, kw], y [batch, c_out, oh, ow],
//   oh = (h + 2*pad - kh) / stride + 1.
// `forward`         y  = conv(x, weight)
// `backward_input`  dx = conv^T(dy, weight)   (also the forward pass of transposed convolution)
// `backward_weight` dw = corr(x, dy)
// Each invocation accumulates a 4x4 register block: 4 output positions by 4 channels.

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
// forward: x, weight -> y
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// backward_input: dy, weight -> dx
@group(0) @binding(1) var<storage, read> dy_for_input: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
// backward_weight: x, dy -> dw
@group(0) @binding(2) var<storage, read> dy_for_weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

override WG: u32 = 64u;

// Rows of the implicit GEMM are (batch, spatial) positions; four consecutive ones per invocation.
@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let spatial = p.oh * p.ow;
    let rows = p.batch * spatial;
    let row0 = (gid.x + gid.y * groups.x * WG) * 4u;
    let co0 = gid.z * 4u;
    if (row0 >= rows) {
        return;
    }
    let plane = p.h * p.w;
    let ksize = p.kh * p.kw;
    var x_base: vec4<u32>;
    var iy0: vec4<i32>;
    var ix0: vec4<i32>;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = min(row0 + r, rows - 1u);
        let n = row / spatial;
        let s = row % spatial;
        x_base[r] = n * p.c_in * plane;
        iy0[r] = i32((s / p.ow) * p.stride) - i32(p.pad);
        ix0[r] = i32((s % p.ow) * p.stride) - i32(p.pad);
    }
    let last_co = p.c_out - 1u;
    let w_base = vec4<u32>(min(co0, last_co), min(co0 + 1u, last_co), min(co0 + 2u, last_co), min(co0 + 3u, last_co))
        * (p.c_in * ksize);
    var acc: array<vec4<f32>, 4>;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            var off: vec4<u32>;
            var ok: vec4<bool>;
            for (var r = 0u; r < 4u; r = r + 1u) {
                let iy = iy0[r] + i32(ky);
                let ix = ix0[r] + i32(kx);
                ok[r] = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
                off[r] = select(0u, x_base[r] + u32(iy) * p.w + u32(ix), ok[r]);
            }
            let kofs = ky * p.kw + kx;
            for (var ci = 0u; ci < p.c_in; ci = ci + 1u) {
                let cofs = ci * plane;
                let xv = vec4<f32>(
                    select(0.0, x[off.x + cofs], ok.x),
                    select(0.0, x[off.y + cofs], ok.y),
                    select(0.0, x[off.z + cofs], ok.z),
                    select(0.0, x[off.w + cofs], ok.w));
                let wk = ci * ksize + kofs;
                let wv = vec4<f32>(weight[w_base.x + wk], weight[w_base.y + wk], weight[w_base.z + wk], weight[w_base.w + wk]);
                acc[0] = acc[0] + xv.x * wv;
                acc[1] = acc[1] + xv.y * wv;
                acc[2] = acc[2] + xv.z * wv;
                acc[3] = acc[3] + xv.w * wv;
            }
        }
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + r;
        if (row < rows) {
            let n = row / spatial;
            let s = row % spatial;
            for (var t = 0u; t < 4u; t = t + 1u) {
                if (co0 + t < p.c_out) {
                    y[(n * p.c_out + co0 + t) * spatial + s] = acc[r][t];
                }
            }
        }
    }
}

// Rows are input positions (batch, iy, ix); each gathers the output positions whose window
// covers it: oy * stride = iy + pad - ky must hold exactly.
@compute @workgroup_size(WG)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let plane = p.h * p.w;
    let rows = p.batch * plane;
    let row0 = (gid.x + gid.y * groups.x * WG) * 4u;
    let ci0 = gid.z * 4u;
    if (row0 >= rows) {
        return;
    }
    let spatial = p.oh * p.ow;
    let ksize = p.kh * p.kw;
    var dy_base: vec4<u32>;
    var ty0: vec4<i32>;
    var tx0: vec4<i32>;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = min(row0 + r, rows - 1u);
        let n = row / plane;
        let s = row % plane;
        dy_base[r] = n * p.c_out * spatial;
        ty0[r] = i32(s / p.w) + i32(p.pad);
        tx0[r] = i32(s % p.w) + i32(p.pad);
    }
    let last_ci = p.c_in - 1u;
    let w_ci = vec4<u32>(min(ci0, last_ci), min(ci0 + 1u, last_ci), min(ci0 + 2u, last_ci), min(ci0 + 3u, last_ci))
        * ksize;
    let st = i32(p.stride);
    var acc: array<vec4<f32>, 4>;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            var off: vec4<u32>;
            var ok: vec4<bool>;
            for (var r = 0u; r < 4u; r = r + 1u) {
                let ty = ty0[r] - i32(ky);
                let tx = tx0[r] - i32(kx);
                let oy = ty / st;
                let ox = tx / st;
                ok[r] = ty >= 0 && tx >= 0 && oy * st == ty && ox * st == tx && oy < i32(p.oh) && ox < i32(p.ow);
                off[r] = select(0u, dy_base[r] + u32(oy) * p.ow + u32(ox), ok[r]);
            }
            if (!any(ok)) {
                continue;
            }
            let kofs = ky * p.kw + kx;
            for (var co = 0u; co < p.c_out; co = co + 1u) {
                let cofs = co * spatial;
                let gv = vec4<f32>(
                    select(0.0, dy_for_input[off.x + cofs], ok.x),
                    select(0.0, dy_for_input[off.y + cofs], ok.y),
                    select(0.0, dy_for_input[off.z + cofs], ok.z),
                    select(0.0, dy_for_input[off.w + cofs], ok.w));
                let wk = co * p.c_in * ksize + kofs;
                let wv = vec4<f32>(weight[w_ci.x + wk], weight[w_ci.y + wk], weight[w_ci.z + wk], weight[w_ci.w + wk]);
                acc[0] = acc[0] + gv.x * wv;
                acc[1] = acc[1] + gv.y * wv;
                acc[2] = acc[2] + gv.z * wv;
                acc[3] = acc[3] + gv.w * wv;
            }
        }
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + r;
        if (row < rows) {
            let n = row / plane;
            let s = row % plane;
            for (var t = 0u; t < 4u; t = t + 1u) {
                if (ci0 + t < p.c_in) {
                    dx[(n * p.c_in + ci0 + t) * plane + s] = acc[r][t];
                }
            }
        }
    }
}

// Rows are output channels, columns are (c_in, ky, kx) taps; the reduction runs over every
// (batch, oy, ox) position.
@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let ksize = p.kh * p.kw;
    let cols = p.c_in * ksize;
    let col0 = (gid.x + gid.y * groups.x * WG) * 4u;
    let co0 = gid.z * 4u;
    if (col0 >= cols) {
        return;
    }
    let plane = p.h * p.w;
    let spatial = p.oh * p.ow;
    var x_ch: vec4<u32>;
    var ky: vec4<i32>;
    var kx: vec4<i32>;
    for (var t = 0u; t < 4u; t = t + 1u) {
        let col = min(col0 + t, cols - 1u);
        let ci = col / ksize;
        let k = col % ksize;
        x_ch[t] = ci * plane;
        ky[t] = i32(k / p.kw) - i32(p.pad);
        kx[t] = i32(k % p.kw) - i32(p.pad);
    }
    let last_co = p.c_out - 1u;
    let g_co = vec4<u32>(min(co0, last_co), min(co0 + 1u, last_co), min(co0 + 2u, last_co), min(co0 + 3u, last_co))
        * spatial;
    var acc: array<vec4<f32>, 4>;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let x_n = n * p.c_in * plane;
        let g_n = n * p.c_out * spatial;
        for (var oy = 0u; oy < p.oh; oy = oy + 1u) {
            let base_y = i32(oy * p.stride);
            for (var ox = 0u; ox < p.ow; ox = ox + 1u) {
                let base_x = i32(ox * p.stride);
                let g_off = g_n + oy * p.ow + ox;
                let gv = vec4<f32>(
                    dy_for_weight[g_co.x + g_off], dy_for_weight[g_co.y + g_off],
                    dy_for_weight[g_co.z + g_off], dy_for_weight[g_co.w + g_off]);
                var xv: vec4<f32>;
                for (var t = 0u; t < 4u; t = t + 1u) {
                    let iy = base_y + ky[t];
                    let ix = base_x + kx[t];
                    let ok = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
                    xv[t] = select(0.0, x[select(0u, x_n + x_ch[t] + u32(iy) * p.w + u32(ix), ok)], ok);
                }
                acc[0] = acc[0] + gv.x * xv;
                acc[1] = acc[1] + gv.y * xv;
                acc[2] = acc[2] + gv.z * xv;
                acc[3] = acc[3] + gv.w * xv;
            }
        }
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        if (co0 + r < p.c_out) {
            for (var t = 0u; t < 4u; t = t + 1u) {
                if (col0 + t < cols) {
                    dw[(co0 + r) * cols + col0 + t] = acc[r][t];
                }
            }
        }
    }
}
