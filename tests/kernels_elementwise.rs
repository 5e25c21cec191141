//! Elementwise, broadcast, reduction and movement kernels against the CPU reference; the profiler.

mod common;
use common::*;
use shadergan::gpu::wgsl_enum::WgslEnum;
use shadergan::reference as cpu;
use shadergan::tensor::{BinaryOp, UnaryOp};

// The last is long enough to be read through a flat texture copy.
const SHAPES: [&[usize]; 6] = [&[1], &[7], &[3, 5], &[2, 3, 17], &[4, 3, 9, 11], &[6, 32, 40]];

#[test]
fn unary_ops_match_reference() {
    let gpu = gpu();
    let mut rng = rng("unary");
    // Every op on its test range (reference::unary_test_case), then far out where the naive
    // formulas overflow or lose precision.
    let mut ops: Vec<(UnaryOp, f64, f64, f64, f64)> = UnaryOp::ALL
        .iter()
        .map(|&op| {
            let (alpha, beta, lo, hi) = cpu::unary_test_case(op);
            (op, alpha, beta, lo, hi)
        })
        .collect();
    ops.extend([
        (UnaryOp::Exp, 0.0, 0.0, -5.0, 5.0),
        (UnaryOp::Log, 0.0, 0.0, 0.01, 10.0),
        (UnaryOp::Sqrt, 0.0, 0.0, 0.0, 10.0),
        (UnaryOp::Tanh, 0.0, 0.0, -30.0, 30.0),
        (UnaryOp::Sigmoid, 0.0, 0.0, -100.0, 100.0),
        (UnaryOp::Softplus, 0.0, 0.0, -60.0, 60.0),
        (UnaryOp::Recip, 0.0, 0.0, 0.1, 5.0),
        (UnaryOp::Pow, 0.5, 0.0, 0.0, 4.0),
    ]);
    for shape in SHAPES {
        let n: usize = shape.iter().product();
        for &(op, alpha, beta, lo, hi) in &ops {
            let x = uniform(&mut rng, n, lo, hi);
            let got = common::tensor(&gpu, shape, &x).unary_for_tests(op, alpha as f32, beta as f32).to_vec();
            let want = cpu::unary(op, alpha, beta, &f64s(&f32s(&x)));
            assert_close(&format!("{op:?} {shape:?}"), &got, &want, 1e-5, 1e-6);
        }
    }
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    // A private device is profiled to check that both broadcast entry points ran.
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    gpu.profile_start();
    let mut rng = rng("binary");
    // The last five take broadcast4 (runs of four along the last axis), the rest `forward`.
    let pairs: [(&[usize], &[usize]); 13] = [
        (&[7], &[7]),
        (&[1], &[1]),
        (&[2, 5], &[1]),
        (&[3, 5], &[5]),
        (&[3, 1], &[1, 4]),
        (&[2, 3, 17], &[3, 1]),
        (&[4, 3, 9, 11], &[1, 3, 1, 1]),
        (&[1], &[2, 5]),
        (&[3, 8], &[8]),
        (&[2, 3, 12], &[2, 3, 1]),
        (&[5, 1], &[1, 4]),
        (&[4, 3, 4, 8], &[1, 3, 1, 1]),
        (&[2, 1, 4], &[3, 4]),
    ];
    for (sa, sb) in pairs {
        let a = uniform(&mut rng, sa.iter().product(), -2.0, 2.0);
        let b = uniform(&mut rng, sb.iter().product(), 0.5, 2.0);
        let ta = common::tensor(&gpu, sa, &a);
        let tb = common::tensor(&gpu, sb, &b);
        for &op in BinaryOp::ALL {
            let out = ta.binary_for_tests(op, &tb);
            let want = cpu::binary(op, &f64s(&f32s(&a)), sa, &f64s(&f32s(&b)), sb, out.shape());
            assert_close(&format!("{op:?} {sa:?} {sb:?}"), &out.to_vec(), &want, 1e-6, 1e-6);
        }
    }
    // Both operands one buffer, at a size read through a texture copy (one copy serves both).
    let x = uniform(&mut rng, 6 * 1024, -2.0, 2.0);
    let t = common::tensor(&gpu, &[6, 1024], &x);
    let want: Vec<f64> = f64s(&f32s(&x)).iter().map(|v| v * v).collect();
    assert_close("x * x", &t.binary_for_tests(BinaryOp::Mul, &t).to_vec(), &want, 1e-6, 1e-6);
    assert_entries_ran(
        &gpu,
        &["binary.wgsl::forward ", "binary.wgsl::broadcast4 ", "binary.wgsl::contiguous ", "A_TEXTURE=1 B_TEXTURE=1"],
    );
}

