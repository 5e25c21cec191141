//! Plain Rust f64 reference implementations of every kernel, for tests and finite differences.
//! Written for clarity, not speed: loops straight from the definitions.

use crate::tensor::kernels::{broadcast_strides, contiguous_strides};
use crate::tensor::{BinaryOp, UnaryOp};

/// op(x) elementwise.
pub fn unary(op: UnaryOp, alpha: f64, beta: f64, x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|&v| match op {
            UnaryOp::Neg => -v,
            UnaryOp::Exp => v.exp(),
            UnaryOp::Log => v.ln(),
            UnaryOp::Sqrt => v.sqrt(),
            UnaryOp::Abs => v.abs(),
            UnaryOp::Tanh => v.tanh(),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            UnaryOp::Relu => v.max(0.0),
            UnaryOp::LeakyRelu => {
                if v > 0.0 {
                    v
                } else {
                    alpha * v
                }
            }
            UnaryOp::Softplus => (1.0 + v.exp()).ln(),
            UnaryOp::Recip => 1.0 / v,
            UnaryOp::Pow => v.powf(alpha),
            UnaryOp::Affine => alpha * v + beta,
            UnaryOp::Step => {
                if v > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            UnaryOp::LeakySlope => {
                if v > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            UnaryOp::Sign => {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Clamp => v.clamp(alpha, beta),
            UnaryOp::InRange => {
                if v >= alpha && v <= beta {
                    1.0
                } else {
                    0.0
                }
            }
        })
        .collect()
}

/// Where tests check a unary op: (alpha, beta, inputs from, inputs to), a range where the op is
/// defined and smooth enough between its kinks for finite differences. The tests sweep
/// `UnaryOp::ALL` through this, so a new op is tested once it has its formula above and its
/// line here.
pub fn unary_test_case(op: UnaryOp) -> (f64, f64, f64, f64) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt => (0.0, 0.0, 0.2, 3.0),
        UnaryOp::Recip => (0.0, 0.0, 0.3, 3.0),
        UnaryOp::Exp | UnaryOp::Tanh => (0.0, 0.0, -2.0, 2.0),
        UnaryOp::Sigmoid | UnaryOp::Softplus => (0.0, 0.0, -4.0, 4.0),
        UnaryOp::LeakyRelu | UnaryOp::LeakySlope => (0.2, 0.0, -2.0, 2.0),
        UnaryOp::Pow => (3.0, 0.0, -2.0, 2.0),
        UnaryOp::Affine => (-1.5, 0.3, -2.0, 2.0),
        UnaryOp::Clamp | UnaryOp::InRange => (-0.5, 0.7, -2.0, 2.0),
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Step | UnaryOp::Sign => (0.0, 0.0, -2.0, 2.0),
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = i % shape[d];
        i /= shape[d];
    }
    c
}

/// a op b with numpy broadcasting to `out_shape`.
pub fn binary(
    op: BinaryOp,
    a: &[f64],
    a_shape: &[usize],
    b: &[f64],
    b_shape: &[usize],
    out_shape: &[usize],
) -> Vec<f64> {
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let n: usize = out_shape.iter().product();
    (0..n)
        .map(|i| {
            let c = unravel(i, out_shape);
            let u = a[c.iter().zip(&sa).map(|(x, s)| x * s).sum::<usize>()];
            let v = b[c.iter().zip(&sb).map(|(x, s)| x * s).sum::<usize>()];
            match op {
                BinaryOp::Add => u + v,
                BinaryOp::Sub => u - v,
                BinaryOp::Mul => u * v,
                BinaryOp::Div => u / v,
                BinaryOp::Max => u.max(v),
                BinaryOp::Min => u.min(v),
                BinaryOp::Greater => (u > v) as u8 as f64,
                BinaryOp::Equal => (u == v) as u8 as f64,
            }
        })
        .collect()
}

