//! Matmul and the three convolution kernels against the CPU reference, at odd sizes and at the
//! DCGAN shapes (kernel 4, stride 2, padding 1).

mod common;
use common::*;
use shadergan::reference as cpu;

#[test]
fn matmul_all_transpose_combinations() {
    let gpu = gpu();
    let mut rng = rng("matmul");
    for &(batch, m, k, n) in &[
        (1, 1, 1, 1),
        (1, 5, 3, 7),
        (1, 33, 17, 65),
        (3, 9, 31, 6),
        (1, 64, 100, 128),
        (2, 31, 1, 33),
        // skinny products: one to four rows, or one column (computed as its transpose)
        (1, 1, 37, 300),
        (2, 3, 20, 70),
        (1, 4, 65, 9),
        (1, 70, 13, 1),
        (3, 6, 9, 1),
        // skinny with operands through flat texture copies (at least 4096 values)
        (1, 2, 64, 4096),
        (1, 1, 4096, 8),
        (2, 4, 1024, 96),
        (1, 4096, 16, 1),
        // a vector times a matrix of few columns with a long reduction (products and a sum)
        (1, 1, 1500, 70),
        (1, 70, 1500, 1),
        (1, 1, 1024, 512),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = uniform(&mut rng, batch * m * k, -1.0, 1.0);
            let b = uniform(&mut rng, batch * k * n, -1.0, 1.0);
            let a_shape = if ta { [batch, k, m] } else { [batch, m, k] };
            let b_shape = if tb { [batch, n, k] } else { [batch, k, n] };
            let (ta_t, tb_t) = if batch == 1 {
                (common::tensor(&gpu, &a_shape[1..], &a), common::tensor(&gpu, &b_shape[1..], &b))
            } else {
                (common::tensor(&gpu, &a_shape, &a), common::tensor(&gpu, &b_shape, &b))
            };
            let got = ta_t.matmul_t(&tb_t, ta, tb).to_vec();
            let want = cpu::matmul(&f64s(&f32s(&a)), &f64s(&f32s(&b)), batch, m, k, n, ta, tb);
            assert_close(
                &format!("matmul b{batch} {m}x{k}x{n} t({ta},{tb})"),
                &got,
                &want,
                1e-4,
                1e-5 * (k as f64).sqrt(),
            );
        }
    }
}

/// (x shape, c_out, kernel, stride, pad)
const CONVS: [([usize; 4], usize, usize, usize, usize); 8] = [
    ([1, 1, 5, 5], 1, 3, 1, 1),
    // 64 output channels: the weight gradient runs as dW^T = cols · dy with dy transposed.
    ([2, 3, 8, 8], 64, 4, 2, 1),
    ([2, 3, 7, 9], 5, 3, 1, 0),
    ([2, 3, 8, 8], 6, 4, 2, 1),
    ([3, 5, 11, 7], 7, 3, 2, 2),
    ([2, 4, 16, 16], 8, 4, 2, 1),
    ([1, 2, 9, 9], 3, 7, 1, 3),
    ([4, 16, 4, 4], 1, 4, 1, 0),
];