/// Every entry point named ran, and so did every constant setting named ("NAME=value ..."):
/// the profile is keyed by entry point, grid and override constants.
fn assert_entries_ran(gpu: &shadergan::Gpu, entries: &[&str]) {
    let used: Vec<String> = gpu.profile_report().into_iter().map(|r| r.0).collect();
    for entry in entries {
        let ran = if entry.contains("::") {
            used.iter().any(|k| k.starts_with(entry))
        } else {
            used.iter().any(|k| k.ends_with(&format!(" {entry}")) || k.contains(&format!(" {entry} ")))
        };
        assert!(ran, "{entry} never ran: {used:?}");
    }
}

#[test]
fn sums_and_maxima_over_axes() {
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    gpu.profile_start();
    let mut rng = rng("reduce");
    // (2, 1000), (6, 1000) and (2, 16, 3, 32) over 1, 3 take wide4, (2, 999) wide; (5, 12)
    // and (5, 3, 8) take rows4, the rest rows.
    let cases: [(&[usize], &[usize]); 13] = [
        (&[7], &[0]),
        (&[3, 5], &[1]),
        (&[3, 5], &[0]),
        (&[2, 3, 17], &[0, 2]),
        (&[4, 3, 9, 11], &[0, 2, 3]),
        (&[4, 3, 9, 11], &[1]),
        (&[2, 1000], &[1]),
        (&[64, 8, 16, 16], &[0, 2, 3]),
        (&[6, 1000], &[1]),
        (&[2, 999], &[1]),
        (&[5, 12], &[0]),
        (&[5, 3, 8], &[1]),
        (&[2, 16, 3, 32], &[1, 3]),
    ];
    for (shape, axes) in cases {
        let x = uniform(&mut rng, shape.iter().product(), -1.0, 1.0);
        let t = common::tensor(&gpu, shape, &x);
        let iaxes: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
        let xs = f64s(&f32s(&x));
        let n: f64 = axes.iter().map(|&a| shape[a] as f64).product();
        assert_close(
            &format!("sum {shape:?} {axes:?}"),
            &t.sum(&iaxes, true).to_vec(),
            &cpu::reduce(&xs, shape, axes, false),
            1e-5,
            1e-5 * n.sqrt(),
        );
        assert_close(
            &format!("max {shape:?} {axes:?}"),
            &t.max(&iaxes, true).to_vec(),
            &cpu::reduce(&xs, shape, axes, true),
            0.0,
            0.0,
        );
    }
    assert_entries_ran(
        &gpu,
        &["reduce.wgsl::rows ", "reduce.wgsl::rows4 ", "reduce.wgsl::wide ", "reduce.wgsl::wide4 "],
    );
}

#[test]
fn permute_pad_narrow_expand_reflect() {
    let gpu = gpu();
    let mut rng = rng("movement");
    let shape = [2usize, 3, 5, 7];
    let x = uniform(&mut rng, shape.iter().product(), -1.0, 1.0);
    let xs = f64s(&f32s(&x));
    let t = common::tensor(&gpu, &shape, &x);
    for perm in [[0usize, 1, 2, 3], [3, 2, 1, 0], [0, 2, 3, 1], [1, 0, 3, 2]] {
        assert_close(
            &format!("permute {perm:?}"),
            &t.permute(&perm).to_vec(),
            &cpu::permute(&xs, &shape, &perm),
            0.0,
            0.0,
        );
    }
    let pads = [(0, 1), (2, 0), (1, 1), (3, 2)];
    assert_close("pad", &t.pad(&pads).to_vec(), &cpu::pad(&xs, &shape, &pads), 0.0, 0.0);
    let narrowed = t.narrow(2, 1, 3);
    assert_eq!(narrowed.shape(), &[2, 3, 3, 7]);
    let want: Vec<f64> = (0..2 * 3 * 3 * 7)
        .map(|i| {
            let (b, c, y, xx) = (i / 63, (i / 21) % 3, (i / 7) % 3, i % 7);
            xs[((b * 3 + c) * 5 + y + 1) * 7 + xx]
        })
        .collect();
    assert_close("narrow", &narrowed.to_vec(), &want, 0.0, 0.0);
    let row = common::tensor(&gpu, &[1, 3, 1, 1], &[1.0, 2.0, 3.0]);
    let expanded = row.expand(&[2, 3, 2, 2]).to_vec();
    assert_eq!(expanded.len(), 24);
    assert!(expanded.iter().enumerate().all(|(i, &v)| v == ((i / 4) % 3 + 1) as f32));
    for (top, bottom, left, right) in [(1, 1, 1, 1), (3, 2, 0, 4), (4, 4, 6, 6)] {
        assert_close(
            &format!("reflect {top} {bottom} {left} {right}"),
            &t.reflect_pad2d(top, bottom, left, right).to_vec(),
            &cpu::reflect_pad2d(&xs, &shape, top, bottom, left, right),
            0.0,
            0.0,
        );
    }
    let cat = shadergan::Tensor::cat(&[&t, &t.narrow(1, 0, 2)], 1);
    assert_eq!(cat.shape(), &[2, 5, 5, 7]);
    assert_close("cat", &cat.narrow(1, 3, 2).to_vec(), &f64s(&t.narrow(1, 0, 2).to_vec()), 0.0, 0.0);
}