/// Sum (or max) over `axes`, keeping them with extent 1.
pub fn reduce(x: &[f64], shape: &[usize], axes: &[usize], max: bool) -> Vec<f64> {
    let out_shape: Vec<usize> = shape.iter().enumerate().map(|(d, &e)| if axes.contains(&d) { 1 } else { e }).collect();
    let out_strides = contiguous_strides(&out_shape);
    let n_out: usize = out_shape.iter().product();
    let mut out = vec![if max { f64::NEG_INFINITY } else { 0.0 }; n_out];
    for (i, &v) in x.iter().enumerate() {
        let c = unravel(i, shape);
        let o: usize =
            c.iter().zip(&out_shape).zip(&out_strides).map(|((&x, &e), &s)| if e == 1 { 0 } else { x * s }).sum();
        out[o] = if max { out[o].max(v) } else { out[o] + v };
    }
    out
}

/// x with its axes in the order `perm`.
pub fn permute(x: &[f64], shape: &[usize], perm: &[usize]) -> Vec<f64> {
    let strides = contiguous_strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| {
            let c = unravel(i, &out_shape);
            x[c.iter().zip(perm).map(|(&v, &p)| v * strides[p]).sum::<usize>()]
        })
        .collect()
}

/// Zero padding with (before, after) per axis.
pub fn pad(x: &[f64], shape: &[usize], pads: &[(usize, usize)]) -> Vec<f64> {
    let out_shape: Vec<usize> = shape.iter().zip(pads).map(|(&e, p)| e + p.0 + p.1).collect();
    let strides = contiguous_strides(shape);
    let n: usize = out_shape.iter().product();
    (0..n)
        .map(|i| {
            let c = unravel(i, &out_shape);
            let mut idx = 0;
            for d in 0..shape.len() {
                if c[d] < pads[d].0 || c[d] - pads[d].0 >= shape[d] {
                    return 0.0;
                }
                idx += (c[d] - pads[d].0) * strides[d];
            }
            x[idx]
        })
        .collect()
}

/// Mirror padding of the last two axes.
pub fn reflect_pad2d(x: &[f64], shape: &[usize], top: usize, bottom: usize, left: usize, right: usize) -> Vec<f64> {
    let r = shape.len();
    let (h, w) = (shape[r - 2], shape[r - 1]);
    let planes = x.len() / (h * w);
    let (oh, ow) = (h + top + bottom, w + left + right);
    let reflect = |t: isize, size: isize| {
        if t < 0 {
            -t
        } else if t >= size {
            2 * (size - 1) - t
        } else {
            t
        }
    };
    let mut out = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        for y in 0..oh {
            for xx in 0..ow {
                let iy = reflect(y as isize - top as isize, h as isize) as usize;
                let ix = reflect(xx as isize - left as isize, w as isize) as usize;
                out.push(x[p * h * w + iy * w + ix]);
            }
        }
    }
    out
}

/// C[batch, m, n] with A stored [batch, m, k] (or [batch, k, m] when trans_a) and B stored
/// [batch, k, n] (or [batch, n, k] when trans_b).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &[f64],
    b: &[f64],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Vec<f64> {
    let mut c = vec![0.0; batch * m * n];
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for kk in 0..k {
                    let av = if trans_a { a[bt * m * k + kk * m + i] } else { a[bt * m * k + i * k + kk] };
                    let bv = if trans_b { b[bt * k * n + j * k + kk] } else { b[bt * k * n + kk * n + j] };
                    acc += av * bv;
                }
                c[bt * m * n + i * n + j] = acc;
            }
        }
    }
    c
}

/// Output extent of a convolution along one axis.
pub fn conv_out(size: usize, k: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad - k) / stride + 1
}

