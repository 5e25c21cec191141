//! Which kernels the device runs: lavapipe, at either vector width (8- or 16-wide subgroups),
//! takes the register-blocked matmul with subgroup shuffles and implicit-GEMM convolutions;
//! `SHADERGAN_KERNELS` switches change that, and the profile shows the path each dispatch took.

mod common;
use common::*;

/// Profile keys of two 4x4 stride-2 convolutions' forward and weight gradient (8 input
/// channels: taps as columns; 1: the patch matrix as rows), and of a plain matrix product.
fn dispatched(gpu: &shadergan::Gpu) -> Vec<String> {
    let mut rng = rng("kernel paths");
    let x = common::tensor(gpu, &[2, 8, 16, 16], &uniform(&mut rng, 2 * 8 * 16 * 16, -1.0, 1.0));
    let w = common::tensor(gpu, &[64, 8, 4, 4], &uniform(&mut rng, 64 * 8 * 16, -1.0, 1.0)).requires_grad();
    let x1 = common::tensor(gpu, &[2, 1, 16, 16], &uniform(&mut rng, 2 * 16 * 16, -1.0, 1.0));
    let w1 = common::tensor(gpu, &[64, 1, 4, 4], &uniform(&mut rng, 64 * 16, -1.0, 1.0)).requires_grad();
    let a = common::tensor(gpu, &[40, 72], &uniform(&mut rng, 40 * 72, -1.0, 1.0));
    let b = common::tensor(gpu, &[72, 96], &uniform(&mut rng, 72 * 96, -1.0, 1.0));
    let (_, used) = profiled(gpu, || {
        let y = x.conv2d(&w, 2, 1);
        let dw = shadergan::grad(&y.sum_all(), &[&w]);
        let y1 = x1.conv2d(&w1, 2, 1);
        let dw1 = shadergan::grad(&y1.sum_all(), &[&w1]);
        (y.to_vec(), dw[0].to_vec(), dw1[0].to_vec(), a.matmul(&b).to_vec())
    });
    used
}

fn is_lavapipe(gpu: &shadergan::Gpu) -> bool {
    gpu.info().name.contains("llvmpipe") && gpu.info().backend == wgpu::Backend::Vulkan
}

#[test]
fn lavapipe_runs_the_subgroup_matmul_and_implicit_convolutions_at_its_width() {
    let gpu = gpu();
    let path = gpu.kernel_path();
    eprintln!("{}: subgroups {}: {}", gpu.info().name, gpu.info().subgroup_max_size, path.reason);
    if !is_lavapipe(&gpu) {
        eprintln!("not lavapipe on Vulkan: its path is checked by choose_kernel_path's unit test");
        return;
    }
    assert_eq!(path.blocked_matmul, Some(shadergan::gpu::Shader::MatmulSubgroup), "{path:?}");
    assert!(path.implicit_convs, "{path:?}");
    let used = dispatched(&gpu);
    let has = |text: &str| used.iter().any(|k| k.contains(text));
    assert!(has("matmul_subgroup.wgsl::forward") && has("B_MODE=6"), "conv forward not implicit: {used:?}");
    assert!(has("B_MODE=7 A_MODE=4"), "weight gradient (taps as columns) not implicit: {used:?}");
    assert!(has("A_MODE=3"), "weight gradient of one input channel not implicit: {used:?}");
    assert!(!has("matmul.wgsl::forward") && !has("im2col"), "a portable kernel ran: {used:?}");
    // At 512 bits (16-wide subgroups) pairs of groups share B's loads; at 256 a subgroup holds
    // one group.
    let wide = gpu.info().subgroup_min_size >= 16;
    assert_eq!(path.paired_groups, wide, "{path:?}");
    assert_eq!(has("B_MODE=6") && has("PAIRED_GROUPS=1"), wide, "{used:?}");
}

#[test]
fn kernel_switches_take_the_paths_they_name() {
    let portable = shadergan::Gpu::new(&options_with("portable")).expect("a second device");
    assert!(portable.kernel_path().blocked_matmul.is_none() && !portable.kernel_path().implicit_convs);
    let used = dispatched(&portable);
    assert!(used.iter().all(|k| !k.contains("matmul_subgroup")), "subgroup kernel under `portable`: {used:?}");
    assert!(used.iter().any(|k| k.contains("matmul.wgsl::forward")), "{used:?}");

    // Without subgroups: the same kernels, lanes exchanged through workgroup memory.
    let shared = shadergan::Gpu::new(&options_with("no-subgroups")).expect("a second device");
    let used = dispatched(&shared);
    assert!(
        used.iter().any(|k| k.contains("matmul_subgroup.wgsl+shared::forward") && k.contains("B_MODE=6")),
        "{used:?}"
    );
    for mode in ["A_MODE=3", "A_MODE=4"] {
        assert!(used.iter().any(|k| k.contains("+shared") && k.contains(mode)), "no {mode}: {used:?}");
    }
    assert!(used.iter().all(|k| !k.contains("matmul_subgroup.wgsl::")), "a subgroup kernel ran: {used:?}");
    assert!(used.iter().all(|k| !k.contains("PAIRED_GROUPS")), "groups paired without subgroups: {used:?}");

    let patch = shadergan::Gpu::new(&options_with("patch-matrix")).expect("a second device");
    if patch.kernel_path().blocked_matmul.is_some() {
        let used = dispatched(&patch);
        assert!(used.iter().any(|k| k.contains("im2col")), "no patch matrix under `patch-matrix`: {used:?}");
        assert!(used.iter().all(|k| !k.contains("B_MODE=6")), "{used:?}");
    }
}