#[test]
fn vec4_gathers_agree_with_the_reference() {
    // Lines whose last axis is a plain copy of a multiple of 4 values move as vec4s (gather4):
    // permutes that keep the last axis, padding and narrowing of other axes, concatenation,
    // and rows longer than one invocation's chunk. A private device is profiled to check that
    // the vec4 entry ran.
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let mut rng = rng("vec4 gather");
    let shape = [2usize, 3, 5, 8];
    let x = uniform(&mut rng, shape.iter().product(), -1.0, 1.0);
    let xs = f64s(&f32s(&x));
    let t = common::tensor(&gpu, &shape, &x);
    gpu.profile_start();
    for perm in [[1usize, 0, 2, 3], [2, 0, 1, 3], [0, 2, 1, 3]] {
        let want = cpu::permute(&xs, &shape, &perm);
        assert_close(&format!("permute {perm:?}"), &t.permute(&perm).to_vec(), &want, 0.0, 0.0);
    }
    let pads = [(1, 0), (0, 2), (2, 1), (0, 0)];
    assert_close("pad", &t.pad(&pads).to_vec(), &cpu::pad(&xs, &shape, &pads), 0.0, 0.0);
    let narrowed = t.narrow(2, 1, 3).to_vec();
    let want: Vec<f64> = (0..2 * 3 * 3 * 8)
        .map(|i| {
            let (b, c, y, xx) = (i / 72, (i / 24) % 3, (i / 8) % 3, i % 8);
            xs[((b * 3 + c) * 5 + y + 1) * 8 + xx]
        })
        .collect();
    assert_close("narrow", &narrowed, &want, 0.0, 0.0);
    let cat = shadergan::Tensor::cat(&[&t, &t.narrow(1, 1, 2)], 1);
    assert_close("cat", &cat.narrow(1, 3, 2).to_vec(), &f64s(&t.narrow(1, 1, 2).to_vec()), 0.0, 0.0);
    let n = 2 * 20_000;
    let long: Vec<f32> = (0..n).map(|i| (i % 997) as f32).collect();
    let lt = shadergan::Tensor::from_vec(&gpu, &[2, n / 2], &long);
    let doubled = shadergan::Tensor::cat(&[&lt, &lt], 0).to_vec();
    assert_eq!(&doubled[..n], &long[..], "long rows copied in chunks");
    assert_eq!(&doubled[n..], &long[..], "long rows copied in chunks");
    assert_entries_ran(&gpu, &["movement.wgsl::gather4 "]);
}

#[test]
fn transposes_of_the_last_two_axes_agree_with_the_reference() {
    // Swapping the last two axes moves 4x4 blocks (transpose4) when both are multiples of 4,
    // from a texture copy when the tensor is large enough to have one, and falls back to the
    // strided gather otherwise.
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let mut rng = rng("transpose");
    gpu.profile_start();
    for shape in [vec![3usize, 8, 12], vec![2, 64, 132], vec![5, 7, 9], vec![4, 3], vec![16, 4], vec![2, 2, 12, 8]] {
        let x = uniform(&mut rng, shape.iter().product(), -1.0, 1.0);
        let r = shape.len();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        let want = cpu::permute(&f64s(&f32s(&x)), &shape, &perm);
        let got = common::tensor(&gpu, &shape, &f64s(&f32s(&x))).t().to_vec();
        assert_close(&format!("transpose {shape:?}"), &got, &want, 0.0, 0.0);
    }
    assert_entries_ran(
        &gpu,
        &["movement.wgsl::transpose4 ", "FROM_TEXTURE=1", "FROM_TEXTURE=0", "movement.wgsl::gather "],
    );
}