/// y [n, co, oh, ow] = conv(x [n, ci, h, w], w [co, ci, kh, kw]).
pub fn conv2d(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], stride: usize, pad: usize) -> Vec<f64> {
    let [n, ci, h, wd] = xs;
    let [co, _, kh, kw] = ws;
    let (oh, ow) = (conv_out(h, kh, stride, pad), conv_out(wd, kw, stride, pad));
    let mut y = vec![0.0; n * co * oh * ow];
    for b in 0..n {
        for o in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0;
                    for c in 0..ci {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky) as isize - pad as isize;
                                let ix = (ox * stride + kx) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += x[((b * ci + c) * h + iy as usize) * wd + ix as usize]
                                        * w[((o * ci + c) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                    y[((b * co + o) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

/// PyTorch's conv_transpose2d: x [n, ci, h, w], w [ci, co, kh, kw] -> [n, co, out_h, out_w],
/// each input pixel scattering its weighted kernel into the output.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    stride: usize,
    pad: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f64> {
    let [n, ci, h, wd] = xs;
    let [_, co, kh, kw] = ws;
    let mut y = vec![0.0; n * co * out_h * out_w];
    for b in 0..n {
        for c in 0..ci {
            for iy in 0..h {
                for ix in 0..wd {
                    let v = x[((b * ci + c) * h + iy) * wd + ix];
                    for o in 0..co {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let oy = (iy * stride + ky) as isize - pad as isize;
                                let ox = (ix * stride + kx) as isize - pad as isize;
                                if oy >= 0 && ox >= 0 && (oy as usize) < out_h && (ox as usize) < out_w {
                                    y[((b * co + o) * out_h + oy as usize) * out_w + ox as usize] +=
                                        v * w[((c * co + o) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// dw [co, ci, kh, kw] of conv2d given x and the output gradient dy [n, co, oh, ow].
#[allow(clippy::too_many_arguments)] // the convolution's geometry, as the GPU op takes it
pub fn conv2d_weight_grad(
    x: &[f64],
    xs: [usize; 4],
    dy: &[f64],
    ys: [usize; 4],
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
) -> Vec<f64> {
    let [n, ci, h, wd] = xs;
    let [_, co, oh, ow] = ys;
    let mut dw = vec![0.0; co * ci * kh * kw];
    for b in 0..n {
        for o in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((b * co + o) * oh + oy) * ow + ox];
                    for c in 0..ci {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky) as isize - pad as isize;
                                let ix = (ox * stride + kx) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    dw[((o * ci + c) * kh + ky) * kw + kx] +=
                                        g * x[((b * ci + c) * h + iy as usize) * wd + ix as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    dw
}

/// Normalises each group of `group` consecutive values (layer norm over trailing axes,
/// instance norm per plane) with biased variance.
pub fn normalize_groups(x: &[f64], group: usize, eps: f64) -> Vec<f64> {
    x.chunks(group)
        .flat_map(|g| {
            let mean = g.iter().sum::<f64>() / group as f64;
            let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / group as f64;
            g.iter().map(move |v| (v - mean) / (var + eps).sqrt()).collect::<Vec<_>>()
        })
        .collect()
}

/// Batch norm in training mode over [n, c, spatial] (spatial = 1 for 1-d): per-channel batch
/// mean and biased variance; returns (y, mean, unbiased variance).
pub fn batch_norm_train(
    x: &[f64],
    n: usize,
    c: usize,
    spatial: usize,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let count = (n * spatial) as f64;
    let mut y = vec![0.0; x.len()];
    let mut means = vec![0.0; c];
    let mut unbiased = vec![0.0; c];
    for ch in 0..c {
        let idx = |b: usize, s: usize| (b * c + ch) * spatial + s;
        let mut sum = 0.0;
        for b in 0..n {
            for s in 0..spatial {
                sum += x[idx(b, s)];
            }
        }
        let mean = sum / count;
        let mut sq = 0.0;
        for b in 0..n {
            for s in 0..spatial {
                sq += (x[idx(b, s)] - mean).powi(2);
            }
        }
        let var = sq / count;
        for b in 0..n {
            for s in 0..spatial {
                y[idx(b, s)] = (x[idx(b, s)] - mean) / (var + eps).sqrt() * gamma[ch] + beta[ch];
            }
        }
        means[ch] = mean;
        unbiased[ch] = if count > 1.0 { sq / (count - 1.0) } else { var };
    }
    (y, means, unbiased)
}

/// One Adam step (PyTorch's Adam, L2 weight decay added to the gradient); t counts from 1.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    t: u32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
) {
    for i in 0..p.len() {
        let gi = g[i] + weight_decay * p[i];
        m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
        let m_hat = m[i] / (1.0 - beta1.powi(t as i32));
        let v_hat = v[i] / (1.0 - beta2.powi(t as i32));
        p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
    }
}
