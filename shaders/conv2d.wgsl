// 2-d convolution lowered onto the matmul kernel (matmul.wgsl), which is the fastest code path
// on lavapipe. Shapes (NCHW):
//   x [batch, c_in, h, w], weight [c_out, c_in, kh, kw], y [batch, c_out, oh, ow],
//   oh = (h + 2*pad - kh) / stride + 1.
// The patch matrix `cols` is [c_in*kh*kw, batch*oh*ow]: row (ci, ky, kx), column (n, oy, ox).
//   forward:          y    = W · cols                 (then [c_out, batch, ...] -> NCHW)
//   backward_weight:  dW   = dy · cols^T
//   backward_input:   dcols = W^T · dy, dx = col2im(dcols)   (= transposed conv's forward)
// `im2col` builds cols from x; `col2im` is its adjoint, summing every patch entry that read a
// pixel back onto it.

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

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    let spatial = p.oh * p.ow;
    let width = p.batch * spatial;
    let ksize = p.kh * p.kw;
    if (i >= p.c_in * ksize * width) {
        return;
    }
    let row = i / width;
    let col = i % width;
    let ci = row / ksize;
    let ky = (row % ksize) / p.kw;
    let kx = row % p.kw;
    let n = col / spatial;
    let s = col % spatial;
    let iy = i32((s / p.ow) * p.stride + ky) - i32(p.pad);
    let ix = i32((s % p.ow) * p.stride + kx) - i32(p.pad);
    let inside = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    let src = ((n * p.c_in + ci) * p.h + u32(max(iy, 0))) * p.w + u32(max(ix, 0));
    cols[i] = select(0.0, x[select(0u, src, inside)], inside);
}

// One invocation per pixel of dx; a pixel was read by patch (oy, ox) through tap (ky, kx)
// exactly when oy * stride = iy + pad - ky (and likewise for x).
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WG;
    let plane = p.h * p.w;
    if (i >= p.batch * p.c_in * plane) {
        return;
    }
    let n = i / (p.c_in * plane);
    let ci = (i / plane) % p.c_in;
    let iy = i32((i % plane) / p.w);
    let ix = i32(i % p.w);
    let spatial = p.oh * p.ow;
    let width = p.batch * spatial;
    let st = i32(p.stride);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let ty = iy + i32(p.pad) - i32(ky);
        let oy = ty / st;
        if (ty < 0 || oy * st != ty || oy >= i32(p.oh)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let tx = ix + i32(p.pad) - i32(kx);
            let ox = tx / st;
            if (tx < 0 || ox * st != tx || ox >= i32(p.ow)) {
                continue;
            }
            let row = (ci * p.kh + ky) * p.kw + kx;
            acc = acc + dcols[row * width + n * spatial + u32(oy) * p.ow + u32(ox)];
        }
    }
    dx[i] = acc;
}