/// llvmpipe silently ends an invocation's loops after 65535 steps, counted over all its loops
/// together; kernels must split longer work.
#[test]
fn long_copies_reductions_and_inner_products_are_complete() {
    let gpu = gpu();
    let mut rng = rng("long loops");
    let n = 204_800;
    let data: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let t = shadergan::Tensor::zeros(&gpu, &[n]);
    t.assign(&data);
    assert_eq!(t.to_vec(), data, "assign of {n} values");
    let wide = shadergan::Tensor::from_vec(&gpu, &[2, n / 2], &data);
    assert_close("permute of long rows", &wide.t().t().to_vec(), &f64s(&data), 0.0, 0.0);
    let long = uniform(&mut rng, 2 * 70_000, -1.0, 1.0);
    let lt = common::tensor(&gpu, &[2, 70_000], &long);
    let want: Vec<f64> = (0..2).map(|r| f64s(&f32s(&long[r * 70_000..(r + 1) * 70_000])).iter().sum()).collect();
    assert_close("sum of 70000", &lt.sum(&[1], false).to_vec(), &want, 1e-4, 1e-3);
    // Past 65535 steps of 64 lanes, in vec4s and not (odd length), where `wide` takes 256 lanes.
    for n in [4_400_000usize, 4_400_001, 8_000_000, 18_000_000] {
        let ones = shadergan::Tensor::from_vec(&gpu, &[n], &vec![1.0; n]);
        assert_close(&format!("sum of {n} ones"), &ones.sum(&[0], false).to_vec(), &[n as f64], 1e-6, 0.0);
    }
    // Two reduced axes: every step also runs the offset's loop, which llvmpipe counts too.
    let ones = shadergan::Tensor::from_vec(&gpu, &[24, 1024, 1000], &vec![1.0; 24 * 1024 * 1000]);
    assert_close("sum over axes 0 and 2", &ones.sum(&[0, 2], false).to_vec(), &[24_000.0; 1024], 1e-6, 0.0);
    let b = uniform(&mut rng, 70_000 * 3, -1.0, 1.0);
    let bt = common::tensor(&gpu, &[70_000, 3], &b);
    let want = shadergan::reference::matmul(&f64s(&f32s(&long)), &f64s(&f32s(&b)), 1, 2, 70_000, 3, false, false);
    assert_close("matmul with K = 70000", &lt.matmul(&bt).to_vec(), &want, 1e-3, 1e-2);
}

#[test]
fn profiles_count_every_dispatch_and_copy_with_positive_times() {
    // More dispatches than one timestamp query set holds, so its read-back-when-full path runs.
    // A private device: other tests' dispatches on the shared one would join the count.
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let x = shadergan::Tensor::from_vec(&gpu, &[4096], &[0.5; 4096]);
    gpu.profile_start();
    let mut y = x.clone();
    for _ in 0..1100 {
        y = y.tanh();
    }
    let report = gpu.profile_report();
    let tanh: Vec<_> = report.iter().filter(|(k, _, _)| k.starts_with("unary.wgsl::forward")).collect();
    assert_eq!(tanh.iter().map(|r| r.1).sum::<u64>(), 1100, "{report:?}");
    assert!(tanh.iter().all(|r| r.2 > 0.0 && r.2 < 60.0), "{report:?}");
    if gpu.profile_uses_timestamps() {
        // Each tanh reads a texture copy of its input, stamped as well.
        let copies: Vec<_> = report.iter().filter(|(k, _, _)| k.starts_with("copy:buffer->texture")).collect();
        assert_eq!(copies.iter().map(|r| r.1).sum::<u64>(), 1100, "{report:?}");
        assert!(copies.iter().all(|r| r.2 >= 0.0 && r.2 < 60.0), "{report:?}");
    }
    assert!(gpu.profile_report().is_empty(), "profiling stops at the report");
    let v = y.to_vec();
    assert!(v[0] > 0.0 && v[0] < 0.5, "the profiled work still computed tanh^1100(0.5) = {}", v[0]);
}