#[test]
fn conv2d_forward_matches_reference() {
    let gpu = gpu();
    let mut rng = rng("conv2d");
    for (xs, co, k, stride, pad) in CONVS {
        let ws = [co, xs[1], k, k];
        let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
        let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
        let got = common::tensor(&gpu, &xs, &x).conv2d(&common::tensor(&gpu, &ws, &w), stride, pad).to_vec();
        let want = cpu::conv2d(&x, xs, &w, ws, stride, pad);
        assert_close(&format!("conv2d {xs:?} k{k} s{stride} p{pad}"), &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn conv_transpose2d_matches_reference() {
    let gpu = gpu();
    let mut rng = rng("conv_transpose2d");
    // (x shape, c_out, kernel, stride, pad, output_padding): DCGAN's generator layers included.
    let cases: [([usize; 4], usize, usize, usize, usize, usize); 6] = [
        ([2, 8, 1, 1], 6, 4, 1, 0, 0),
        ([2, 6, 4, 4], 3, 4, 2, 1, 0),
        ([1, 3, 5, 5], 2, 3, 2, 1, 1),
        ([3, 4, 7, 5], 5, 3, 1, 1, 0),
        ([2, 5, 3, 3], 4, 5, 3, 2, 2),
        ([1, 1, 6, 6], 1, 2, 2, 0, 0),
    ];
    for (xs, co, k, stride, pad, op) in cases {
        let ws = [xs[1], co, k, k];
        let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
        let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
        let out = common::tensor(&gpu, &xs, &x).conv_transpose2d(&common::tensor(&gpu, &ws, &w), stride, pad, op);
        let (oh, ow) = (out.shape()[2], out.shape()[3]);
        assert_eq!(oh, (xs[2] - 1) * stride + k + op - 2 * pad);
        let want = cpu::conv_transpose2d(&x, xs, &w, ws, stride, pad, oh, ow);
        assert_close(
            &format!("conv_transpose2d {xs:?} k{k} s{stride} p{pad} op{op}"),
            &out.to_vec(),
            &want,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn conv2d_weight_gradient_matches_reference() {
    let gpu = gpu();
    let mut rng = rng("conv2d_weight_grad");
    for (xs, co, k, stride, pad) in CONVS {
        let ws = [co, xs[1], k, k];
        let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
        let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
        let xt = common::tensor(&gpu, &xs, &x);
        let wt = common::tensor(&gpu, &ws, &w).requires_grad();
        let y = xt.conv2d(&wt, stride, pad);
        let ys: [usize; 4] = y.shape().try_into().unwrap();
        let dy = f64s(&f32s(&uniform(&mut rng, ys.iter().product(), -1.0, 1.0)));
        let seed = common::tensor(&gpu, &ys, &dy);
        let dw = shadergan::grad_with(&y, &[&wt], shadergan::GradOptions::default().seed(&seed)).remove(0);
        let want = cpu::conv2d_weight_grad(&x, xs, &dy, ys, k, k, stride, pad);
        assert_close(&format!("conv2d dw {xs:?} k{k} s{stride} p{pad}"), &dw.to_vec(), &want, 1e-4, 1e-4);
    }
}

#[test]
fn matmul_split_k_for_long_reductions() {
    let gpu = gpu();
    let mut rng = rng("matmul split-k");
    // Small outputs with long K take the split-K path; K not a multiple of the chunk included.
    for &(m, k, n, ta, tb) in &[
        (32, 16384, 16, false, true),
        (1, 2048, 64, false, false),
        (64, 4099, 8, true, false),
        (5, 1500, 3, true, true),
        // skinny, with K past llvmpipe's 65535-iteration loop limit
        (2, 70001, 3, false, true),
        (3, 66000, 1, true, false),
    ] {
        let a = uniform(&mut rng, m * k, -1.0, 1.0);
        let b = uniform(&mut rng, k * n, -1.0, 1.0);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let got = common::tensor(&gpu, &a_shape, &a).matmul_t(&common::tensor(&gpu, &b_shape, &b), ta, tb).to_vec();
        let want = cpu::matmul(&f64s(&f32s(&a)), &f64s(&f32s(&b)), 1, m, k, n, ta, tb);
        assert_close(&format!("split-k matmul {m}x{k}x{n}"), &got, &want, 1e-4, 1e-5 * (k as f64).sqrt());
    }
}

#[test]
fn vec4_matmul_modes_agree_with_the_reference_at_ragged_shapes() {
    // On 8-wide subgroups B is read as vec4s along N (B_MODE 1) or along K (B_MODE 2) when its
    // layout allows, by scalar loads otherwise (0), and from a texture copy of B (3 along N, 4
    // along K) when its lines are also whole multiples of 64 floats; A from a texture copy
    // along K (A_MODE 1) or along M (2, M a multiple of 64) under the same condition. A private device is
    // profiled so the mode each shape took is checked: K tails shorter than a block, K below
    // one block, edges inside a tile, batches, transposed A, split K. A device without texture
    // operands (`SHADERGAN_KERNELS=storage-only`) reads the same shapes from storage (modes 1
    // and 2), and so does a device whose lanes exchange values through workgroup memory (the
    // path of adapters without subgroups).
    for switches in ["", "storage-only", "no-subgroups"] {
        let options = options_with(switches);
        let gpu = shadergan::Gpu::new(&options).expect("a second device");
        if gpu.kernel_path().blocked_matmul.is_none() {
            eprintln!("this adapter runs the portable kernels: the vec4 modes are not used here");
            return;
        }
        check_vec4_modes(&gpu, options.kernels.storage_only);
    }
}

fn check_vec4_modes(gpu: &shadergan::Gpu, no_textures: bool) {
    let mut rng = rng("vec4 matmul");
    // (batch, m, k, n, A transposed, B transposed, B_MODE, A_MODE) with textures allowed.
    for &(batch, m, k, n, ta, tb, texture_mode, a_texture_mode) in &[
        (1, 64, 100, 128, false, false, 3, 0),
        (2, 37, 13, 68, true, false, 1, 0),
        (2, 37, 13, 64, true, false, 3, 0),
        (2, 64, 13, 64, true, false, 3, 2),
        (1, 8, 3, 64, false, false, 3, 0),
        (1, 130, 16, 4, false, false, 1, 0),
        (1, 64, 100, 128, false, true, 2, 0),
        (3, 70, 20, 9, true, true, 2, 0),
        (1, 65, 64, 130, false, true, 4, 1),
        (3, 20, 64, 9, false, true, 4, 1),
        (1, 9, 4, 66, false, true, 2, 0),
        (1, 16, 2048, 64, false, false, 3, 1),
        (1, 128, 2048, 64, true, false, 3, 2),
        (1, 16, 2048, 40, true, true, 4, 0),
        // Tiles of 16 and 32 rows (products with no more rows).
        (1, 16, 13, 64, true, false, 3, 0),
        (2, 32, 40, 68, true, false, 1, 0),
        (1, 30, 64, 64, false, false, 3, 1),
        (1, 40, 18, 66, false, false, 0, 0),
        (2, 12, 13, 66, true, true, 0, 0),
        // Several row tiles in every A mode, K tails included.
        (2, 128, 13, 64, true, false, 3, 2),
        (1, 256, 100, 130, false, true, 2, 0),
        (1, 128, 192, 72, false, false, 1, 1),
        (3, 128, 64, 9, false, true, 4, 1),
    ] {
        let a = uniform(&mut rng, batch * m * k, -1.0, 1.0);
        let b = uniform(&mut rng, batch * k * n, -1.0, 1.0);
        let a_shape = if ta { vec![batch, k, m] } else { vec![batch, m, k] };
        let b_shape = if tb { vec![batch, n, k] } else { vec![batch, k, n] };
        let (at, bt) = (common::tensor(gpu, &a_shape, &a), common::tensor(gpu, &b_shape, &b));
        gpu.profile_start();
        let got = at.matmul_t(&bt, ta, tb).to_vec();
        let used: Vec<String> = gpu.profile_report().into_iter().map(|r| r.0).collect();
        let what = format!("matmul b{batch} {m}x{k}x{n} t({ta},{tb}) no_textures={no_textures}");
        let b_mode = if no_textures && texture_mode >= 3 { texture_mode - 2 } else { texture_mode };
        let a_mode = if no_textures { 0 } else { a_texture_mode };
        let mode = format!(" B_MODE={b_mode} A_MODE={a_mode}");
        assert!(
            used.iter().any(|key| key.starts_with("matmul_subgroup.wgsl")
                && key.contains("::forward ")
                && key.contains(&format!("{mode} "))),
            "{what} should run with{mode}; ran {used:?}"
        );
        let want = cpu::matmul(&f64s(&f32s(&a)), &f64s(&f32s(&b)), batch, m, k, n, ta, tb);
        assert_close(&what, &got, &want, 1e-4, 1e-5 * (k as f64).sqrt());
    }
}

#[test]
fn portable_and_subgroup_matmuls_agree_with_the_reference() {
    // The default device may use the subgroup-specialised matmul; a second device restricted
    // to portable kernels checks matmul.wgsl itself, as GPUs without 8-wide subgroups run it.
    let portable = shadergan::Gpu::new(&options_with("portable")).expect("a second device");
    assert!(portable.kernel_path().blocked_matmul.is_none());
    let mut rng = rng("portable matmul");
    for gpu in [gpu(), portable] {
        for &(m, k, n, ta, tb) in
            &[(1, 1, 1, false, false), (33, 17, 65, true, false), (64, 100, 128, false, true), (70, 9, 3, true, true)]
        {
            let a = uniform(&mut rng, m * k, -1.0, 1.0);
            let b = uniform(&mut rng, k * n, -1.0, 1.0);
            let a_shape = if ta { [k, m] } else { [m, k] };
            let b_shape = if tb { [n, k] } else { [k, n] };
            let got = common::tensor(&gpu, &a_shape, &a).matmul_t(&common::tensor(&gpu, &b_shape, &b), ta, tb).to_vec();
            let want = cpu::matmul(&f64s(&f32s(&a)), &f64s(&f32s(&b)), 1, m, k, n, ta, tb);
            let which = if gpu.kernel_path().blocked_matmul.is_some() { "blocked" } else { "portable" };
            assert_close(&format!("{which} matmul {m}x{k}x{n}"), &got, &want, 1e-4, 1e-5 * (k as f64).sqrt());
        }
    }
}

#[test]
fn convolutions_past_the_binding_limit_run_in_batch_pieces() {
    // 40 samples of a 7x7 conv from 16 channels at 64x64: the patch matrix (784 x 163,840 values)
    // exceeds a 128 MiB storage binding (WebGPU's default, asked for whatever the driver
    // offers), so the batch is convolved in pieces and joined.
    let gpu = common::webgpu_limited_gpu();
    let mut rng = rng("conv pieces");
    let (xs, ws) = ([40usize, 16, 64, 64], [1usize, 16, 7, 7]);
    let limit = gpu.limits().max_storage_buffer_binding_size as usize / 4;
    assert!(xs[0] * 16 * 49 * 64 * 64 > limit, "the case must exceed the limit ({limit} values)");
    let x = uniform(&mut rng, xs.iter().product(), -1.0, 1.0);
    let w = uniform(&mut rng, ws.iter().product(), -1.0, 1.0);
    let (xt, wt) = (common::tensor(&gpu, &xs, &x).requires_grad(), common::tensor(&gpu, &ws, &w).requires_grad());
    let y = xt.conv2d(&wt, 1, 3);
    let want = cpu::conv2d(&f64s(&f32s(&x)), xs, &f64s(&f32s(&w)), ws, 1, 3);
    assert_close("conv in pieces", &y.to_vec(), &want, 1e-4, 1e-4);
    // The transposed direction (the input gradient) splits the same way.
    let g = shadergan::grad_with(&y, &[&xt], shadergan::GradOptions::default().seed(&y.detach())).remove(0);
    let want_dx = cpu::conv_transpose2d(&want, [40, 1, 64, 64], &f64s(&f32s(&w)), ws, 1, 3, 64, 64);
    assert_close("input gradient in pieces", &g.to_vec(), &want_dx, 1e-4, 1e-3);
}

#[test]
fn threads_sharing_a_device_never_read_each_others_texture_copy_of_b() {
    // Products whose B is copied into a texture of the same size, from four threads at once on
    // one device, each recording many before reading any back: every copy must stay untouched
    // until its own product is recorded.
    let gpu = gpu();
    let (m, k, n, rounds) = (8, 8, 64, 150);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let gpu = gpu.clone();
            s.spawn(move || {
                let mut rng = rng(&format!("texture thread {t}"));
                let cases: Vec<(Vec<f64>, Vec<f64>)> = (0..rounds)
                    .map(|_| (uniform(&mut rng, m * k, -1.0, 1.0), uniform(&mut rng, k * n, -1.0, 1.0)))
                    .collect();
                let products: Vec<_> = cases
                    .iter()
                    .map(|(a, b)| {
                        common::tensor(&gpu, &[m, k], a).matmul_t(&common::tensor(&gpu, &[k, n], b), false, false)
                    })
                    .collect();
                for (round, ((a, b), c)) in cases.iter().zip(&products).enumerate() {
                    let want = cpu::matmul(&f64s(&f32s(a)), &f64s(&f32s(b)), 1, m, k, n, false, false);
                    assert_close(
                        &format!("thread {t} product {round}"),
                        &c.to_vec(),
                        &want,
                        1e-4,
                        1e-5 * (k as f64).sqrt(),
                    );
                }
            });
        }
    });
}

#[test]
fn im2col_and_col2im_read_texture_copies_where_lines_allow() {
    // im2col reads x's planes from a texture when a plane holds a multiple of 64 floats (as
    // runs of texels, im2col_runs, for strides 1 and 2), and
    // col2im (a transposed convolution's forward) reads dcols' rows from one when a row does
    // (as runs of four pixels per phase, col2im_runs, where stride and width allow);
    // a device without texture operands reads storage. Checked against the CPU reference, with
    // the path each dispatch took read from the profile.
    let mut rng = rng("im2col textures");
    for options in [options_with(""), options_with("storage-only")] {
        let gpu = shadergan::Gpu::new(&options).expect("a second device");
        let textures = !options.kernels.storage_only;
        // (x shape, c_out, k, stride, pad, whether the texture path applies)
        // (4 output channels: wider 4x4 stride-2 convolutions skip im2col, gathering as they
        // go; convolutions_as_implicit_products_match_the_reference checks those.)
        for (xs, co, k, stride, pad, lines_fit) in [
            ([2, 4, 16, 16], 4, 4, 2, 1, true),
            ([2, 3, 6, 8], 5, 3, 1, 1, false),
            ([3, 2, 8, 8], 4, 4, 2, 1, true),
            ([1, 3, 8, 8], 2, 3, 1, 1, true),
            ([2, 2, 8, 8], 3, 3, 2, 1, true),
            ([1, 2, 8, 8], 3, 5, 1, 0, true),
            ([1, 2, 16, 12], 3, 3, 3, 0, true),
        ] {
            let what = format!("{xs:?} k{k} s{stride} p{pad} textures={textures}");
            // Strides 1 and 2 read the texture as runs (im2col_runs).
            let (entry, expect) = if textures && lines_fit && stride <= 2 {
                ("conv2d.wgsl::im2col_runs ", format!("STRIDE={stride}"))
            } else {
                ("conv2d.wgsl::im2col4 ", format!("FROM_TEXTURE={}", u32::from(textures && lines_fit)))
            };
            let ws = [co, xs[1], k, k];
            let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
            let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
            let (got, used) = profiled(&gpu, || {
                common::tensor(&gpu, &xs, &x).conv2d(&common::tensor(&gpu, &ws, &w), stride, pad).to_vec()
            });
            assert!(used.iter().any(|key| key.starts_with(entry) && key.ends_with(&expect)), "{what}: {used:?}");
            assert_close(&format!("conv2d {what}"), &got, &cpu::conv2d(&x, xs, &w, ws, stride, pad), 1e-4, 1e-5);

            // The transposed convolution of x with a [c_in, c_out, k, k] kernel runs col2im on
            // dcols [c_out*k*k, batch*h*w]: its rows hold a multiple of 64 floats exactly when
            // x's planes times the batch do.
            let tw = [xs[1], co, k, k];
            let wt = f64s(&f32s(&uniform(&mut rng, tw.iter().product(), -1.0, 1.0)));
            // With the texture, strides 1 and 2 take col2im_runs where output rows hold whole
            // runs (4 * stride pixels).
            let row_fits = (xs[0] * xs[2] * xs[3]) % 64 == 0;
            let out = |size: usize| (size - 1) * stride + k - 2 * pad;
            let runs = textures && row_fits && stride <= 2 && out(xs[3]) % (4 * stride) == 0;
            let (entry, expect) = if runs {
                ("conv2d.wgsl::col2im_runs ", format!("STRIDE={stride}"))
            } else {
                ("conv2d.wgsl::col2im", format!("FROM_TEXTURE={}", u32::from(textures && row_fits)))
            };
            let (got, used) = profiled(&gpu, || {
                common::tensor(&gpu, &xs, &x).conv_transpose2d(&common::tensor(&gpu, &tw, &wt), stride, pad, 0).to_vec()
            });
            assert!(used.iter().any(|key| key.starts_with(entry) && key.ends_with(&expect)), "{what}: {used:?}");
            let want = cpu::conv_transpose2d(&x, xs, &wt, tw, stride, pad, out(xs[2]), out(xs[3]));
            assert_close(&format!("conv_transpose2d {what}"), &got, &want, 1e-4, 1e-5);
        }
    }
}

#[test]
fn transposed_convolutions_by_phases_match_the_reference() {
    // Kernels two strides wide (DCGAN's 4x4 at stride 2) run as one product per output phase
    // that reads x in place (matmul_subgroup.wgsl, B_MODE 5) where channels and rows allow;
    // the same shapes with `patch_matrix_convs` or without texture operands take the
    // patch-matrix path. All are checked against the CPU reference, forward and as conv2d's
    // input gradient, with the path each run took read from the profile.
    let mut rng = rng("conv_transpose2d by phases");
    for options in implicit_and_patch_matrix_options() {
        let gpu = shadergan::Gpu::new(&options).expect("a second device");
        let phases = !options.kernels.storage_only && gpu.implicit_convs();
        // (x shape, c_out, kernel, stride, pad, eligible): 64-row tiles with a partial second
        // one, 32-row tiles with clamped rows, partial column tiles; then shapes the phases do
        // not serve: a 3x3 kernel, and too few input channels for a texture line of A.
        for (xs, co, k, stride, pad, eligible) in [
            ([3, 32, 4, 8], 16, 4, 2, 1, true),
            ([2, 16, 4, 4], 24, 4, 2, 1, true),
            ([2, 16, 4, 4], 80, 4, 2, 1, true),
            ([1, 48, 8, 12], 16, 4, 2, 1, true),
            ([2, 16, 4, 8], 20, 3, 2, 1, false),
            ([2, 8, 4, 8], 20, 4, 2, 1, false),
        ] {
            let phases = phases && eligible;
            let what = format!("{xs:?} c_out {co} k{k} s{stride} p{pad} phases={phases}");
            let ws = [xs[1], co, k, k];
            let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
            let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
            let wt = common::tensor(&gpu, &ws, &w);
            let (out, used) = profiled(&gpu, || common::tensor(&gpu, &xs, &x).conv_transpose2d(&wt, stride, pad, 0));
            let got = out.to_vec();
            let by_phases = used.iter().any(|key| key.contains("by phases") && key.contains("B_MODE=5"));
            assert_eq!(by_phases, phases, "{what}: {used:?}");
            let (oh, ow) = (out.shape()[2], out.shape()[3]);
            let want = cpu::conv_transpose2d(&x, xs, &w, ws, stride, pad, oh, ow);
            assert_close(&format!("conv_transpose2d {what}"), &got, &want, 1e-4, 1e-5);

            // The same product as the input gradient of conv2d(y, w) with upstream gradient x.
            let ys = [xs[0], co, oh, ow];
            let y = common::tensor(&gpu, &ys, &f64s(&f32s(&uniform(&mut rng, ys.iter().product(), -1.0, 1.0))))
                .requires_grad();
            let z = y.conv2d(&wt, stride, pad);
            assert_eq!(z.shape(), xs, "{what}");
            let seed = common::tensor(&gpu, &xs, &x);
            let dy = shadergan::grad_with(&z, &[&y], shadergan::GradOptions::default().seed(&seed)).remove(0);
            assert_close(&format!("conv2d dx {what}"), &dy.to_vec(), &want, 1e-4, 1e-5);
        }
    }
}

#[test]
fn convolutions_as_implicit_products_match_the_reference() {
    // 4x4 stride-2 convolutions with more than four output channels run as one product that
    // gathers x's patches as it goes and stores y as NCHW (matmul_subgroup.wgsl, B_MODE 6);
    // so does the input gradient of a transposed convolution. The weight gradient gathers its
    // patches too: with taps as columns (B_MODE 7, dy read in place as A_MODE 4) where the taps
    // fill 64-column tiles and output planes hold whole blocks of 8 positions, else as rows
    // (A_MODE 3) with a multiple of 64 output channels. Checked against the
    // CPU reference, and so are the patch-matrix paths (`patch_matrix_convs`, or no texture
    // operands), with the path each run took read from the profile.
    let mut rng = rng("implicit conv2d");
    for options in implicit_and_patch_matrix_options() {
        let gpu = shadergan::Gpu::new(&options).expect("a second device");
        let implicit = !options.kernels.storage_only && gpu.implicit_convs();
        // (x shape, c_out, kernel, pad, eligible): a 16-row tile; two row tiles, the second
        // partial, with W read from storage (16 * c_in not a texture line) and a partial column
        // tile; padding 3; non-square planes; then a 3x3 kernel and too few output channels.
        // The weight gradient: 64 channels with padding 1 and 3, and split-K (16 rows, 1024
        // positions); taps as columns with a plane of 48 positions (not a power of two), and
        // with split-K (chunks of four images).
        for (xs, co, k, pad, eligible) in [
            ([2, 8, 16, 16], 16, 4, 1, true),
            ([3, 3, 8, 8], 70, 4, 1, true),
            ([1, 4, 12, 12], 24, 4, 3, true),
            ([2, 5, 8, 24], 8, 4, 1, true),
            ([2, 4, 8, 8], 8, 3, 1, false),
            ([2, 4, 8, 8], 3, 4, 1, false),
            ([2, 3, 8, 8], 64, 4, 1, true),
            ([1, 4, 12, 12], 128, 4, 3, true),
            ([4, 1, 32, 32], 64, 4, 1, true),
            ([2, 4, 24, 8], 32, 4, 1, true),
            ([16, 4, 16, 16], 16, 4, 1, true),
        ] {
            let implicit = implicit && eligible;
            let what = format!("{xs:?} c_out {co} k{k} p{pad} implicit={implicit}");
            let ws = [co, xs[1], k, k];
            let x = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
            let w = f64s(&f32s(&uniform(&mut rng, ws.iter().product(), -1.0, 1.0)));
            let wt = common::tensor(&gpu, &ws, &w).requires_grad();
            let took_implicit =
                |used: &[String]| used.iter().any(|key| key.contains("implicit") && key.contains("B_MODE=6"));
            let (y, used) = profiled(&gpu, || common::tensor(&gpu, &xs, &x).conv2d(&wt, 2, pad));
            let got = y.to_vec();
            assert_eq!(took_implicit(&used), implicit, "{what}: {used:?}");
            assert_close(&format!("conv2d {what}"), &got, &cpu::conv2d(&x, xs, &w, ws, 2, pad), 1e-4, 1e-5);

            // The weight gradient: which implicit product, if any, the shape allows.
            let ys: [usize; 4] = y.shape().try_into().unwrap();
            let by_taps = implicit && co >= 16 && (16 * xs[1]).is_multiple_of(64) && (ys[2] * ys[3]).is_multiple_of(8);
            let implicit_dw = match (by_taps, implicit && co % 64 == 0) {
                (true, _) => Some("B_MODE=7 A_MODE=4"),
                (false, true) => Some("A_MODE=3"),
                (false, false) => None,
            };
            let took_implicit_dw = |used: &[String]| {
                let weight_grads = || used.iter().filter(|key| key.contains("weight grad"));
                ["B_MODE=7 A_MODE=4", "A_MODE=3"].into_iter().find(|mode| weight_grads().any(|key| key.contains(mode)))
            };
            let dy = f64s(&f32s(&uniform(&mut rng, ys.iter().product(), -1.0, 1.0)));
            let dy_t = common::tensor(&gpu, &ys, &dy);
            let (dw, used) = profiled(&gpu, || {
                shadergan::grad_with(&y, &[&wt], shadergan::GradOptions::default().seed(&dy_t)).remove(0).to_vec()
            });
            assert_eq!(took_implicit_dw(&used), implicit_dw, "{what} (weight gradient): {used:?}");
            let want_dw = cpu::conv2d_weight_grad(&x, xs, &dy, ys, k, k, 2, pad);
            assert_close(&format!("conv2d dw {what}"), &dw, &want_dw, 1e-4, 1e-4);

            // conv_transpose2d(z, W) with z shaped like y: its input gradient is conv2d(seed, W),
            // its weight gradient conv2d's weight gradient of (seed, z).
            let zs = ys;
            let z = f64s(&f32s(&uniform(&mut rng, zs.iter().product(), -1.0, 1.0)));
            let zt = common::tensor(&gpu, &zs, &z).requires_grad();
            let t = zt.conv_transpose2d(&wt, 2, pad, xs[2] - ((zs[2] - 1) * 2 + k - 2 * pad));
            assert_eq!(t.shape(), xs, "{what}");
            let seed = common::tensor(&gpu, &xs, &x);
            let (grads, used) =
                profiled(&gpu, || shadergan::grad_with(&t, &[&zt, &wt], shadergan::GradOptions::default().seed(&seed)));
            assert_eq!(took_implicit(&used), implicit, "{what} (transposed): {used:?}");
            assert_eq!(took_implicit_dw(&used), implicit_dw, "{what} (transposed): {used:?}");
            let want_dz = cpu::conv2d(&x, xs, &w, ws, 2, pad);
            assert_close(&format!("conv_transpose2d dz {what}"), &grads[0].to_vec(), &want_dz, 1e-4, 1e-5);
            let want_dw = cpu::conv2d_weight_grad(&x, xs, &z, zs, k, k, 2, pad);
            assert_close(&format!("conv_transpose2d dw {what}"), &grads[1].to_vec(), &want_dw, 1e-4, 1e-4);
        }
    }
}

/// Devices for the implicit-GEMM tests: the default (implicit where shapes allow), the same with
/// lanes through workgroup memory (adapters without subgroups), explicit patch matrices with
/// texture operands, and storage operands only.
fn implicit_and_patch_matrix_options() -> [shadergan::GpuOptions; 4] {
    ["", "no-subgroups", "patch-matrix", "storage-only"].map(options_with)
}