#[test]
fn pipeline_cache_is_written_and_read_back() {
    // A device with a pipeline cache folder writes the cache once its pipelines have run; a
    // second device starts from that file, and a corrupt file only costs a cold start.
    let dir = tempfile::tempdir().unwrap();
    let options = shadergan::GpuOptions {
        pipeline_cache_dir: Some(dir.path().to_path_buf()),
        ..shadergan::GpuOptions::from_env()
    };
    let first = shadergan::Gpu::new(&options).expect("a device");
    let Some(path) = first.pipeline_cache_path().map(|p| p.to_path_buf()) else {
        eprintln!("this adapter has no pipeline cache: nothing to check");
        return;
    };
    let x = shadergan::Tensor::from_vec(&first, &[5], &[1.0, -2.0, 3.0, -4.0, 5.0]);
    assert_eq!(x.relu().to_vec(), vec![1.0, 0.0, 3.0, 0.0, 5.0]);
    let saved = std::fs::read(&path).expect("the pipeline cache file after the first dispatch");
    assert!(!saved.is_empty(), "empty pipeline cache file");
    let second = shadergan::Gpu::new(&options).expect("a device from the cached pipelines");
    let y = shadergan::Tensor::from_vec(&second, &[3], &[-1.0, 0.5, 2.0]);
    assert_eq!(y.relu().to_vec(), vec![0.0, 0.5, 2.0]);
    std::fs::write(&path, b"not a pipeline cache").unwrap();
    let third = shadergan::Gpu::new(&options).expect("a device despite a corrupt cache file");
    assert_eq!(shadergan::Tensor::from_vec(&third, &[2], &[-3.0, 3.0]).relu().to_vec(), vec![0.0, 3.0]);
}

#[test]
fn fused_activation_gradients_match_the_composite_rule() {
    // First-order gradients of ReLU, leaky ReLU, tanh and sigmoid run as one pass (from
    // storage below 4096 values, from texture copies above); with create_graph the composite
    // rule runs instead. Both must agree, at sizes with and without a whole last vec4.
    let gpu = gpu();
    let mut rng = rng("fused activation gradients");
    for n in [7usize, 4099, 8192] {
        let x = f64s(&f32s(&uniform(&mut rng, n, -3.0, 3.0)));
        let seed = common::tensor(&gpu, &[n], &f64s(&f32s(&uniform(&mut rng, n, -1.0, 1.0))));
        for (op, alpha) in
            [(UnaryOp::Relu, 0.0), (UnaryOp::LeakyRelu, 0.2), (UnaryOp::Tanh, 0.0), (UnaryOp::Sigmoid, 0.0)]
        {
            let xt = common::tensor(&gpu, &[n], &x).requires_grad();
            let y = xt.unary_for_tests(op, alpha, 0.0);
            let fused =
                shadergan::grad_with(&y, &[&xt], shadergan::GradOptions::default().seed(&seed)).remove(0).to_vec();
            let composite =
                shadergan::grad_with(&y, &[&xt], shadergan::GradOptions::default().seed(&seed).create_graph())
                    .remove(0)
                    .to_vec();
            assert_close(&format!("{op:?} n={n}"), &fused, &f64s(&composite), 1e-5, 1e-6);
        }
    }
}

#[test]
fn repeated_work_reuses_its_bind_groups() {
    // Bind groups are cached by what they bind: the same work on pooled buffers, repeated,
    // finds every one it needs (a private device, so no other test's work interferes).
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let mut rng = rng("bind groups");
    let a = shadergan::Tensor::from_vec(&gpu, &[64, 96], &f32s(&uniform(&mut rng, 64 * 96, -1.0, 1.0)));
    let b = shadergan::Tensor::from_vec(&gpu, &[96, 80], &f32s(&uniform(&mut rng, 96 * 80, -1.0, 1.0)));
    let step = || a.matmul(&b).relu().sum_all().to_vec();
    let first = step();
    step();
    let before = gpu.stats();
    for _ in 0..3 {
        assert_close("the same work again", &step(), &f64s(&first), 1e-6, 1e-6);
    }
    let after = gpu.stats();
    assert!(after.dispatches - before.dispatches >= 9, "{} dispatches", after.dispatches - before.dispatches);
    assert_eq!(after.bind_groups_created, before.bind_groups_created, "repeated work made new bind groups");
}
